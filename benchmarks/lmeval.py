"""`make compare-lmeval`: basebench's zero- and few-shot scores against lm-evaluation-harness's, example by example.

For each model, task and number of few-shot examples:
- the models are random decoders built here from a seed and saved to a folder that both sides load (fp32):
  tiny-gpt2 and tiny-llama (src.model's tiny builders: byte-level tokenizers, so every answer is several tokens and
  contexts overflow the 512-token window: the cache path and left truncation) and tiny-gpt2-bpe (GPT-2 with a
  tokenizer that merges the prompts' words: answers of one token, lm-eval's logits-cache path and ours without cache);
- the task's examples, read by basebench (src.sources), are written as jsonl: all of dev (scored: its first --limit)
  and all of train (the few-shot pool; a task without train draws from dev, as lm-eval does);
- lm-eval (0.4.13, in its own venv: --lmeval-python) runs its own task definition (lm_eval/tasks/glue/rte/default.yaml,
  ...), included into a YAML that only points it at the jsonl files, with --log_samples for each request's context,
  continuation and log-likelihood;
- basebench runs `python -m src.zeroshot` on the same model folder with the task's own config (conf/task: its prompt),
  and its predictions_dev.tsv gives each answer's log-likelihood;
- compared per example: the context strings (prompt and few-shot examples) must be equal, each answer's log-likelihood
  within 1e-4, the predictions (acc: highest log-likelihood; acc_norm: per character of the answer) identical.

The table goes to BENCHMARKS.md (between the lmeval markers); --reference writes the lm-eval values that
tests/test_zeroshot.py checks basebench against without lm-eval installed (the tests rebuild the same models from
the seed here and check their weights' digest first).

    python -m benchmarks.lmeval --lmeval-python .venv-lmeval/bin/python [--tasks rte,cola] [--limit 32] [--fewshot 0,3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import GLUE_DIR, ROOT, machine

os.environ.setdefault("SUPERGLUE_DIR", str(Path(GLUE_DIR).parent / "superglue"))  # BoolQ, CB, SuperGLUE RTE beside GLUE

SEED = 0  # the models' weights
# a random model at its initial scale gives every example the same answer, which would make "predictions identical"
# no test: its matrices are scaled by SHARPEN, so that its answers vary with the example
SHARPEN = 20.0
FEWSHOT_SEED = 1234  # lm-eval's default fewshot seed: basebench runs with seed=1234
TOLERANCE = 1e-4
MODELS = ("tiny-gpt2", "tiny-llama", "tiny-gpt2-bpe")
MODEL_FAMILIES = {"tiny-gpt2": "gpt2", "tiny-llama": "llama-3.2-1b", "tiny-gpt2-bpe": "gpt2"}  # the conf/model config that loads each folder
# basebench task -> lm-eval's definition of it (lm_eval/tasks/...)
LMEVAL_TASKS = {
    "cola": "glue/cola/default.yaml",
    "sst2": "glue/sst2/default.yaml",
    "mrpc": "glue/mrpc/default.yaml",
    "qqp": "glue/qqp/default.yaml",
    "mnli": "glue/mnli/default.yaml",
    "qnli": "glue/qnli/default.yaml",
    "rte": "glue/rte/default.yaml",
    "wnli": "glue/wnli/default.yaml",
    "boolq": "super_glue/boolq/default.yaml",
    "cb": "super_glue/cb/default.yaml",
    "superglue_rte": "super_glue/rte/default.yaml",
}
DEFAULT_TASKS = ("rte", "cola", "sst2", "mrpc", "wnli", "boolq", "cb", "superglue_rte")  # the shared data holds no MNLI, QQP, QNLI train
REFERENCE_TASKS = ("rte", "cola", "boolq", "cb")  # what the tests check, on REFERENCE_LIMIT examples (SST-2's 67k-example few-shot pool: seconds per case)
REFERENCE_LIMIT = 8
# the words tiny-gpt2-bpe's tokenizer merges into one token each (with and without a leading space)
BPE_WORDS = (
    "Question Answer Sentence Does this sentence make sense True False Neither yes no positive negative Is or both mean "
    "same thing questions ask response answer the a an of and to in is was that for it with as on by he she they"
).split()


# ---------------------------------------------------------------- the models


def bpe_tokenizer():
    """GPT-2's conventions (byte-level, no pad token, nothing added to a text) with merges that make each of BPE_WORDS,
    and " " + each, one token: merged left to right, so "ĠTrue" comes from Ġ T, ĠT r, ĠTr u, ĠTru e."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab, merges = ["<|endoftext|>", *alphabet], []
    for word in BPE_WORDS:
        for symbols in (list(word), ["Ġ", *word]):
            for i in range(1, len(symbols)):
                left, right = "".join(symbols[:i]), symbols[i]
                if left + right not in vocab:
                    vocab.append(left + right)
                    merges.append((left, right))
    backend = Tokenizer(models.BPE({token: i for i, token in enumerate(vocab)}, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    special = "<|endoftext|>"
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=special, eos_token=special, unk_token=special, model_input_names=["input_ids", "attention_mask"], model_max_length=512)


def build_model(name: str):
    """(model, tokenizer) of one of MODELS, random from SEED, its matrices scaled by SHARPEN: the same weights on every
    machine with the same torch and transformers (weights_digest tells)."""
    import torch

    from src.config import ModelConfig
    from src.model import build_tiny_tokenizer, load_language_model

    architecture = "llama" if name == "tiny-llama" else "gpt2"
    tokenizer = bpe_tokenizer() if name == "tiny-gpt2-bpe" else build_tiny_tokenizer(architecture)
    torch.manual_seed(SEED)
    model = load_language_model(ModelConfig(name=name, source="tiny", name_or_path=name, architecture=architecture), tokenizer)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() > 1:
                weight.mul_(SHARPEN)
    return model, tokenizer


def weights_digest(model) -> str:
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_model(name: str, folder: Path) -> str:
    """Build and save a model with its tokenizer (what both sides load); returns its weights' digest."""
    model, tokenizer = build_model(name)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return weights_digest(model)


# ---------------------------------------------------------------- the data


def task_config(task: str, *overrides: str):
    from benchmarks.common import make_cfg

    return make_cfg(f"task={task}", *overrides)


def write_examples(task: str, folder: Path, cache_dir: str) -> dict[str, Path]:
    """The task's dev and (if it has one) train examples as basebench reads them, one JSON object a line: the text
    fields and the label id. lm-eval compares documents for equality, as the few-shot sampler does here."""
    from src.sources import has_split, resolve_label_names, split_sources

    cfg = task_config(task, f"data.cache_dir={cache_dir}")
    names = resolve_label_names(cfg.task, cache_dir)
    splits = {"validation": cfg.task.dev_splits[0]} | ({"train": cfg.task.train_split} if has_split(cfg.task, cfg.task.train_split) else {})
    files = {}
    for lm_split, split in splits.items():
        examples = split_sources(cfg.task, [split], names)[split].load()
        files[lm_split] = folder / f"{task}-{lm_split}.jsonl"
        with open(files[lm_split], "w", encoding="utf-8") as f:
            for row in examples.select_columns([*cfg.task.text_fields, "label"]):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return files


def lmeval_task_yaml(task: str, lmeval_dir: Path, files: dict[str, Path], folder: Path) -> str:
    """A task YAML that is lm-eval's own definition of the task, reading our jsonl files; returns its task name."""
    name = f"basebench_{task}"
    lines = [
        f"include: {lmeval_dir / 'tasks' / LMEVAL_TASKS[task]}",
        f"task: {name}",
        "tag: []",
        "dataset_path: json",
        "dataset_name: null",
        f"dataset_kwargs: {{data_files: {json.dumps({k: str(v) for k, v in files.items()})}}}",
        "validation_split: validation",
        f"training_split: {'train' if 'train' in files else 'null'}",  # none: lm-eval draws few-shot examples from validation
    ]
    (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    return name


# ---------------------------------------------------------------- the two sides


def offline_env(**extra: str) -> dict:
    keys = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_EVALUATE_OFFLINE")
    return {**os.environ, **dict.fromkeys(keys, "1"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", **extra}


def lmeval_dir(lmeval_python: str) -> Path:
    out = subprocess.run([lmeval_python, "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"], check=True, capture_output=True, text=True, env=offline_env())
    return Path(out.stdout.strip())


# lm-eval's command line, without its bootstrap of each metric's standard error (100,000 resamples of MCC and F1 per
# task: minutes, and nothing compared here); its command line has no flag for it
LMEVAL_CLI = """
import functools, runpy, sys
import lm_eval, lm_eval.evaluator
lm_eval.simple_evaluate = functools.partial(lm_eval.evaluator.simple_evaluate, bootstrap_iters=0)
sys.argv = ["lm-eval", *sys.argv[1:]]
runpy.run_module("lm_eval", run_name="__main__")
"""


def run_lmeval(lmeval_python: str, model_dir: Path, tasks: dict[str, str], shots: int, limit: int, batch_size: int, tasks_dir: Path, out_dir: Path) -> dict[str, list[dict]]:
    """lm-eval's hf backend on model_dir: per basebench task, per scored example, its context, continuations and their
    log-likelihoods (from --log_samples)."""
    args = [
        lmeval_python, "-c", LMEVAL_CLI, "run", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32", "--device", "cpu",
        "--tasks", ",".join(tasks.values()), "--include_path", str(tasks_dir), "--num_fewshot", str(shots), "--limit", str(limit),
        "--batch_size", str(batch_size), "--log_samples", "--output_path", str(out_dir), "--seed", f"0,1234,1234,{FEWSHOT_SEED}",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, env=offline_env())
    if done.returncode != 0:
        sys.exit(f"lm-eval failed:\n{done.stderr[-3000:]}")
    samples = {}
    for task, name in tasks.items():
        [path] = out_dir.glob(f"*/samples_{name}_*.jsonl")
        rows = sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["doc_id"])
        samples[task] = [
            {
                "context": r["arguments"]["gen_args_0"]["arg_0"],
                "continuations": [r["arguments"][f"gen_args_{i}"]["arg_1"] for i in range(len(r["arguments"]))],
                "loglikelihoods": [float(ll) for ll, _ in r["filtered_resps"]],
                "label": int(r["target"]),
            }
            for r in rows
        ]
    return samples


def run_ours(model: str, model_dir: Path, tasks: list[str], shots: int, limit: int, batch_size: int, cache_dir: str, out_dir: Path) -> dict[str, np.ndarray]:
    """`python -m src.zeroshot` on model_dir with each task's own config (conf/task: its prompt), every task in one
    multirun on one thread: per task the [examples, answers] log-likelihoods of its predictions_dev.tsv."""
    args = [
        sys.executable, "-m", "src.zeroshot", "-m", f"task={','.join(tasks)}", f"model={MODEL_FAMILIES[model]}", f"model.name={model}",
        f"model.name_or_path={model_dir}", f"num_fewshot={shots}", f"seed={FEWSHOT_SEED}", f"data.max_eval_samples={limit}",
        f"trainer.eval_batch_size={batch_size}", "hardware.num_threads=1", "logger=none", "trainer.progress_bar=false", f"data.cache_dir={cache_dir}",
        f"data.glue_dir={GLUE_DIR}", f"hydra.sweep.dir={out_dir}", "hydra.sweep.subdir=${task.name}",
    ]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=offline_env(GLUE_DIR=GLUE_DIR, PYTHONPATH=str(ROOT)))
    if done.returncode != 0:
        sys.exit(f"python -m src.zeroshot failed:\n{done.stderr[-3000:]}")
    return {task: read_loglikelihoods(out_dir / task / "predictions_dev.tsv") for task in tasks}


def read_loglikelihoods(path: Path) -> np.ndarray:
    """The loglik_<class> columns of a zero-shot run's predictions file, in class order."""
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    columns = [i for i, name in enumerate(header) if name.startswith("loglik_")]
    return np.array([[float(line.split("\t")[i]) for i in columns] for line in lines[1:]])


def our_contexts(task: str, shots: int, limit: int, cache_dir: str) -> list[str]:
    """The contexts basebench builds (src.prompts) for the first `limit` dev examples."""
    from src.prompts import requests
    from src.sources import has_split, resolve_label_names, split_sources

    cfg = task_config(task, f"data.cache_dir={cache_dir}")
    names = resolve_label_names(cfg.task, cache_dir)
    fields = [*cfg.task.text_fields, "label"]
    dev = split_sources(cfg.task, [cfg.task.dev_splits[0]], names)[cfg.task.dev_splits[0]].load().select_columns(fields)
    pool_split = cfg.task.train_split if has_split(cfg.task, cfg.task.train_split) else cfg.task.dev_splits[0]
    pool = split_sources(cfg.task, [pool_split], names)[pool_split].load().select_columns(fields) if shots else []
    return [r.context for r in requests(cfg.task.prompt, list(dev.select(range(min(limit, len(dev))))), list(pool), shots, FEWSHOT_SEED)]


# ---------------------------------------------------------------- speed (make bench)

# GPT-2 small's shape (12 layers, width 768, its 50,257-token vocabulary: the LM head is a third of the compute, as in
# the real model), random from SEED, with tiny-gpt2-bpe's tokenizer: every answer is one token, as GPT-2's and
# Llama's tokenizers make " True", " no", " positive" (the case lm-eval's logits cache is built for)
SPEED_SHAPE = {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 50257}
LMEVAL_TIMER = """
import json, sys, time, torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
model_dir, requests_file, batch_size, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
lm = HFLM(pretrained=model_dir, dtype="float32", batch_size=batch_size, device="cpu")
pairs = json.load(open(requests_file))
instances = [Instance("loglikelihood", {}, (context, continuation), i) for i, (context, continuation) in enumerate(pairs)]
started = time.perf_counter()
out = lm.loglikelihood(instances, disable_tqdm=True)
print(json.dumps({"seconds": time.perf_counter() - started, "loglikelihoods": [ll for ll, _ in out]}))
"""


def save_speed_model(folder: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = bpe_tokenizer()
    torch.manual_seed(SEED)
    config = GPT2Config(**SPEED_SHAPE, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def lmeval_speed(lmeval_python: str, model_dir: Path, requests_file: Path, batch_size: int, threads: int) -> tuple[float, np.ndarray]:
    """lm-eval's HFLM.loglikelihood on the requests (tokenizing them, then scoring), timed in its own process after
    the model loaded: (seconds, each request's log-likelihood)."""
    args = [lmeval_python, "-c", LMEVAL_TIMER, str(model_dir), str(requests_file), str(batch_size), str(threads)]
    done = subprocess.run(args, capture_output=True, text=True, env=offline_env(OMP_NUM_THREADS=str(threads)))
    if done.returncode != 0:
        sys.exit(f"lm-eval failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], np.array(result["loglikelihoods"])


def our_speed(model, tokenizer, window: int, reqs: list, batch_size: int) -> tuple[float, np.ndarray]:
    """basebench's scoring of the same requests, tokenizing included (src.scoring.encode_requests, then
    loglikelihoods): (seconds, [examples, answers] log-likelihoods)."""
    from src.scoring import encode_requests, loglikelihoods

    started = time.perf_counter()
    context_ids, continuation_ids = encode_requests(tokenizer, reqs)
    lls = loglikelihoods(model, context_ids, continuation_ids, batch_size, window)
    return time.perf_counter() - started, lls


def bench_speed(lmeval_python: str, task: str, shots: int, limit: int, batch_size: int, rounds: int, threads: int = 1) -> dict:
    """Examples per second of basebench's scoring and of lm-eval's on the same model (SPEED_SHAPE), requests (the
    task's first `limit` dev examples, few-shot examples included) and batch size, in turn for `rounds` rounds; each
    side's fastest round counts (the machine is shared). The log-likelihoods of both sides are compared too."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from src.prompts import Request
    from src.scoring import context_window

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cfg = task_config(task, f"data.cache_dir={tmp / 'cache'}")
        continuations = [cfg.task.prompt.target_delimiter + c for c in cfg.task.prompt.choices]
        reqs = [Request(context, continuations) for context in our_contexts(task, shots, limit, str(tmp / "cache"))]
        (tmp / "requests.json").write_text(json.dumps([[r.context, c] for r in reqs for c in r.continuations]))
        save_speed_model(tmp / "model")
        model = AutoModelForCausalLM.from_pretrained(tmp / "model", dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(tmp / "model")
        window = context_window(model.config, tokenizer)
        ours_s, theirs_s = [], []
        for round_ in range(rounds):
            sides = [lambda: ours_s.append(our_speed(model, tokenizer, window, reqs, batch_size)), lambda: theirs_s.append(lmeval_speed(lmeval_python, tmp / "model", tmp / "requests.json", batch_size, threads))]
            for side in sides[:: -1 if round_ % 2 else 1]:
                side()
    ours, theirs = min(s for s, _ in ours_s), min(s for s, _ in theirs_s)
    diff = float(np.abs(ours_s[0][1].reshape(-1) - theirs_s[0][1]).max())
    return {
        "name": f"h. zero-shot scoring, basebench / lm-evaluation-harness ({task}, {shots}-shot, {limit} examples, batch size {batch_size}, {threads} thread)",
        "ratio": theirs / ours,
        "detail": f"{limit / ours:.2f} vs {limit / theirs:.2f} examples/s (fastest of {rounds} rounds); random GPT-2 small shape; max abs Δ ll {diff:.1e}",
        "target": ">= 1.5",
    }


# ---------------------------------------------------------------- comparing


def compare(lm: list[dict], ours: np.ndarray, contexts: list[str]) -> dict:
    from src.scoring import predictions

    theirs = np.array([s["loglikelihoods"] for s in lm])
    labels = np.array([s["label"] for s in lm])
    choices = [c.lstrip() for c in lm[0]["continuations"]]  # lm-eval's acc_norm divides by the answer's length without the delimiter
    lm_acc, lm_norm = predictions(theirs, choices)
    our_acc, our_norm = predictions(ours, choices)
    return {
        "examples": len(lm),
        "contexts_equal": sum(a == s["context"] for a, s in zip(contexts, lm)),
        "max_abs_diff": float(np.abs(ours - theirs).max()),
        "predictions_equal": int(((lm_acc == our_acc) & (lm_norm == our_norm)).sum()),
        "acc": (float((our_acc == labels).mean()), float((lm_acc == labels).mean())),
        "acc_norm": (float((our_norm == labels).mean()), float((lm_norm == labels).mean())),
    }


def markdown(rows: list[dict], args: argparse.Namespace, seconds: float) -> str:
    lines = [
        "<!-- lmeval: written by `make compare-lmeval`, replaced on each run -->",
        "## Zero- and few-shot scores against lm-evaluation-harness, per example",
        "",
        f"Measured by `make compare-lmeval` (`python -m benchmarks.lmeval --limit {args.limit} --fewshot {args.fewshot} --batch-size {args.batch_size}`) on {time.strftime('%Y-%m-%d')}; {machine()}; {seconds / 60:.1f} minutes.",
        "Random decoders built from a seed (benchmarks/lmeval.py), fp32, the same folder loaded by both sides; lm-eval 0.4.13's hf backend runs",
        "its own task definitions on our examples; `python -m src.zeroshot` scores them with conf/task's prompts, seed 1234 (lm-eval's few-shot seed).",
        f"Per example: contexts equal (prompt and few-shot examples), max |Δ log-likelihood| over every answer (goal < {TOLERANCE:g}),",
        "predictions equal (acc and acc_norm), and both sides' acc and acc_norm on the scored examples.",
        "",
        "| model | task | shots | examples | contexts equal | max abs Δ ll | predictions equal | acc ours / lm-eval | acc_norm ours / lm-eval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['task']} | {r['shots']} | {r['examples']} | {r['contexts_equal']} | {r['max_abs_diff']:.2e} | {r['predictions_equal']} | "
            f"{r['acc'][0]:.4f} / {r['acc'][1]:.4f} | {r['acc_norm'][0]:.4f} / {r['acc_norm'][1]:.4f} |"
        )
    worst = max(r["max_abs_diff"] for r in rows)
    exact = all(r["contexts_equal"] == r["examples"] == r["predictions_equal"] for r in rows)
    lines += ["", f"Largest difference: {worst:.2e}; every context and prediction equal: {'yes' if exact else 'NO'}.", "<!-- /lmeval -->"]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the lmeval section of BENCHMARKS.md (or append it), leaving the rest as it is."""
    text = path.read_text() if path.is_file() else ""
    start, end = text.find("<!-- lmeval:"), text.find("<!-- /lmeval -->")
    if start >= 0 and end >= 0:
        text = text[:start] + section + text[end + len("<!-- /lmeval -->\n") :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmeval-python", default=str(ROOT / ".venv-lmeval" / "bin" / "python"), help="the python of a venv with lm-eval 0.4.13 (make .venv-lmeval)")
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--fewshot", default="0,3", help="numbers of few-shot examples")
    parser.add_argument("--limit", type=int, default=32, help="dev examples scored per task (the first N)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--reference", default=None, help="also write lm-eval's values for the tests here (tests/data/lmeval_reference.json)")
    args = parser.parse_args()
    started = time.perf_counter()
    tasks, models, shots_list = args.tasks.split(","), args.models.split(","), [int(n) for n in args.fewshot.split(",")]
    rows, reference = [], {"lm_eval": "0.4.13", "seed": SEED, "fewshot_seed": FEWSHOT_SEED, "limit": REFERENCE_LIMIT, "models": {}, "cases": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cache_dir = str(tmp / "cache")
        (tmp / "data").mkdir()
        (tmp / "tasks").mkdir()
        source = lmeval_dir(args.lmeval_python)
        names = {task: lmeval_task_yaml(task, source, write_examples(task, tmp / "data", cache_dir), tmp / "tasks") for task in tasks}
        contexts = {(task, shots): our_contexts(task, shots, args.limit, cache_dir) for task in tasks for shots in shots_list}
        for model in models:
            model_dir = tmp / "models" / model
            reference["models"][model] = {"weights_sha256": save_model(model, model_dir)}
            for shots in shots_list:
                lm = run_lmeval(args.lmeval_python, model_dir, names, shots, args.limit, args.batch_size, tmp / "tasks", tmp / f"lm-{model}-{shots}")
                ours = run_ours(model, model_dir, tasks, shots, args.limit, args.batch_size, cache_dir, tmp / f"ours-{model}-{shots}")
                for task in tasks:
                    row = {"model": model, "task": task, "shots": shots, **compare(lm[task], ours[task], contexts[task, shots])}
                    print(f"{model} {task} {shots}-shot: {json.dumps({k: v for k, v in row.items() if k not in ('model', 'task', 'shots')})}", flush=True)
                    rows.append(row)
                    if task in REFERENCE_TASKS:
                        samples = lm[task][:REFERENCE_LIMIT]
                        reference["cases"].append(
                            {
                                "model": model,
                                "task": task,
                                "num_fewshot": shots,
                                "contexts_sha256": [hashlib.sha256(s["context"].encode()).hexdigest() for s in samples],
                                "continuations": samples[0]["continuations"],
                                "loglikelihoods": [s["loglikelihoods"] for s in samples],
                            }
                        )
    section = markdown(rows, args, time.perf_counter() - started)
    print(section)
    write_section(Path(args.out), section)
    if args.reference:
        Path(args.reference).write_text(json.dumps(reference, indent=1) + "\n")
        print(f"reference values written to {args.reference}", file=sys.stderr)


if __name__ == "__main__":
    main()
