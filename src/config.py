"""Typed schema of the Hydra config in conf/: types are checked while Hydra composes,
values are checked by `validate` before any heavy import, so a bad value costs a second.

This module imports nothing heavy: `python -m src.train --cfg job` must stay fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class UserError(Exception):
    """A mistake the user can fix: printed as one line, exit status 2, no traceback."""


FINETUNE_METHODS = ("full", "linear_probe", "lora", "adalora")
TINY_ARCHITECTURES = ("bert", "gpt2", "llama")  # what model.source=tiny builds (src.model.TINY_CONFIGS)
TORCH_DTYPES = ("fp32", "bf16")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flex_attention")
ALL_LINEAR = "all-linear"  # finetune.target_modules: every linear layer but the head (peft's shorthand)


TASK_FORMATS = ("csv", "tsv", "json", "parquet", "text", "conll")  # datasets' own loaders; "text": a text file + a label file per split; "conll": a word a line
LABEL_ENCODINGS = ("auto", "id", "name")
SUBMISSION_FORMATS = ("glue", "superglue")


@dataclass
class HubSource:
    path: str | None = None  # Hub dataset id (nyu-mll/glue); null = the task has local files only
    name: str | None = None  # its config (cola)
    revision: str | None = None  # branch, tag or commit; null = main
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "dev": "validation", "test": "test"})  # our split -> the Hub's
    configs: dict[str, str] = field(default_factory=dict)  # a split read from another config of the dataset (MNLI's ax: ax)


@dataclass
class PredictSplit:
    split: str = MISSING  # an unlabelled split (in data_files / hub.splits)
    submission_file: str = MISSING  # the file name the leaderboard expects (CoLA.tsv, MNLI-m.tsv, CB.jsonl)


@dataclass
class PromptConfig:
    """How src.zeroshot puts an example to a language model (src/prompts.py): lm-evaluation-harness's prompt format."""

    template: str | None = None  # a Jinja template over the task's text fields; null: the task has no prompt
    choices: list[str] | None = None  # the answer for each label id, in label order (verbalizers)
    target_delimiter: str = " "  # between a prompt and its answer
    fewshot_delimiter: str = "\n\n"  # after each few-shot example's answer


@dataclass
class TaskConfig:
    """A task is data: where its examples are, what they hold, how they are scored (conf/task/*.yaml)."""

    name: str = MISSING
    type: str = "sequence_classification"  # a key of src.task_types.TASK_TYPES
    benchmark: str | None = None  # glue | superglue: the aggregate score the task counts in; null = none
    # where the examples come from: local files when data_dir is set or there is no Hub dataset, else the Hub
    data_dir: str | None = None  # the folder data_files are relative to (null: the current directory)
    data_files: dict[str, str | None] = field(default_factory=dict)  # split -> file (null: none)
    label_files: dict[str, str] = field(default_factory=dict)  # split -> file of one label a line (format text)
    format: str | None = None  # csv | tsv | json | parquet | text; null = from the file extension
    quoting: str = "minimal"  # csv/tsv: minimal (double quotes quote) | none (a quote is text, as in GLUE)
    encoding: str = "utf-8"  # of the local files
    column_names: dict[str, list[str]] = field(default_factory=dict)  # split -> columns of a file without a header line
    rename: dict[str, str] = field(default_factory=dict)  # local column -> field name, applied on reading
    hub: HubSource = field(default_factory=HubSource)
    # what an example holds
    text_fields: list[str] = MISSING  # one text field, or a pair
    label_field: str = "label"
    label_names: list[str] | None = None  # label id = position; null = inferred: the sorted labels of train
    label_encoding: str = "auto"  # id: the files hold label ids | name: label names | auto: ids if integers, else names
    label_range: list[float] | None = None  # regression: [low, high]; gold scores outside are an error
    id_field: str = "idx"  # the example id that submission files carry
    label_all_tokens: bool = False  # token_classification: every sub-token of a word trains on its tag (else the first only)
    # how it is scored
    metrics: list[str] = MISSING  # src.metrics.METRICS, computed on every dev split
    main_metric: str = MISSING  # picks the best checkpoint; reported in leaderboards
    positive_label: str | None = None  # the class whose F1 is `f1`; null = label id 1
    seqeval_mode: str | None = None  # token_classification: null = conlleval's entity matching | strict: IOB2 strict (seqeval)
    # which split does what
    train_split: str = "train"
    dev_splits: list[str] = field(default_factory=lambda: ["dev"])  # dev_X reports its metrics with the suffix _X
    test_split: str | None = None  # a labelled test split, evaluated once on the checkpoint selected on dev
    predict_splits: list[PredictSplit] = field(default_factory=list)  # unlabelled: predict=true writes submission files
    submission_format: str = "glue"  # glue: index<TAB>prediction .tsv | superglue: {"idx", "label"} .jsonl
    submission_labels: str = "id"  # id | name: what a submission file holds for a class
    prompt: PromptConfig = field(default_factory=PromptConfig)  # zero- and few-shot scoring (src.zeroshot); classification only

    def split_suffix(self, split: str) -> str:
        """The metric suffix of a dev split: "" for dev, "_mm" for dev_mm."""
        return split[len("dev") :]


