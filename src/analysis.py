"""Error analysis of a model's dev predictions: where it fails, and how sure it was. The task type decides what
that means (src.task_types): per dev split (MNLI adds the `_mm` files),
- classification: confusion_matrix_dev.tsv (counts, gold rows x predicted columns) and .png, and
  errors_dev.tsv: the wrong predictions made with the highest probability;
- regression (STS-B): errors_dev.tsv, the largest absolute errors, and scatter_dev.png (gold vs predicted).
This module holds what they share: writing the tables and plots, and publishing a finished run's results.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from matplotlib.figure import Figure

from src.config import Config, TaskConfig
from src.loop import EvalResult
from src.outputs import PredictionsWriter, evaluations, write_eval_outputs, write_json
from src.task_types import task_type
from src.tracking import Tracker


@dataclass
class SplitAnalysis:
    split: str  # "dev" or "dev_mm"
    columns: list[str]  # of errors_<split>.tsv
    errors: list[list]
    image: Path  # the confusion matrix, or the STS-B scatter plot


def example_texts(task: TaskConfig, examples: datasets.Dataset) -> list[str]:
    """One display string per example: its text fields joined by [SEP] (a field of words: the words joined by spaces)."""
    return [" [SEP] ".join(part if isinstance(part, str) else " ".join(part) for part in parts) for parts in zip(*(examples[f] for f in task.text_fields))]


def prediction_rows(cfg: Config, examples: datasets.Dataset, result: EvalResult) -> list[list]:
    """[text, gold, predicted] per example of the (first) dev split, as people read them (class names, or scores)."""
    kind = task_type(cfg.task)
    return [[text, kind.display(cfg.task, label), kind.display(cfg.task, pred)] for text, label, pred in zip(example_texts(cfg.task, examples), result.labels[""], result.predictions[""])]


def publish_results(
    run_dir: Path,
    cfg: Config,
    evaluation: EvalResult,
    test: EvalResult | None,
    examples: dict[str, dict[str, datasets.Dataset]],
    metrics: dict,
    tracker: Tracker,
    summary: dict,
    write_predictions: PredictionsWriter | None = None,
) -> str:
    """What a finished run or evaluation leaves: the predictions files (the task type's, or write_predictions'), the
    class reports, the error analysis and metrics.json in run_dir; in W&B the best dev metrics (and test metrics) and
    `summary`, the predictions table and the error analysis. examples: "dev" | "test" -> metric suffix -> tokenized
    examples. Returns the class reports' text."""
    report = write_eval_outputs(run_dir, cfg, evaluations(evaluation, test), examples, write_predictions)
    dev_examples = examples["dev"]
    analyses = write_error_analysis(run_dir, cfg, evaluation, dev_examples)
    write_json(run_dir / "metrics.json", metrics)
    scores = {f"best/{k}": v for k, v in evaluation.metrics.items()} | ({f"test/{k}": v for k, v in test.metrics.items()} if test is not None else {})
    tracker.summary(scores | {"main_metric": metrics["main_metric_value"], "num_parameters": metrics["num_parameters"]} | summary)
    tracker.log_table("eval/predictions", ["text", "label", "prediction"], prediction_rows(cfg, dev_examples[""], evaluation))
    log_error_analysis(tracker, analyses)
    return report


def write_error_analysis(run_dir: Path, cfg: Config, result: EvalResult, dev_examples: dict[str, datasets.Dataset]) -> list[SplitAnalysis]:
    kind, analyses = task_type(cfg.task), []
    for suffix in result.predictions:
        split = "dev" + suffix
        texts = [list(dev_examples[suffix][f]) for f in cfg.task.text_fields]
        title = f"{cfg.task.name} {split}, {cfg.model.name}"
        analysis = kind.error_analysis(run_dir, cfg.task, title, split, texts, result.labels[suffix], result.logits[suffix], cfg.analysis.num_errors)
        write_tsv(run_dir / f"errors_{split}.tsv", analysis.columns, analysis.errors)
        analyses.append(analysis)
    return analyses


def log_error_analysis(tracker: Tracker, analyses: list[SplitAnalysis]) -> None:
    for analysis in analyses:
        tracker.log_table(f"analysis/errors_{analysis.split}", analysis.columns, analysis.errors)
        tracker.log_image(f"analysis/{analysis.image.stem}", analysis.image)


def plot_confusion_matrix(path: Path, matrix: np.ndarray, names: list[str], title: str) -> None:
    size = 2.2 + 1.1 * len(names)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    shown = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(shown, ax=ax, label="examples")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="gold", title=title)
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    fig.savefig(path, dpi=110)


def plot_scatter(path: Path, labels: np.ndarray, preds: np.ndarray, title: str) -> None:
    """Gold against predicted scores, with the diagonal of perfect predictions."""
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    ax.scatter(labels, preds, s=6, alpha=0.5)
    low, high = min(labels.min(), preds.min()), max(labels.max(), preds.max())
    ax.plot([low, high], [low, high], color="grey", linewidth=1, label="perfect")
    ax.set(xlabel="gold score", ylabel="predicted score", title=title)
    ax.legend(loc="upper left")
    fig.savefig(path, dpi=110)


def write_tsv(path: Path, columns: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
