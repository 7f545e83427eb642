"""GLUE data: read a task (local GLUE folder or Hub), tokenize it once (cached), and batch it.

Every example carries `idx` (its row in the split) so predictions can be written in file order
whatever order the batches ran in.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import get_length_grouped_indices

from src.config import Config, TaskConfig, TestSplit, UserError
from src.hub import require_hub

log = logging.getLogger("basebench")
HUB_DATASET = "nyu-mll/glue"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
csv.field_size_limit(2**31 - 1)  # some GLUE sentences exceed csv's default field size
datasets.disable_progress_bars()  # our own progress bar is the one that matters


# ---------------------------------------------------------------- reading raw splits


def parse_label(raw: str, task: TaskConfig, where: str) -> float | int:
    fmt = task.tsv.label_format
    try:
        if fmt == "score":
            return float(raw)
        if fmt == "name":
            return task.label_names.index(raw)
        label = int(raw)
    except ValueError:
        allowed = "a number" if fmt == "score" else ", ".join(task.label_names if fmt == "name" else map(str, range(task.num_labels)))
        raise UserError(f"{where}: label {raw!r} is not one of the {task.name} labels ({allowed})") from None
    if not 0 <= label < task.num_labels:
        raise UserError(f"{where}: label {label} is outside the {task.name} labels 0..{task.num_labels - 1}")
    return label


def read_glue_tsv(path: Path, task: TaskConfig, labelled: bool = True) -> dict[str, list]:
    """Parse one GLUE file exactly: BOM-safe, bare quotes kept, every row checked."""
    _require_file(path, task)
    fmt = task.tsv
    text_columns = fmt.text_columns if labelled or fmt.test_text_columns is None else fmt.test_text_columns
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        has_header = fmt.header or not labelled  # every GLUE test file has a header line, CoLA's too
        header = next(rows, None) if has_header else fmt.columns
        if header is None:
            raise UserError(f"{path} is empty: it holds no header and no examples")
        needed = text_columns + ([fmt.label_column] if labelled else [fmt.test_index_column])
        missing = [c for c in needed if c not in header]
        if missing:
            raise UserError(f"{path}: header {header} lacks the column(s) {missing} of task {task.name}")
        positions = [header.index(c) for c in needed]
        out: dict[str, list] = {name: [] for name in task.text_fields}
        out["label" if labelled else "test_index"] = []
        first_line = 2 if has_header else 1
        for line_no, row in enumerate(rows, start=first_line):
            if not row:  # a blank line (e.g. a trailing newline written twice)
                continue
            if len(row) < len(header) and max(positions) >= len(row):
                raise UserError(f"{path}:{line_no}: malformed row with {len(row)} columns, expected {len(header)}")
            values = [row[i] for i in positions]
            for name, value in zip(task.text_fields, values):
                out[name].append(value)
            last = values[-1]
            out["label" if labelled else "test_index"].append(parse_label(last, task, f"{path}:{line_no}") if labelled else last)
    if not out[task.text_fields[0]]:
        raise UserError(f"{path} holds no examples")
    return out


def raw_split_sources(task: TaskConfig, glue_dir: str | None, with_train: bool = True) -> dict[str, tuple[str, Callable[[], datasets.Dataset]]]:
    """{"train" | "dev" | "dev_mm": (content key, loader)}. A local file is keyed by its bytes, so a
    cache hit (the second job of a sweep) needs no parsing at all. with_train=False: the dev splits alone."""
    names = {"train": (task.train_file, "train")} if with_train else {}
    names.update({"dev" + s.metric_suffix: (s.file, s.hub_split) for s in task.dev_splits})
    if glue_dir is None:
        hub = _load_hub_splits(task, {split: hub for split, (_, hub) in names.items()})
        return {split: (ds._fingerprint, lambda ds=ds: _with_idx(ds)) for split, ds in hub.items()}
    folder = Path(glue_dir) / task.glue_dir_name
    if not folder.is_dir():
        raise UserError(f"{folder} not found: data.glue_dir={glue_dir} has no {task.glue_dir_name}/ folder for task {task.name}")
    sources = {}
    for split, (file, _) in names.items():
        path = _require_file(folder / file, task)
        sources[split] = (_file_digest(path), lambda path=path: _with_idx(datasets.Dataset.from_dict(read_glue_tsv(path, task))))
    return sources


def load_raw_splits(task: TaskConfig, glue_dir: str | None, with_train: bool = True) -> dict[str, datasets.Dataset]:
    """{"train": ..., "dev": ..., "dev_mm": ...}: columns = task.text_fields + label + idx."""
    return {split: load() for split, (_, load) in raw_split_sources(task, glue_dir, with_train).items()}


def test_split_source(task: TaskConfig, split: TestSplit, glue_dir: str | None) -> tuple[str, Callable[[], datasets.Dataset]]:
    """One unlabelled test split as (content key, loader), as raw_split_sources gives the labelled ones; the loader's
    columns: task.text_fields + test_index (the id GLUE's server expects) + idx."""
    if glue_dir is not None:
        path = test_file(task, split, glue_dir)
        return _file_digest(path), lambda: _with_idx(datasets.Dataset.from_dict(read_glue_tsv(path, task, labelled=False)))
    hub_task = dataclasses.replace(task, hub_name=split.hub_name or task.hub_name)
    ds = _load_hub_splits(hub_task, {"test": split.hub_split})["test"].remove_columns("label")  # the Hub's test labels are all -1
    return ds._fingerprint, lambda: ds.add_column("test_index", [str(i) for i in ds["idx"]])


def test_file(task: TaskConfig, split: TestSplit, glue_dir: str) -> Path:
    path = Path(glue_dir) / task.glue_dir_name / split.file
    if not path.is_file():
        raise UserError(f"test file {path} not found: GLUE test predictions (predict=true) need the unlabelled test files of a GLUE download")
    return path


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _with_idx(ds: datasets.Dataset) -> datasets.Dataset:
    return ds if "idx" in ds.column_names else ds.add_column("idx", list(range(len(ds))))


def _require_file(path: Path, task: TaskConfig) -> Path:
    if not path.is_file():
        raise UserError(f"task file {path} not found: is data.glue_dir a GLUE download with a {task.glue_dir_name}/ folder?")
    return path


def _load_hub_splits(task: TaskConfig, hub_splits: dict[str, str]) -> dict[str, datasets.Dataset]:
    hint = f"run from a local GLUE copy instead: data.glue_dir=/path/to/glue (or GLUE_DIR=...) with {task.glue_dir_name}/train.tsv"
    if not _hub_dataset_cached(task.hub_name):
        require_hub(f"dataset {HUB_DATASET}/{task.hub_name}", hint)
    try:
        loaded = datasets.load_dataset(HUB_DATASET, task.hub_name)
    except Exception as e:  # e.g. offline mode with a partial cache
        raise UserError(f"could not load {HUB_DATASET}/{task.hub_name} ({type(e).__name__}): {hint}") from None
    return {split: loaded[hub] for split, hub in hub_splits.items()}


def _hub_dataset_cached(hub_name: str) -> bool:
    cache = Path(datasets.config.HF_DATASETS_CACHE) / HUB_DATASET.replace("/", "___") / hub_name
    return cache.is_dir() and any(cache.iterdir())


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
    source_key: str, load: Callable[[], datasets.Dataset], task: TaskConfig, tokenizer: PreTrainedTokenizerBase, tokenizer_key: str, max_length: int, cache_dir: str, name: str
) -> datasets.Dataset:
    """Batched map, cached in cache_dir by content: a second run with the same data (source_key),
    tokenizer (tokenizer_key = tokenizer_fingerprint(tokenizer)) and max_length loads the Arrow file
    instead of parsing and tokenizing again. The result keeps the text, label and idx columns."""
    key = hashlib.sha256(f"{source_key}|{tokenizer_key}|{max_length}|{task.text_fields}".encode()).hexdigest()[:20]
    cache_file = Path(cache_dir) / "tokenized" / f"{task.name}-{name}-{key}.arrow"
    cached = _read_cached(cache_file)
    if cached is not None:
        return cached
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    split = load()
    if len(split) == 0:
        raise UserError(f"the {name} split of {task.name} is empty")

    def encode(batch: dict) -> dict:
        texts = [batch[f] for f in task.text_fields]
        encoded = tokenizer(*texts, truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    # new_fingerprint=key: our key already names the content, and skips datasets' costly hashing of `encode`
    partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.partial")
    split.map(encode, batched=True, batch_size=1000, cache_file_name=str(partial), load_from_cache_file=False, new_fingerprint=key, desc=f"tokenize {task.name}/{name}")
    os.replace(partial, cache_file)  # written under a temporary name, then renamed: a cache file that exists is whole
    return datasets.Dataset.from_file(str(cache_file))


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
class GlueData:
    train: DataLoader
    dev: dict[str, DataLoader]  # metric suffix -> loader
    selection: dict[str, DataLoader]  # what picks the best checkpoint: `dev` itself, or a held-out part of train
    dev_raw: dict[str, datasets.Dataset]  # metric suffix -> untokenized examples (for predictions)
    train_size: int


def _loader_columns(ds: datasets.Dataset) -> datasets.Dataset:
    keep = [c for c in ds.column_names if c in MODEL_INPUTS] + ["idx"]
    if "label" not in ds.column_names:  # a test split
        return ds.select_columns(keep)
    return ds.select_columns(keep + ["label"]).rename_column("label", "labels")


def _collator(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    if cfg.data.pad_to_max_length:  # fixed shapes, as run_glue.py's default
        return DataCollatorWithPadding(tokenizer, padding="max_length", max_length=cfg.model.max_length)
    # per-batch padding; multiples of 8 suit tensor cores
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if cfg.hardware.mixed_precision != "no" else None)


def eval_loader(cfg: Config, tokenizer: PreTrainedTokenizerBase, tokenized: datasets.Dataset) -> DataLoader:
    """Longest examples first (less padding); evaluation puts the rows back in order by idx."""
    lengths = tokenized["length"][:]  # a plain list: indexing a datasets Column row by row is slow
    longest_first = sorted(range(len(tokenized)), key=lambda i: -lengths[i])
    return DataLoader(
        _loader_columns(tokenized),
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


def build_data(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> GlueData:
    task, data = cfg.task, cfg.data
    tokenizer_key = tokenizer_fingerprint(tokenizer)
    sources = raw_split_sources(task, data.glue_dir)
    train_key, load_train = sources.pop("train")
    train = tokenize(train_key, load_train, task, tokenizer, tokenizer_key, cfg.model.max_length, data.cache_dir, "train")
    if data.max_train_samples is not None:
        train = train.select(range(min(data.max_train_samples, len(train))))
    dev_loaders, dev_examples = build_dev_data(cfg, tokenizer, sources, tokenizer_key)
    selection = dev_loaders
    if data.selection_split == "train_holdout":
        train, holdout = split_holdout(train, data.holdout_fraction, cfg.seed)
        selection = {"": eval_loader(cfg, tokenizer, holdout)}
    sampler = EpochSampler(train["length"][:], cfg.trainer.batch_size, cfg.seed, data.group_by_length)
    train_loader = DataLoader(
        _loader_columns(train), batch_size=cfg.trainer.batch_size, sampler=sampler, collate_fn=_collator(cfg, tokenizer), num_workers=cfg.hardware.dataloader_workers, generator=torch.Generator()
    )
    return GlueData(train=train_loader, dev=dev_loaders, selection=selection, dev_raw=dev_examples, train_size=len(train))


def build_dev_data(cfg: Config, tokenizer: PreTrainedTokenizerBase, sources: dict, tokenizer_key: str) -> tuple[dict[str, DataLoader], dict[str, datasets.Dataset]]:
    """Loaders and examples (text, label, idx) of the dev splits in `sources` (raw_split_sources), keyed by metric suffix."""
    loaders, examples = {}, {}
    for split, (key, load) in sources.items():
        dev = tokenize(key, load, cfg.task, tokenizer, tokenizer_key, cfg.model.max_length, cfg.data.cache_dir, split)
        if cfg.data.max_eval_samples is not None:
            dev = dev.select(range(min(cfg.data.max_eval_samples, len(dev))))
        suffix = split[len("dev") :]
        loaders[suffix], examples[suffix] = eval_loader(cfg, tokenizer, dev), dev
    return loaders, examples
