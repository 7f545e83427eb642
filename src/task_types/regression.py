"""regression: one score per text or text pair (STS-B), a single-output head trained with mean squared error."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from src.config import TaskConfig, UserError
from src.metrics import REGRESSION
from src.task_types.base import SequenceTask


class Regression(SequenceTask):
    name = "regression"
    allowed_metrics = REGRESSION
    has_classes = False

    def check(self, task: TaskConfig) -> None:
        super().check(task)
        if task.label_names:
            raise UserError(f"task.label_names: a regression task has no classes, got {task.label_names}: remove them, or set task.type=sequence_classification")

    def num_labels(self, task: TaskConfig) -> int:
        return 1

    def head_config(self, task: TaskConfig) -> dict:
        return {"num_labels": 1, "problem_type": "regression"}

    def encode_labels(self, values: list, task: TaskConfig, label_names: list[str], where: Callable[[int], str]) -> list:
        out = []
        for i, value in enumerate(values):
            if value is None or (isinstance(value, str) and not value.strip()):
                out.append(None)
                continue
            try:
                score = float(value)
            except (TypeError, ValueError):
                score = math.nan
            if not math.isfinite(score):
                raise UserError(f"{where(i)}: the {task.name} score {value!r} is not a finite number")
            if task.label_range is not None and not task.label_range[0] <= score <= task.label_range[1]:
                raise UserError(f"{where(i)}: the {task.name} score {score:g} is outside task.label_range {task.label_range}")
            out.append(score)
        return out

    def predictions(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return logits[:, 0]

    def format_label(self, value: Any) -> str:
        return f"{value:.3f}"  # gold scores have at most three decimals

    def format_prediction(self, value: Any) -> str:
        return f"{value:.6f}"

    def display(self, task: TaskConfig, value: Any) -> Any:
        return float(value)

    def error_analysis(self, run_dir: Path, task: TaskConfig, title: str, split: str, texts: list[list[str]], labels: np.ndarray, logits: np.ndarray, num_errors: int):
        """The largest absolute errors, and scatter_<split>.png (gold vs predicted)."""
        from src.analysis import SplitAnalysis, plot_scatter

        preds = logits[:, 0]
        errors = np.abs(preds - labels)
        largest = np.argsort(-errors, kind="stable")[:num_errors]
        rows = [[int(i), *(t[i] for t in texts), round(float(labels[i]), 3), round(float(preds[i]), 3), round(float(errors[i]), 3)] for i in largest]
        image = run_dir / f"scatter_{split}.png"
        plot_scatter(image, labels, preds, title)
        return SplitAnalysis(split, ["index", *task.text_fields, "gold", "predicted", "abs_error"], rows, image)

    def submission_values(self, task: TaskConfig, logits: np.ndarray) -> list:
        scores = logits[:, 0] if task.label_range is None else np.clip(logits[:, 0], *task.label_range)
        return [f"{score:.3f}" for score in scores]
