"""GLUE test-set submission files: one `index<TAB>prediction` file per test split, named as the GLUE
leaderboard expects (CoLA.tsv, SST-2.tsv, MRPC.tsv, STS-B.tsv, QQP.tsv, MNLI-m.tsv, MNLI-mm.tsv,
QNLI.tsv, RTE.tsv, WNLI.tsv, AX.tsv), written into one directory: zip it and upload.

Predictions are what the GLUE server reads: label names where the task's files use names (MNLI, AX,
QNLI, RTE), label ids elsewhere, and for STS-B the score clipped to [0, 5].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from src.config import Config, TaskConfig
from src.data import eval_loader, test_file, test_split_source, tokenize, tokenizer_fingerprint
from src.loop import predict_logits


def submission_dir(cfg: Config, run_dir: Path) -> Path:
    return Path(cfg.submission_dir) if cfg.submission_dir else run_dir / "glue_submission"


def check_test_files(cfg: Config) -> None:
    """Fail before training, not after it, when a local GLUE copy lacks the test files."""
    if cfg.data.glue_dir is not None:
        for split in cfg.task.test_splits:
            test_file(cfg.task, split, cfg.data.glue_dir)


def write_submission(cfg: Config, accelerator: Accelerator, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> list[Path]:
    """Predict each of the task's test splits and write its submission file; returns the files written."""
    model.eval()
    written, tokenizer_key = [], tokenizer_fingerprint(tokenizer)
    for split in cfg.task.test_splits:
        key, load = test_split_source(cfg.task, split, cfg.data.glue_dir)  # a cached tokenization skips parsing the file
        tokenized = tokenize(key, load, cfg.task, tokenizer, tokenizer_key, cfg.model.max_length, cfg.data.cache_dir, "test-" + Path(split.file).stem)
        logits, _ = predict_logits(accelerator, model, accelerator.prepare(eval_loader(cfg, tokenizer, tokenized)))
        if accelerator.is_main_process:
            path = out_dir / split.submission_file
            write_submission_file(path, list(tokenized["test_index"]), format_predictions(cfg.task, logits))
            written.append(path)
    return written


def format_predictions(task: TaskConfig, logits: np.ndarray) -> list[str]:
    if task.is_regression:
        return [f"{score:.3f}" for score in np.clip(logits[:, 0], 0.0, 5.0)]
    ids = logits.argmax(-1)
    return [task.label_names[i] for i in ids] if task.tsv.label_format == "name" else [str(i) for i in ids]


def write_submission_file(path: Path, indices: list[str], predictions: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("index\tprediction\n" + "".join(f"{index}\t{prediction}\n" for index, prediction in zip(indices, predictions)))
