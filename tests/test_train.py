"""End to end: `python -m src.train` in a subprocess, as a user runs it, on the real GLUE files."""

from __future__ import annotations

import csv

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
    env = {"HF_HUB_OFFLINE": "", "HF_DATASETS_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9", "GLUE_DIR": ""}
    out = run_train("task=rte", "model=bert-base", "logger=none", f"output_dir={tmp_path}", "data.glue_dir=null", env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot reach http://127.0.0.1:9"), out.stderr
    assert "model.name_or_path=" in lines[-1]


def test_hub_dataset_offline_fails_fast_and_says_how_to_use_local_files(tmp_path):
    out = run_train("task=rte", "model=tiny", "logger=none", f"output_dir={tmp_path}", "data.glue_dir=null", f"data.cache_dir={tmp_path}/cache", env={"GLUE_DIR": ""})
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert "nyu-mll/glue/rte" in line and "data.glue_dir=" in line, out.stderr


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


def test_sst2_as_a_users_csv_gives_the_same_run_as_task_sst2(tmp_path, cache_dir, glue_dir):
    """The same examples under other column names and string labels, through task=custom: identical metrics and
    predictions, for the same seed and model."""
    with open(glue_dir / "SST-2" / "train.tsv", encoding="utf-8", newline="") as f:
        train = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:400]
    with open(glue_dir / "SST-2" / "dev.tsv", encoding="utf-8", newline="") as f:
        dev = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for name, rows in (("train", train), ("dev", dev)):
        with open(tmp_path / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["review", "sentiment"])
            writer.writerows([r["sentence"], ["negative", "positive"][int(r["label"])]] for r in rows)
    common = ["model=tiny", "logger=none", "seed=3", "trainer.max_steps=10", "trainer.eval_every_steps=5", "trainer.batch_size=16", "optimizer.lr=3e-3", f"data.cache_dir={cache_dir}"]
    glue = run_train("task=sst2", "data.max_train_samples=400", f"output_dir={tmp_path}/glue", *common)
    own = run_train(
        "task=custom", f"task.data_files.train={tmp_path}/train.csv", f"task.data_files.dev={tmp_path}/dev.csv", "task.text_fields=[review]", "task.label_field=sentiment",
        "task.metrics=[accuracy]", f"output_dir={tmp_path}/own", *common,
    )  # fmt: skip
    assert glue.returncode == 0 and own.returncode == 0, glue.stderr[-2000:] + own.stderr[-2000:]
    ours, theirs = read_metrics(tmp_path / "own"), read_metrics(tmp_path / "glue")
    assert ours["label_names"] == ["negative", "positive"]  # inferred from train, sorted: the ids SST-2 uses
    assert (ours["best"], ours["history"]) == (theirs["best"], theirs["history"])
    assert (tmp_path / "own" / "predictions_dev.tsv").read_bytes() == (tmp_path / "glue" / "predictions_dev.tsv").read_bytes()


def test_a_labelled_test_split_is_scored_once_on_the_selected_checkpoint(tmp_path, cache_dir):
    """TweetEval emotion: dev selects, test is scored once; both recomputed with scikit-learn from the files."""
    from sklearn.metrics import accuracy_score, f1_score

    run_dir = tmp_path / "run"
    out = run_train("task=tweet_emotion", "model=tiny", "logger=none", "trainer.max_steps=12", "trainer.eval_every_steps=4", "trainer.batch_size=16", "optimizer.lr=3e-3", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert (metrics["task_type"], metrics["benchmark"], metrics["label_names"]) == ("sequence_classification", None, ["anger", "joy", "optimism", "sadness"])
    assert [h["step"] for h in metrics["history"]] == [4, 8, 12] and all("f1_macro" in h for h in metrics["history"])
    for split, scores in (("dev", metrics["best"]), ("test", metrics["test"])):
        rows = list(csv.DictReader(open(run_dir / f"predictions_{split}.tsv"), delimiter="\t"))
        labels, preds = [int(r["label"]) for r in rows], [int(r["prediction"]) for r in rows]
        assert len(rows) == {"dev": 374, "test": 1421}[split]
        assert scores["f1_macro"] == pytest.approx(f1_score(labels, preds, average="macro", zero_division=0), abs=1e-12)
        assert scores["accuracy"] == pytest.approx(accuracy_score(labels, preds), abs=1e-12)
        assert (run_dir / f"classification_report_{split}.txt").is_file() and split in metrics["classification_report"]


@pytest.mark.slow
def test_minilm_on_superglue_cb_reports_accuracy_and_macro_f1(tmp_path, cache_dir):
    from sklearn.metrics import accuracy_score, f1_score

    run_dir = tmp_path / "run"
    out = run_train("task=cb", "model=minilm-l6", "logger=none", "trainer.epochs=3", "trainer.batch_size=16", "optimizer.lr=5e-5", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    rows = list(csv.DictReader(open(run_dir / "predictions_dev.tsv"), delimiter="\t"))
    labels, preds = [int(r["label"]) for r in rows], [int(r["prediction"]) for r in rows]
    assert len(rows) == 56 and metrics["benchmark"] == "superglue"
    assert metrics["best"]["accuracy"] == pytest.approx(accuracy_score(labels, preds), abs=1e-12)
    assert metrics["best"]["f1_macro"] == pytest.approx(f1_score(labels, preds, average="macro"), abs=1e-12)
    assert metrics["best"]["accuracy"] > 0.6  # above the majority class (28 of 56)
