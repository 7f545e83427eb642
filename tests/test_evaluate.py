"""src.evaluate: a run's checkpoint, or any local model with a classification head, evaluated on dev
without training; the files it writes are a training run's, error analysis included."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import load_split, read_metrics, read_table
from matplotlib.image import imread
from scipy.special import softmax
from transformers import AutoModelForSequenceClassification

from src.evaluate import main as evaluate_main
from src.model import build_tiny_model


def save_random_model(make_cfg, tiny_tokenizer, task: str, directory) -> None:
    """A local model that already has a head for the task (random weights)."""
    cfg = make_cfg(f"task={task}", "model=tiny")
    torch.manual_seed(0)
    build_tiny_model(cfg.model, cfg.task, tiny_tokenizer).save_pretrained(directory)
    tiny_tokenizer.save_pretrained(directory)


def test_evaluating_a_run_reproduces_what_training_wrote(tiny_run_set, glue_with_test_files, cache_dir, tmp_path):
    run_dir = tiny_run_set / "3_rte_tiny"
    out = tmp_path / "eval"
    evaluate_main([str(run_dir), "logger=none", f"output_dir={out}", "data.max_eval_samples=100", f"data.cache_dir={cache_dir}", f"data.glue_dir={glue_with_test_files}", "predict=true"])
    trained, evaluated = read_metrics(run_dir), read_metrics(out)
    assert set(evaluated) >= set(trained)  # the same metrics.json, plus the checkpoint it read
    assert evaluated["checkpoint"] == str(run_dir / "checkpoint-best")
    assert (evaluated["task"], evaluated["model"], evaluated["seed"], evaluated["selection_split"]) == ("rte", "tiny", 1, "dev")
    assert evaluated["best"] == pytest.approx(trained["best"])
    assert evaluated["main_metric_value"] == pytest.approx(trained["main_metric_value"])
    for name in ("predictions_dev.tsv", "classification_report_dev.txt", "confusion_matrix_dev.tsv", "errors_dev.tsv", "glue_submission/RTE.tsv"):
        assert (out / name).read_text() == (run_dir / name).read_text(), name
    assert json.loads((out / "status.json").read_text())["status"] == "completed"
    assert "model:\n  name: tiny\n  source: tiny" in (out / "config.yaml").read_text()  # the run's model, not conf/'s default


def test_a_local_model_with_a_head_on_a_task_without_train_file(make_cfg, tiny_tokenizer, glue_dir, cache_dir, tmp_path):
    """QNLI has only dev.tsv here: evaluation must not need train. W&B gets the error analysis."""
    checkpoint, out = tmp_path / "qnli-model", tmp_path / "eval"
    save_random_model(make_cfg, tiny_tokenizer, "qnli", checkpoint)
    evaluate_main([str(checkpoint), "task=qnli", "logger=wandb", f"output_dir={out}", "data.max_eval_samples=64", "analysis.num_errors=5", f"data.cache_dir={cache_dir}", f"data.glue_dir={glue_dir}"])
    metrics = read_metrics(out)
    assert (metrics["model"], metrics["task"], metrics["selection_split"]) == (str(checkpoint), "qnli", None)

    # recompute the model's dev predictions and probabilities by hand
    dev = load_split(make_cfg("task=qnli", "model=tiny"), "dev").select(range(64))
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    with torch.inference_mode():
        encoded = tiny_tokenizer(list(dev["question"]), list(dev["sentence"]), truncation=True, max_length=128, padding=True, return_tensors="pt")
        probabilities = softmax(model(**encoded).logits.double().numpy(), axis=-1)
    labels, preds = np.array(dev["label"]), probabilities.argmax(-1)
    assert metrics["best"]["accuracy"] == pytest.approx((preds == labels).mean())
    assert [int(r["prediction"]) for r in read_table(out / "predictions_dev.tsv", "\t")] == preds.tolist()

    matrix = read_table(out / "confusion_matrix_dev.tsv", "\t")
    assert [r["gold \\ predicted"] for r in matrix] == ["entailment", "not_entailment"]
    for gold, row in enumerate(matrix):
        assert [int(row[name]) for name in ("entailment", "not_entailment")] == [int(((labels == gold) & (preds == p)).sum()) for p in (0, 1)]

    errors = read_table(out / "errors_dev.tsv", "\t")
    names = ["entailment", "not_entailment"]
    wrong = np.flatnonzero(preds != labels)
    assert len(errors) == min(5, len(wrong)) > 0
    listed = [int(r["index"]) for r in errors]
    for r in errors:
        i = int(r["index"])
        assert (r["question"], r["sentence"]) == (dev[i]["question"], dev[i]["sentence"])
        assert (r["gold"], r["predicted"]) == (names[labels[i]], names[preds[i]]) and r["gold"] != r["predicted"]
        assert float(r["probability"]) == pytest.approx(probabilities[i, preds[i]], abs=1e-5)
    confidences = [float(r["probability"]) for r in errors]
    assert confidences == sorted(confidences, reverse=True)
    assert all(probabilities[i, preds[i]] <= confidences[-1] + 1e-5 for i in wrong if i not in listed)  # none more confident left out
    assert imread(out / "confusion_matrix_dev.png").shape[0] > 200

    [table_file] = out.glob("wandb/offline-run-*/files/media/table/analysis/errors_dev_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["index", "question", "sentence", "gold", "predicted", "probability"]
    assert [row[0] for row in table["data"]] == listed
    assert len(list(out.glob("wandb/offline-run-*/files/media/images/analysis/confusion_matrix_dev_*.png"))) == 1


def test_stsb_lists_the_largest_absolute_errors(make_cfg, tiny_tokenizer, glue_dir, cache_dir, tmp_path):
    checkpoint, out = tmp_path / "stsb-model", tmp_path / "eval"
    save_random_model(make_cfg, tiny_tokenizer, "stsb", checkpoint)
    evaluate_main([str(checkpoint), "task=stsb", "logger=none", f"output_dir={out}", "data.max_eval_samples=64", f"data.cache_dir={cache_dir}", f"data.glue_dir={glue_dir}"])
    predictions = read_table(out / "predictions_dev.tsv", "\t")
    abs_errors = sorted((abs(float(r["prediction"]) - float(r["label"])) for r in predictions), reverse=True)
    errors = read_table(out / "errors_dev.tsv", "\t")
    assert list(errors[0]) == ["index", "sentence1", "sentence2", "gold", "predicted", "abs_error"]
    assert len(errors) == 20  # analysis.num_errors
    assert [float(r["abs_error"]) for r in errors] == pytest.approx(abs_errors[:20], abs=1e-3)
    for r in errors:
        assert float(r["abs_error"]) == pytest.approx(abs(float(r["gold"]) - float(r["predicted"])), abs=2e-3)
    assert imread(out / "scatter_dev.png").shape[0] > 200
    assert not (out / "confusion_matrix_dev.tsv").exists()


def test_a_head_naming_the_labels_in_another_order_is_read_in_the_task_order(tiny_run_set, cache_dir, glue_dir, tmp_path):
    """As roberta-large-mnli (CONTRADICTION, NEUTRAL, ENTAILMENT): the same model with its outputs swapped
    and named accordingly must give the same predictions."""
    run_dir = tiny_run_set / "3_rte_tiny"
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "checkpoint-best")
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight.flip(0))
        model.classifier.bias.copy_(model.classifier.bias.flip(0))
    model.config.id2label, model.config.label2id = {0: "NOT_ENTAILMENT", 1: "ENTAILMENT"}, {"NOT_ENTAILMENT": 0, "ENTAILMENT": 1}
    swapped = tmp_path / "swapped"
    model.save_pretrained(swapped)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(run_dir / "checkpoint-best" / name, swapped / name)
    out = tmp_path / "eval"
    evaluate_main([str(swapped), "task=rte", "model.max_length=64", "logger=none", f"output_dir={out}", "data.max_eval_samples=100", f"data.cache_dir={cache_dir}", f"data.glue_dir={glue_dir}"])
    assert (out / "predictions_dev.tsv").read_text() == (run_dir / "predictions_dev.tsv").read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["task=stsb"], "the model's head has 2 output(s) but stsb needs 1: is it a stsb model?"),
        (["task=rtee"], "task: unknown choice 'rtee'; choose one of"),
        (["data.max_eval_samples=0"], "data.max_eval_samples must be >= 1"),
        (["trainer.no_such_key=1"], "trainer.no_such_key: no such key"),
    ],
)
def test_mistakes_are_one_line_errors(tiny_run_set, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main([str(tiny_run_set / "3_rte_tiny"), "logger=none", f"output_dir={tmp_path / 'eval'}", *args])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_a_model_from_elsewhere_needs_the_task(make_cfg, tiny_tokenizer, tmp_path, capsys):
    save_random_model(make_cfg, tiny_tokenizer, "rte", tmp_path / "model")
    with pytest.raises(SystemExit):
        evaluate_main([str(tmp_path / "model"), "logger=none"])
    assert "is not the checkpoint of a basebench run: say which task to evaluate it on, e.g. task=rte" in capsys.readouterr().err


def test_a_task_from_a_users_config_folder_trains_and_evaluates_as_the_run_defined_it(tmp_path, cache_dir, glue_dir):
    """A task file in the user's own folder (hydra.searchpath), trained, then evaluated from the run directory alone:
    src.evaluate rebuilds the task from the run's config, though conf/ has no such task."""
    from conftest import run_train

    folder = tmp_path / "my_tasks" / "task"
    folder.mkdir(parents=True)
    (folder / "wnli_pairs.yaml").write_text(
        f"# WNLI read as a user's own task\nname: wnli_pairs\ndata_dir: {glue_dir}/WNLI\ndata_files: {{train: train.tsv, dev: dev.tsv}}\n"
        "format: tsv\nquoting: none\ntext_fields: [sentence1, sentence2]\nmetrics: [accuracy, f1_macro]\nmain_metric: accuracy\n"
    )
    run_dir = tmp_path / "run"
    out = run_train(f"hydra.searchpath=[file://{tmp_path}/my_tasks]", "task=wnli_pairs", "model=tiny", "logger=none", "trainer.max_steps=6", "trainer.batch_size=16", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    trained = read_metrics(run_dir)
    assert trained["label_names"] == ["0", "1"] and set(trained["best"]) == {"accuracy", "f1_macro"}
    evaluate_main([str(run_dir), "logger=none", f"output_dir={tmp_path}/eval", f"data.cache_dir={cache_dir}"])
    evaluated = read_metrics(tmp_path / "eval")
    assert evaluated["task"] == "wnli_pairs" and evaluated["best"] == pytest.approx(trained["best"])
    assert (tmp_path / "eval" / "predictions_dev.tsv").read_text() == (run_dir / "predictions_dev.tsv").read_text()
