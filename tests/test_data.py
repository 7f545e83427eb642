"""Every task's data on the real files (GLUE, SuperGLUE, TweetEval), any user's files in any supported format,
bad data named to the file and row, tokenization caching, batching."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter

import datasets
import pytest
from conftest import GLUE_DIR, load_split

from src.config import UserError
from src.data import EpochSampler, build_data, tokenize, tokenizer_fingerprint
from src.sources import resolve_label_names, split_sources

# (task, split, rows, label counts by Hub label id) from the official split sizes and SOURCES.md
EXPECTED = [
    ("cola", "train", 8551, {1: 6023, 0: 2528}),
    ("cola", "dev", 1043, {1: 721, 0: 322}),
    ("sst2", "train", 67349, {1: 37569, 0: 29780}),
    ("sst2", "dev", 872, {1: 444, 0: 428}),
    ("mrpc", "train", 3668, {1: 2474, 0: 1194}),
    ("mrpc", "dev", 408, {1: 279, 0: 129}),
    ("rte", "train", 2490, {0: 1249, 1: 1241}),  # 0 = entailment, as on the Hub
    ("rte", "dev", 277, {0: 146, 1: 131}),
    ("wnli", "train", 635, {0: 323, 1: 312}),
    ("wnli", "dev", 71, {0: 40, 1: 31}),
    ("qnli", "dev", 5463, {1: 2761, 0: 2702}),  # not_entailment = 1, as on the Hub
    ("cb", "train", 250, {1: 119, 0: 115, 2: 16}),  # entailment, contradiction, neutral: the Hub's order
    ("cb", "dev", 56, {1: 28, 0: 23, 2: 5}),
    ("boolq", "dev", 3270, {1: 2033, 0: 1237}),  # JSON true -> 1, as the Hub's ClassLabel(False, True)
    ("superglue_rte", "train", 2490, {0: 1249, 1: 1241}),
    ("tweet_emotion", "train", 3257, {0: 1400, 3: 855, 1: 708, 2: 294}),
    ("tweet_emotion", "dev", 374, {0: 160, 1: 97, 3: 89, 2: 28}),
    ("tweet_emotion", "test", 1421, {0: 558, 3: 382, 1: 358, 2: 123}),
    ("tweet_irony", "test", 784, {0: 473, 1: 311}),
]


@pytest.mark.parametrize("task,split,rows,label_counts", EXPECTED)
def test_row_counts_and_label_ids_on_the_real_files(make_cfg, task, split, rows, label_counts):
    cfg = make_cfg(f"task={task}", "model=tiny")
    ds = load_split(cfg, split)
    assert len(ds) == rows
    assert dict(Counter(ds["label"])) == label_counts
    assert ds["idx"] == list(range(rows))
    assert set(ds.column_names) == {*cfg.task.text_fields, "label", "idx"}


def _stdlib_rows(path, header: bool) -> list[list[str]]:
    """An independent reading of a GLUE file: Python's csv module, no quoting, BOM stripped."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [row for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if row]
    return rows[1:] if header else rows


@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "stsb", "rte", "wnli", "qnli"])
def test_glue_files_read_exactly_as_the_csv_module_reads_them(make_cfg, task):
    """Every text of every local GLUE split equals the stdlib reading of the file: bare quotes, the BOM, CoLA's
    missing header, "NA"-like sentences and numeric-looking text all survive datasets' csv loader."""
    cfg = make_cfg(f"task={task}", "model=tiny")
    for split, file in cfg.task.data_files.items():
        path = GLUE_DIR / file
        if not path.is_file():
            continue
        labelled = split in ("train", "dev")
        ds = split_sources(cfg.task, [split], cfg.task.label_names or [], labelled=labelled)[split].load()
        rows = _stdlib_rows(path, header=split not in cfg.task.column_names)
        header = cfg.task.column_names.get(split) or [cfg.task.rename.get(c, c) for c in _stdlib_rows(path, header=False)[0]]
        for field in cfg.task.text_fields:
            assert ds[field] == [r[header.index(field)] for r in rows], (task, split, field)
        if not labelled:
            assert ds["test_index"] == [r[header.index("idx")] for r in rows]


