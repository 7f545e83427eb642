"""GLUE submission files: parsed from test files in the official layout, written as the GLUE server reads them."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from conftest import CONF_DIR, run_train
from glue_test_files import SUBMISSION_FILES, SUBMISSION_SOURCES, TEST_FILES
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from src.config import UserError
from src.model import build_tiny_model
from src.submission import write_submission
from src.task_types import task_type

GLUE_TASKS = sorted(p.stem for p in (CONF_DIR / "task").glob("[!_]*.yaml") if "defaults: [_glue, _self_]" in p.read_text())  # every GLUE task conf/ offers (not the _glue base, whose comment says the same)
VALUES = {
    "CoLA.tsv": {"0", "1"},
    "SST-2.tsv": {"0", "1"},
    "MRPC.tsv": {"0", "1"},
    "QQP.tsv": {"0", "1"},
    "WNLI.tsv": {"0", "1"},
    "MNLI-m.tsv": {"entailment", "neutral", "contradiction"},
    "MNLI-mm.tsv": {"entailment", "neutral", "contradiction"},
    "AX.tsv": {"entailment", "neutral", "contradiction"},
    "QNLI.tsv": {"entailment", "not_entailment"},
    "RTE.tsv": {"entailment", "not_entailment"},
}


def read_rows(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_all_eleven_files_in_the_official_format(make_cfg, glue_with_test_files, tiny_tokenizer, tmp_path):
    out = tmp_path / "glue_submission"
    written = []
    for task in GLUE_TASKS:
        cfg = make_cfg(f"task={task}", "model=tiny", f"data.glue_dir={glue_with_test_files}")
        torch.manual_seed(0)
        model = build_tiny_model(cfg.model, cfg.task, tiny_tokenizer)
        written += write_submission(cfg, Accelerator(cpu=True), model, tiny_tokenizer, out)
    assert sorted(p.name for p in written) == sorted(SUBMISSION_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(SUBMISSION_FILES)  # one directory, ready to zip
    for name in SUBMISSION_FILES:
        rows = read_rows(out / name)
        assert rows[0] == ["index", "prediction"], name
        test_rows = read_rows(glue_with_test_files / SUBMISSION_SOURCES[name])
        id_column = 0  # index (QQP: id) comes first in every GLUE test file
        assert [r[0] for r in rows[1:]] == [r[id_column] for r in test_rows[1:]], name  # every row, in the file's order
        predictions = [r[1] for r in rows[1:]]
        if name == "STS-B.tsv":
            assert all(re.fullmatch(r"\d\.\d{3}", p) and 0 <= float(p) <= 5 for p in predictions), predictions
        else:
            assert set(predictions) <= VALUES[name], (name, predictions)


def test_predictions_are_the_models_on_the_test_texts(make_cfg, glue_with_test_files, tiny_tokenizer, tmp_path):
    """MRPC's test file (BOM header, bare quotes): the file says what the model predicts on each row."""
    cfg = make_cfg("task=mrpc", "model=tiny", f"data.glue_dir={glue_with_test_files}")
    torch.manual_seed(1)
    model = build_tiny_model(cfg.model, cfg.task, tiny_tokenizer).eval()
    [path] = write_submission(cfg, Accelerator(cpu=True), model, tiny_tokenizer, tmp_path)
    test_rows = read_rows(glue_with_test_files / "MRPC" / "test.tsv")
    assert test_rows[0] == [h.lstrip("\ufeff") for h in TEST_FILES["MRPC"][0][1]]
    first, second = [r[3] for r in test_rows[1:]], [r[4] for r in test_rows[1:]]
    assert first[0] == 'He said " no .'
    with torch.inference_mode():
        logits = model(**tiny_tokenizer(first, second, truncation=True, max_length=128, padding=True, return_tensors="pt")).logits
    assert [r[1] for r in read_rows(path)[1:]] == [str(i) for i in logits.argmax(-1).tolist()]


def test_training_with_predict_writes_its_tasks_file_from_the_best_checkpoint(tiny_run_set, glue_with_test_files):
    for run_dir in sorted(tiny_run_set.glob("*_tiny")):
        task_file = "CoLA.tsv" if "_cola_" in run_dir.name else "RTE.tsv"
        assert sorted(p.name for p in (run_dir / "glue_submission").iterdir()) == [task_file]
    run_dir = tiny_run_set / "3_rte_tiny"
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "checkpoint-best").eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "checkpoint-best")
    test_rows = read_rows(glue_with_test_files / "RTE" / "test.tsv")[1:]
    with torch.inference_mode():
        encoded = tokenizer([r[1] for r in test_rows], [r[2] for r in test_rows], truncation=True, max_length=64, padding=True, return_tensors="pt")
        ids = model(**encoded).logits.argmax(-1).tolist()
    assert read_rows(run_dir / "glue_submission" / "RTE.tsv")[1:] == [[r[0], ["entailment", "not_entailment"][i]] for r, i in zip(test_rows, ids)]


def test_stsb_scores_are_clipped_to_the_glue_range(make_cfg):
    task = make_cfg("task=stsb", "model=tiny").task
    assert task_type(task).submission_values(task, np.array([[-0.4], [2.34567], [7.0]])) == ["0.000", "2.346", "5.000"]


def test_predict_needs_test_files_and_says_so_before_training(tmp_path, make_cfg):
    run_dir = tmp_path / "run"
    out = run_train("task=rte", "model=tiny", "logger=none", "predict=true", f"output_dir={run_dir}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: ") and "RTE/test.tsv not found" in out.stderr
    assert not (run_dir / "checkpoint-best").exists()
    with pytest.raises(UserError, match="predict=true predicts with the best checkpoint: it needs trainer.save_best=true"):
        make_cfg("predict=true", "trainer.save_best=false")


def test_real_test_files_are_read_and_never_written(glue_with_test_files, glue_dir):
    """CoLA, SST-2 and STS-B have their official test files: linked, read as they are, the real copy untouched."""
    for folder, rows in (("CoLA", 1063), ("SST-2", 1821), ("STS-B", 1379)):
        linked = glue_with_test_files / folder / "test.tsv"
        assert linked.is_symlink() and linked.resolve() == (glue_dir / folder / "test.tsv").resolve()
        assert len(read_rows(linked)) == rows + 1  # + the header


def test_superglue_submission_files_are_jsonl_with_idx_and_label_names(make_cfg, tiny_tokenizer, tmp_path):
    """CB's real test file: one {"idx", "label"} line per example, in the file's order, as SuperGLUE's server reads."""
    cfg = make_cfg("task=cb", "model=tiny")
    torch.manual_seed(0)
    model = build_tiny_model(cfg.model, cfg.task, tiny_tokenizer)
    [path] = write_submission(cfg, Accelerator(cpu=True), model, tiny_tokenizer, tmp_path)
    assert path.name == "CB.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    test = [json.loads(line) for line in (Path(cfg.task.data_dir) / "CB" / "test.jsonl").read_text().splitlines()]
    assert [line["idx"] for line in lines] == [row["idx"] for row in test] and len(lines) == 250
    assert {line["label"] for line in lines} <= {"entailment", "contradiction", "neutral"}
