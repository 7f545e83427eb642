"""One reader of run directories, for the report (src.report) and the sweep summary (src.sweep): what a run was
(task, model, recipe, protocol) and how it ended, from the files it leaves.

A run directory holds status.json and/or metrics.json (src.train, src.evaluate), config.yaml (the resolved
config, written once validation passed) and, in a Hydra job, .hydra/ (written first, so a job that failed
validation still says what it was). Keys that older runs lack fall back: `benchmark` to GLUE for the nine GLUE
task names, `protocol` to finetune, `finetune` to full, `init_from` to none.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf

GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")  # in the GLUE paper's order


@dataclass
class Run:
    path: Path
    status: str  # completed | failed | running (still running, or killed) | incomplete (says completed, lacks metrics)
    error: str | None
    metrics: dict  # metrics.json ({} when absent)
    config: dict  # the resolved config, nested ({} when absent)
    overrides: list[str]  # the command line's

    def _get(self, key: str, config_path: str, default=None):
        """metrics.json's key, else the config's value at config_path, else default."""
        if self.metrics.get(key) is not None:
            return self.metrics[key]
        value = self._config_value(config_path)
        return default if value is None else value

    def _config_value(self, dotted: str):
        node = self.config
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    @property
    def task(self) -> str | None:
        return self._get("task", "task.name")

    @property
    def model(self) -> str | None:
        return self._get("model", "model.name")

    @property
    def seed(self) -> int | None:
        return self._get("seed", "seed")

    @property
    def finetune(self) -> str:
        return str(self._get("finetune", "finetune.name", "full"))

    @property
    def selection(self) -> str:
        """The split that chose the checkpoint: dev | train_holdout | unknown (a model evaluated from elsewhere)."""
        return self.metrics.get("selection_split") or "unknown"

    @property
    def protocol(self) -> str:
        """finetune (trained on the task) | zeroshot (scored without training, num_fewshot examples in the prompt)."""
        return self.metrics.get("protocol") or "finetune"

    @property
    def num_fewshot(self) -> int | None:
        return self.metrics.get("num_fewshot")

    @property
    def init_from(self) -> dict | None:
        """The run whose encoder this one started from (model.init_from): its run_dir, task, model and seed."""
        return self.metrics.get("init_from")

    @property
    def benchmark(self) -> str | None:
        """glue | superglue | None (a task of no benchmark suite)."""
        if "benchmark" in self.metrics:
            return self.metrics["benchmark"]
        return "glue" if self.task in GLUE_TASKS else None

    @property
    def task_type(self) -> str | None:
        """sequence_classification | regression | ... (metrics.json's; older runs: from the config's is_regression)."""
        if "task_type" in self.metrics:
            return self.metrics["task_type"]
        regression = self._config_value("task.is_regression")
        return None if regression is None else "regression" if regression else "sequence_classification"

    @property
    def main_metric(self) -> str | None:
        return self._get("main_metric", "task.main_metric")

    @property
    def value(self) -> float | None:
        """The best dev main metric; None unless completed."""
        return self.metrics["main_metric_value"] if self.status == "completed" else None

    @property
    def task_score(self) -> float:
        """The benchmarks' score of the task: the mean of all its dev metrics (GLUE: MRPC F1 and accuracy, MNLI
        matched and mismatched; SuperGLUE: CB accuracy and macro-F1)."""
        return statistics.fmean(self.metrics["best"].values())

    @property
    def lr(self) -> float | None:
        lr = self._config_value("optimizer.lr")
        return None if lr is None else float(lr)

    @property
    def batch_size(self) -> int | None:
        return self._config_value("trainer.batch_size")

    @property
    def runtime_s(self) -> float | None:
        return self.metrics.get("total_runtime_s")


def read_run(path: Path) -> Run:
    status = _read_json(path / "status.json")
    metrics = _read_json(path / "metrics.json")
    # metrics.json is written when a run has finished: a kill before status.json said so leaves it "running"
    state = "completed" if "best" in metrics else status.get("status") or "running"
    error = status.get("error")
    if state == "completed" and "best" not in metrics:
        state, error = "incomplete", "status says completed but metrics.json is missing or unreadable"
    overrides = metrics.get("overrides")
    if overrides is None:
        overrides = _read_yaml(path / ".hydra" / "overrides.yaml") or []
    return Run(path=path, status=state, error=error, metrics=metrics, config=read_config(path), overrides=list(overrides))


def init_source(run_dir: str | None) -> dict | None:
    """metrics.json's `init_from`: the run a model.init_from run started from (its absolute directory, task,
    model and seed), so that the report can tell such runs apart without the source run at hand."""
    if run_dir is None:
        return None
    source = read_run(Path(run_dir))
    return {"run_dir": str(Path(run_dir).resolve()), "task": source.task, "model": source.model, "seed": source.seed}


def read_config(path: Path) -> dict:
    """config.yaml, resolved by the run; else Hydra's .hydra/config.yaml (all a job that failed validation has),
    resolved here: it keeps interpolations such as optimizer.lr: ${model.lr}."""
    config = _read_yaml(path / "config.yaml")
    if config:
        return config
    try:
        return OmegaConf.to_container(OmegaConf.load(path / ".hydra" / "config.yaml"), resolve=True)  # type: ignore[return-value]
    except Exception:  # absent, unreadable, or an interpolation that no longer resolves
        return _read_yaml(path / ".hydra" / "config.yaml")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
