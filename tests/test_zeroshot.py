"""Zero- and few-shot scoring: prompts from the task configs (src.prompts), log-likelihoods (src.scoring) equal to
lm-evaluation-harness's per example, and `python -m src.zeroshot` as a run like any other (one real multirun, read
back: metrics, predictions with each answer's log-likelihood, error analysis, W&B, the leaderboard).

Equality with lm-eval is checked against its own values (tests/data/lmeval_reference.json, written by
`make compare-lmeval`, which runs lm-eval 0.4.13 in its own venv): the random decoders it scored are rebuilt here from
their seed, bit for bit (their weights' digest is checked first), and basebench must give the same contexts (sha256
of each prompt with its few-shot examples), log-likelihoods within 1e-4 and predictions.

Tiny models run on one thread: on a shared 2-core machine a second one only slows them down."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GLUE_DIR, ROOT, SUPERGLUE_DIR, load_split, random_decoder, read_metrics, read_table, run_train
from sklearn.metrics import matthews_corrcoef
from wandb_files import offline_runs

from benchmarks.lmeval import MODEL_FAMILIES, build_model, weights_digest
from src.config import UserError
from src.data import prompted_data, tokenizer_fingerprint
from src.model import build_tiny_tokenizer, load_language_model, load_tokenizer
from src.prompts import Request, fewshot_draws, render, requests
from src.scoring import context_window, encode_requests, loglikelihoods, predictions
from src.sources import has_split
from src.zeroshot import load_scorer, score

REFERENCE = json.loads((Path(__file__).parent / "data" / "lmeval_reference.json").read_text())
TOLERANCE = 1e-4  # the issue's: lm-eval's log-likelihoods within 1e-4
CASES = [pytest.param(case, id=f"{case['model']}-{case['task']}-{case['num_fewshot']}shot") for case in REFERENCE["cases"]]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: a second thread only slows them on a shared machine


@pytest.fixture(scope="module")
def reference_models(tmp_path_factory) -> dict[str, Path]:
    """The models lm-eval scored, rebuilt from their seed and saved as both sides of the comparison loaded them."""
    root = tmp_path_factory.mktemp("reference_models")
    folders = {}
    for name, expected in REFERENCE["models"].items():
        model, tokenizer = build_model(name)
        assert weights_digest(model) == expected["weights_sha256"], f"{name} is not the model lm-eval scored: this torch/transformers initialises it differently; rerun make compare-lmeval ARGS=--reference"
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        folders[name] = root / name
    return folders


def contexts(cfg, limit: int) -> list[str]:
    """The context of each of the first `limit` dev examples, few-shot examples drawn from train (else dev)."""
    fields = [*cfg.task.text_fields, "label"]
    dev = load_split(cfg, "dev").select_columns(fields)
    pool = load_split(cfg, cfg.task.train_split if has_split(cfg.task, cfg.task.train_split) else "dev").select_columns(fields) if cfg.num_fewshot else []
    return [r.context for r in requests(cfg.task.prompt, list(dev.select(range(limit))), list(pool), cfg.num_fewshot, cfg.seed)]


@pytest.mark.parametrize("case", CASES)
def test_loglikelihoods_equal_lm_evaluation_harness(make_cfg, reference_models, case):
    limit = len(case["loglikelihoods"])
    model = case["model"]
    cfg = make_cfg(f"task={case['task']}", f"model={MODEL_FAMILIES[model]}", f"model.name_or_path={reference_models[model]}", f"num_fewshot={case['num_fewshot']}", f"seed={REFERENCE['fewshot_seed']}", f"data.max_eval_samples={limit}")
    assert [hashlib.sha256(c.encode()).hexdigest() for c in contexts(cfg, limit)] == case["contexts_sha256"]  # prompts and few-shot examples
    assert [cfg.task.prompt.target_delimiter + c for c in cfg.task.prompt.choices] == case["continuations"]
    tokenizer = load_tokenizer(cfg.model)
    lm = load_language_model(cfg.model, tokenizer)
    window = context_window(lm.config, tokenizer)
    data = prompted_data(cfg, tokenizer, tokenizer_fingerprint(tokenizer), window)["dev"][""]
    ours = loglikelihoods(lm, data["context_ids"][:], data["continuation_ids"][:], 4, window)
    theirs = np.array(case["loglikelihoods"])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)
    for mine, lm_eval in zip(predictions(ours, cfg.task.prompt.choices), predictions(theirs, cfg.task.prompt.choices)):  # acc, acc_norm
        assert (mine == lm_eval).all()


def test_the_reference_covers_every_model_kind_and_task():
    """Byte-level GPT-2 and Llama (answers of several tokens: the cache path; contexts over the window: left truncation)
    and a GPT-2 whose answers are one token each (no cache), on four tasks (a GLUE pair and single sentence, BoolQ whose
    few-shot examples come from dev, CB's three answers), zero- and few-shot."""
    kinds = {(c["model"], c["task"], c["num_fewshot"] > 0) for c in REFERENCE["cases"]}
    assert kinds == {(m, t, f) for m in ("tiny-gpt2", "tiny-llama", "tiny-gpt2-bpe") for t in ("rte", "cola", "boolq", "cb") for f in (False, True)}


# ---------------------------------------------------------------- the scoring engine on every decoder family


def random_lm(family: str) -> tuple[torch.nn.Module, object]:
    """A random 2-layer decoder of the family with a 48-token window, so that contexts overflow it."""
    model, tokenizer = random_decoder(family, window=48)
    return model.eval(), tokenizer


def one_forward_per_answer(model, context: list[int], answers: list[list[int]], window: int) -> list[float]:
    """lm-eval's computation (lm_eval/models/huggingface.py _loglikelihood_tokens): context + answer, cut to the last
    window + 1 tokens, the last not fed; the answer's log-probabilities summed."""
    out = []
    for answer in answers:
        fed = torch.tensor((context + answer)[-(window + 1) :][:-1])[None]
        logprobs = torch.log_softmax(model(fed).logits[0].float(), dim=-1)[-len(answer) :]
        out.append(logprobs.gather(-1, torch.tensor(answer)[:, None]).sum().item())
    return out


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "gpt_neox"])
def test_answers_scored_from_the_context_cache_equal_one_forward_per_answer_at_every_batch_size(family):
    model, tokenizer = random_lm(family)
    window = context_window(model.config, tokenizer)
    assert window == 48
    rnd = random.Random(0)
    words = "the cat sat on a mat and it was not there True False".split()
    texts = [" ".join(rnd.choice(words) for _ in range(rnd.randint(1, 12))) + "\nAnswer:" for _ in range(12)]
    reqs = [Request(text, [" True", " False", " Neither"]) for text in texts] + [Request("Answer: ", ["yes", "no"])]  # a trailing space moves to the answers
    context_ids, continuation_ids = encode_requests(tokenizer, reqs)
    assert any(len(c) + len(a[0]) > window + 1 for c, a in zip(context_ids, continuation_ids))  # some are cut from the left
    expected = [one_forward_per_answer(model, c, a, window) for c, a in zip(context_ids, continuation_ids)]
    for batch_size in (1, 5, 64):
        scores = loglikelihoods(model, context_ids, continuation_ids, batch_size, window)
        assert scores.shape == (13, 3) and scores[-1, 2] == 0  # the last example has two answers
        np.testing.assert_allclose(scores[:-1], np.array(expected[:-1]), rtol=0, atol=1e-5)
        np.testing.assert_allclose(scores[-1, :2], expected[-1], rtol=0, atol=1e-5)


