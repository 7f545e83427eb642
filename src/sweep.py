"""The summary of a multirun, written into its sweep directory:

    summary.csv    one row per job: overrides, task, model, lr, batch size, seed, main metric, status, run time
    summary.md     the same as a Markdown table, the best configuration per task and the heatmap
    best.yaml      the best configuration per task (mean over seeds), with the command that reruns it
    heatmap.png    the dev main metric over learning rate x batch size, one panel per task and model

Hydra calls `SweepSummary.on_job_end` after every job of a multirun (conf/config.yaml, hydra.callbacks),
so the summary is complete even when a job failed: Hydra skips `on_multirun_end` then. It is made from
the directory alone, so it can be made again later:

    python -m src.sweep outputs/multiruns/2025-01-31/12-00-00
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from src.config import UserError
from src.lifecycle import exit_status
from src.runs import Run, read_run
from src.stats import Spread, spread

log = logging.getLogger(__name__)

LOCK_FILE = ".summary.lock"


@dataclass
class Job:
    """One job of the sweep: its number, its directory (relative to the sweep directory) and its run (src.runs)."""

    num: int
    dir: str
    run: Run

    @property
    def status(self) -> str:
        """completed | failed | unfinished (still running, or killed)."""
        return self.run.status if self.run.status in ("completed", "failed") else "unfinished"

    @property
    def config_overrides(self) -> list[str]:
        """What makes the configuration: the overrides without the seed."""
        return [o for o in self.run.overrides if not o.lstrip("+~").startswith("seed=")]


@dataclass
class Configuration:
    """Jobs that differ only in their seed."""

    task: str
    overrides: list[str]
    jobs: list[Job] = field(default_factory=list)

    @property
    def values(self) -> list[float]:
        return [j.run.value for j in self.jobs if j.run.value is not None]

    @property
    def spread(self) -> Spread:
        return spread(self.values)


def read_job(job_dir: Path, sweep_dir: Path) -> Job:
    """A job from Hydra's files (.hydra/hydra.yaml: its number) and src.runs' reading of its run directory."""
    num = int(yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["num"])
    return Job(num, str(job_dir.relative_to(sweep_dir)), read_run(job_dir))


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job whose files read; one that does not (damaged, or written by hand) is left out with one warning."""
    jobs = []
    for job_dir in sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/hydra.yaml")):
        try:
            jobs.append(read_job(job_dir, sweep_dir))
        except (OSError, ValueError, LookupError, TypeError, AttributeError, yaml.YAMLError) as e:
            log.warning(f"{job_dir}: its files do not read ({type(e).__name__}: {(str(e).splitlines() or [''])[0]}), so the summary leaves it out")
    return sorted(jobs, key=lambda j: j.num)


def configurations(jobs: list[Job]) -> list[Configuration]:
    """Jobs grouped by (task, overrides without the seed), in job order."""
    groups: dict[tuple, Configuration] = {}
    for job in jobs:
        key = (job.run.task, tuple(job.config_overrides))
        groups.setdefault(key, Configuration(job.run.task, job.config_overrides)).jobs.append(job)
    return list(groups.values())


def best_per_task(jobs: list[Job]) -> dict[str, Configuration]:
    """The configuration with the best mean dev main metric over its completed seeds, for each task."""
    best: dict[str, Configuration] = {}
    for c in configurations(jobs):
        if c.values and (c.task not in best or c.spread.mean > best[c.task].spread.mean):
            best[c.task] = c
    return best


def common_overrides(jobs: list[Job]) -> list[str]:
    """Overrides shared by every job (said once in the Markdown, not on every row)."""
    return [o for o in jobs[0].run.overrides if all(o in j.run.overrides for j in jobs)]


def rerun_command(overrides: list[str]) -> str:
    return " ".join(["python -m src.train", *overrides])


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def csv_text(jobs: list[Job]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["job", "dir", "overrides", "task", "model", "lr", "batch_size", "seed", "main_metric", "main_metric_value", "status", "error", "runtime_s"])
    for j in jobs:
        r = j.run
        writer.writerow([j.num, j.dir, " ".join(r.overrides), r.task, r.model, f"{r.lr:g}", r.batch_size, r.seed, r.main_metric, _fmt(r.value, 6), j.status, r.error or "", _fmt(r.runtime_s, 1)])
    return out.getvalue()


