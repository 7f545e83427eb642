"""End to end: `python -m src.train` in a subprocess, as a user runs it, on the real GLUE files."""

from __future__ import annotations

import csv
import time

import pytest
import torch
from conftest import load_split, read_metrics, run_train
from transformers import AutoModelForSequenceClassification, AutoTokenizer

METRIC_KEYS = {
    "cola": {"matthews_correlation"},
    "sst2": {"accuracy"},
    "mrpc": {"f1", "accuracy"},
    "rte": {"accuracy"},
    "stsb": {"pearson", "spearmanr"},
    "wnli": {"accuracy"},
}


@pytest.mark.parametrize("task", sorted(METRIC_KEYS))
def test_tiny_model_trains_on_every_local_task(task, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    out = run_train(
        f"task={task}",
        "model=tiny",
        "logger=none",
        "trainer.max_steps=12",
        "trainer.eval_every_steps=6",
        "trainer.batch_size=16",
        "data.max_train_samples=2000",
        "data.max_eval_samples=300",
        "optimizer.lr=1e-3",
        f"data.cache_dir={cache_dir}",
        f"output_dir={run_dir}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["task"] == task and metrics["model"] == "tiny" and metrics["status"] == "completed"
    assert set(metrics["best"]) == METRIC_KEYS[task] and set(metrics["final"]) == METRIC_KEYS[task]
    assert metrics["main_metric_value"] == metrics["best"][metrics["main_metric"]]
    assert [h["step"] for h in metrics["history"]] == [6, 12]
    assert metrics["steps"] == 12 and metrics["train_samples"] == 12 * 16
    for key in ("train_samples_per_second", "train_runtime_s", "num_parameters"):
        assert metrics[key] > 0
    assert (run_dir / "config.yaml").is_file()
    with open(run_dir / "predictions_dev.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == min(300, {"wnli": 71, "rte": 277}.get(task, 300))
    assert list(rows[0]) == ["index", "label", "prediction"]
    assert (run_dir / "checkpoint-best" / "model.safetensors").is_file()
    if task != "stsb":
        assert (run_dir / "classification_report_dev.txt").is_file()
        assert metrics["classification_report"]["dev"]["accuracy"] >= 0


def test_best_checkpoint_reloads_with_from_pretrained_and_reproduces_predictions(tmp_path, cache_dir, glue_dir, make_cfg):
    run_dir = tmp_path / "run"
    out = run_train("task=rte", "model=tiny", "logger=none", "trainer.max_steps=8", "trainer.batch_size=8", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "checkpoint-best").eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "checkpoint-best")
    assert model.config.id2label == {0: "entailment", 1: "not_entailment"}
    cfg = make_cfg("task=rte", "model=tiny")
    dev = load_split(cfg, "dev")
    with torch.inference_mode():
        enc = tokenizer(dev["sentence1"][:40], dev["sentence2"][:40], truncation=True, max_length=128, padding=True, return_tensors="pt")
        preds = model(**enc).logits.argmax(-1).tolist()
    with open(run_dir / "predictions_dev.tsv") as f:
        written = [int(r["prediction"]) for r in csv.DictReader(f, delimiter="\t")][:40]
    assert preds == written
    labels = [int(r["label"]) for r in csv.DictReader(open(run_dir / "predictions_dev.tsv"), delimiter="\t")]
    assert labels == dev["label"]


def test_grad_accumulation_and_epoch_eval(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    out = run_train(
        "task=wnli", "model=tiny", "logger=none", "trainer.epochs=2", "trainer.batch_size=8", "trainer.grad_accum_steps=4", "scheduler=cosine", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    steps_per_epoch = -(-635 // 8) / 4  # 80 micro-batches of 8, 4 per optimizer step
    assert metrics["steps"] == 40 == 2 * steps_per_epoch
    assert [h["epoch"] for h in metrics["history"]] == [1.0, 2.0]


def test_hub_unreachable_fails_fast_with_one_line(tmp_path):
    started = time.perf_counter()
    env = {"HF_HUB_OFFLINE": "", "HF_DATASETS_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9", "GLUE_DIR": ""}
    out = run_train("task=rte", "model=bert-base", "logger=none", f"output_dir={tmp_path}", "data.glue_dir=null", env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot reach http://127.0.0.1:9"), out.stderr
    assert "model.name_or_path=" in lines[-1]
    assert time.perf_counter() - started < 15  # interpreter start-up included; the probe itself times out at 3 s


def test_hub_dataset_offline_fails_fast_and_says_how_to_use_local_files(tmp_path):
    started = time.perf_counter()
    out = run_train("task=rte", "model=tiny", "logger=none", f"output_dir={tmp_path}", "data.glue_dir=null", f"data.cache_dir={tmp_path}/cache", env={"GLUE_DIR": ""})
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert "nyu-mll/glue/rte" in line and "data.glue_dir=" in line, out.stderr
    assert time.perf_counter() - started < 15


def test_max_length_above_the_model_limit(tmp_path):
    out = run_train("task=rte", "model=minilm-l6", "model.max_length=1024", "logger=none", f"output_dir={tmp_path}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "error: model.max_length=1024 exceeds what minilm-l6 supports (512): set model.max_length<=512"


@pytest.mark.slow
def test_minilm_learns_sst2(tmp_path, cache_dir):
    """The packaged pretrained MiniLM fine-tunes for real: a short SST-2 run is far above chance."""
    run_dir = tmp_path / "run"
    out = run_train(
        "task=sst2", "model=minilm-l6", "logger=none", "trainer.max_steps=60", "trainer.batch_size=32", "optimizer.lr=1e-4", "data.max_train_samples=2000", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["best"]["accuracy"] > 0.75
    assert metrics["num_parameters"] == 22_713_986


def test_train_holdout_selection_keeps_dev_untouched(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    out = run_train(
        "task=mrpc", "model=tiny", "logger=none", "data.selection_split=train_holdout", "data.holdout_fraction=0.2", "trainer.max_steps=10", "trainer.eval_every_steps=5", "trainer.batch_size=16",
        f"data.cache_dir={cache_dir}", f"output_dir={run_dir}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["selection_split"] == "train_holdout"
    assert metrics["final"] is None  # dev met only the selected checkpoint
    assert set(metrics["selection"]) == {"f1", "accuracy"} and set(metrics["best"]) == {"f1", "accuracy"}
    best_record = next(h for h in metrics["history"] if h["step"] == metrics["best_step"])
    assert best_record["f1"] == metrics["selection"]["f1"]  # history holds the selection split's metrics
    rows = (run_dir / "predictions_dev.tsv").read_text().splitlines()
    assert len(rows) == 1 + 408  # predictions are on the full dev set
