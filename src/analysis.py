"""Error analysis of a model's dev predictions: where it fails, and how sure it was.

Per dev split (MNLI adds the `_mm` files):
- classification: confusion_matrix_dev.tsv (counts, gold rows x predicted columns) and .png, and
  errors_dev.tsv: the wrong predictions made with the highest probability;
- regression (STS-B): errors_dev.tsv, the largest absolute errors, and scatter_dev.png (gold vs predicted).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from matplotlib.figure import Figure
from scipy.special import softmax
from sklearn.metrics import confusion_matrix

from src.config import Config, TaskConfig
from src.loop import EvalResult
from src.outputs import write_dev_outputs, write_json
from src.tracking import Tracker


@dataclass
class SplitAnalysis:
    split: str  # "dev" or "dev_mm"
    columns: list[str]  # of errors_<split>.tsv
    errors: list[list]
    image: Path  # the confusion matrix, or the STS-B scatter plot


def example_texts(task: TaskConfig, examples: datasets.Dataset) -> list[str]:
    """One display string per example: its text fields joined by [SEP]."""
    return [" [SEP] ".join(parts) for parts in zip(*(examples[f] for f in task.text_fields))]


def prediction_rows(cfg: Config, examples: datasets.Dataset, result: EvalResult) -> list[list]:
    """[text, gold, predicted] per example of the (first) dev split, with label names for classification."""
    names = cfg.task.label_names
    rows = []
    for text, label, pred in zip(example_texts(cfg.task, examples), result.labels[""], result.predictions[""]):
        rows.append([text, float(label), float(pred)] if cfg.task.is_regression else [text, names[int(label)], names[int(pred)]])
    return rows


def publish_results(run_dir: Path, cfg: Config, evaluation: EvalResult, dev_examples: dict[str, datasets.Dataset], metrics: dict, tracker: Tracker, summary: dict) -> str:
    """What a finished run or evaluation leaves: predictions_dev*.tsv, the class reports, the error analysis and
    metrics.json in run_dir; in W&B the best dev metrics and `summary`, the predictions table and the error
    analysis. Returns the class reports' text."""
    report = write_dev_outputs(run_dir, cfg, evaluation)
    analyses = write_error_analysis(run_dir, cfg, evaluation, dev_examples)
    write_json(run_dir / "metrics.json", metrics)
    tracker.summary({f"best/{k}": v for k, v in evaluation.metrics.items()} | {"main_metric": metrics["main_metric_value"], "num_parameters": metrics["num_parameters"]} | summary)
    tracker.log_table("eval/predictions", ["text", "label", "prediction"], prediction_rows(cfg, dev_examples[""], evaluation))
    log_error_analysis(tracker, analyses)
    return report


def write_error_analysis(run_dir: Path, cfg: Config, result: EvalResult, dev_examples: dict[str, datasets.Dataset]) -> list[SplitAnalysis]:
    analyses = []
    for suffix in result.predictions:
        split = "dev" + suffix
        examples = dev_examples[suffix]
        texts = [list(examples[f]) for f in cfg.task.text_fields]
        labels, logits = result.labels[suffix], result.logits[suffix]
        if cfg.task.is_regression:
            analysis = _regression_errors(run_dir, cfg, split, texts, labels, logits[:, 0])
        else:
            analysis = _classification_errors(run_dir, cfg, split, texts, labels, logits)
        _write_tsv(run_dir / f"errors_{split}.tsv", analysis.columns, analysis.errors)
        analyses.append(analysis)
    return analyses


def log_error_analysis(tracker: Tracker, analyses: list[SplitAnalysis]) -> None:
    for analysis in analyses:
        tracker.log_table(f"analysis/errors_{analysis.split}", analysis.columns, analysis.errors)
        tracker.log_image(f"analysis/{analysis.image.stem}", analysis.image)


def _classification_errors(run_dir: Path, cfg: Config, split: str, texts: list[list[str]], labels: np.ndarray, logits: np.ndarray) -> SplitAnalysis:
    names = cfg.task.label_names
    labels = labels.astype(int)
    probabilities = softmax(logits.astype(np.float64), axis=-1)
    preds = probabilities.argmax(-1)
    confidence = probabilities[np.arange(len(preds)), preds]
    wrong = np.flatnonzero(preds != labels)
    most_confident = wrong[np.argsort(-confidence[wrong], kind="stable")][: cfg.analysis.num_errors]
    rows = [[int(i), *(t[i] for t in texts), names[labels[i]], names[preds[i]], round(float(confidence[i]), 6)] for i in most_confident]

    matrix = confusion_matrix(labels, preds, labels=list(range(len(names))))
    _write_tsv(run_dir / f"confusion_matrix_{split}.tsv", ["gold \\ predicted", *names], [[name, *map(int, counts)] for name, counts in zip(names, matrix)])
    image = run_dir / f"confusion_matrix_{split}.png"
    _plot_confusion_matrix(image, matrix, names, f"{cfg.task.name} {split}, {cfg.model.name}: {len(wrong)} of {len(labels)} wrong")
    return SplitAnalysis(split, ["index", *cfg.task.text_fields, "gold", "predicted", "probability"], rows, image)


def _regression_errors(run_dir: Path, cfg: Config, split: str, texts: list[list[str]], labels: np.ndarray, preds: np.ndarray) -> SplitAnalysis:
    errors = np.abs(preds - labels)
    largest = np.argsort(-errors, kind="stable")[: cfg.analysis.num_errors]
    rows = [[int(i), *(t[i] for t in texts), round(float(labels[i]), 3), round(float(preds[i]), 3), round(float(errors[i]), 3)] for i in largest]
    image = run_dir / f"scatter_{split}.png"
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    ax.scatter(labels, preds, s=6, alpha=0.5)
    low, high = min(labels.min(), preds.min()), max(labels.max(), preds.max())
    ax.plot([low, high], [low, high], color="grey", linewidth=1, label="perfect")
    ax.set(xlabel="gold score", ylabel="predicted score", title=f"{cfg.task.name} {split}, {cfg.model.name}")
    ax.legend(loc="upper left")
    fig.savefig(image, dpi=110)
    return SplitAnalysis(split, ["index", *cfg.task.text_fields, "gold", "predicted", "abs_error"], rows, image)


def _plot_confusion_matrix(path: Path, matrix: np.ndarray, names: list[str], title: str) -> None:
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


def _write_tsv(path: Path, columns: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
