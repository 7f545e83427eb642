"""The metric registry: each metric as the benchmarks define it (GLUE, SuperGLUE, TweetEval), computed with
scikit-learn and scipy so it works offline. A task lists metric names (conf/task: `metrics`); its type says
which names fit it (CLASSIFICATION, REGRESSION).

scikit-learn and scipy are imported inside the functions: validating a config needs the names, not them.
"""

from __future__ import annotations

import numpy as np


def _accuracy(labels: np.ndarray, preds: np.ndarray, positive: int) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(labels, preds))


def _f1(labels: np.ndarray, preds: np.ndarray, positive: int) -> float:
    """Binary F1 of the positive class (GLUE's MRPC and QQP: label id 1; TweetEval irony: irony)."""
    from sklearn.metrics import f1_score

    return float(f1_score(labels, preds, pos_label=positive, average="binary", zero_division=0))


def _f1_averaged(average: str):
    def f1(labels: np.ndarray, preds: np.ndarray, positive: int) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(labels, preds, average=average, zero_division=0))

    f1.__doc__ = f"F1 averaged over the classes ({average}, as scikit-learn defines it)."
    return f1


def _matthews(labels: np.ndarray, preds: np.ndarray, positive: int) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(labels, preds))


def _pearson(labels: np.ndarray, preds: np.ndarray, positive: int) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(preds, labels)[0]) if np.ptp(preds) > 0 else 0.0  # constant predictions: undefined, report 0


def _spearman(labels: np.ndarray, preds: np.ndarray, positive: int) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(preds, labels)[0]) if np.ptp(preds) > 0 else 0.0


# name -> f(labels, predictions, positive class id); the names are what metrics.json and the leaderboard show
METRICS = {
    "accuracy": _accuracy,
    "f1": _f1,
    "f1_macro": _f1_averaged("macro"),
    "f1_micro": _f1_averaged("micro"),
    "f1_weighted": _f1_averaged("weighted"),
    "matthews_correlation": _matthews,
    "pearson": _pearson,
    "spearmanr": _spearman,
}
CLASSIFICATION = ("accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted", "matthews_correlation")
REGRESSION = ("pearson", "spearmanr")


def compute_metrics(names: list[str], labels, preds, suffix: str = "", positive: int = 1) -> dict[str, float]:
    """{name + suffix: value} for each metric name; preds are class ids, or scores for regression."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    return {name + suffix: METRICS[name](labels, preds, positive) for name in names}


def per_class_report(labels, preds, label_names: list[str]) -> dict:
    """scikit-learn's classification report (precision, recall, F1, support per class) as a dict."""
    from sklearn.metrics import classification_report

    return classification_report(labels, preds, labels=list(range(len(label_names))), target_names=label_names, output_dict=True, zero_division=0)


def per_class_report_text(labels, preds, label_names: list[str]) -> str:
    from sklearn.metrics import classification_report

    return classification_report(labels, preds, labels=list(range(len(label_names))), target_names=label_names, digits=4, zero_division=0)
