"""Zero- and few-shot evaluation of a base language model, without training: each answer of a classification task
scored by its log-likelihood after the task's prompt (src.prompts, src.scoring), as lm-evaluation-harness scores it.

    python -m src.zeroshot task=rte model=gpt2 num_fewshot=0
    python -m src.zeroshot -m task=rte,cola,sst2 model=gpt2,pythia-160m num_fewshot=0,5 seed=1,2,3

The prediction is the answer of highest log-likelihood (`acc`), and of highest log-likelihood per character of the
answer (`acc_norm`, lm-eval's length-normalised variant); the task's own metrics (CoLA MCC, MRPC F1, ...) score acc's
predictions. A run writes what every run writes (config.yaml, status.json, metrics.json with `protocol: zeroshot`
and `num_fewshot`, predictions_dev.tsv with each answer's log-likelihood, the classification report, the error
analysis, a W&B run), so that src.report puts it beside fine-tuned runs of the same model as a row of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from src.config import Config

if TYPE_CHECKING:
    import datasets
    import torch
    from transformers import PreTrainedTokenizerBase

    from src.loop import EvalResult

log = logging.getLogger("basebench")
PROTOCOL = "zeroshot"  # metrics.json's `protocol` (src.train's runs: finetune); few-shot runs too, with num_fewshot > 0


@dataclass
class Scorer:
    """A decoder with its LM head, its tokenizer and the tokens it reads at once."""

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    window: int


def load_scorer(cfg: Config, device: torch.device | str = "cpu") -> Scorer:
    """cfg.model as a language model (an encoder is refused in one line), on `device`."""
    from src.model import load_language_model, load_tokenizer
    from src.scoring import context_window

    tokenizer = load_tokenizer(cfg.model)
    model = load_language_model(cfg.model, tokenizer).to(device)
    return Scorer(model, tokenizer, context_window(model.config, tokenizer))


@dataclass
class ScoredSplit:
    """One scored split: its examples (text fields, label, context and answer tokens) and [examples, answers]
    log-likelihoods."""

    examples: datasets.Dataset
    loglikelihoods: np.ndarray


def score(cfg: Config, scorer: Scorer, progress=None) -> dict[str, dict[str, ScoredSplit]]:
    """Every scored split of cfg.task ({"dev": {suffix: ...}, "test": {"": ...} or {}}) at trainer.eval_batch_size."""
    from src.data import prompted_data, tokenizer_fingerprint
    from src.scoring import loglikelihoods

    data = prompted_data(cfg, scorer.tokenizer, tokenizer_fingerprint(scorer.tokenizer), scorer.window)
    return {
        role: {
            suffix: ScoredSplit(split, loglikelihoods(scorer.model, split["context_ids"][:], split["continuation_ids"][:], cfg.trainer.eval_batch_size, scorer.window, progress))
            for suffix, split in splits.items()
        }
        for role, splits in data.items()
    }


def evaluation(cfg: Config, splits: dict[str, ScoredSplit]) -> tuple[EvalResult, dict[str, float]]:
    """The task's own metrics of scored splits (suffix -> split) on acc's predictions, as a fine-tuned run's (the
    log-likelihoods stand for the logits: the error analysis' probability is their softmax over the answers), and
    lm-eval's acc and acc_norm (acc_mm, acc_norm_mm for MNLI's mismatched dev)."""
    from src.loop import EvalResult
    from src.scoring import predictions
    from src.task_types import task_type

    kind = task_type(cfg.task)
    metrics, choice_metrics, preds, labels, logits = {}, {}, {}, {}, {}
    for suffix, split in splits.items():
        gold = np.asarray(split.examples["label"][:], dtype=np.int64)
        acc, acc_norm = predictions(split.loglikelihoods, cfg.task.prompt.choices)
        choice_metrics |= {f"acc{suffix}": float((acc == gold).mean()), f"acc_norm{suffix}": float((acc_norm == gold).mean())}
        metrics |= kind.metrics(cfg.task, gold, acc, suffix)
        preds[suffix], labels[suffix], logits[suffix] = acc, gold, split.loglikelihoods
    return EvalResult(metrics, preds, labels, logits), choice_metrics
