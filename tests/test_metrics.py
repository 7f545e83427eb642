"""Each GLUE metric against values computed by hand."""

from __future__ import annotations

import math

import pytest

from src.metrics import compute_metrics, per_class_report


def test_matthews_by_hand():
    # tp=2 tn=1 fp=1 fn=1: (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    labels, preds = [1, 1, 1, 0, 0], [1, 1, 0, 1, 0]
    assert compute_metrics(["matthews_correlation"], labels, preds)["matthews_correlation"] == pytest.approx(1 / 6)


def test_matthews_is_zero_for_a_constant_prediction():
    assert compute_metrics(["matthews_correlation"], [0, 1, 1], [1, 1, 1])["matthews_correlation"] == 0.0


def test_f1_and_accuracy_by_hand():
    # positive class 1: tp=2 fp=1 fn=1 -> precision 2/3, recall 2/3, F1 2/3; accuracy 3/5
    labels, preds = [1, 1, 1, 0, 0], [1, 1, 0, 1, 0]
    out = compute_metrics(["f1", "accuracy"], labels, preds)
    assert out == {"f1": pytest.approx(2 / 3), "accuracy": pytest.approx(3 / 5)}


def test_pearson_and_spearman_by_hand():
    labels = [0.0, 1.0, 2.0, 3.0]
    preds = [0.0, 1.0, 3.0, 2.0]
    # pearson: means 1.5; cov = (2.25+0.25+0.75+0.75)/4 = 1; var = 1.25 each -> 0.8
    # spearman on ranks (1,2,3,4) vs (1,2,4,3): 1 - 6*2/(4*15) = 0.8
    out = compute_metrics(["pearson", "spearmanr"], labels, preds)
    assert out["pearson"] == pytest.approx(0.8)
    assert out["spearmanr"] == pytest.approx(0.8)


def test_suffix_names_mismatched_metrics():
    assert compute_metrics(["accuracy"], [0, 1, 2], [0, 1, 1], suffix="_mm") == {"accuracy_mm": pytest.approx(2 / 3)}


def test_unknown_metric_is_an_error():
    with pytest.raises(ValueError, match="unknown metric"):
        compute_metrics(["bleu"], [0], [0])


def test_per_class_report_by_hand():
    report = per_class_report([1, 1, 1, 0, 0], [1, 1, 0, 1, 0], ["neg", "pos"])
    assert report["pos"]["precision"] == pytest.approx(2 / 3)
    assert report["pos"]["recall"] == pytest.approx(2 / 3)
    assert report["neg"]["precision"] == pytest.approx(1 / 2)
    assert report["neg"]["support"] == 2
    assert math.isclose(report["accuracy"], 0.6)