def test_the_context_and_answer_split_as_lm_eval_splits_them():
    """The context's trailing whitespace moves to the answer; the answer is the tail of context + answer encoded whole;
    Llama's tokenizer starts the context with BOS, GPT-2's adds nothing; an empty context is the BOS (else EOS) token."""
    gpt2, llama = build_tiny_tokenizer("gpt2"), build_tiny_tokenizer("llama")
    [ctx], [[yes]] = encode_requests(gpt2, [Request("Is it? Answer: ", ["yes"])])
    assert gpt2.decode(ctx) == "Is it? Answer:" and gpt2.decode(yes) == " yes"
    [ctx], [[yes]] = encode_requests(llama, [Request("Answer:", [" yes"])])
    assert ctx[0] == llama.bos_token_id and llama.decode(ctx[1:]) == "Answer:" and llama.decode(yes) == " yes"
    [ctx], [[yes]] = encode_requests(gpt2, [Request("", ["yes"])])
    assert ctx == [gpt2.eos_token_id] and gpt2.decode(yes) == "yes"


# ---------------------------------------------------------------- prompts


def test_the_shipped_prompts_are_lm_evaluation_harness_s(make_cfg):
    rte, cola = make_cfg("task=rte").task.prompt, make_cfg("task=cola").task.prompt
    assert rte.template == "{{sentence1}}\nQuestion: {{sentence2}} True or False?\nAnswer:" and rte.choices == ["True", "False"]
    assert cola.template == "{{sentence}}\nQuestion: Does this sentence make sense?\nAnswer:" and cola.choices == ["no", "yes"]
    assert (rte.target_delimiter, rte.fewshot_delimiter) == (" ", "\n\n")
    mnli = make_cfg("task=mnli").task.prompt  # lm-eval's is a Python function (lm_eval/tasks/glue/mnli/utils.py): the same text
    for hypothesis in ("It rains.", "It rains", " It rains  "):
        stripped = hypothesis.strip()
        expected = "The sky is grey.\nQuestion: {} True, False or Neither?\nAnswer:".format(stripped + ("" if stripped.endswith(".") else "."))
        assert render(mnli, {"premise": "The sky is grey.", "hypothesis": hypothesis}) == expected
    for task in ("sst2", "mrpc", "qqp", "qnli", "wnli", "boolq", "cb", "superglue_rte", "tweet_emotion", "tweet_irony"):  # every classification task has one
        cfg = make_cfg(f"task={task}")
        assert len(cfg.task.prompt.choices) == len(cfg.task.label_names)


