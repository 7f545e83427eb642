"""What a run leaves in its directory: config.yaml, metrics.json, predictions_dev*.tsv,
classification_report*.txt (checkpoint-best/ is written by the loop)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from src.config import Config, UserError
from src.metrics import per_class_report, per_class_report_text
from src.runs import init_source

if TYPE_CHECKING:
    from src.loop import EvalResult


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run directory, or fail with one line if it cannot be written or holds a finished run."""
    if (run_dir / "metrics.json").exists():
        raise UserError(f"{run_dir} already holds a finished run (metrics.json): choose another output_dir, or delete that run")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to the output directory {run_dir} ({e.strerror}): choose another with output_dir=DIR or hydra.run.dir=DIR") from None


def write_status(run_dir: Path, status: str, error: str | None = None) -> None:
    """status.json: running | completed | failed (with the error line). A killed run stays "running"."""
    try:
        write_json(run_dir / "status.json", {"status": status, "error": error, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    except OSError:  # an unwritable or missing run directory has already been reported
        pass


def failure_line(error: BaseException) -> str:
    """The one line status.json and W&B give a failure: a UserError's message, else the exception's type and first line."""
    return str(error).splitlines()[0] if isinstance(error, UserError) else f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"


def record_failure(run_dir: Path, error: BaseException) -> str:
    """status.json "failed" with the error's failure_line, which it returns; never over a finished run's files."""
    line = failure_line(error)
    if not isinstance(error, SystemExit) and not (run_dir / "metrics.json").exists():
        write_status(run_dir, "failed", error=line)
    return line


def write_json(path: Path, payload: dict) -> None:
    """Write-then-rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_config(run_dir: Path, plain_config: dict) -> None:
    (run_dir / "config.yaml").write_text(yaml.safe_dump(plain_config, sort_keys=False))


def metrics_record(cfg: Config, evaluation: EvalResult, **fields) -> dict:
    """metrics.json of a training run or an evaluation: what was evaluated, its dev metrics (`best`, from
    `evaluation`), then `fields`: how it was trained and selected (src.train; zeros for src.evaluate)."""
    return {
        "status": "completed",
        "task": cfg.task.name,
        "model": cfg.model.name,
        "model_name_or_path": cfg.model.name_or_path,
        "init_from": init_source(cfg.model.init_from),  # the run whose fine-tuned encoder it started from
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
