"""Every task's parser on the real GLUE files, tokenization caching, batching."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from src.config import UserError
from src.data import EpochSampler, build_data, load_raw_splits, raw_split_sources, read_glue_tsv, tokenize, tokenizer_fingerprint

# (task, split, rows, label counts by Hub label id) from the official GLUE split sizes and SOURCES.md
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
]


@pytest.mark.parametrize("task,split,rows,label_counts", EXPECTED)
def test_parser_row_counts_and_label_ids(make_cfg, task, split, rows, label_counts):
    cfg = make_cfg(f"task={task}", "model=tiny")
    ds = load_raw_splits(cfg.task, cfg.data.glue_dir)[split]
    assert len(ds) == rows
    assert dict(Counter(ds["label"])) == label_counts
    assert ds["idx"] == list(range(rows))
    assert set(ds.column_names) == {*cfg.task.text_fields, "label", "idx"}


def test_stsb_score_is_the_last_column(make_cfg):
    cfg = make_cfg("task=stsb", "model=tiny")
    splits = load_raw_splits(cfg.task, cfg.data.glue_dir)
    assert (len(splits["train"]), len(splits["dev"])) == (5749, 1500)
    dev = splits["dev"]
    assert dev[0] == {"sentence1": "A man with a hard hat is dancing.", "sentence2": "A man wearing a hard hat is dancing.", "label": 5.0, "idx": 0}
    assert min(dev["label"]) == 0.0 and max(dev["label"]) == 5.0
    assert sum(dev["label"]) == pytest.approx(3545.8613333, abs=1e-4)


def test_qnli_dev_string_labels(make_cfg, glue_dir):
    cfg = make_cfg("task=qnli", "model=tiny")
    cols = read_glue_tsv(glue_dir / "QNLI" / "dev.tsv", cfg.task)
    assert len(cols["label"]) == 5463
    assert Counter(cols["label"]) == {1: 2761, 0: 2702}  # not_entailment = 1, as on the Hub
    assert cols["question"][0] == "What came into force after the new constitution was herald?"


def test_mrpc_bom_header_and_bare_quotes(make_cfg, glue_dir):
    cfg = make_cfg("task=mrpc", "model=tiny")
    cols = read_glue_tsv(glue_dir / "MRPC" / "dev.tsv", cfg.task)  # would fail on the BOM-prefixed "Quality"
    assert cols["sentence1"][0] == "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy ."
    assert cols["sentence2"][0] == '" The foodservice pie business does not fit our long-term growth strategy .'
    assert cols["label"][0] == 1


def test_cola_has_no_header_and_keeps_quotes(make_cfg, glue_dir):
    cfg = make_cfg("task=cola", "model=tiny")
    cols = read_glue_tsv(glue_dir / "CoLA" / "train.tsv", cfg.task)
    assert cols["sentence"][0] == "Our friends won't buy this analysis, let alone the next one we propose."
    assert 'Susan whispered "Shut up".' in cols["sentence"]


def test_malformed_row_names_file_and_line(make_cfg, tmp_path):
    cfg = make_cfg("task=rte", "model=tiny")
    bad = tmp_path / "dev.tsv"
    bad.write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly two\n")
    with pytest.raises(UserError, match=r"dev.tsv:3: malformed row"):
        read_glue_tsv(bad, cfg.task)


def test_label_outside_the_task_labels(make_cfg, tmp_path):
    cfg = make_cfg("task=rte", "model=tiny")
    bad = tmp_path / "dev.tsv"
    bad.write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tcontradiction\n")
    with pytest.raises(UserError, match=r"dev.tsv:2: label 'contradiction' is not one of the rte labels"):
        read_glue_tsv(bad, cfg.task)
    cfg = make_cfg("task=wnli", "model=tiny")
    bad.write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\t2\n")
    with pytest.raises(UserError, match=r"label 2 is outside the wnli labels 0..1"):
        read_glue_tsv(bad, cfg.task)


def test_empty_split_and_missing_file(make_cfg, tmp_path):
    cfg = make_cfg("task=sst2", "model=tiny")
    empty = tmp_path / "dev.tsv"
    empty.write_text("sentence\tlabel\n")
    with pytest.raises(UserError, match="holds no examples"):
        read_glue_tsv(empty, cfg.task)
    with pytest.raises(UserError, match="not found"):
        read_glue_tsv(tmp_path / "nope.tsv", cfg.task)


def test_tokenization_is_cached(make_cfg, tiny_tokenizer, cache_dir):
    cfg = make_cfg("task=rte", "model=tiny")
    source_key, load = raw_split_sources(cfg.task, cfg.data.glue_dir)["dev"]
    key = tokenizer_fingerprint(tiny_tokenizer)
    loads = []

    def counting_load():
        loads.append(1)
        return load()

    first = tokenize(source_key, counting_load, cfg.task, tiny_tokenizer, key, 64, cache_dir, "dev")
    assert tokenizer_fingerprint(tiny_tokenizer) == key  # calling the tokenizer (truncation on) changes no identity
    cache_file = first.cache_files[0]["filename"]
    mtime = os.stat(cache_file).st_mtime_ns
    again = tokenize(source_key, counting_load, cfg.task, tiny_tokenizer, key, 64, cache_dir, "dev")
    assert len(loads) == 1  # the second call neither parsed nor tokenized
    assert again.cache_files[0]["filename"] == cache_file and os.stat(cache_file).st_mtime_ns == mtime
    assert again["input_ids"][:] == first["input_ids"][:] and again["sentence1"][:] == first["sentence1"][:]
    longer = tokenize(source_key, load, cfg.task, tiny_tokenizer, key, 128, cache_dir, "dev")
    assert longer.cache_files[0]["filename"] != cache_file  # another max_length is another cache entry
    assert max(first["length"]) == 64 and max(longer["length"]) > 64


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


def test_missing_glue_task_folder(make_cfg, tmp_path):
    (tmp_path / "CoLA").mkdir()
    cfg = make_cfg("task=rte", "model=tiny")
    with pytest.raises(UserError, match="has no RTE/ folder"):
        load_raw_splits(cfg.task, str(tmp_path))