@dataclass
class ModelConfig:
    name: str = MISSING
    source: str = "hub"  # hub: Hub id or local dir | package: pip package with get_model_path() | tiny
    name_or_path: str = MISSING
    max_length: int = 128
    revision: str | None = None
    dropout: float | None = None  # None = the pretrained model's own dropout rates
    lr: float = 2e-5  # the model's recommended AdamW learning rate for full fine-tuning: optimizer.lr's default
    init_from: str | None = None  # a finished run's directory: start from its fine-tuned encoder, with a fresh head
    padding_side: str = "right"  # right | left (decoders only): where a batch's pad tokens go
    torch_dtype: str = "fp32"  # fp32 | bf16: the dtype the weights are loaded and kept in
    attn_implementation: str = "sdpa"  # sdpa | eager | flash_attention_2 | flex_attention
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, slower steps
    trust_remote_code: bool = False  # run code from the model's repository (a model transformers does not ship)
    # tiny only
    architecture: str = "bert"  # bert | gpt2 | llama
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
    # None = the model family's query and value projections (src/families.py); a list of module names; or "all-linear".
    # Any: OmegaConf types no union of a list and a string, so `check` does
    target_modules: Any = None
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
    glue_dir: str | None = None  # local benchmark downloads, read by the tasks of conf/task (task.data_dir)
    superglue_dir: str | None = None
    tweet_eval_dir: str | None = None
    conll_dir: str | None = None  # a CoNLL-2003 folder (train.txt, valid.txt, test.txt)
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
    num_fewshot: int = 0  # src.zeroshot: solved examples put before each scored one


def register_schema() -> None:
    ConfigStore.instance().store(name="schema", node=Config)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def validate(cfg: DictConfig) -> Config:
    """Turn the composed config into typed objects and check every value a user can get wrong."""
    return check(to_typed(cfg))


def to_typed(cfg: DictConfig) -> Config:
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except Exception as e:  # a missing or ill-typed value
        raise UserError(f"invalid config: {str(e).splitlines()[0]}") from None


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
    _check_model(c)
    _check_finetune(c.finetune)
    for key in ("max_train_samples", "max_eval_samples"):
        n = getattr(d, key)
        _check(n is None or n >= 1, f"data.{key} must be >= 1 (or null for all), got {n}")
    for key, example in (("glue_dir", "glue"), ("superglue_dir", "superglue"), ("tweet_eval_dir", "tweet_eval"), ("conll_dir", "conll2003")):
        folder = getattr(d, key)
        _check(folder is None or os.path.isdir(folder), f"data.{key} {folder!r} is not a directory: point it at the benchmark's download (e.g. data.{key}=../shared/data/{example})")
    _check(c.hardware.mixed_precision in ("no", "bf16", "fp16"), f"hardware.mixed_precision must be no, bf16 or fp16, got {c.hardware.mixed_precision!r}")
    _check(c.hardware.accelerator in ("cpu", "gpu", "auto"), f"hardware.accelerator must be cpu, gpu or auto, got {c.hardware.accelerator!r}")
    _check(not (c.hardware.accelerator == "cpu" and c.hardware.mixed_precision == "fp16"), "fp16 needs a GPU: use hardware=fp16 on a GPU, or hardware.mixed_precision=bf16 on CPU")
    check_task(t)
    _check(c.num_fewshot >= 0, f"num_fewshot must be >= 0, got {c.num_fewshot}")
    _check(c.analysis.num_errors >= 0, f"analysis.num_errors must be >= 0, got {c.analysis.num_errors}")
    _check(not c.predict or bool(t.predict_splits), f"predict=true: task {t.name} has no unlabelled test split to predict (task.predict_splits)")
    _check(not c.predict or tr.save_best, "predict=true predicts with the best checkpoint: it needs trainer.save_best=true")
    _check(t.test_split is None or tr.save_best, f"task.test_split={t.test_split} is scored with the best checkpoint: it needs trainer.save_best=true")
    _check(c.logger.mode in (None, "online", "offline", "disabled"), f"logger.mode must be online, offline or disabled, got {c.logger.mode!r}")
    _check(c.logger.init_timeout_s > 0, f"logger.init_timeout_s must be > 0, got {c.logger.init_timeout_s}")
    return c


