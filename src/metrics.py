"""GLUE metrics, computed exactly as the GLUE benchmark (and `evaluate.load("glue", ...)`) does,
with scikit-learn and scipy, so they work offline."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, classification_report, f1_score, matthews_corrcoef


def _matthews(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(matthews_corrcoef(labels, preds))


def _accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(accuracy_score(labels, preds))


def _f1(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(f1_score(labels, preds))  # binary F1 of the positive class (label 1), as GLUE


def _pearson(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(pearsonr(preds, labels)[0]) if np.ptp(preds) > 0 else 0.0  # constant predictions: undefined, report 0


def _spearman(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(spearmanr(preds, labels)[0]) if np.ptp(preds) > 0 else 0.0


METRICS = {
    "matthews_correlation": _matthews,
    "accuracy": _accuracy,
    "f1": _f1,
    "pearson": _pearson,
    "spearmanr": _spearman,
}


def compute_metrics(names: list[str], labels, preds, suffix: str = "") -> dict[str, float]:
    """{name + suffix: value} for each metric name; preds are class ids, or scores for regression."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    return {name + suffix: METRICS[name](labels, preds) for name in names}


def per_class_report(labels, preds, label_names: list[str]) -> dict:
    """scikit-learn's classification report (precision, recall, F1, support per class) as a dict."""
    return classification_report(labels, preds, labels=list(range(len(label_names))), target_names=label_names, output_dict=True, zero_division=0)


def per_class_report_text(labels, preds, label_names: list[str]) -> str:
    return classification_report(labels, preds, labels=list(range(len(label_names))), target_names=label_names, digits=4, zero_division=0)
