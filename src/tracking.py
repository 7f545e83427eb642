"""Experiment tracking: Weights & Biases, or nothing (logger=none).

Only the main process tracks. W&B never prompts: with no API key and WANDB_MODE unset it runs
offline (sync later with `wandb sync <run_dir>/wandb/offline-run-*`).
"""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from src.config import Config

log = logging.getLogger(__name__)


class Tracker:
    """The no-op tracker (logger=none); WandbTracker overrides what it records."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def log_predictions(self, rows: list[list], columns: list[str]) -> None:
        pass

    def log_model(self, checkpoint_dir: Path, name: str) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


def has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode(configured: str | None) -> str | None:
    """The W&B mode to use: the config's, else WANDB_MODE's (None lets wandb read it), else
    offline when no API key is configured, so that wandb never prompts."""
    if configured is not None or os.environ.get("WANDB_MODE"):
        return configured
    if not has_wandb_key():
        log.warning("W&B: no API key found (WANDB_API_KEY or `wandb login`), logging offline; upload later with `wandb sync`")
        return "offline"
    return None


def run_name(cfg: Config) -> str:
    method = "" if cfg.finetune.name == "full" else f"-{cfg.finetune.name}"  # full fine-tuning is the unmarked default
    return f"{cfg.task.name}-{cfg.model.name}{method}-lr{cfg.optimizer.lr:g}-bs{cfg.trainer.batch_size}-s{cfg.seed}"


class WandbTracker(Tracker):
    def __init__(self, cfg: Config, plain_config: dict, run_dir: Path, group: str | None):
        import wandb

        self.wandb = wandb
        lg = cfg.logger
        self.run = wandb.init(
            project=lg.project,
            entity=lg.entity,
            name=run_name(cfg),
            group=group,
            job_type=lg.job_type,
            tags=[cfg.task.name, cfg.model.name, cfg.optimizer.name, cfg.finetune.name, *lg.tags],
            config=plain_config,
            dir=str(run_dir),
            mode=wandb_mode(lg.mode),
            reinit="create_new",  # each job of a multirun gets its own run
        )
        self.run.define_metric("eval/*", step_metric="train/global_step")
        self.run.define_metric("train/*", step_metric="train/global_step")

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log({**metrics, "train/global_step": step})

    def summary(self, values: dict[str, Any]) -> None:
        self.run.summary.update(values)

    def log_predictions(self, rows: list[list], columns: list[str]) -> None:
        self.run.log({"eval/predictions": self.wandb.Table(columns=columns, data=rows)})

    def log_model(self, checkpoint_dir: Path, name: str) -> None:
        artifact = self.wandb.Artifact(name, type="model")
        artifact.add_dir(str(checkpoint_dir))
        self.run.log_artifact(artifact, aliases=["best"])

    def finish(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)


def start_tracker(cfg: Config, plain_config: dict, run_dir: Path, group: str | None, is_main_process: bool) -> Tracker:
    if cfg.logger.name == "none" or not is_main_process:
        return Tracker()
    return WandbTracker(cfg, plain_config, run_dir, group)
