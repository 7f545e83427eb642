"""Leaderboard submission files: the predictions of a task's unlabelled test split(s) (task.predict_splits), one
file each, named as the leaderboard expects and written into one directory: zip it and upload.

- glue (task.submission_format): `index<TAB>prediction` files CoLA.tsv, SST-2.tsv, MRPC.tsv, STS-B.tsv, QQP.tsv,
  MNLI-m.tsv, MNLI-mm.tsv, QNLI.tsv, RTE.tsv, WNLI.tsv, AX.tsv: label names where the task's files use names
  (MNLI, AX, QNLI, RTE), label ids elsewhere, and for STS-B the score clipped to [0, 5];
- superglue: `{"idx": ..., "label": ...}` lines, CB.jsonl, BoolQ.jsonl, RTE.jsonl, ...
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from src.config import Config, TaskConfig
from src.data import eval_loader, predict_sources, tokenize, tokenizer_fingerprint
from src.loop import predict_logits
from src.task_types import task_type


def submission_dir(cfg: Config, run_dir: Path) -> Path:
    return Path(cfg.submission_dir) if cfg.submission_dir else run_dir / f"{cfg.task.submission_format}_submission"


def check_test_files(cfg: Config) -> None:
    """Fail before training, not after it, when the test files are missing."""
    predict_sources(cfg)


def write_submission(cfg: Config, accelerator: Accelerator, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> list[Path]:
    """Predict each of the task's unlabelled test splits and write its submission file; returns the files written."""
    model.eval()
    written, tokenizer_key = [], tokenizer_fingerprint(tokenizer)
    files = {p.split: p.submission_file for p in cfg.task.predict_splits}
    for split, source in predict_sources(cfg).items():
        tokenized = tokenize(source, cfg.task, tokenizer, tokenizer_key, cfg.model.max_length, cfg.data.cache_dir, split)  # cached: no parsing on a hit
        logits, _ = predict_logits(accelerator, model, accelerator.prepare(eval_loader(cfg, tokenizer, tokenized)), cfg.task)
        if accelerator.is_main_process:
            path = out_dir / files[split]
            write_submission_file(path, cfg.task, list(tokenized["test_index"]), task_type(cfg.task).submission_values(cfg.task, logits))
            written.append(path)
    return written


def write_submission_file(path: Path, task: TaskConfig, ids: list[str], predictions: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if task.submission_format == "superglue":
        lines = [json.dumps({"idx": int(i) if i.isdigit() else i, "label": p}) + "\n" for i, p in zip(ids, predictions)]
    else:
        lines = ["index\tprediction\n", *(f"{i}\t{p}\n" for i, p in zip(ids, predictions))]
    path.write_text("".join(lines))