def markdown_text(sweep_dir: Path, jobs: list[Job], best: dict[str, Configuration]) -> str:
    common = common_overrides(jobs)
    counts = {s: sum(j.status == s for j in jobs) for s in ("completed", "failed", "unfinished")}
    lines = [
        f"# Sweep {'/'.join(sweep_dir.resolve().parts[-2:])}",
        "",
        f"{len(jobs)} jobs: {counts['completed']} completed, {counts['failed']} failed, {counts['unfinished']} unfinished.",
        "",
        "Common overrides: " + (" ".join(f"`{o}`" for o in common) if common else "none"),
        "",
        "| job | overrides | task | model | lr | batch size | seed | main metric (dev, best) | status | run time (s) |",
        "|---:|---|---|---|---:|---:|---:|---|---|---:|",
    ]
    for j in jobs:
        r = j.run
        own = " ".join(f"`{o}`" for o in r.overrides if o not in common)
        status = f"failed: {r.error}" if j.status == "failed" else j.status
        value = f"{r.main_metric} = {_fmt(r.value)}" if r.value is not None else ""
        lines.append(f"| {j.num} | {own} | {r.task} | {r.model} | {r.lr:g} | {r.batch_size} | {r.seed} | {value} | {status.replace('|', '/')} | {_fmt(r.runtime_s, 0)} |")
    lines += ["", "## Best configuration", ""]
    if not best:
        lines.append("No job has completed yet.")
    for task, c in best.items():
        seeds = ", ".join(str(j.run.seed) for j in c.jobs if j.run.value is not None)
        s = c.spread
        lines += [
            f"**{task}**: {c.jobs[0].run.main_metric} = {s.mean:.4f}"
            + (f" ± {s.std:.4f}, 95% CI [{s.ci_low:.4f}, {s.ci_high:.4f}] (mean ± std over seeds {seeds})" if s.std is not None else f" (seed {seeds})"),
            f"jobs {', '.join(str(j.num) for j in c.jobs)}:",
            "",
            f"    {rerun_command(c.overrides)}",
            "",
        ]
    lines += ["## Main metric over learning rate x batch size", "", "![heatmap](heatmap.png)", ""]
    return "\n".join(lines)


def best_text(best: dict[str, Configuration]) -> str:
    payload = {
        task: {
            "main_metric": c.jobs[0].run.main_metric,
            "mean": c.spread.mean,
            "std": c.spread.std,  # null for a single seed (src.stats)
            "ci95": [c.spread.ci_low, c.spread.ci_high] if c.spread.std is not None else None,
            "seeds": [j.run.seed for j in c.jobs if j.run.value is not None],
            "jobs": [j.num for j in c.jobs],
            "overrides": c.overrides,
            "command": rerun_command(c.overrides),
        }
        for task, c in best.items()
    }
    return yaml.safe_dump(payload, sort_keys=False)


