"""Typed schema of the Hydra config in conf/: types are checked while Hydra composes,
values are checked by `validate` before any heavy import, so a bad value costs a second.

This module imports nothing heavy: `python -m src.train --cfg job` must stay fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ConfigTypeError, MissingMandatoryValue, OmegaConfBaseException, ValidationError


class UserError(Exception):
    """A mistake the user can fix: printed as one line, exit status 2, no traceback."""


FINETUNE_METHODS = ("full", "linear_probe", "lora", "adalora")


@dataclass
class DevSplit:
    hub_split: str = MISSING  # split name in the Hub dataset nyu-mll/glue
    file: str = MISSING  # file name in a local GLUE folder
    metric_suffix: str = ""  # appended to metric names ("_mm" for MNLI mismatched)


@dataclass
class TestSplit:
    file: str = MISSING  # unlabelled test file, relative to the task's folder in a GLUE download
    submission_file: str = MISSING  # the file name the GLUE leaderboard expects (CoLA.tsv, MNLI-m.tsv, AX.tsv)
    hub_split: str = "test"  # split name in the Hub dataset
    hub_name: str | None = None  # Hub config, if not the task's (AX: ax)


@dataclass
class TsvFormat:
    header: bool = True  # False: the file has no header line (CoLA)
    columns: list[str] = field(default_factory=list)  # column names of a headerless file
    text_columns: list[str] = MISSING  # columns holding the text fields, in order
    label_column: str = MISSING  # column holding the gold label
    label_format: str = "id"  # id: integer label id | name: one of label_names | score: float (STS-B)
    test_index_column: str = "index"  # id column of test.tsv (QQP: id)
    test_text_columns: list[str] | None = None  # text columns of test.tsv, if named differently


@dataclass
class TaskConfig:
    name: str = MISSING
    glue_dir_name: str = MISSING
    hub_name: str = MISSING
    text_fields: list[str] = MISSING
    label_names: list[str] = field(default_factory=list)
    is_regression: bool = False
    metrics: list[str] = MISSING
    main_metric: str = MISSING
    train_file: str = "train.tsv"
    dev_splits: list[DevSplit] = MISSING
    tsv: TsvFormat = field(default_factory=TsvFormat)
    test_splits: list[TestSplit] = field(default_factory=list)  # what predict=true writes for the GLUE leaderboard

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_names)


@dataclass
class ModelConfig:
    name: str = MISSING
    source: str = "hub"  # hub: Hub id or local dir | package: pip package with get_model_path() | tiny
    name_or_path: str = MISSING
    max_length: int = 128
    revision: str | None = None
    dropout: float | None = None  # None = the pretrained model's own dropout rates
    # tiny only
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = 2e-5
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum: float = 0.9
    fused: bool = True  # torch's fused single-kernel update (CPU and CUDA) instead of its per-tensor loop


@dataclass
class SchedulerConfig:
    name: str = MISSING
    warmup_ratio: float = 0.06
    warmup_steps: int | None = None


@dataclass
class HardwareConfig:
    name: str = MISSING
    accelerator: str = "cpu"  # cpu | gpu | auto (gpu when CUDA is visible)
    mixed_precision: str = "no"  # no | bf16 | fp16
    compile: bool = False  # torch.compile the model (through accelerate's dynamo_backend)
    num_threads: int | None = None  # torch intra-op threads on CPU; None = torch's default
    dataloader_workers: int = 0


@dataclass
class LoggerConfig:
    name: str = MISSING
    project: str = "basebench"
    entity: str | None = None
    mode: str | None = None  # online | offline | disabled; None = online if a key exists, else offline
    tags: list[str] = field(default_factory=list)
    job_type: str = "finetune"
    group: str | None = None  # None = one group per multirun (its sweep directory), none for a single run
    log_model: bool = False
    init_timeout_s: float = 30.0  # an online run that has not started by then falls back to offline


@dataclass
class FinetuneConfig:
    name: str = MISSING  # full | linear_probe | lora | adalora
    head_modules: list[str] | None = None  # modules that train in full; None = the task head (src/finetune.py)
    # lora and adalora
    rank: int = 8  # lora: r; adalora: target average rank (target_r)
    alpha: float = 16.0
    dropout: float = 0.1
    target_modules: list[str] | None = None  # None = the model family's query and value projections
    # adalora only
    init_rank: int = 12
    rank_warmup: float = 0.1  # fractions of the training steps (peft's tinit and tfinal)
    rank_final: float = 0.2
    rank_update_every_steps: int = 1
    orth_reg_weight: float = 0.5


@dataclass
class TrainerConfig:
    epochs: float = 3.0
    max_steps: int = -1
    batch_size: int = 32
    eval_batch_size: int = 128
    grad_accum_steps: int = 1
    max_grad_norm: float = 1.0
    eval_every_steps: int = 0
    log_every_steps: int = 10
    save_best: bool = True
    progress_bar: bool = True
    checkpoint_every_steps: int = 100
    keep_checkpoints: int = 2
    resume: str | None = None


@dataclass
class DataConfig:
    glue_dir: str | None = None
    cache_dir: str = MISSING
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    group_by_length: bool = True
    selection_split: str = "dev"
    holdout_fraction: float = 0.1
    pad_to_max_length: bool = False


@dataclass
class AnalysisConfig:
    num_errors: int = 20  # dev examples listed in errors_dev.tsv


@dataclass
class Config:
    task: TaskConfig = MISSING
    model: ModelConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    scheduler: SchedulerConfig = MISSING
    hardware: HardwareConfig = MISSING
    logger: LoggerConfig = MISSING
    finetune: FinetuneConfig = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    seed: int = 42
    output_dir: str | None = None  # None = Hydra's run directory
    predict: bool = False  # also write GLUE test-set predictions (submission files)
    submission_dir: str | None = None  # None = <run dir>/glue_submission


def register_schema() -> None:
    ConfigStore.instance().store(name="schema", node=Config)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def validate(cfg: DictConfig) -> Config:
    """Turn the composed config into typed objects and check every value a user can get wrong."""
    return check(to_typed(cfg))


def to_typed(cfg: DictConfig) -> Config:
    """The composed config as typed objects: a key the schema does not have (added with +KEY=...), a value of
    the wrong type, a missing value or an interpolation that does not resolve is a one-line UserError."""
    unknown = _unknown_key(cfg, Config)
    if unknown:
        raise UserError(f"{unknown}: no such key{_did_you_mean(unknown, Config)}; remove it (python -m src.train --cfg job lists every key)")
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except Exception as e:
        raise UserError(config_error_line(e)) from None


def _unknown_key(node: Any, schema: type, prefix: str = "") -> str | None:
    """The first key of `node` that the dataclass `schema` does not declare, with its full name."""
    if not isinstance(node, DictConfig) or node._is_missing() or node._is_none():
        return None
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in node.keys():
        name = f"{prefix}{key}"
        if key not in fields:
            return name
        value, kind = node._get_node(key), _field_schema(fields[key].type)
        if kind is None:
            continue
        for i, item in enumerate(value) if isinstance(value, ListConfig) else [(None, value)]:
            found = _unknown_key(item, kind, f"{name}.{i}." if i is not None else f"{name}.")
            if found:
                return found
    return None


def _field_schema(annotation: Any) -> type | None:
    """The dataclass a field holds (itself, or the items of a list of them), else None."""
    annotation = str(annotation)
    match = re.fullmatch(r"(?:list\[)?(\w+)\]?", annotation)
    found = globals().get(match.group(1)) if match else None
    return found if dataclasses.is_dataclass(found) else None


def _did_you_mean(key: str, schema: type) -> str:
    """ "; did you mean trainer.batch_size?" for trainer.batchsize, or "" if nothing is close."""
    *parents, leaf = key.split(".")
    for parent in parents:
        kind = next((_field_schema(f.type) for f in dataclasses.fields(schema) if f.name == parent), None) if not parent.isdigit() else schema
        if kind is None:
            return ""
        schema = kind
    close = difflib.get_close_matches(leaf, [f.name for f in dataclasses.fields(schema)], n=1)
    return f" (did you mean {'.'.join([*parents, close[0]])}?)" if close else ""


_TYPE_WORDS = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false"}


def config_error_line(error: BaseException) -> str:
    """Hydra's or OmegaConf's error while composing or typing the config, as `<key>: <what was wrong>; <how to fix>`."""
    if isinstance(error, OverrideParseException):
        reason = error.message.splitlines()[0].removeprefix("LexerNoViableAltException: ")
        return f"{error.override}: not a valid override ({reason}); write KEY=VALUE, and quote a value with spaces or special characters: 'KEY=a value'"
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, choice = error.missing_cfg_file.rpartition("/")
        options = f"choose one of {', '.join(error.options)}" if error.options else f"see the files in conf/{group}/"
        return f"{group}: unknown choice {choice!r}; {options}"
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else error
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        key, message = cause.full_key, (cause.msg or str(cause)).splitlines()[0]
        if isinstance(cause, ConfigKeyError) or "not in struct" in message or "not in '" in message:  # ConfigAttributeError too
            listing = "--cfg hydra lists Hydra's keys" if key.startswith("hydra.") else "--cfg job lists every key"
            return f"{key}: no such key{_did_you_mean(key, Config)}; python -m src.train {listing}"
        if isinstance(cause, MissingMandatoryValue):
            return f"{key}: has no value; set one with {key}=VALUE"
        if isinstance(cause, ConfigTypeError) and "deletion" in message:
            return f"{key}: cannot be deleted; set a value instead ({key}=VALUE)"
        if isinstance(cause, ValidationError):
            converted = re.search(r"could not be converted to (\w+)", message)
            if converted or "is not a valid bool" in message:
                kind = _TYPE_WORDS.get(converted.group(1), f"a {converted.group(1)}") if converted else _TYPE_WORDS["Boolean"]
                return f"{key}: {cause.value!r} is not {kind}; give {kind} (python -m src.train --cfg job shows the current value)"
            if "is not Optional" in message:
                return f"{key}: cannot be null; give a value (python -m src.train --cfg job shows the default)"
            if "is not a ListConfig" in message:
                return f"{key}: {cause.value!r} is not a list; write one in brackets, e.g. {key}=[a,b]"
            if "is not a subclass of" in message:
                return f"{key}: is a group of keys, not a value; set one of its keys, e.g. {key}.KEY=VALUE"
        return f"{key}: {message}; fix the value of {key}"
    message = (str(error).splitlines() or [type(error).__name__])[0]
    exists = re.search(r"An item is already at '(.+?)'", message)
    if exists:
        return f"{exists.group(1)}: already exists, so +{exists.group(1)}=... cannot add it; set it without the +"
    return f"invalid config: {message}; python -m src.train --help shows how to write overrides"


def check(c: Config) -> Config:
    """Every value a user can get wrong, with a one-line UserError naming the key and the fix."""
    t, o, s, tr, d = c.task, c.optimizer, c.scheduler, c.trainer, c.data
    _check(o.lr > 0, f"optimizer.lr must be > 0, got {o.lr}")
    _check(o.weight_decay >= 0, f"optimizer.weight_decay must be >= 0, got {o.weight_decay}")
    _check(tr.batch_size >= 1, f"trainer.batch_size must be >= 1, got {tr.batch_size}")
    _check(tr.eval_batch_size >= 1, f"trainer.eval_batch_size must be >= 1, got {tr.eval_batch_size}")
    _check(tr.grad_accum_steps >= 1, f"trainer.grad_accum_steps must be >= 1, got {tr.grad_accum_steps}")
    _check(tr.epochs >= 0, f"trainer.epochs must be >= 0, got {tr.epochs}")
    _check(tr.epochs > 0 or tr.max_steps > 0, "nothing to train: set trainer.epochs > 0 or trainer.max_steps > 0")
    _check(tr.max_grad_norm >= 0, f"trainer.max_grad_norm must be >= 0 (0 = no clipping), got {tr.max_grad_norm}")
    _check(tr.eval_every_steps >= 0, f"trainer.eval_every_steps must be >= 0 (0 = each epoch only), got {tr.eval_every_steps}")
    _check(tr.checkpoint_every_steps >= 0, f"trainer.checkpoint_every_steps must be >= 0 (0 = at evaluations only), got {tr.checkpoint_every_steps}")
    _check(tr.keep_checkpoints >= 1, f"trainer.keep_checkpoints must be >= 1, got {tr.keep_checkpoints}")
    _check(d.selection_split in ("dev", "train_holdout"), f"data.selection_split must be dev or train_holdout, got {d.selection_split!r}")
    _check(0 < d.holdout_fraction < 1, f"data.holdout_fraction must be in (0, 1), got {d.holdout_fraction}")
    _check(d.selection_split == "dev" or tr.save_best, "data.selection_split=train_holdout evaluates the best checkpoint on dev: it needs trainer.save_best=true")
    _check(0 <= s.warmup_ratio <= 1, f"scheduler.warmup_ratio must be in [0, 1], got {s.warmup_ratio}")
    _check(s.warmup_steps is None or s.warmup_steps >= 0, f"scheduler.warmup_steps must be >= 0, got {s.warmup_steps}")
    _check(c.model.dropout is None or 0 <= c.model.dropout < 1, f"model.dropout must be in [0, 1), got {c.model.dropout}")
    _check(c.model.max_length >= 8, f"model.max_length must be >= 8, got {c.model.max_length}")
    _check(c.model.source in ("hub", "package", "tiny"), f"model.source must be hub, package or tiny, got {c.model.source!r}")
    _check_finetune(c.finetune)
    for key in ("max_train_samples", "max_eval_samples"):
        n = getattr(d, key)
        _check(n is None or n >= 1, f"data.{key} must be >= 1 (or null for all), got {n}")
    if d.glue_dir is not None:
        _check(os.path.isdir(d.glue_dir), f"data.glue_dir {d.glue_dir!r} is not a directory: point it at a GLUE download (e.g. data.glue_dir=../shared/data/glue)")
    _check(c.hardware.mixed_precision in ("no", "bf16", "fp16"), f"hardware.mixed_precision must be no, bf16 or fp16, got {c.hardware.mixed_precision!r}")
    _check(c.hardware.accelerator in ("cpu", "gpu", "auto"), f"hardware.accelerator must be cpu, gpu or auto, got {c.hardware.accelerator!r}")
    _check(not (c.hardware.accelerator == "cpu" and c.hardware.mixed_precision == "fp16"), "fp16 needs a GPU: use hardware=fp16 on a GPU, or hardware.mixed_precision=bf16 on CPU")
    _check(1 <= len(t.text_fields) <= 2, f"task.text_fields must name 1 or 2 fields, got {t.text_fields}")
    suffixes = [split.metric_suffix for split in t.dev_splits]
    valid_main = [m + sfx for sfx in suffixes for m in t.metrics]
    _check(t.main_metric in valid_main, f"task.main_metric {t.main_metric!r} is not one of {valid_main}")
    _check(t.is_regression or len(t.label_names) >= 2, f"task {t.name} needs at least 2 label_names (or is_regression=true)")
    _check(c.analysis.num_errors >= 0, f"analysis.num_errors must be >= 0, got {c.analysis.num_errors}")
    _check(not c.predict or bool(t.test_splits), f"predict=true: task {t.name} lists no test_splits")
    _check(not c.predict or tr.save_best, "predict=true predicts with the best checkpoint: it needs trainer.save_best=true")
    _check(c.logger.mode in (None, "online", "offline", "disabled"), f"logger.mode must be online, offline or disabled, got {c.logger.mode!r}")
    _check(c.logger.init_timeout_s > 0, f"logger.init_timeout_s must be > 0, got {c.logger.init_timeout_s}")
    return c


def _check_finetune(f: FinetuneConfig) -> None:
    _check(f.name in FINETUNE_METHODS, f"finetune.name must be one of {', '.join(FINETUNE_METHODS)}, got {f.name!r}")
    for key in ("head_modules", "target_modules"):
        names = getattr(f, key)
        _check(names is None or len(names) > 0, f"finetune.{key} must name at least one module (or be null for the default)")
    if f.name not in ("lora", "adalora"):
        return
    _check(f.rank >= 1, f"finetune.rank must be >= 1, got {f.rank}")
    _check(f.alpha > 0, f"finetune.alpha must be > 0, got {f.alpha}")
    _check(0 <= f.dropout < 1, f"finetune.dropout must be in [0, 1), got {f.dropout}")
    if f.name == "adalora":
        _check(f.init_rank >= f.rank, f"finetune.init_rank must be >= finetune.rank (the target average rank), got {f.init_rank} < {f.rank}")
        _check(f.rank_warmup >= 0 and f.rank_final >= 0, f"finetune.rank_warmup and finetune.rank_final must be >= 0, got {f.rank_warmup} and {f.rank_final}")
        _check(f.rank_warmup + f.rank_final < 1, f"finetune.rank_warmup + finetune.rank_final must be < 1 to leave steps for the rank allocation, got {f.rank_warmup + f.rank_final:g}")
        _check(f.rank_update_every_steps >= 1, f"finetune.rank_update_every_steps must be >= 1, got {f.rank_update_every_steps}")
        _check(f.orth_reg_weight >= 0, f"finetune.orth_reg_weight must be >= 0, got {f.orth_reg_weight}")


def to_plain_dict(cfg: Any) -> dict:
    """The resolved config as plain Python containers (for JSON, W&B and metrics.json)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]