def test_fewshot_examples_never_include_the_scored_one_and_follow_the_seed():
    pool = [{"text": f"t{i % 7}", "label": i % 2} for i in range(14)]  # every example twice
    examples = pool[:5]
    draws = fewshot_draws(pool, examples, 3, seed=1234)
    assert all(len(d) == 3 and all(pool[i] != example for i in d) for d, example in zip(draws, examples))
    assert fewshot_draws(pool, examples[:2], 3, seed=1234) == draws[:2]  # one Random for the split, advanced per example in order
    assert fewshot_draws(pool, examples, 3, seed=1) != draws
    with pytest.raises(UserError, match="num_fewshot=14: the few-shot pool holds only 14 examples"):
        fewshot_draws(pool, examples, 14, seed=1234)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["task.prompt.template='{{premise}} ok?'"], "task.prompt.template reads premise, which task rte does not have: its fields are sentence1, sentence2"),
        (["task.prompt.template='{{sentence1'"], "task.prompt.template is not a valid Jinja template"),
        (["task.prompt.choices=[yes,no,maybe]"], r"task.prompt.choices has 3 answers for the 2 classes of rte \(entailment, not_entailment\)"),
        (["task.prompt.choices=[yes,yes]"], "task.prompt.choices must be a list without repeats"),
        (["task.prompt.target_delimiter=Answer:"], "task.prompt.target_delimiter must be whitespace or empty"),
        (["task.prompt.choices=null"], "task.prompt.choices is not set"),
        (["task=stsb", "task.prompt.template='{{sentence1}}'", "task.prompt.choices=[a,b]"], "task.prompt: a regression task has no answer choices"),
        (["num_fewshot=-1"], "num_fewshot must be >= 0"),
    ],
)
def test_a_bad_prompt_is_one_line_at_start_up(make_cfg, overrides, message):
    with pytest.raises(UserError, match=message):
        make_cfg("task=rte", *overrides)


