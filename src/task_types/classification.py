"""sequence_classification: one class per text or text pair (GLUE, SuperGLUE, TweetEval, your own data).

Labels are read as the task says (task.label_encoding): label ids, label names, or (auto) names when every
label is one of label_names, else ids. Without label_names, the names are the sorted labels of train, as
run_glue.py does. A row whose label is empty or -1 has none (the Hub marks unlabelled test rows with -1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from src.config import TaskConfig, UserError
from src.metrics import CLASSIFICATION
from src.prompts import check_prompt
from src.task_types.base import SequenceTask


def label_key(value: Any) -> str | None:
    """A raw label as text (JSON booleans as false/true, 1.0 as 1); None when the row has no label."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return None if text in ("", "-1") else text


def infer_label_names(values: list) -> list[str]:
    """The sorted distinct labels of a split (numerically when they are all integers), unlabelled rows left out."""
    keys = {k for k in map(label_key, values) if k is not None}
    if all(k.lstrip("-").isdigit() for k in keys):
        return sorted(keys, key=int)
    return sorted(keys)


def encode_class_labels(values: list, task: TaskConfig, label_names: list[str], where: Callable[[int], str]) -> list:
    """Raw labels to label ids as task.label_encoding says (auto: names when every label is one); None where a row
    has none. where(i) names row i in an error message."""
    keys = [label_key(v) for v in values]
    ids = {name: i for i, name in enumerate(label_names)}
    encoding = task.label_encoding
    if encoding == "auto":  # names inferred from the labels themselves, or every label one of the names given
        encoding = "name" if task.label_names is None or all(k in ids for k in keys if k is not None) else "id"
    out = []
    for i, key in enumerate(keys):
        if key is None:
            out.append(None)
        elif encoding == "name":
            if key not in ids:
                seen = " (the labels of train: task.label_names is not set)" if task.label_names is None else ""
                raise UserError(f"{where(i)}: label {key!r} is not one of the {task.name} labels {label_names}{seen}")
            out.append(ids[key])
        else:
            if not key.lstrip("-").isdigit() or not 0 <= int(key) < len(label_names):
                raise UserError(f"{where(i)}: label {key!r} is not a label id of {task.name} (0..{len(label_names) - 1}: {', '.join(label_names)}); task.label_encoding={encoding}")
            out.append(int(key))
    return out


class SequenceClassification(SequenceTask):
    name = "sequence_classification"
    allowed_metrics = CLASSIFICATION
    has_classes = True
    zero_shot = True

    def check(self, task: TaskConfig) -> None:
        super().check(task)
        names = task.label_names
        if names is not None:
            if len(names) < 2:
                raise UserError(f"task.label_names must name at least 2 classes, got {names} (or null: inferred from train)")
            if task.positive_label is not None and task.positive_label not in names:
                raise UserError(f"task.positive_label {task.positive_label!r} is not one of task.label_names {names}")
        if task.label_range is not None:
            raise UserError("task.label_range is for regression tasks (type: regression): remove it, or set task.type=regression")
        check_prompt(task)  # after the labels: one answer per class

    def num_labels(self, task: TaskConfig) -> int:
        return len(task.label_names)

    def head_config(self, task: TaskConfig) -> dict:
        names = task.label_names
        return {"num_labels": len(names), "problem_type": "single_label_classification", "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}

    def encode_labels(self, values: list, task: TaskConfig, label_names: list[str], where: Callable[[int], str]) -> list:
        return encode_class_labels(values, task, label_names, where)

    def infer_label_names(self, task: TaskConfig, values: list) -> list[str]:
        return infer_label_names(values)

    def predictions(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return logits.argmax(-1)

    def positive_id(self, task: TaskConfig) -> int:
        return task.label_names.index(task.positive_label) if task.positive_label is not None else 1

    def format_label(self, value: Any) -> str:
        return str(int(value))

    format_prediction = format_label

    def display(self, task: TaskConfig, value: Any) -> Any:
        return task.label_names[int(value)]

    def class_report(self, task: TaskConfig, labels: np.ndarray, predictions: np.ndarray) -> tuple[dict, str]:
        from src.metrics import per_class_report, per_class_report_text

        return per_class_report(labels, predictions, task.label_names), per_class_report_text(labels, predictions, task.label_names)

    def error_analysis(self, run_dir: Path, task: TaskConfig, title: str, split: str, texts: list[list[str]], labels: np.ndarray, logits: np.ndarray, num_errors: int):
        """confusion_matrix_<split>.tsv/.png, and the wrong predictions made with the highest probability."""
        from scipy.special import softmax
        from sklearn.metrics import confusion_matrix

        from src.analysis import SplitAnalysis, plot_confusion_matrix, write_tsv

        names = task.label_names
        labels = labels.astype(int)
        probabilities = softmax(logits.astype(np.float64), axis=-1)
        preds = probabilities.argmax(-1)
        confidence = probabilities[np.arange(len(preds)), preds]
        wrong = np.flatnonzero(preds != labels)
        most_confident = wrong[np.argsort(-confidence[wrong], kind="stable")][:num_errors]
        rows = [[int(i), *(t[i] for t in texts), names[labels[i]], names[preds[i]], round(float(confidence[i]), 6)] for i in most_confident]

        matrix = confusion_matrix(labels, preds, labels=list(range(len(names))))
        write_tsv(run_dir / f"confusion_matrix_{split}.tsv", ["gold \\ predicted", *names], [[name, *map(int, counts)] for name, counts in zip(names, matrix)])
        image = run_dir / f"confusion_matrix_{split}.png"
        plot_confusion_matrix(image, matrix, names, f"{title}: {len(wrong)} of {len(labels)} wrong")
        return SplitAnalysis(split, ["index", *task.text_fields, "gold", "predicted", "probability"], rows, image)

    def submission_values(self, task: TaskConfig, logits: np.ndarray) -> list:
        ids = logits.argmax(-1)
        return [task.label_names[i] for i in ids] if task.submission_labels == "name" else [int(i) for i in ids]
