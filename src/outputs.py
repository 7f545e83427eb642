"""What a run leaves in its directory: metrics.json, predictions_dev*.tsv, classification_report*.txt
(config.yaml and status.json are src/lifecycle.py's, checkpoint-best/ the loop's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from src.config import Config
from src.lifecycle import write_text_atomic
from src.metrics import per_class_report, per_class_report_text

if TYPE_CHECKING:
    from src.loop import EvalResult


def write_json(path: Path, payload: dict) -> None:
    """Write-then-rename, so a reader never sees half a file."""
    write_text_atomic(path, json.dumps(payload, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def metrics_record(cfg: Config, evaluation: EvalResult, **fields) -> dict:
    """metrics.json of a training run or an evaluation: what was evaluated, its dev metrics (`best`, from
    `evaluation`), then `fields`: how it was trained and selected (src.train; zeros for src.evaluate)."""
    return {
        "status": "completed",
        "task": cfg.task.name,
        "model": cfg.model.name,
        "model_name_or_path": cfg.model.name_or_path,
        "seed": cfg.seed,
        "main_metric": cfg.task.main_metric,
        "main_metric_value": evaluation.metrics[cfg.task.main_metric],
        "best": evaluation.metrics,
        **fields,
        "classification_report": class_reports(cfg, evaluation.labels, evaluation.predictions),
    }


def write_predictions(path: Path, predictions: np.ndarray, labels: np.ndarray, is_regression: bool) -> None:
    """index<TAB>label<TAB>prediction, one row per dev example in file order (label ids as the Hub's GLUE)."""
    lines = ["index\tlabel\tprediction"]
    for i, (label, pred) in enumerate(zip(labels, predictions)):
        lines.append(f"{i}\t{label:.3f}\t{pred:.6f}" if is_regression else f"{i}\t{int(label)}\t{int(pred)}")
    path.write_text("\n".join(lines) + "\n")


def write_dev_outputs(run_dir: Path, cfg: Config, result: EvalResult) -> str:
    """predictions_dev*.tsv and classification_report_dev*.txt of one evaluation; returns the report text."""
    for sfx, preds in result.predictions.items():
        write_predictions(run_dir / f"predictions_dev{sfx}.tsv", preds, result.labels[sfx], cfg.task.is_regression)
    return write_class_reports(run_dir, cfg, result.labels, result.predictions)


def class_reports(cfg: Config, labels: dict[str, np.ndarray], predictions: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per-class precision/recall/F1 per dev split (classification tasks only)."""
    if cfg.task.is_regression:
        return {}
    return {"dev" + sfx: per_class_report(labels[sfx], predictions[sfx], cfg.task.label_names) for sfx in labels}


def write_class_reports(run_dir: Path, cfg: Config, labels: dict[str, np.ndarray], predictions: dict[str, np.ndarray]) -> str:
    text = ""
    if not cfg.task.is_regression:
        for sfx in labels:
            report = per_class_report_text(labels[sfx], predictions[sfx], cfg.task.label_names)
            (run_dir / f"classification_report_dev{sfx}.txt").write_text(report)
            text += f"dev{sfx}:\n{report}\n"
    return text
