"""Real Hydra composition of every config group, and start-up validation through the CLI."""

from __future__ import annotations

import pytest
from conftest import CONF_DIR, run_train

TASKS = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml") if not p.stem.startswith("_"))
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def test_all_groups_are_present():
    assert set(TASKS) == {"cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli", "cb", "boolq", "superglue_rte", "tweet_emotion", "tweet_irony", "conll2003", "custom"}
    assert set(MODELS) >= {"bert-base", "bert-base-uncased", "bert-large-cased", "roberta-base", "distilbert-base-uncased", "deberta-v3-base", "minilm-l6", "tiny"}


NUM_LABELS = {"stsb": 1, "mnli": 3, "cb": 3, "tweet_emotion": 4, "conll2003": 9}


@pytest.mark.parametrize("task", [t for t in TASKS if t != "custom"])
@pytest.mark.parametrize("model", MODELS)
def test_every_task_and_model_composes_and_validates(make_cfg, task, model):
    from src.task_types import task_type

    cfg = make_cfg(f"task={task}", f"model={model}")
    assert cfg.task.name == task and cfg.model.name == model
    assert task_type(cfg.task).num_labels(cfg.task) == NUM_LABELS.get(task, 2)


def test_the_custom_task_needs_its_text_fields():
    out = run_train("task=custom", "task.data_files.train=a.csv", "task.data_files.dev=b.csv", "model=tiny", "logger=none")
    assert out.returncode == 2 and "text_fields" in out.stderr.strip().splitlines()[-1], out.stderr


@pytest.mark.parametrize("group,choice", [("optimizer", "sgd"), ("scheduler", "cosine"), ("scheduler", "constant"), ("hardware", "bf16"), ("hardware", "fp16"), ("logger", "wandb")])
def test_other_groups_compose(make_cfg, group, choice):
    cfg = make_cfg(f"{group}={choice}")
    assert getattr(cfg, group).name == choice


def test_defaults_and_key_names(make_cfg):
    cfg = make_cfg()
    assert (cfg.task.name, cfg.model.name, cfg.optimizer.name) == ("cola", "minilm-l6", "adamw")
    assert cfg.optimizer.lr == 5e-5 and cfg.optimizer.weight_decay == 0.01  # MiniLM-L6's own lr (model.lr)
    for key in ("batch_size", "epochs", "max_steps"):
        assert hasattr(cfg.trainer, key)
    for key in ("glue_dir", "max_train_samples", "max_eval_samples"):
        assert hasattr(cfg.data, key)


def test_the_model_recommends_the_learning_rate_and_the_command_line_wins(make_cfg):
    assert (make_cfg().model.lr, make_cfg("model=bert-base").optimizer.lr, make_cfg("model=tiny").optimizer.lr) == (5e-5, 2e-5, 2e-5)
    assert make_cfg("optimizer.lr=3e-5").optimizer.lr == 3e-5  # as each job of a sweep over optimizer.lr
    assert make_cfg("model=bert-base", "model.lr=4e-5").optimizer.lr == 4e-5
    assert make_cfg("optimizer=sgd").optimizer.lr == 1e-2  # SGD's scale is its own


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
        ("task=colaa", "unknown task 'colaa': choose one of boolq, cb, cola, conll2003, custom, mnli, mrpc, qnli, qqp, rte, sst2, stsb, superglue_rte, tweet_emotion, tweet_irony, wnli"),
        ("task.type=token_clf", "task.type 'token_clf' is not a task type: choose one of sequence_classification, regression, token_classification"),
        ("task.metrics=[pearson]", "task.metrics: pearson cannot score a sequence_classification task"),
        ("task.main_metric=f1", "task.main_metric 'f1' is not one of the task's metrics ['matthews_correlation']"),
        ("task.label_names=[only]", "task.label_names must name at least 2 classes"),
        ("model=bert-bas", "unknown model 'bert-bas': choose one of bert-base,"),
        ("optimizer=adam", "unknown optimizer 'adam': choose one of adamw, sgd"),
    ],
)
def test_bad_values_stop_at_start_up_with_one_line(override, message):
    out = run_train(override, "model=tiny", "logger=none") if not override.startswith("model=") else run_train(override, "logger=none")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
