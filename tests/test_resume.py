"""Faults: a SIGKILL mid-training then resume, atomic checkpoints, determinism, a diverging loss (more faults and\nbad inputs: test_user_errors.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GLUE_DIR, ROOT, read_metrics, run_train

from src.checkpoint import BEST_DIR, complete_checkpoints, repair_best

# SST-2 on 2000 examples: the tiny model learns something, so metrics move between evaluations
RECIPE = [
    "task=sst2",
    "model=tiny",
    "logger=none",
    "data.max_train_samples=2000",
    "data.max_eval_samples=400",
    "trainer.epochs=2",
    "trainer.batch_size=16",
    "trainer.eval_every_steps=40",
    "trainer.checkpoint_every_steps=15",
    "optimizer.lr=2e-3",
    "trainer.progress_bar=false",
]
DEV_KEYS = ("best", "final", "best_step", "history", "steps", "train_samples", "main_metric_value")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache_dir) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    out = run_train(*RECIPE, f"data.cache_dir={cache_dir}", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    return run_dir


def test_sigkill_mid_training_then_resume_equals_uninterrupted(uninterrupted, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    env = {**os.environ, "GLUE_DIR": str(GLUE_DIR)}
    proc = subprocess.Popen([sys.executable, "-m", "src.train", *RECIPE, f"data.cache_dir={cache_dir}", f"output_dir={run_dir}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = run_dir / "checkpoints" / "step-0000075"  # inside the first epoch (125 steps)
    deadline = time.time() + 300
    while not target.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run_dir / "metrics.json").exists()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "running"

    out = run_train("trainer.resume=true", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming from" in out.stdout + out.stderr
    resumed, reference = read_metrics(run_dir), read_metrics(uninterrupted)
    for key in DEV_KEYS:
        assert resumed[key] == reference[key], key
    assert len(reference["history"]) >= 5 and len({h["accuracy"] for h in reference["history"]}) > 1
    assert (run_dir / "predictions_dev.tsv").read_text() == (uninterrupted / "predictions_dev.tsv").read_text()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"


def test_same_seed_same_metrics(uninterrupted, tmp_path, cache_dir):
    run_dir = tmp_path / "again"
    out = run_train(*RECIPE, f"data.cache_dir={cache_dir}", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    again, reference = read_metrics(run_dir), read_metrics(uninterrupted)
    for key in DEV_KEYS:
        assert again[key] == reference[key], key


def test_checkpoints_are_pruned_and_best_is_kept(uninterrupted):
    kept = complete_checkpoints(uninterrupted)
    assert [p.name for p in kept] == ["step-0000225", "step-0000240"]  # keep_checkpoints=2; none after the last step
    assert (uninterrupted / BEST_DIR / "model.safetensors").is_file()


def test_partial_checkpoints_are_never_resumed_from(tmp_path):
    root = tmp_path / "checkpoints"
    (root / "step-0000010").mkdir(parents=True)
    (root / "step-0000010" / "trainer_state.json").write_text("{}")
    (root / "step-0000020.partial").mkdir()  # killed while saving
    (root / "step-0000020.partial" / "trainer_state.json").write_text("{}")
    (root / "step-0000030").mkdir()  # no state file: not complete
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-0000010"]


def test_a_kill_between_the_renames_of_best_is_repaired(tmp_path):
    (tmp_path / (BEST_DIR + ".old")).mkdir()
    (tmp_path / (BEST_DIR + ".old") / "model.safetensors").write_text("previous best")
    (tmp_path / (BEST_DIR + ".partial")).mkdir()
    repair_best(tmp_path)
    assert (tmp_path / BEST_DIR / "model.safetensors").read_text() == "previous best"
    assert not (tmp_path / (BEST_DIR + ".partial")).exists()


def test_non_finite_loss_stops_and_names_the_step(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    out = run_train("task=rte", "model=tiny", "logger=none", "optimizer.lr=1e30", "trainer.max_steps=50", "trainer.max_grad_norm=0", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}")
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: non-finite loss") and "at step" in line, out.stderr[-2000:]
    assert not (run_dir / BEST_DIR).exists()  # no evaluation ran, so nothing was saved as best
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and status["error"].startswith("non-finite loss")
