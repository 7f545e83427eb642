"""Shared set-up for the benchmarks: the real config, data and model, exactly as src.train builds them."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_EVALUATE_OFFLINE"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
GLUE_DIR = os.environ.get("GLUE_DIR") or str((ROOT.parent / "shared" / "data" / "glue").resolve())


def make_cfg(*overrides: str):
    from hydra import compose, initialize_config_dir

    from src.config import register_schema, validate

    register_schema()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        raw = compose(config_name="config", overrides=[f"data.glue_dir={GLUE_DIR}", "logger=none", "trainer.progress_bar=false", *overrides])
    return validate(raw)


def build(cfg):
    """(tokenizer, data, model) for cfg, seeded as src.train does."""
    from accelerate.utils import set_seed

    from src.data import build_data
    from src.model import load_model, load_tokenizer

    tokenizer = load_tokenizer(cfg.model, cfg.task)
    data = build_data(cfg, tokenizer)
    set_seed(cfg.seed)
    return tokenizer, data, load_model(cfg.model, cfg.task, tokenizer)


def run_ours(cfg, run_dir: Path) -> list[float]:
    """Train with src.loop.train; returns the wall time of every optimizer step after the first.

    A step's time runs from the end of the step before to the end of this one (data loading, forward,
    backward, clipping, optimizer and logging all count); it is read from the log call each step makes.
    """
    from accelerate import Accelerator

    from src.loop import train

    tokenizer, data, model = build(cfg)
    step_ends = []
    record = lambda metrics, step: step_ends.append(time.perf_counter()) if "train/loss" in metrics else None  # noqa: E731
    train(cfg, Accelerator(cpu=True), model, tokenizer, data, run_dir, log=record)
    return step_times(step_ends)


def run_bare(cfg, steps: int) -> list[float]:
    """The floor: a bare PyTorch loop over the same batches, model, optimizer and schedule; step times as run_ours."""
    import torch
    from transformers import get_scheduler

    from src.loop import SCHEDULERS, build_optimizer

    _, data, model = build(cfg)
    optimizer = build_optimizer(cfg, model)
    scheduler = get_scheduler(SCHEDULERS[cfg.scheduler.name], optimizer, num_warmup_steps=round(cfg.scheduler.warmup_ratio * steps), num_training_steps=steps)
    model.train()
    step_ends = []
    for step, batch in enumerate(data.train):
        if step == steps:
            break
        batch.pop("idx")
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        step_ends.append(time.perf_counter())
    return step_times(step_ends)


def step_times(step_ends: list[float]) -> list[float]:
    # the first step has no start mark of its own (and pays one-off warm-up costs on every side alike)
    return [end - start for start, end in zip(step_ends, step_ends[1:])]


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def timed_subprocess(args: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env={**os.environ, **(env or {})}, check=True, capture_output=True)
    return time.perf_counter() - started


def python() -> str:
    return sys.executable