def test_an_encoder_is_refused_in_one_line(make_cfg):
    cfg = make_cfg("task=rte", "model=tiny")
    with pytest.raises(UserError, match=r"model tiny is an encoder \(bert\): zero- and few-shot scoring needs a decoder"):
        load_language_model(cfg.model, load_tokenizer(cfg.model))


# ---------------------------------------------------------------- python -m src.zeroshot: a run like any other


def run_zeroshot(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """python -m src.zeroshot as a user runs it, from cwd (Hydra's own outputs/ lands there, not in the checkout)."""
    env = {**os.environ, "GLUE_DIR": str(GLUE_DIR), "SUPERGLUE_DIR": str(SUPERGLUE_DIR), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "src.zeroshot", *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def logliks(rows: list[dict]) -> np.ndarray:
    return np.array([[float(v) for k, v in row.items() if k.startswith("loglik_")] for row in rows])


@pytest.fixture(scope="module")
def zeroshot_sweep(tmp_path_factory, cache_dir) -> Path:
    """One real multirun: a random Llama (byte-level: answers of several tokens) on CoLA and RTE, 0- and 2-shot, the
    first 12 dev examples, batch size 64, logged to W&B offline."""
    sweep = tmp_path_factory.mktemp("zeroshot") / "sweep"
    out = run_zeroshot(
        "-m", "task=cola,rte", "model=tiny-llama", "num_fewshot=0,2", "data.max_eval_samples=12", "trainer.eval_batch_size=64", "logger=wandb",
        "hardware.num_threads=1", "trainer.progress_bar=false", f"data.cache_dir={cache_dir}", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${task.name}-${num_fewshot}shot", cwd=sweep.parent,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return sweep


def test_a_zeroshot_run_writes_what_every_run_writes(zeroshot_sweep, make_cfg):
    run_dir = zeroshot_sweep / "cola-2shot"
    metrics = read_metrics(run_dir)
    assert (metrics["protocol"], metrics["num_fewshot"], metrics["task"], metrics["model"], metrics["finetune"]) == ("zeroshot", 2, "cola", "tiny-llama", "none")
    assert set(metrics["best"]) == {"matthews_correlation"} and set(metrics["zeroshot"]["dev"]) == {"acc", "acc_norm"}
    assert metrics["prompt"]["choices"] == ["no", "yes"] and metrics["examples_scored"] == 12
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"
    # each answer's log-likelihood, as the library scores the same model (same seed), prompts and few-shot examples
    rows = read_table(run_dir / "predictions_dev.tsv", "\t")
    assert list(rows[0]) == ["index", "label", "prediction", "prediction_norm", "loglik_unacceptable", "loglik_acceptable"]
    cfg = make_cfg("task=cola", "model=tiny-llama", "num_fewshot=2", "data.max_eval_samples=12")
    torch.manual_seed(cfg.seed)
    np.testing.assert_allclose(logliks(rows), score(cfg, load_scorer(cfg))["dev"][""].loglikelihoods, rtol=0, atol=1e-5)
    acc, acc_norm = predictions(logliks(rows), cfg.task.prompt.choices)
    assert [int(r["prediction"]) for r in rows] == list(acc) and [int(r["prediction_norm"]) for r in rows] == list(acc_norm)
    gold = np.array([int(r["label"]) for r in rows])
    assert metrics["zeroshot"]["dev"] == pytest.approx({"acc": (acc == gold).mean(), "acc_norm": (acc_norm == gold).mean()})
    assert metrics["best"]["matthews_correlation"] == pytest.approx(matthews_corrcoef(gold, acc))
    # the error analysis: the wrong predictions, surest first (the softmax of the answers' log-likelihoods)
    assert (run_dir / "confusion_matrix_dev.tsv").is_file() and (run_dir / "confusion_matrix_dev.png").is_file()
    errors = read_table(run_dir / "errors_dev.tsv", "\t")
    assert sorted(int(e["index"]) for e in errors) == sorted(np.flatnonzero(acc != gold).tolist())
    probabilities = [float(e["probability"]) for e in errors]
    assert probabilities == sorted(probabilities, reverse=True)
    # the W&B run, read back from its offline files
    [wandb_run] = offline_runs(run_dir)
    assert (wandb_run.name, wandb_run.job_type, wandb_run.exit_code) == ("cola-tiny-llama-2shot-s42", "zeroshot", 0)
    assert {"zeroshot", "2-shot"} <= set(wandb_run.tags) and wandb_run.group == str(zeroshot_sweep)
    assert wandb_run.summary["best/acc"] == pytest.approx(metrics["zeroshot"]["dev"]["acc"]) and wandb_run.summary["num_fewshot"] == 2


def test_scores_do_not_depend_on_the_batch_size(zeroshot_sweep, cache_dir, tmp_path):
    """RTE 2-shot contexts overflow the tiny Llama's window: cut per answer, batched with other examples' contexts."""
    out = run_zeroshot("task=rte", "model=tiny-llama", "num_fewshot=2", "data.max_eval_samples=12", "trainer.eval_batch_size=1", "logger=none",
                       "hardware.num_threads=1", "trainer.progress_bar=false", f"data.cache_dir={cache_dir}", f"output_dir={tmp_path / 'bs1'}", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    one, many = (read_table(d / "predictions_dev.tsv", "\t") for d in (tmp_path / "bs1", zeroshot_sweep / "rte-2shot"))
    assert [(r["prediction"], r["prediction_norm"]) for r in one] == [(r["prediction"], r["prediction_norm"]) for r in many]
    np.testing.assert_allclose(logliks(one), logliks(many), rtol=0, atol=1e-5)
    assert read_metrics(tmp_path / "bs1")["best"] == read_metrics(zeroshot_sweep / "rte-2shot")["best"]


def test_the_leaderboard_shows_zero_shot_few_shot_and_fine_tuned_as_separate_rows(zeroshot_sweep, cache_dir, tmp_path):
    runs = tmp_path / "runs"
    trained = run_train("task=rte", "model=tiny-llama", "trainer.max_steps=2", "data.max_train_samples=16", "data.max_eval_samples=12", "optimizer.lr=1e-3", "logger=none",
                        "trainer.progress_bar=false", "hardware.num_threads=1", f"data.cache_dir={cache_dir}", f"output_dir={runs / 'finetuned'}",
                        cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    shutil.copytree(zeroshot_sweep, runs / "zeroshot", ignore=shutil.ignore_patterns("wandb"))
    out = subprocess.run([sys.executable, "-m", "src.report", str(runs), "--out", str(tmp_path / "report")], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {(r["model"], r["finetune"], r["protocol"], r["num_fewshot"]): r for r in read_table(tmp_path / "report" / "leaderboard.csv")}
    assert sorted(rows) == [("tiny-llama", "full", "finetune", ""), ("tiny-llama", "none", "zeroshot", "0"), ("tiny-llama", "none", "zeroshot", "2")]
    for shots in (0, 2):  # each protocol's own runs, never averaged with the others
        row = rows[("tiny-llama", "none", "zeroshot", str(shots))]
        assert float(row["rte_mean"]) == pytest.approx(read_metrics(zeroshot_sweep / f"rte-{shots}shot")["best"]["accuracy"]) and row["rte_n"] == "1"
    assert float(rows[("tiny-llama", "full", "finetune", "")]["rte_mean"]) == pytest.approx(read_metrics(runs / "finetuned")["best"]["accuracy"])
    leaderboard = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "zeroshot (0-shot)" in leaderboard and "zeroshot (2-shot)" in leaderboard