def plot_heatmap(jobs: list[Job], path: Path) -> None:
    """One panel per (task, model): the mean dev main metric of the completed jobs in each (lr, batch size) cell."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt
    import numpy as np

    runs = [j.run for j in jobs]
    panels = sorted({(r.task, r.model) for r in runs})
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.0 + 3.6 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.remove()
    for ax, (task, model) in zip(axes.flat, panels):
        cell_runs = [r for r in runs if (r.task, r.model) == (task, model)]
        lrs = sorted({r.lr for r in cell_runs})
        sizes = sorted({r.batch_size for r in cell_runs})
        grid = np.full((len(sizes), len(lrs)), np.nan)
        for y, size in enumerate(sizes):
            for x, lr in enumerate(lrs):
                here = [r for r in cell_runs if (r.lr, r.batch_size) == (lr, size)]
                values = [r.value for r in here if r.value is not None]
                if values:
                    grid[y, x] = statistics.fmean(values)
                text = f"{grid[y, x]:.3f}" if values else ("failed" if any(r.status == "failed" for r in here) else "")
                if len(values) > 1:
                    text += f"\n(n={len(values)})"
                ax.text(x, y, text, ha="center", va="center", fontsize=8, color="black", bbox=dict(boxstyle="round", facecolor="white", alpha=0.6, linewidth=0))
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto", origin="lower")
        ax.set_facecolor("0.85")  # cells without a completed job
        ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs], rotation=45 if len(lrs) > 4 else 0)
        ax.set_yticks(range(len(sizes)), [str(s) for s in sizes])
        ax.set_xlabel("learning rate")
        ax.set_ylabel("batch size")
        ax.set_title(f"{task} / {model}\ndev {cell_runs[0].main_metric}", fontsize=9)
        if not np.isnan(grid).all():
            fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _replace(path: Path, text: str) -> None:
    """Write-then-rename: a reader (or a parallel job) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def summarize(sweep_dir: Path) -> list[Job]:
    """(Re)write the sweep summary from the job directories; returns the jobs it found.

    Parallel jobs (joblib, SLURM) finish at the same time: the lock makes each read-and-write whole,
    so the last job to finish writes a summary that includes every job."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        what = "is a file, not a directory" if sweep_dir.exists() else "does not exist"
        raise UserError(f"{sweep_dir} {what}: pass a multirun's sweep directory (e.g. outputs/multiruns/DATE/TIME)")
    try:
        lock = open(sweep_dir / LOCK_FILE, "w")
    except OSError as e:
        raise UserError(f"cannot write the summary into {sweep_dir} ({e.strerror}): pass a sweep directory you can write to") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jobs = read_jobs(sweep_dir)
        if not jobs:
            raise UserError(f"{sweep_dir} holds no Hydra jobs (*/.hydra/hydra.yaml): pass a multirun's sweep directory")
        best = best_per_task(jobs)
        _replace(sweep_dir / "summary.csv", csv_text(jobs))
        _replace(sweep_dir / "summary.md", markdown_text(sweep_dir, jobs, best))
        _replace(sweep_dir / "best.yaml", best_text(best))
        tmp_png = sweep_dir / "heatmap.tmp.png"
        plot_heatmap(jobs, tmp_png)
        os.replace(tmp_png, sweep_dir / "heatmap.png")
    return jobs


def print_job_configs(overrides: list[str], config_dir: Path) -> None:
    """What `python -m src.train -m ... --cfg job` means and Hydra refuses (it allows one of --multirun and --cfg):
    compose every job of the multirun, as its basic sweeper splits it (the experiment's hydra.sweeper.params, then the
    command line's sweeps), and print each job's overrides and config. Interpolations stay unresolved, as --cfg prints
    them (e.g. ${hydra:runtime.output_dir}, known only when the job runs)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        base = compose(config_name="config", overrides=fixed, return_hydra_config=True)
        params = [f"{key}={value}" for key, value in (base.hydra.sweeper.get("params") or {}).items()]
        [jobs] = BasicSweeper.split_arguments(parser.parse_overrides(params + overrides), max_batch_size=None)
        for num, job in enumerate(jobs):
            print(f"# job {num}: {' '.join(job)}")
            print(OmegaConf.to_yaml(compose(config_name="config", overrides=job)))


class SweepSummary(Callback):
    """Hydra callback: rewrite the sweep summary after every job of a multirun (failed jobs included)."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        summarize(sweep_dir)
        log.info(f"sweep summary: {sweep_dir / 'summary.md'}")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print("error: give one sweep directory: python -m src.sweep SWEEP_DIR (re)writes summary.csv, summary.md, best.yaml and heatmap.png there", file=sys.stderr)
        return 2
    try:
        summarize(Path(argv[0]))
    except Exception as e:  # a user error (or an unwritable directory) in one line; a bug is raised
        return exit_status(e)
    print((Path(argv[0]) / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
