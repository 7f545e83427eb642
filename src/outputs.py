"""What a run leaves in its directory: metrics.json, predictions_<split>.tsv (token classification: .conll),
classification_report_<split>.txt (config.yaml and status.json are src/lifecycle.py's, checkpoint-best/ the loop's)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from src.config import Config
from src.lifecycle import write_text_atomic
from src.runs import init_source
from src.task_types import task_type

if TYPE_CHECKING:
    from src.loop import EvalResult

# (path, split, metric suffix): an entry point's own writer of a scored split's predictions file
PredictionsWriter = Callable[[Path, str, str], None]


def write_json(path: Path, payload: dict) -> None:
    """Write-then-rename, so a reader never sees half a file."""
    write_text_atomic(path, json.dumps(payload, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def metrics_record(cfg: Config, evaluation: EvalResult, test: EvalResult | None = None, **fields) -> dict:
    """metrics.json of a training run or an evaluation: what was evaluated, its dev metrics (`best`, from
    `evaluation`), the labelled test split's (`test`, of the same checkpoint; null if the task has none), then
    `fields`: how it was trained and selected (src.train; zeros for src.evaluate)."""
    return {
        "status": "completed",
        "task": cfg.task.name,
        "task_type": cfg.task.type,
        "benchmark": cfg.task.benchmark,
        "model": cfg.model.name,
        "model_name_or_path": cfg.model.name_or_path,
        "init_from": init_source(cfg.model.init_from),  # the run whose fine-tuned encoder it started from
        "seed": cfg.seed,
        "label_names": cfg.task.label_names,
        "main_metric": cfg.task.main_metric,
        "main_metric_value": evaluation.metrics[cfg.task.main_metric],
        "best": evaluation.metrics,
        "test": test.metrics if test is not None else None,
        **fields,
        "classification_report": {split: report for split, (report, _) in class_reports(cfg, evaluations(evaluation, test)).items()},
    }


def evaluations(dev: EvalResult, test: EvalResult | None) -> dict[str, EvalResult]:
    """The scored splits of a run by name: dev, and test when the task has a labelled one."""
    return {"dev": dev} | ({"test": test} if test is not None else {})


def class_reports(cfg: Config, results: dict[str, EvalResult]) -> dict[str, tuple[dict, str]]:
    """Per-class precision/recall/F1 (dict, text) per scored split and metric suffix (dev, dev_mm, test); {} for a
    task type without classes."""
    kind = task_type(cfg.task)
    reports = {}
    for split, result in results.items():
        for sfx, preds in result.predictions.items():
            report = kind.class_report(cfg.task, result.labels[sfx], preds)
            if report is not None:
                reports[split + sfx] = report
    return reports


def write_eval_outputs(run_dir: Path, cfg: Config, results: dict[str, EvalResult], examples: dict[str, dict], write_predictions: PredictionsWriter | None = None) -> str:
    """predictions_<split>.<the task type's format> and classification_report_<split>.txt of each scored split
    (examples: split -> metric suffix -> its tokenized examples); returns the reports' text. write_predictions(path,
    split, suffix), where given, writes the predictions files instead of the task type (src.zeroshot's add columns)."""
    kind = task_type(cfg.task)
    for split, result in results.items():
        for sfx, preds in result.predictions.items():
            path = run_dir / f"predictions_{split}{sfx}.{kind.predictions_format}"
            if write_predictions is None:
                kind.write_predictions(path, cfg.task, examples[split][sfx], result.labels[sfx], preds)
            else:
                write_predictions(path, split, sfx)
    text = ""
    for name, (_, report) in class_reports(cfg, results).items():
        (run_dir / f"classification_report_{name}.txt").write_text(report)
        text += f"{name}:\n{report}\n"
    return text
