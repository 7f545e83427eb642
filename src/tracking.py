"""Experiment tracking: Weights & Biases, or nothing (logger=none).

Only the main process tracks. W&B never prompts and never hangs: with no API key and WANDB_MODE
unset it runs offline, and when an online run cannot start (W&B unreachable, key refused) within
logger.init_timeout_s it falls back to offline. Sync later with `wandb sync <run_dir>/wandb/offline-run-*`.
Each job of a multirun gets its own W&B run, finished (failed: exit code 1; interrupted: 130, or 143 and marked
preempting for SIGTERM) before the next job starts.
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

    def log_model(self, checkpoint_dir: Path, name: str) -> None:
        pass

    def log_table(self, key: str, columns: list[str], rows: list[list]) -> None:
        pass

    def log_image(self, key: str, path: Path) -> None:
        pass

    def finish(self) -> None:
        pass

    def fail(self, error: str) -> None:
        pass

    def interrupted(self, message: str, preempted: bool) -> None:
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
    if cfg.logger.job_type == "zeroshot":  # src.zeroshot: nothing trains, so no method, lr or batch size
        return f"{cfg.task.name}-{cfg.model.name}-{cfg.num_fewshot}shot-s{cfg.seed}"
    method = "" if cfg.finetune.name == "full" else f"-{cfg.finetune.name}"  # full fine-tuning is the unmarked default
    return f"{cfg.task.name}-{cfg.model.name}{method}-lr{cfg.optimizer.lr:g}-bs{cfg.trainer.batch_size}-s{cfg.seed}"


def run_tags(cfg: Config) -> list[str]:
    """The task, the model and how it was adapted (optimizer and method; zero-shot: zeroshot and the number of shots)."""
    how = ("zeroshot", f"{cfg.num_fewshot}-shot") if cfg.logger.job_type == "zeroshot" else (cfg.optimizer.name, cfg.finetune.name)
    return [tag[:64] for tag in (cfg.task.name, cfg.model.name, *how, *cfg.logger.tags)]  # W&B rejects longer tags (a model given by its path)


class WandbTracker(Tracker):
    def __init__(self, cfg: Config, plain_config: dict, run_dir: Path, group: str | None):
        import wandb

        self.wandb = wandb
        lg = cfg.logger
        run_dir.mkdir(parents=True, exist_ok=True)  # W&B writes <run_dir>/wandb/
        init_args = dict(
            project=lg.project,
            entity=lg.entity,
            name=run_name(cfg),
            group=group,
            job_type=lg.job_type,
            tags=run_tags(cfg),
            config=plain_config,
            dir=str(run_dir),
            reinit="create_new",  # each job of a multirun gets its own run
            settings=wandb.Settings(init_timeout=lg.init_timeout_s),
        )
        mode = wandb_mode(lg.mode)
        try:
            self.run = wandb.init(mode=mode, **init_args)
        except (wandb.errors.Error, OSError) as e:  # unreachable, timed out, key refused
            if (mode or os.environ.get("WANDB_MODE") or "online") != "online":
                raise
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            log.warning(f"W&B: cannot start an online run ({reason}); logging offline; upload later with `wandb sync {run_dir}/wandb/offline-run-*`")
            self.run = wandb.init(mode="offline", **init_args)
        self.run.define_metric("eval/*", step_metric="train/global_step")
        self.run.define_metric("train/*", step_metric="train/global_step")

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log({**metrics, "train/global_step": step})

    def summary(self, values: dict[str, Any]) -> None:
        self.run.summary.update(values)

    def log_table(self, key: str, columns: list[str], rows: list[list]) -> None:
        self.run.log({key: self.wandb.Table(columns=columns, data=rows)})

    def log_image(self, key: str, path: Path) -> None:
        self.run.log({key: self.wandb.Image(str(path))})

    def log_model(self, checkpoint_dir: Path, name: str) -> None:
        artifact = self.wandb.Artifact(name, type="model")
        artifact.add_dir(str(checkpoint_dir))
        self.run.log_artifact(artifact, aliases=["best"])

    def finish(self) -> None:
        self.run.finish()

    def fail(self, error: str) -> None:
        """Mark the run failed (W&B shows exit code 1) with the error line in its summary."""
        self.run.summary["error"] = error
        self.run.finish(exit_code=1)

    def interrupted(self, message: str, preempted: bool) -> None:
        """Mark the run interrupted (summary `interrupted`; preempted: SIGTERM, as W&B's mark_preempting), exit code 130 or 143."""
        self.run.summary["interrupted"] = message
        if preempted:
            self.run.mark_preempting()
        self.run.finish(exit_code=143 if preempted else 130)


def start_tracker(cfg: Config, plain_config: dict, run_dir: Path, group: str | None, is_main_process: bool) -> Tracker:
    if cfg.logger.name == "none" or not is_main_process:
        return Tracker()
    return WandbTracker(cfg, plain_config, run_dir, group)
