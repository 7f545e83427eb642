"""Where a task's examples come from: local files (csv, tsv, json/jsonl, parquet, a text file with a label file
beside it, or CoNLL columns) or a Hub dataset, read with datasets' own loaders into one shape:

    the text fields   as the task names them (task.rename maps a file's column names to them)
    label             label ids or scores, encoded by the task type (labelled splits)
    test_index        the id a submission file carries (unlabelled splits that predict=true writes)
    idx               the row in the source, so predictions can be put back in file order

Local files are read when the task has a data_dir, or no Hub dataset; otherwise the Hub. Each split comes as a
Source: a content key (the bytes of its files and every option that shapes the examples) and a loader, so a
cached tokenization is found without reading the files again.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets

from src.config import TaskConfig, UserError
from src.hub import require_hub
from src.task_types import task_type

log = logging.getLogger("basebench")
datasets.disable_progress_bars()  # our own progress bar is the one that matters

SCHEMA_VERSION = 2  # bump when what a loader returns changes, so that no older cache entry is reused
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text", ".conll": "conll"}
LINE_FORMATS = ("csv", "tsv", "text")  # an example per line: errors name the line
# CoNLL columns by their number when task.column_names does not name them: the Hub's conll2003 names
CONLL_COLUMNS = {2: ["tokens", "ner_tags"], 4: ["tokens", "pos_tags", "chunk_tags", "ner_tags"]}


@dataclass
class Source:
    key: str  # names the content: equal keys give equal examples
    load: Callable[[], datasets.Dataset]
    where: str  # the file or Hub split, for messages


def is_local(task: TaskConfig) -> bool:
    return task.data_dir is not None or task.hub.path is None


def has_split(task: TaskConfig, split: str) -> bool:
    """Whether the task names a file (local) or a Hub split for `split`."""
    return task.data_files.get(split) is not None if is_local(task) else split in task.hub.splits


def split_sources(task: TaskConfig, splits: list[str], label_names: list[str], labelled: bool = True) -> dict[str, Source]:
    """A Source per split. labelled=False: unlabelled splits (predict=true), read with their ids instead of labels."""
    return {split: (_local_source if is_local(task) else _hub_source)(task, split, label_names, labelled) for split in splits}


def resolve_label_names(task: TaskConfig, cache_dir: str) -> list[str]:
    """task.label_names, or the Hub's class names, or (local files) the sorted labels of train, cached by its content."""
    if task.label_names is not None or not task_type(task).has_classes:
        return list(task.label_names or [])
    kind = task_type(task)
    if not is_local(task):
        hub = _hub_split(task, task.train_split)
        feature = _class_label(hub.features.get(task.label_field))
        return list(feature.names) if feature is not None else kind.infer_label_names(task, hub[task.label_field][:])
    path = _local_file(task, task.train_split)
    cache = Path(cache_dir) / "labels" / f"{task.name}-{_digest(path.read_bytes(), _options(task, task.train_split))}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    raw = _rename(_read_local(task, task.train_split, path), task, str(path))
    if task.label_field not in raw.column_names:
        raise UserError(f"{path}: no label column {task.label_field!r} (it has {', '.join(raw.column_names)}): set task.label_field, or map a column with task.rename")
    names = kind.infer_label_names(task, raw[task.label_field][:])
    if len(names) < 2:
        raise UserError(f"{path}: train has {len(names)} distinct label(s) {names}: a classifier needs at least 2")
    log.info(f"{task.name}: {len(names)} labels inferred from train (sorted): {names}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(names))
    return names


# ---------------------------------------------------------------- local files


def _local_file(task: TaskConfig, split: str) -> Path:
    if task.data_files.get(split) is None:
        hub_hint = "read it from the Hub: leave the task's data directory unset (null)" if task.hub.path else f"add task.data_files.{split}=FILE"
        raise UserError(f"task {task.name} has no local {split} file (task.data_files has {', '.join(k for k, v in task.data_files.items() if v) or 'none'}): {hub_hint}")
    path = Path(task.data_dir or ".") / task.data_files[split]
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a data file: point task.data_files.{split} at the file")
    if not path.is_file():
        where = f"task.data_dir={task.data_dir}" if task.data_dir else "the current directory"
        raise UserError(f"{path} not found: task {task.name} reads its {split} split there (task.data_files.{split} under {where})")
    return path


def _label_file(task: TaskConfig, split: str) -> Path:
    if split not in task.label_files:
        raise UserError(f"task {task.name} reads text files (task.format=text) but names no label file for {split}: set task.label_files.{split}=FILE")
    path = Path(task.data_dir or ".") / task.label_files[split]
    if not path.is_file():
        raise UserError(f"{path} not found: the labels of task {task.name}'s {split} split (task.label_files.{split})")
    return path


def file_format(task: TaskConfig, path: Path) -> str:
    fmt = task.format or EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: cannot tell the format from the extension {path.suffix!r}: set task.format to one of csv, tsv, json, parquet, text")
    return fmt


def _options(task: TaskConfig, split: str) -> dict:
    """Everything besides the file bytes that shapes a split's examples."""
    reading = {k: getattr(task, k) for k in ("type", "format", "quoting", "encoding", "rename", "text_fields", "label_field", "label_encoding", "label_range", "id_field", "label_all_tokens")}
    return {"schema": SCHEMA_VERSION, "columns": task.column_names.get(split), **reading}


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()


def _local_source(task: TaskConfig, split: str, label_names: list[str], labelled: bool) -> Source:
    path = _local_file(task, split)
    files = [path] + ([_label_file(task, split)] if labelled and file_format(task, path) == "text" else [])
    key = _digest(*(f.read_bytes() for f in files), _options(task, split), label_names, labelled)
    fmt = file_format(task, path)
    first_line = 2 if fmt in ("csv", "tsv") and split not in task.column_names else 1

    def where(row: int) -> str:
        return f"{path}:{row + first_line}" if fmt in LINE_FORMATS or path.suffix == ".jsonl" else f"{path}, row {row + 1}"

    def load() -> datasets.Dataset:
        raw = _rename(_read_local(task, split, path), task, str(path))
        if fmt == "conll":  # an example is a sentence: named by the line of its first word
            lines = raw["line"][:]
            return _examples(raw, task, split, label_names, labelled, str(path), lambda row: f"{path}:{lines[row]}")
        return _examples(raw, task, split, label_names, labelled, str(path), where)

    return Source(key, load, str(path))


def _check_encoding(path: Path, encoding: str) -> None:
    data = path.read_bytes()
    try:
        data.decode(encoding)
    except LookupError:
        raise UserError(f"task.encoding {encoding!r} is not an encoding Python knows (e.g. utf-8, latin-1, cp1252)") from None
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{line}: not valid {encoding} (byte {data[e.start]:#04x}): set task.encoding to the file's encoding, e.g. task.encoding=latin-1") from None


def _read_local(task: TaskConfig, split: str, path: Path) -> datasets.Dataset:
    """The file as datasets' loader reads it: every column, csv/tsv values as the strings they are."""
    fmt = file_format(task, path)
    if fmt != "parquet":
        _check_encoding(path, task.encoding)
        if not path.read_text(encoding=task.encoding).strip():
            raise UserError(f"{path} is empty: it holds no examples")
    try:
        if fmt in ("csv", "tsv"):
            return _read_delimited(task, split, path, "\t" if fmt == "tsv" else ",")
        if fmt == "text":
            return _read_text_pair(task, split, path)
        if fmt == "conll":
            return _read_conll(task, split, path)
        kwargs = {"encoding": task.encoding} if fmt == "json" else {}
        return datasets.load_dataset(fmt, data_files=str(path), split="train", download_mode="force_redownload", **kwargs)
    except datasets.exceptions.DatasetGenerationError as e:
        cause = e.__cause__ or e
        raise UserError(f"{path} cannot be read as {fmt}: {(str(cause).splitlines() or [type(cause).__name__])[0]}") from None


def _read_delimited(task: TaskConfig, split: str, path: Path, delimiter: str) -> datasets.Dataset:
    """A csv/tsv file through datasets' csv loader (pandas), each value kept as the exact text of the file."""
    quoting = csv.QUOTE_NONE if task.quoting == "none" else csv.QUOTE_MINIMAL
    names = task.column_names.get(split)
    has_header = names is None
    if has_header:
        with open(path, encoding=task.encoding, newline="") as f:
            names = next(csv.reader(f, delimiter=delimiter, quoting=quoting), None)
        if not names:
            raise UserError(f"{path} is empty: it holds no header and no examples")
    if len(set(names)) != len(names):
        raise UserError(f"{path}: the header names a column twice: {names}")
    _check_rows(path, delimiter, quoting, task.encoding, names, has_header)
    return datasets.load_dataset(
        "csv",
        data_files=str(path),
        split="train",
        download_mode="force_redownload",  # our cache is keyed by content; the loader's own would be keyed by path and time
        sep=delimiter,
        quoting=quoting,
        header=None,
        names=names,
        skiprows=1 if has_header else 0,
        index_col=False,  # a row with extra fields must not turn its first column into an index
        keep_default_na=False,  # "NA", "null" or "nan" in a sentence are text
        na_filter=False,
        encoding=task.encoding,
        features=datasets.Features({name: datasets.Value("string") for name in names}),  # no type guessing: "007" stays "007"
    )


def _check_rows(path: Path, delimiter: str, quoting: int, encoding: str, names: list[str], has_header: bool) -> None:
    """Every row has as many fields as the header: the loader would fill a short row with empty strings, silently."""
    rows = 0
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        if has_header:
            next(reader)
        for row in reader:
            if not row:  # a blank line, as the loader skips them
                continue
            if len(row) != len(names):
                raise UserError(f"{path}:{reader.line_num}: {len(row)} field(s) where the header has {len(names)} ({', '.join(names)}): a malformed row")
            rows += 1
    if rows == 0:
        raise UserError(f"{path}: the file holds a header and no examples")


def _read_text_pair(task: TaskConfig, split: str, path: Path) -> datasets.Dataset:
    """One text a line, and (labelled splits) its label on the same line of the label file (TweetEval)."""
    texts = datasets.load_dataset("text", data_files=str(path), split="train", download_mode="force_redownload", encoding=task.encoding)
    if task.text_fields[0] != "text":
        texts = texts.rename_column("text", task.text_fields[0])
    if split not in task.label_files:
        return texts
    label_path = _label_file(task, split)
    _check_encoding(label_path, task.encoding)
    labels = datasets.load_dataset("text", data_files=str(label_path), split="train", download_mode="force_redownload", encoding=task.encoding)
    if len(labels) != len(texts):
        raise UserError(f"{label_path} has {len(labels)} lines but {path} has {len(texts)}: each text needs its label on the same line")
    return texts.add_column(task.label_field, labels["text"])


def _read_conll(task: TaskConfig, split: str, path: Path) -> datasets.Dataset:
    """CoNLL columns (CoNLL-2003: `word POS chunk NER`): a word a line, its fields separated by spaces or tabs, a blank
    line after each sentence, `-DOCSTART-` lines (document breaks) skipped. A column per field, a list per sentence,
    named by task.column_names or by their number (CONLL_COLUMNS); `line`: where each sentence starts. datasets has no
    loader for it (the Hub's conll2003 script parsed it the same way)."""
    names = task.column_names.get(split)
    columns: dict[str, list] = {}
    sentence: list[list[str]] = []
    start = 0

    def end_sentence() -> None:
        if sentence:
            for name, values in zip(names, zip(*sentence)):
                columns[name].append(list(values))
            columns["line"].append(start)
            sentence.clear()

    for number, line in enumerate(path.read_text(encoding=task.encoding).splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            end_sentence()
            continue
        if names is None:
            if len(fields) not in CONLL_COLUMNS:
                raise UserError(f"{path}:{number}: {len(fields)} fields a line: name the columns with task.column_names.{split}=[tokens,...,ner_tags]")
            names = CONLL_COLUMNS[len(fields)]
        if not columns:
            columns = {name: [] for name in [*names, "line"]}
        if len(fields) != len(names):
            raise UserError(f"{path}:{number}: {len(fields)} field(s) where the file has {len(names)} ({' '.join(names)}): a malformed line")
        if not sentence:
            start = number
        sentence.append(fields)
    end_sentence()
    if not columns:
        raise UserError(f"{path} holds no sentence: only -DOCSTART- and blank lines")
    return datasets.Dataset.from_dict(columns)


def _rename(ds: datasets.Dataset, task: TaskConfig, where: str) -> datasets.Dataset:
    renames = {old: new for old, new in task.rename.items() if old in ds.column_names and old != new}
    names = [renames.get(c, c) for c in ds.column_names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{where}: task.rename {renames} gives two columns the name(s) {twice}")
    return ds.rename_columns(renames) if renames else ds


# ---------------------------------------------------------------- the Hub


@functools.cache
def _load_hub(path: str, config: str | None, revision: str | None) -> datasets.DatasetDict:
    what = f"dataset {path}" + (f"/{config}" if config else "")
    hint = "use a local copy instead: set the data folder the task reads (data.glue_dir=, data.superglue_dir=, data.tweet_eval_dir=) or task.data_dir="
    if not Path(path).is_dir() and not _hub_dataset_cached(path, config):  # a local copy of a dataset repository needs no Hub
        require_hub(what, hint)
    try:
        return datasets.load_dataset(path, config, revision=revision)
    except Exception as e:  # offline with a partial cache, a gated or missing dataset, an unknown config
        raise UserError(f"could not load {what} ({type(e).__name__}: {(str(e).splitlines() or [''])[0]}): {hint}") from None


def _hub_dataset_cached(path: str, config: str | None) -> bool:
    cache = Path(datasets.config.HF_DATASETS_CACHE) / path.replace("/", "___") / (config or "default")
    return cache.is_dir() and any(cache.iterdir())


def _hub_split(task: TaskConfig, split: str) -> datasets.Dataset:
    hub = task.hub
    if split not in hub.splits:
        raise UserError(f"task {task.name} names no Hub split for its {split} split: set task.hub.splits.{split}=NAME")
    loaded = _load_hub(hub.path, hub.configs.get(split, hub.name), hub.revision)
    if hub.splits[split] not in loaded:
        raise UserError(f"{_hub_name(task, split)} has no split {hub.splits[split]!r}: it has {', '.join(loaded)} (set task.hub.splits.{split})")
    return loaded[hub.splits[split]]


def _hub_name(task: TaskConfig, split: str) -> str:
    config = task.hub.configs.get(split, task.hub.name)
    return task.hub.path + (f"/{config}" if config else "")


def _class_label(feature) -> datasets.ClassLabel | None:
    """The ClassLabel of a label column, or of the elements of a list column (a tag per word), if it has one."""
    feature = getattr(feature, "feature", feature)  # List(ClassLabel) / Sequence(ClassLabel)
    return feature if isinstance(feature, datasets.ClassLabel) else None


def _hub_source(task: TaskConfig, split: str, label_names: list[str], labelled: bool) -> Source:
    ds = _hub_split(task, split)
    where_split = f"{_hub_name(task, split)} {task.hub.splits[split]}"
    feature = _class_label(ds.features.get(task.label_field))
    if labelled and feature is not None:
        if [n.lower() for n in feature.names] != [n.lower() for n in label_names]:
            raise UserError(f"{where_split}: the Hub's labels {feature.names} are not task.label_names {label_names}: list them in the Hub's order")
        task = dataclasses.replace(task, label_encoding="id")  # the Hub's label ids are the reference
    key = _digest(ds._fingerprint, _options(task, split), label_names, labelled)

    def load() -> datasets.Dataset:
        return _examples(ds, task, split, label_names, labelled, where_split, lambda row: f"{where_split}, row {row}")

    return Source(key, load, where_split)


# ---------------------------------------------------------------- one shape for every source


def _examples(raw: datasets.Dataset, task: TaskConfig, split: str, label_names: list[str], labelled: bool, where: str, where_row: Callable[[int], str]) -> datasets.Dataset:
    """The text fields, label or test_index, and idx of a split; every value a model will read is checked."""
    needed = [*task.text_fields, *([task.label_field] if labelled else [task.id_field])]
    missing = [c for c in needed if c not in raw.column_names]
    if missing:
        keys = "task.text_fields, task.label_field" if labelled else "task.id_field"
        raise UserError(f"{where}: no column {', '.join(map(repr, missing))} (it has {', '.join(raw.column_names)}): set {keys}, or map a column with task.rename")
    if len(raw) == 0:
        raise UserError(f"{where}: the {split} split holds no examples")
    out: dict[str, list] = {}
    for name in task.text_fields:
        values = raw[name][:]  # a plain list: iterating a datasets Column reads row by row
        empty = next((i for i, v in enumerate(values) if v is None), None)
        if empty is not None:
            raise UserError(f"{where_row(empty)}: no value for {name!r} (a row with fewer columns than the header?)")
        out[name] = [v if isinstance(v, str | list) else str(v) for v in values]
    if labelled:
        out["label"] = task_type(task).encode_labels(raw[task.label_field][:], task, label_names, where_row)
    else:
        out["test_index"] = [str(v) for v in raw[task.id_field][:]]
    out["idx"] = list(range(len(raw)))
    examples = datasets.Dataset.from_dict(out)
    unlabelled = [i for i, label in enumerate(out.get("label", [])) if label is None]
    if unlabelled and split != task.train_split:
        raise UserError(f"{where_row(unlabelled[0])}: no label ({len(unlabelled)} such rows in {split}): every example of a scored split needs one")
    if unlabelled:
        log.warning(f"{where}: {len(unlabelled)} training rows without a label (empty or -1) are left out")
        unlabelled_rows = set(unlabelled)
        examples = examples.select([i for i in range(len(examples)) if i not in unlabelled_rows])
        if len(examples) == 0:
            raise UserError(f"{where}: no row of the {split} split has a label")
    return examples
