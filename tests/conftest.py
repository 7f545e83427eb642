"""Shared fixtures: the real GLUE files in ../shared/data/glue, real Hydra composition, the tiny
random BERT and the packaged MiniLM. Everything runs offline."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_EVALUATE_OFFLINE"):
    os.environ[var] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GLUE_DIR = Path(os.environ.get("GLUE_DIR") or ROOT.parent / "shared" / "data" / "glue").resolve()
SUPERGLUE_DIR = GLUE_DIR.parent / "superglue"
TWEET_EVAL_DIR = GLUE_DIR.parent / "tweet_eval"
CONLL_DIR = GLUE_DIR.parent / "conll2003"
DATA_DIRS = [f"data.glue_dir={GLUE_DIR}", f"data.superglue_dir={SUPERGLUE_DIR}", f"data.tweet_eval_dir={TWEET_EVAL_DIR}", f"data.conll_dir={CONLL_DIR}"]
CONF_DIR = ROOT / "conf"

if not (GLUE_DIR / "CoLA" / "train.tsv").is_file():
    raise pytest.UsageError(f"the GLUE data is missing at {GLUE_DIR}: set GLUE_DIR or lay ../shared/data/glue beside the checkout")


SHARED_DATA = GLUE_DIR.parent
MANIFEST = SHARED_DATA / "MANIFEST.sha256"


def _manifest_mismatches() -> list[str]:
    """Files of the shared data whose sha256 differs from MANIFEST.sha256 (missing files included)."""
    bad = []
    for line in MANIFEST.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = SHARED_DATA / name.strip()
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(name.strip())
    return bad


@pytest.fixture(scope="session", autouse=True)
def shared_data_untouched():
    """The shared data is read, never written: the session errors if any file of it changed while the tests ran."""
    before = _manifest_mismatches() if MANIFEST.is_file() else []
    yield
    if MANIFEST.is_file():
        changed = sorted(set(_manifest_mismatches()) - set(before))
        assert not changed, f"the tests changed files of {SHARED_DATA}: {changed}"


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    return GLUE_DIR


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """One tokenization cache for the whole session (as a user's ~/.cache/basebench)."""
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def make_cfg(cache_dir):
    """Compose the real Hydra config with overrides and validate it, as `python -m src.train` does."""
    from src.config import register_schema, validate

    register_schema()

    def _make(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            raw = compose(config_name="config", overrides=[*DATA_DIRS, f"data.cache_dir={cache_dir}", "logger=none", *overrides])
        return validate(raw)

    return _make


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from src.model import build_tiny_tokenizer

    return build_tiny_tokenizer()


def run_train(*overrides: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `python -m src.train` as a user would, in a subprocess."""
    full_env = {**os.environ, "GLUE_DIR": str(GLUE_DIR), "SUPERGLUE_DIR": str(SUPERGLUE_DIR), "TWEET_EVAL_DIR": str(TWEET_EVAL_DIR), "CONLL_DIR": str(CONLL_DIR), **(env or {})}
    return subprocess.run([sys.executable, "-m", "src.train", *overrides], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module of tiny-model tests, then as it was."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_decoder(family: str, window: int = 256):
    """A random 2-layer causal LM of a decoder family (gpt2, llama, qwen2, gpt_neox), seeded, with the tiny
    byte-level tokenizer (no pad token) and a context window of `window` tokens: (model, tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen2Config

    from src.model import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer("llama" if family == "llama" else "gpt2")
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    sizes = {"vocab_size": len(tokenizer), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": window, **ids}
    config = {
        "gpt2": lambda: GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=window, **ids),
        "llama": lambda: LlamaConfig(**sizes),
        "qwen2": lambda: Qwen2Config(**sizes, num_key_value_heads=1),
        "gpt_neox": lambda: GPTNeoXConfig(**sizes),
    }[family]()
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config), tokenizer


def load_split(cfg, split: str = "dev"):
    """One split of cfg.task as the runs read it (src.sources): text fields, label ids or scores, idx."""
    from src.sources import resolve_label_names, split_sources

    return split_sources(cfg.task, [split], resolve_label_names(cfg.task, cfg.data.cache_dir))[split].load()


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def read_table(path: Path, delimiter: str = ",") -> list[dict]:
    """The rows of a CSV or TSV file with a header line, as dicts."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


@pytest.fixture(scope="session")
def glue_with_test_files(tmp_path_factory, glue_dir) -> Path:
    """The real GLUE files, their real test files (CoLA, SST-2, STS-B) and synthetic unlabelled test files of the other
    tasks in the official layout (tests/glue_test_files.py)."""
    from glue_test_files import write_test_files

    target = tmp_path_factory.mktemp("glue_with_test")
    write_test_files(target, glue_dir)
    return target


@pytest.fixture(scope="session")
def tiny_run_set(tmp_path_factory, cache_dir, glue_with_test_files) -> Path:
    """One real multirun: the tiny model on CoLA and RTE, seeds 1, 2, 3, with predict=true."""
    sweep = tmp_path_factory.mktemp("run_set") / "multirun"
    out = run_train(
        "-m",
        "task=cola,rte",
        "seed=1,2,3",
        "model=tiny",
        "model.max_length=64",
        "logger=none",
        "trainer.max_steps=6",
        "trainer.batch_size=8",
        "optimizer.lr=3e-3",
        "data.max_eval_samples=100",
        "trainer.progress_bar=false",
        "predict=true",
        f"data.glue_dir={glue_with_test_files}",
        f"data.cache_dir={cache_dir}",
        f"hydra.sweep.dir={sweep}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return sweep