def test_stsb_scores_and_submission_clipping(make_cfg):
    cfg = make_cfg("task=stsb", "model=tiny")
    dev = load_split(cfg, "dev")
    assert dev[0] == {"sentence1": "A man with a hard hat is dancing.", "sentence2": "A man wearing a hard hat is dancing.", "label": 5.0, "idx": 0}
    assert min(dev["label"]) == 0.0 and max(dev["label"]) == 5.0
    assert sum(dev["label"]) == pytest.approx(3545.8613333, abs=1e-4)


def test_mrpc_bom_header_cola_without_header_and_bare_quotes(make_cfg):
    mrpc = load_split(make_cfg("task=mrpc", "model=tiny"), "dev")
    assert mrpc["sentence1"][0] == "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy ."
    assert mrpc["sentence2"][0] == '" The foodservice pie business does not fit our long-term growth strategy .'
    assert mrpc["label"][0] == 1
    cola = load_split(make_cfg("task=cola", "model=tiny"), "train")
    assert cola["sentence"][0] == "Our friends won't buy this analysis, let alone the next one we propose."
    assert 'Susan whispered "Shut up".' in cola["sentence"]


def test_tweet_eval_text_and_label_files_keep_each_tweet_as_written(make_cfg):
    dev = load_split(make_cfg("task=tweet_irony", "model=tiny"), "dev")
    lines = (GLUE_DIR.parent / "tweet_eval" / "irony" / "val_text.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert dev["text"] == lines  # trailing spaces, emoji and all


# ---------------------------------------------------------------- your own files


def _sst2_rows(n: int = 300) -> list[dict]:
    with open(GLUE_DIR / "SST-2" / "dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    return [{"review": r["sentence"], "sentiment": ["neg", "pos"][int(r["label"])]} for r in rows]


def write_sst2_as(path, fmt: str, rows: list[dict]) -> None:
    """SST-2 rows with other column names and string labels, in a format SST-2 never came in."""
    if fmt in ("csv", "tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, ["review", "sentiment"], delimiter="," if fmt == "csv" else "\t")
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        datasets.Dataset.from_list(rows).to_parquet(str(path))


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_a_users_own_files_in_every_format(make_cfg, tmp_path, fmt):
    """task=custom on SST-2 rewritten: the same texts, and label ids from the inferred sorted names."""
    rows = _sst2_rows()
    for split in ("train", "dev"):
        write_sst2_as(tmp_path / f"{split}.{fmt}", fmt, rows)
    cfg = make_cfg("task=custom", f"task.data_files.train={tmp_path}/train.{fmt}", f"task.data_files.dev={tmp_path}/dev.{fmt}", "task.text_fields=[review]", "task.label_field=sentiment", "model=tiny")
    assert resolve_label_names(cfg.task, cfg.data.cache_dir) == ["neg", "pos"]
    dev = load_split(cfg, "dev")
    assert dev["review"] == [r["review"] for r in rows]
    assert dev["label"] == [["neg", "pos"].index(r["sentiment"]) for r in rows]


def test_label_names_are_inferred_sorted_numerically_and_unlabelled_rows_left_out(make_cfg, tmp_path):
    (tmp_path / "train.csv").write_text("text,stars\na,10\nb,2\nc,9\nd,\ne,-1\nf,2\n")
    (tmp_path / "dev.csv").write_text("text,stars\nx,9\n")
    cfg = make_cfg("task=custom", f"task.data_files.train={tmp_path}/train.csv", f"task.data_files.dev={tmp_path}/dev.csv", "task.text_fields=[text]", "task.label_field=stars")
    assert resolve_label_names(cfg.task, cfg.data.cache_dir) == ["2", "9", "10"]  # as run_glue.py: sorted, -1 and empty are no label
    train = load_split(cfg, "train")
    assert train["text"] == ["a", "b", "c", "f"] and train["label"] == [2, 0, 1, 0]


def test_local_dataset_folder_as_a_hub_source(make_cfg, tmp_path):
    """task.hub.path may be a local copy of a Hub dataset repository: the Hub code path, offline."""
    rows = _sst2_rows(50)
    (tmp_path / "repo").mkdir()
    for split in ("train", "validation"):
        datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "repo" / f"{split}.parquet"))
    overrides = ["task=custom", f"task.hub.path={tmp_path}/repo", "task.text_fields=[review]", "task.label_field=sentiment"]  # splits: train, validation (dev)
    cfg = make_cfg(*overrides)
    assert load_split(cfg, "dev")["review"] == [r["review"] for r in rows]
    with pytest.raises(UserError, match=r"repo has no split 'test': it has train, validation \(set task.hub.splits.dev\)"):
        load_split(make_cfg(*overrides, "task.hub.splits.dev=test"), "dev")


# ---------------------------------------------------------------- bad data: one line naming the file, the row and the fix


def _custom(make_cfg, tmp_path, train: str, dev: str = "text,label\nx,a\n", name: str = "f.csv", *extra: str):
    (tmp_path / f"train_{name}").write_bytes(train.encode("utf-8") if isinstance(train, str) else train)
    (tmp_path / f"dev_{name}").write_bytes(dev.encode("utf-8") if isinstance(dev, str) else dev)
    return make_cfg("task=custom", f"task.data_files.train={tmp_path}/train_{name}", f"task.data_files.dev={tmp_path}/dev_{name}", "task.text_fields=[text]", *extra)


@pytest.mark.parametrize(
    "train,dev,extra,message",
    [
        ("text,label\na,x\nb,y\n", "text,label\nc,x\nd,z\n", [], r"dev_f.csv:3: label 'z' is not one of the custom labels \['x', 'y'\] \(the labels of train"),
        ("text,lbl\na,x\nb,y\n", None, [], r"train_f.csv: no label column 'label' \(it has text, lbl\): set task.label_field"),
        ("txt,label\na,x\nb,y\n", None, [], r"dev_f.csv: no column 'text' \(it has text, label\)|train_f.csv: no column 'text' \(it has txt, label\)"),
        ("text,label\na,x\nb,y\n", "text,label\n", [], r"dev_f.csv: the file holds a header and no examples"),
        (b"text,label\na,x\n\xe9t\xe9,y\n", None, [], r"train_f.csv:3: not valid utf-8 \(byte 0xe9\): set task.encoding to the file's encoding, e.g. task.encoding=latin-1"),
        ("text,label\na,1.5\nb,nan\n", "text,label\nc,2\n", ["task.type=regression", "task.metrics=[pearson]", "task.main_metric=pearson"], r"train_f.csv:3: the custom score 'nan' is not a finite number"),
        ("text,label\na,1.5\nb,7\n", "text,label\nc,2\n", ["task.type=regression", "task.metrics=[pearson]", "task.main_metric=pearson", "task.label_range=[0,5]"], r"train_f.csv:3: the custom score 7 is outside task.label_range \[0.0, 5.0\]"),
        ("text,label\na,x\nb,y\n", "text,label\nc,\n", [], r"dev_f.csv:2: no label \(1 such rows in dev\)"),
        ("text,label\na,0\nb,1\n", "text,label\nc,2\n", ["task.label_names=[no,yes]", "task.label_encoding=id"], r"dev_f.csv:2: label '2' is not a label id of custom \(0..1: no, yes\)"),
    ],
)
def test_bad_data_is_one_line_naming_file_and_row(make_cfg, tmp_path, train, dev, extra, message):
    cfg = _custom(make_cfg, tmp_path, train, dev if dev is not None else "text,label\nx,x\n", "f.csv", *extra)
    with pytest.raises(UserError, match=message) as caught:
        names = resolve_label_names(cfg.task, cfg.data.cache_dir)
        for split in ("train", "dev"):
            split_sources(cfg.task, [split], names)[split].load()
    assert "\n" not in str(caught.value)


def test_missing_files_and_folders_say_what_to_set(make_cfg, tmp_path):
    cfg = make_cfg("task=rte", "model=tiny", f"data.glue_dir={tmp_path}")
    with pytest.raises(UserError, match=r"RTE/train.tsv not found: task rte reads its train split there \(task.data_files.train under task.data_dir="):
        load_split(cfg, "train")
    cfg = make_cfg("task=boolq", "model=tiny")
    with pytest.raises(UserError, match=r"task boolq has no local train file \(task.data_files has dev, test\): read it from the Hub"):
        load_split(cfg, "train")
    (tmp_path / "data.xlsx").write_text("x")
    cfg = make_cfg("task=custom", f"task.data_files.train={tmp_path}/data.xlsx", "task.text_fields=[text]")
    with pytest.raises(UserError, match=r"cannot tell the format from the extension '.xlsx': set task.format"):
        load_split(cfg, "train")


def test_malformed_tsv_row_is_named(make_cfg, tmp_path):
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly two\n")
    with pytest.raises(UserError, match=r"dev.tsv:3: 2 field\(s\) where the header has 4 \(index, sentence1, sentence2, label\): a malformed row"):
        load_split(make_cfg("task=rte", "model=tiny", f"data.glue_dir={tmp_path}"), "dev")


# ---------------------------------------------------------------- tokenizing and batching


def test_tokenization_is_cached(make_cfg, tiny_tokenizer, cache_dir):
    cfg = make_cfg("task=rte", "model=tiny")
    source = split_sources(cfg.task, ["dev"], cfg.task.label_names)["dev"]
    key = tokenizer_fingerprint(tiny_tokenizer)
    loads = []

    def counting_load():
        loads.append(1)
        return load()

    load, source.load = source.load, counting_load
    first = tokenize(source, cfg.task, tiny_tokenizer, key, 64, cache_dir, "dev")
    assert tokenizer_fingerprint(tiny_tokenizer) == key  # calling the tokenizer (truncation on) changes no identity
    cache_file = first.cache_files[0]["filename"]
    mtime = os.stat(cache_file).st_mtime_ns
    again = tokenize(source, cfg.task, tiny_tokenizer, key, 64, cache_dir, "dev")
    assert len(loads) == 1  # the second call neither parsed nor tokenized
    assert again.cache_files[0]["filename"] == cache_file and os.stat(cache_file).st_mtime_ns == mtime
    assert again["input_ids"][:] == first["input_ids"][:] and again["sentence1"][:] == first["sentence1"][:]
    longer = tokenize(source, cfg.task, tiny_tokenizer, key, 128, cache_dir, "dev")
    assert longer.cache_files[0]["filename"] != cache_file  # another max_length is another cache entry
    assert max(first["length"]) == 64 and max(longer["length"]) > 64
    renamed = split_sources(make_cfg("task=rte", "model=tiny", "task.label_encoding=auto").task, ["dev"], cfg.task.label_names)["dev"]
    assert renamed.key != source.key  # an option that shapes the examples is part of the key


def test_batches_are_padded_per_batch_not_to_max_length(make_cfg, tiny_tokenizer):
    cfg = make_cfg("task=cola", "model=tiny", "trainer.batch_size=16", "data.max_train_samples=512")
    data = build_data(cfg, tiny_tokenizer)
    widths = [batch["input_ids"].shape[1] for batch in data.train]
    assert data.train_size == 512
    assert max(widths) < cfg.model.max_length and len(set(widths)) > 1
    for batch in data.train:
        assert batch["attention_mask"].sum(1).max() == batch["input_ids"].shape[1]  # no all-padding column
        break


def test_epoch_sampler_is_seeded_per_epoch_and_groups_lengths():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(5, 120) for _ in range(2000)]
    sampler = EpochSampler(lengths, batch_size=32, seed=7, group_by_length=True)
    epoch0 = list(sampler)
    assert sorted(epoch0) == list(range(2000))
    assert list(sampler) == epoch0  # the same (seed, epoch) replays the same order
    sampler.set_epoch(1)
    assert list(sampler) != epoch0

    def padded_tokens(order):
        return sum(32 * max(lengths[i] for i in order[k : k + 32]) for k in range(0, len(order), 32))

    plain = list(EpochSampler(lengths, 32, 7, group_by_length=False))
    assert padded_tokens(epoch0) < 0.7 * padded_tokens(plain)
