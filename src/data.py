"""A task's data: its splits (src.sources) tokenized once (cached by content) and batched.

Every example carries `idx` (its row in the split) so predictions can be written in file order
whatever order the batches ran in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
import torch
from torch.utils.data import DataLoader, Sampler
from transformers import PreTrainedTokenizerBase
from transformers.trainer_pt_utils import get_length_grouped_indices

from src.config import Config, TaskConfig, UserError
from src.sources import Source, has_split, resolve_label_names, split_sources
from src.task_types import task_type

log = logging.getLogger("basebench")
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# ---------------------------------------------------------------- tokenizing (cached)


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    if tokenizer.is_fast:
        # truncation and padding are call arguments, not identity: every call sets them on the backend anew
        backend = tokenizer.backend_tokenizer
        backend.no_truncation()
        backend.no_padding()
        state = backend.to_str()
    else:
        state = json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(f"{type(tokenizer).__name__}|{state}".encode()).hexdigest()[:16]


def tokenize(
    source: Source, task: TaskConfig, tokenizer: PreTrainedTokenizerBase, tokenizer_key: str, max_length: int, cache_dir: str, name: str, encoder: Callable[[datasets.Dataset], Callable[[dict], dict]] | None = None
) -> datasets.Dataset:
    """Batched map, cached in cache_dir by content: a second run with the same data (source.key), tokenizer
    (tokenizer_key = tokenizer_fingerprint(tokenizer)) and max_length loads the Arrow file instead of reading and
    tokenizing again. The result keeps the text fields, label (or test_index) and idx columns. encoder: given the
    loaded split, the map function to use instead of the task type's (zero-shot prompts); source.key then names
    everything it reads besides."""
    key = hashlib.sha256(f"{source.key}|{tokenizer_key}|{max_length}".encode()).hexdigest()[:20]
    cache_file = Path(cache_dir) / "tokenized" / f"{task.name}-{name}-{key}.arrow"
    kind = task_type(task)
    tokenized = _read_cached(cache_file)
    if tokenized is None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        split = source.load()
        encode = encoder(split) if encoder is not None else kind.tokenize_function(task, tokenizer, max_length)
        # new_fingerprint=key: our key already names the content, and skips datasets' costly hashing of `encode`
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.partial")
        split.map(encode, batched=True, batch_size=1000, cache_file_name=str(partial), load_from_cache_file=False, new_fingerprint=key, desc=f"tokenize {task.name}/{name}")
        os.replace(partial, cache_file)  # written under a temporary name, then renamed: a cache file that exists is whole
        tokenized = datasets.Dataset.from_file(str(cache_file))
    if encoder is None:  # prompted splits are cut to the model's window by src.scoring, as lm-eval cuts them
        kind.report_truncation(task, name, tokenized, max_length)
    return tokenized


def _read_cached(cache_file: Path) -> datasets.Dataset | None:
    """The tokenized split in cache_file; None when there is none, or when it does not read (then, with one
    warning, it is deleted to be rebuilt): a file truncated or damaged outside basebench."""
    if not cache_file.is_file():
        return None
    try:
        cached = datasets.Dataset.from_file(str(cache_file))
        missing = {"input_ids", "length", "idx"} - set(cached.column_names)
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))} column")
        return cached
    except Exception as e:
        log.warning(f"tokenized-data cache {cache_file} does not read ({type(e).__name__}: {(str(e).splitlines() or [''])[0]}): rebuilding it")
        cache_file.unlink(missing_ok=True)
        return None


# ---------------------------------------------------------------- batching


class EpochSampler(Sampler[int]):
    """Shuffles anew each epoch from (seed, epoch) alone, so any epoch's order can be replayed.
    With group_by_length, examples of similar length share a batch (shuffled mega-batches, as the
    Hugging Face Trainer's group_by_length), which cuts padding several-fold."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool):
        self.lengths, self.batch_size, self.seed, self.group_by_length = lengths, batch_size, seed, group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.group_by_length:
            return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))
        return iter(torch.randperm(len(self.lengths), generator=generator).tolist())


@dataclass
class TaskData:
    train: DataLoader
    dev: dict[str, DataLoader]  # metric suffix -> loader
    selection: dict[str, DataLoader]  # what picks the best checkpoint: `dev` itself, or a held-out part of train
    test: dict[str, DataLoader]  # the labelled test split ({"": loader}), evaluated once on the selected checkpoint; {} if none
    examples: dict[str, dict[str, datasets.Dataset]]  # "dev" | "test" -> metric suffix -> tokenized examples (for predictions)
    train_size: int


