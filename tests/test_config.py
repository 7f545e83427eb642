"""Real Hydra composition of every config group, and start-up validation through the CLI."""

from __future__ import annotations

import time

import pytest
from conftest import CONF_DIR, run_train

TASKS = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def test_all_groups_are_present():
    assert TASKS == ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli"]
    assert set(MODELS) >= {"bert-base", "bert-base-uncased", "bert-large-cased", "roberta-base", "distilbert-base-uncased", "deberta-v3-base", "minilm-l6", "tiny"}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("model", MODELS)
def test_every_task_and_model_composes_and_validates(make_cfg, task, model):
    cfg = make_cfg(f"task={task}", f"model={model}")
    assert cfg.task.name == task and cfg.model.name == model
    assert cfg.task.num_labels == (1 if task == "stsb" else 3 if task == "mnli" else 2)


@pytest.mark.parametrize("group,choice", [("optimizer", "sgd"), ("scheduler", "cosine"), ("scheduler", "constant"), ("hardware", "bf16"), ("hardware", "fp16"), ("logger", "wandb")])
def test_other_groups_compose(make_cfg, group, choice):
    cfg = make_cfg(f"{group}={choice}")
    assert getattr(cfg, group).name == choice


def test_defaults_and_key_names(make_cfg):
    cfg = make_cfg()
    assert (cfg.task.name, cfg.model.name, cfg.optimizer.name) == ("cola", "minilm-l6", "adamw")
    assert cfg.optimizer.lr == 2e-5 and cfg.optimizer.weight_decay == 0.01
    for key in ("batch_size", "epochs", "max_steps"):
        assert hasattr(cfg.trainer, key)
    for key in ("glue_dir", "max_train_samples", "max_eval_samples"):
        assert hasattr(cfg.data, key)


def test_cfg_job_prints_the_composed_config():
    out = run_train("--cfg", "job", "task=mnli", "model=bert-base")
    assert out.returncode == 0, out.stderr
    assert "name: mnli" in out.stdout and "name_or_path: bert-base-cased" in out.stdout


@pytest.mark.parametrize(
    "override,message",
    [
        ("optimizer.lr=0", "optimizer.lr must be > 0, got 0.0"),
        ("optimizer.lr=-1e-5", "optimizer.lr must be > 0"),
        ("trainer.batch_size=0", "trainer.batch_size must be >= 1, got 0"),
        ("trainer.epochs=-1", "trainer.epochs must be >= 0"),
        ("scheduler.warmup_ratio=1.5", "scheduler.warmup_ratio must be in [0, 1]"),
        ("data.glue_dir=/does/not/exist", "data.glue_dir '/does/not/exist' is not a directory"),
        ("task=colaa", "task: unknown choice 'colaa'; choose one of cola, mnli, mrpc, qnli, qqp, rte, sst2, stsb, wnli"),
        ("model=bert-bas", "model: unknown choice 'bert-bas'; choose one of bert-base,"),
        ("optimizer=adam", "optimizer: unknown choice 'adam'; choose one of adamw, sgd"),
    ],
)
def test_bad_values_stop_at_start_up_with_one_line(override, message):
    started = time.perf_counter()
    out = run_train(override, "model=tiny", "logger=none") if not override.startswith("model=") else run_train(override, "logger=none")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
    assert time.perf_counter() - started < 30
