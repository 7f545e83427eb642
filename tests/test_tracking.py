"""W&B tracking with the real wandb package in offline mode: the runs are read back from the files
`wandb sync` would upload (see wandb_files.py)."""

from __future__ import annotations

import csv
import json
import logging
import time

import pytest
import wandb
import yaml
from conftest import read_metrics, run_train
from wandb_files import offline_runs

from src.config import to_plain_dict
from src.tracking import WandbTracker

LOCAL_ONLY = {"WANDB_BASE_URL": "http://127.0.0.1:9"}  # nothing listens there: W&B is unreachable


@pytest.fixture
def no_wandb_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no ~/.config/wandb
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for key, value in LOCAL_ONLY.items():
        monkeypatch.setenv(key, value)
    yield
    wandb.teardown()  # wandb keeps the settings it read from this environment: later tests in this process must not inherit them


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "src.tracking"]


def test_without_a_key_it_runs_offline_with_one_warning_and_never_prompts(make_cfg, no_wandb_credentials, tmp_path, caplog):
    cfg = make_cfg("logger=wandb", "model=tiny", "task=rte")
    tracker = WandbTracker(cfg, to_plain_dict(cfg), tmp_path / "run", group=None)
    tracker.log({"eval/accuracy": 0.75}, step=3)
    tracker.finish()
    assert len(_warnings(caplog)) == 1 and "no API key found" in _warnings(caplog)[0]
    (run,) = offline_runs(tmp_path / "run")
    assert run.exit_code == 0 and run.history[0]["eval/accuracy"] == 0.75 and run.history[0]["train/global_step"] == 3


def test_unreachable_online_wandb_continues_offline_with_one_warning(make_cfg, no_wandb_credentials, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a key, so the run tries to go online
    cfg = make_cfg("logger=wandb", "logger.mode=online", "logger.init_timeout_s=2", "model=tiny", "task=rte")
    started = time.perf_counter()
    tracker = WandbTracker(cfg, to_plain_dict(cfg), tmp_path / "run", group="g")
    assert time.perf_counter() - started < 60
    tracker.summary({"main_metric": 0.5})
    tracker.finish()
    (warning,) = _warnings(caplog)
    assert "cannot start an online run" in warning and "logging offline" in warning and "wandb sync" in warning
    (run,) = offline_runs(tmp_path / "run")
    assert run.group == "g" and run.summary["main_metric"] == 0.5 and run.exit_code == 0


def test_each_multirun_job_has_its_own_run_and_a_failed_job_is_marked_failed(tmp_path, cache_dir):
    """Job 0 diverges (lr=1e38: non-finite loss after W&B started), job 1 trains, job 2 has an impossible
    value (stopped before training): the sweep goes on, every job has a W&B run in the sweep's group,
    the failed ones are marked failed, and nothing of one job shows up in another's run."""
    sweep_dir = tmp_path / "sweep"
    out = run_train(
        "-m",
        "task=rte",
        "model=tiny",
        "logger=wandb",
        "logger.log_model=true",
        "optimizer.lr=1e38,1e-3,-1",
        "trainer.max_steps=4",
        "trainer.eval_every_steps=2",
        "trainer.log_every_steps=2",
        "trainer.batch_size=8",
        "data.max_eval_samples=40",
        f"data.cache_dir={cache_dir}",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert out.returncode != 0  # Hydra re-raises the failed job's error once every job has run
    failed_dir, ok_dir = sweep_dir / "0_rte_tiny", sweep_dir / "1_rte_tiny"
    (failed,) = offline_runs(failed_dir)
    (ok,) = offline_runs(ok_dir)

    assert failed.exit_code == 1 and "non-finite loss" in failed.summary["error"]
    assert json.loads((failed_dir / "status.json").read_text())["status"] == "failed"
    assert not any(key.startswith("eval/") for row in failed.history for key in row)
    (invalid,) = offline_runs(sweep_dir / "2_rte_tiny")
    assert invalid.exit_code == 1 and invalid.summary["error"] == "optimizer.lr must be > 0, got -1.0"
    assert invalid.group == str(sweep_dir) and not invalid.history

    metrics = read_metrics(ok_dir)
    assert ok.exit_code == 0
    assert ok.group == failed.group == str(sweep_dir)
    assert ok.name == "rte-tiny-lr0.001-bs8-s42" and failed.name == "rte-tiny-lr1e+38-bs8-s42"
    assert ok.job_type == "finetune" and {"rte", "tiny", "adamw"} <= set(ok.tags)
    assert ok.config == yaml.safe_load((ok_dir / "config.yaml").read_text())  # the resolved config, as a plain dict
    assert ok.config["optimizer"]["lr"] == 0.001 and failed.config["optimizer"]["lr"] == 1e38

    evals = [row for row in ok.history if "eval/accuracy" in row]
    assert [(r["train/global_step"], r["eval/accuracy"]) for r in evals] == [(h["step"], h["accuracy"]) for h in metrics["history"]]
    train_rows = [row for row in ok.history if "train/loss" in row]
    assert [r["train/global_step"] for r in train_rows] == [2, 4]
    assert {"train/lr", "train/grad_norm", "train/samples_per_second"} <= set(train_rows[0])

    assert ok.summary["main_metric"] == metrics["main_metric_value"] and ok.summary["best/accuracy"] == metrics["best"]["accuracy"]
    assert ("model", "rte-tiny") in ok.artifacts  # logger.log_model=true: the best checkpoint

    table = json.loads(next((ok.path / "files").rglob("predictions*.table.json")).read_text())
    assert table["columns"] == ["text", "label", "prediction"] and len(table["data"]) == 40
    with open(ok_dir / "predictions_dev.tsv") as f:
        written = [int(r["prediction"]) for r in csv.DictReader(f, delimiter="\t")]
    assert [row[2] for row in table["data"]] == [["entailment", "not_entailment"][p] for p in written]