def _loader_columns(ds: datasets.Dataset, task: TaskConfig, evaluation: bool) -> datasets.Dataset:
    """The columns a batch holds: model inputs, idx and `labels`: what training fits (the task type's
    train_label_column) or what evaluation scores (`label`), with the type's eval_columns."""
    kind = task_type(task)
    keep = [c for c in ds.column_names if c in MODEL_INPUTS] + ["idx"] + (list(kind.eval_columns) if evaluation else [])
    label = "label" if evaluation else kind.train_label_column
    if label not in ds.column_names:  # an unlabelled split
        return ds.select_columns(keep)
    return ds.select_columns(keep + [label]).rename_column(label, "labels")


def _collator(cfg: Config, tokenizer: PreTrainedTokenizerBase):
    # per-batch padding by default; multiples of 8 suit tensor cores
    return task_type(cfg.task).collator(
        tokenizer,
        pad_to_max_length=cfg.model.max_length if cfg.data.pad_to_max_length else None,
        pad_to_multiple_of=8 if cfg.hardware.mixed_precision != "no" else None,
    )


def eval_loader(cfg: Config, tokenizer: PreTrainedTokenizerBase, tokenized: datasets.Dataset) -> DataLoader:
    """Longest examples first (less padding); evaluation puts the rows back in order by idx."""
    lengths = tokenized["length"][:]  # a plain list: indexing a datasets Column row by row is slow
    longest_first = sorted(range(len(tokenized)), key=lambda i: -lengths[i])
    return DataLoader(
        _loader_columns(tokenized, cfg.task, evaluation=True),
        batch_size=cfg.trainer.eval_batch_size,
        sampler=longest_first,
        collate_fn=_collator(cfg, tokenizer),
        num_workers=cfg.hardware.dataloader_workers,
        generator=torch.Generator(),  # its own: iterating must not draw from the global RNG, or resumed runs would diverge
    )


def split_holdout(train: datasets.Dataset, fraction: float, seed: int) -> tuple[datasets.Dataset, datasets.Dataset]:
    """A seeded random `fraction` of train, held out to select checkpoints on; the rest trains."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    n_holdout = max(1, round(fraction * len(train)))
    if n_holdout >= len(train):
        raise UserError(f"data.holdout_fraction={fraction} leaves no training examples out of {len(train)}")
    return train.select(sorted(order[n_holdout:])), train.select(sorted(order[:n_holdout]))


def label_names_for(cfg: Config) -> list[str]:
    """The task's class names, inferred from train when the task config gives none; recorded in cfg.task, where the
    model head, the metrics and the outputs read them."""
    names = resolve_label_names(cfg.task, cfg.data.cache_dir)
    if cfg.task.label_names is None and names:
        cfg.task.label_names = names
    return names


def build_data(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> TaskData:
    task, data = cfg.task, cfg.data
    label_names = label_names_for(cfg)
    tokenizer_key = tokenizer_fingerprint(tokenizer)
    [train_source] = split_sources(task, [task.train_split], label_names).values()
    train = tokenize(train_source, task, tokenizer, tokenizer_key, cfg.model.max_length, data.cache_dir, "train")
    if data.max_train_samples is not None:
        train = train.select(range(min(data.max_train_samples, len(train))))
    loaders, examples = build_eval_data(cfg, tokenizer, tokenizer_key, label_names)
    selection = loaders["dev"]
    if data.selection_split == "train_holdout":
        train, holdout = split_holdout(train, data.holdout_fraction, cfg.seed)
        selection = {"": eval_loader(cfg, tokenizer, holdout)}
    sampler = EpochSampler(train["length"][:], cfg.trainer.batch_size, cfg.seed, data.group_by_length)
    train_loader = DataLoader(
        _loader_columns(train, task, evaluation=False), batch_size=cfg.trainer.batch_size, sampler=sampler, collate_fn=_collator(cfg, tokenizer), num_workers=cfg.hardware.dataloader_workers, generator=torch.Generator()
    )
    return TaskData(train=train_loader, dev=loaders["dev"], selection=selection, test=loaders["test"], examples=examples, train_size=len(train))


def scored_splits(task: TaskConfig) -> dict[str, tuple[str, str]]:
    """Each split a run scores -> its role ("dev" | "test") and metric suffix (dev_mm -> "_mm")."""
    return {split: ("dev", task.split_suffix(split)) for split in task.dev_splits} | ({task.test_split: ("test", "")} if task.test_split else {})


def build_eval_data(cfg: Config, tokenizer: PreTrainedTokenizerBase, tokenizer_key: str, label_names: list[str]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Loaders and tokenized examples of the scored splits: {"dev": {suffix: ...}, "test": {"": ...} or {}}.
    data.max_eval_samples cuts dev, never the test split (its score is the one reported)."""
    task = cfg.task
    splits = scored_splits(task)
    loaders: dict[str, dict] = {"dev": {}, "test": {}}
    examples: dict[str, dict] = {"dev": {}, "test": {}}
    for split, source in split_sources(task, list(splits), label_names).items():
        role, suffix = splits[split]
        tokenized = tokenize(source, task, tokenizer, tokenizer_key, cfg.model.max_length, cfg.data.cache_dir, split)
        if role == "dev" and cfg.data.max_eval_samples is not None:
            tokenized = tokenized.select(range(min(cfg.data.max_eval_samples, len(tokenized))))
        loaders[role][suffix], examples[role][suffix] = eval_loader(cfg, tokenizer, tokenized), tokenized
    return loaders, examples