def _check_init_from(model: ModelConfig) -> None:
    """A finished run of the same model, with its best checkpoint: what src.model.init_encoder_from reads."""
    run_dir = model.init_from
    metrics = os.path.join(run_dir, "metrics.json")
    _check(os.path.isfile(metrics), f"model.init_from={run_dir} is not a finished run (no metrics.json): point it at a run directory of src.train")
    _check(os.path.isdir(os.path.join(run_dir, "checkpoint-best")), f"model.init_from={run_dir} has no checkpoint-best/ (trained with trainer.save_best=false?)")
    with open(metrics) as f:
        source_model = json.load(f).get("model")
    _check(source_model == model.name, f"model.init_from={run_dir} fine-tuned {source_model}, not {model.name}: set model={source_model}")


def check_task(t: TaskConfig) -> None:
    """The task's own values; what depends on its type (labels, metrics) is checked by the type."""
    from src.task_types import TASK_TYPES  # here: the registry imports the metrics, which --cfg job does not need

    _check(t.type in TASK_TYPES, f"task.type {t.type!r} is not a task type: choose one of {', '.join(TASK_TYPES)}")
    _check(t.format is None or t.format in TASK_FORMATS, f"task.format must be one of {', '.join(TASK_FORMATS)} (or null: from the file extension), got {t.format!r}")
    _check(t.quoting in ("minimal", "none"), f"task.quoting must be minimal or none, got {t.quoting!r}")
    _check(t.label_encoding in LABEL_ENCODINGS, f"task.label_encoding must be one of {', '.join(LABEL_ENCODINGS)}, got {t.label_encoding!r}")
    _check(t.submission_format in SUBMISSION_FORMATS, f"task.submission_format must be one of {', '.join(SUBMISSION_FORMATS)}, got {t.submission_format!r}")
    _check(t.submission_labels in ("id", "name"), f"task.submission_labels must be id or name, got {t.submission_labels!r}")
    _check(len(t.text_fields) >= 1, "task.text_fields must name at least one field, e.g. task.text_fields=[text]")
    _check(len(t.dev_splits) >= 1, "task.dev_splits must name at least one split, e.g. [dev]")
    for split in t.dev_splits:
        _check(split.startswith("dev"), f"task.dev_splits: {split!r} must start with dev (dev_X reports its metrics as METRIC_X)")
    _check(t.data_dir is None or os.path.isdir(t.data_dir), f"task.data_dir {t.data_dir!r} is not a directory")
    TASK_TYPES[t.type].check(t)


def _check_model(c: Config) -> None:
    m = c.model
    _check(m.source in ("hub", "package", "tiny"), f"model.source must be hub, package or tiny, got {m.source!r}")
    _check(m.architecture in TINY_ARCHITECTURES, f"model.architecture must be one of {', '.join(TINY_ARCHITECTURES)}, got {m.architecture!r}")
    _check(m.padding_side in ("right", "left"), f"model.padding_side must be right or left, got {m.padding_side!r}")
    _check(m.torch_dtype in TORCH_DTYPES, f"model.torch_dtype must be one of {', '.join(TORCH_DTYPES)}, got {m.torch_dtype!r}")
    _check(m.attn_implementation in ATTN_IMPLEMENTATIONS, f"model.attn_implementation must be one of {', '.join(ATTN_IMPLEMENTATIONS)}, got {m.attn_implementation!r}")
    # two half-precision formats at once: fp16 autocast would recompute bf16 weights in fp16's narrower range
    _check(not (m.torch_dtype == "bf16" and c.hardware.mixed_precision == "fp16"), "model.torch_dtype=bf16 cannot train under fp16 mixed precision: use hardware=bf16")
    _check(not (m.attn_implementation == "flash_attention_2" and c.hardware.accelerator == "cpu"), "model.attn_implementation=flash_attention_2 needs a GPU: use sdpa on CPU")
    _check(m.lr > 0, f"model.lr must be > 0, got {m.lr}")
    if m.init_from is not None:
        _check_init_from(m)


def _check_finetune(f: FinetuneConfig) -> None:
    _check(f.name in FINETUNE_METHODS, f"finetune.name must be one of {', '.join(FINETUNE_METHODS)}, got {f.name!r}")
    _check(f.head_modules is None or len(f.head_modules) > 0, "finetune.head_modules must name at least one module (or be null for the default)")
    targets = f.target_modules
    _check(
        targets is None or targets == ALL_LINEAR or (isinstance(targets, list) and len(targets) > 0 and all(isinstance(t, str) for t in targets)),
        f"finetune.target_modules must name at least one module, or be {ALL_LINEAR} (or null for the default), got {targets!r}",
    )
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