def predict_sources(cfg: Config) -> dict[str, Source]:
    """The unlabelled splits predict=true writes submission files for (src.submission), by split name."""
    return split_sources(cfg.task, [p.split for p in cfg.task.predict_splits], cfg.task.label_names or [], labelled=False)


# ---------------------------------------------------------------- prompted splits (src.zeroshot)

PROMPTED_VERSION = 1  # bump when what prompted_data stores changes, so that no older cache entry is reused


def prompted_data(cfg: Config, tokenizer: PreTrainedTokenizerBase, tokenizer_key: str, window: int) -> dict[str, dict[str, datasets.Dataset]]:
    """The scored splits as src.zeroshot scores them: {"dev": {suffix: ...}, "test": {"": ...} or {}}, each example with
    its context's tokens (context_ids) and each answer's (continuation_ids), split as src.scoring says. data.max_eval_samples
    cuts dev (the first N, as lm-eval's --limit). Cached in data.cache_dir by the data, the few-shot pool, the prompt,
    num_fewshot, the seed and the tokenizer: a second run (another batch size, or a model of the same tokenizer) renders
    and tokenizes nothing."""
    from src.prompts import check_choices

    task = cfg.task
    label_names = label_names_for(cfg)
    check_choices(task, label_names)
    splits = scored_splits(task)
    # lm-eval draws few-shot examples from train, else from the scored split itself (BoolQ's local copy has no train)
    has_train = has_split(task, task.train_split)
    pool = split_sources(task, [task.train_split], label_names)[task.train_split] if has_train and cfg.num_fewshot else None
    data: dict[str, dict] = {"dev": {}, "test": {}}
    for split, source in split_sources(task, list(splits), label_names).items():
        role, suffix = splits[split]
        limit = cfg.data.max_eval_samples if role == "dev" else None
        data[role][suffix] = _prompted_split(cfg, tokenizer, tokenizer_key, window, split, source, limit, pool or source)
    return data


def _prompted_split(cfg: Config, tokenizer: PreTrainedTokenizerBase, tokenizer_key: str, window: int, split: str, source: Source, limit: int | None, pool: Source) -> datasets.Dataset:
    from src.prompts import requests
    from src.scoring import encode_requests

    task, shots = cfg.task, cfg.num_fewshot

    def encoder(examples: datasets.Dataset) -> Callable[[dict], dict]:
        rows = _rows(examples, task.text_fields)
        # the whole pool: lm-eval's --limit cuts only the scored examples
        pool_rows = [] if not shots else rows if pool is source and limit is None else _rows(pool.load(), task.text_fields)
        contexts, continuations = encode_requests(tokenizer, requests(task.prompt, rows, pool_rows, shots, cfg.seed))
        return lambda batch: {"context_ids": [contexts[i] for i in batch["idx"]], "continuation_ids": [continuations[i] for i in batch["idx"]]}

    key = hashlib.sha256(json.dumps([PROMPTED_VERSION, source.key, limit, pool.key if shots else None, asdict(task.prompt), shots, cfg.seed]).encode()).hexdigest()
    first = Source(key, lambda: _first(source.load(), limit), source.where)
    return tokenize(first, task, tokenizer, tokenizer_key, window, cfg.data.cache_dir, f"{split}-{shots}shot", encoder)


def _rows(examples: datasets.Dataset, text_fields: list[str]) -> list[dict]:
    """Examples as the prompt renders and the few-shot sampler compares them: their text fields and label."""
    columns = [examples[f][:] for f in text_fields] + [examples["label"][:]]
    return [dict(zip([*text_fields, "label"], values)) for values in zip(*columns)]


def _first(examples: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    return examples.select(range(min(limit, len(examples)))) if limit is not None else examples
