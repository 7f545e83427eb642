"""Compare base models: read every run under the given directories and write a leaderboard.

    python -m src.report outputs/multiruns/2025-06-01 outputs/runs --out outputs/report [--wandb]

A run is any directory with a status.json or metrics.json (training runs, multirun jobs, src.evaluate
outputs). --out receives:
- leaderboard.md and leaderboard.csv: one row per (model, finetune, selection protocol); per task the
  main dev metric as mean ± sample standard deviation (ddof=1) over that row's runs, and their number;
  the GLUE score. Failed and unfinished runs are listed below the table, never dropped silently.
- runs.md and runs.csv: one row per run (model, task, seed, overrides, every dev metric, run time).
- plots/<task>.png (each row's per-seed scores, mean and ± std) and plots/heatmap.png (row x task).

GLUE score, as the GLUE leaderboard computes it: a task's score is the mean of its dev metrics (MRPC
and QQP: F1 and accuracy; STS-B: Pearson and Spearman; MNLI: matched and mismatched accuracy, so
MNLI-m and MNLI-mm count half each), and the GLUE score is the unweighted mean of the task scores over
the tasks the row has (listed beside it); AX is not scored. Its ± is the standard deviation over seeds
of the per-seed GLUE score, given only when every task of the row ran the same seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure

from src.config import UserError
from src.lifecycle import one_line_errors, run_command

GLUE_ORDER = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
METRIC_ABBREVIATIONS = {"matthews_correlation": "mcc", "accuracy": "acc", "f1": "F1", "pearson": "pearson", "spearmanr": "spearman"}
# config keys that may differ between the runs of one leaderboard cell without making them different experiments
NOT_EXPERIMENT_KEYS = ("seed", "output_dir", "predict", "submission_dir", "data.glue_dir", "data.cache_dir", "logger.", "trainer.progress_bar", "analysis.")


@dataclass
class Run:
    path: Path
    status: str  # completed | failed | running (unfinished: still running, or killed) | incomplete
    error: str | None
    task: str | None
    model: str | None
    finetune: str
    selection: str  # the split that chose the checkpoint: dev | train_holdout | unknown
    seed: int | None
    overrides: list[str]
    metrics: dict  # metrics.json ({} when absent)
    config: dict  # config.yaml flattened ({} when absent)

    @property
    def row_key(self) -> tuple[str, str, str]:
        return (self.model or "?", self.finetune, self.selection)

    @property
    def task_score(self) -> float:
        """GLUE's score for the task: the mean of all its dev metrics (MNLI: matched and mismatched)."""
        return statistics.mean(self.metrics["best"].values())


@dataclass
class Cell:
    """The runs of one leaderboard row on one task."""

    metric: str
    runs: list[Run]

    @property
    def values(self) -> list[float]:
        return [r.metrics["main_metric_value"] for r in self.runs]

    @property
    def mean(self) -> float:
        return statistics.mean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs)


@dataclass
class Row:
    model: str
    finetune: str
    selection: str
    cells: dict[str, Cell] = field(default_factory=dict)  # task -> cell, in GLUE order

    @property
    def glue_mean(self) -> float:
        return statistics.mean(statistics.mean(r.task_score for r in cell.runs) for cell in self.cells.values())

    @property
    def glue_per_seed(self) -> list[float] | None:
        """The GLUE score of each seed, when every task ran the same seeds once each."""
        seed_sets = {tuple(cell.seeds) for cell in self.cells.values()}
        if len(seed_sets) != 1:
            return None
        seeds = seed_sets.pop()
        if len(set(seeds)) != len(seeds):
            return None
        by_seed = {(task, r.seed): r.task_score for task, cell in self.cells.items() for r in cell.runs}
        return [statistics.mean(by_seed[task, seed] for task in self.cells) for seed in seeds]

    @property
    def glue_std(self) -> float | None:
        per_seed = self.glue_per_seed
        return statistics.stdev(per_seed) if per_seed is not None and len(per_seed) > 1 else None


# ---------------------------------------------------------------- reading runs


def find_runs(roots: list[Path]) -> list[Run]:
    run_dirs: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            raise UserError(f"{root} {'is a file, not a directory' if root.exists() else 'does not exist'}: pass run directories or folders that hold runs (e.g. outputs/multiruns)")
        run_dirs |= {p.parent for marker in ("status.json", "metrics.json") for p in root.rglob(marker)}
    if not run_dirs:
        raise UserError(f"no runs found under {', '.join(map(str, roots))}: a run directory holds status.json or metrics.json")
    return [read_run(d) for d in sorted(run_dirs)]


def read_run(path: Path) -> Run:
    status = _read_json(path / "status.json")
    metrics = _read_json(path / "metrics.json")
    config = _read_yaml(path / "config.yaml") or _read_yaml(path / ".hydra" / "config.yaml")  # a run that failed validation has only Hydra's
    state = status.get("status") or metrics.get("status") or "running"
    error = status.get("error")
    if state == "completed" and "best" not in metrics:
        state, error = "incomplete", "status says completed but metrics.json is missing or unreadable"
    finetune = metrics.get("finetune") or config.get("finetune") or "full"
    selection = metrics.get("selection_split") or "unknown"
    overrides = metrics.get("overrides")
    if overrides is None:
        overrides = _read_yaml(path / ".hydra" / "overrides.yaml") or []
    return Run(
        path=path,
        status=state,
        error=error,
        task=metrics.get("task") or config.get("task", {}).get("name"),
        model=metrics.get("model") or config.get("model", {}).get("name"),
        finetune=finetune["name"] if isinstance(finetune, dict) else str(finetune),
        selection=selection,
        seed=metrics.get("seed", config.get("seed")),
        overrides=list(overrides),
        metrics=metrics,
        config=_flatten(config),
    )


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


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ---------------------------------------------------------------- aggregating


def build_leaderboard(runs: list[Run]) -> list[Row]:
    """One row per (model, finetune, selection), best GLUE score first."""
    rows: dict[tuple[str, str, str], Row] = {}
    for run in sorted((r for r in runs if r.status == "completed"), key=lambda r: (_task_order(r.task), r.seed if r.seed is not None else -1, str(r.path))):
        row = rows.setdefault(run.row_key, Row(*run.row_key))
        row.cells.setdefault(run.task, Cell(run.metrics["main_metric"], [])).runs.append(run)
    return sorted(rows.values(), key=lambda row: (-row.glue_mean, row.model, row.finetune, row.selection))


def _task_order(task: str | None) -> tuple[int, str]:
    return (GLUE_ORDER.index(task) if task in GLUE_ORDER else len(GLUE_ORDER), task or "")


def leaderboard_tasks(rows: list[Row]) -> list[str]:
    return sorted({task for row in rows for task in row.cells}, key=_task_order)


def caveats(rows: list[Row]) -> list[str]:
    """What makes a cell's spread more than seed noise: repeated seeds, or runs that differ in config."""
    notes = []
    for row in rows:
        for task, cell in row.cells.items():
            where = f"{task} / {_row_label(row)}"
            repeated = sorted({s for s in cell.seeds if cell.seeds.count(s) > 1})
            if repeated:
                notes.append(f"{where}: seed(s) {', '.join(map(str, repeated))} counted more than once ({len(cell.runs)} runs)")
            differing = sorted(
                key
                for key in {k for r in cell.runs for k in r.config}
                if not key.startswith(NOT_EXPERIMENT_KEYS) and len({json.dumps(r.config.get(key), sort_keys=True) for r in cell.runs}) > 1
            )
            if differing:
                notes.append(f"{where}: the runs differ in {', '.join(differing)}, not only in the seed")
    return notes


# ---------------------------------------------------------------- writing


def _row_label(row: Row) -> str:
    return row.model + ("" if row.finetune == "full" else f" [{row.finetune}]") + ("" if row.selection == "dev" else f" (selected on {row.selection})")


def _metric_label(task: str, rows: list[Row]) -> str:
    metric = next(row.cells[task].metric for row in rows if task in row.cells)
    return f"{task} ({METRIC_ABBREVIATIONS.get(metric, metric)})"


def _mean_std(mean: float, std: float | None, n: int) -> str:
    return f"{mean:.4f} ± {std:.4f} (n={n})" if std is not None else f"{mean:.4f} (n={n})"


def write_leaderboard_csv(path: Path, rows: list[Row], tasks: list[str]) -> tuple[list[str], list[list]]:
    columns = ["model", "finetune", "selection"]
    for task in tasks:
        columns += [f"{task}_metric", f"{task}_mean", f"{task}_std", f"{task}_n"]
    columns += ["glue_mean", "glue_std", "glue_n", "glue_tasks"]
    table = []
    for row in rows:
        values: list = [row.model, row.finetune, row.selection]
        for task in tasks:
            cell = row.cells.get(task)
            values += [cell.metric, cell.mean, cell.std, len(cell.runs)] if cell else [None, None, None, 0]
        per_seed = row.glue_per_seed
        values += [row.glue_mean, row.glue_std, len(per_seed) if per_seed is not None else None, " ".join(row.cells)]
        table.append(values)
    _write_csv(path, columns, table)
    return columns, table


def write_runs_table(out: Path, runs: list[Run]) -> tuple[list[str], list[list]]:
    metric_names = sorted({m for r in runs for m in r.metrics.get("best", {})})
    columns = ["run", "status", "model", "finetune", "task", "seed", "selection", "overrides", "main_metric", "main_metric_value", "task_score"]
    columns += [f"dev_{m}" for m in metric_names]
    columns += ["best_step", "steps", "train_runtime_s", "total_runtime_s", "train_samples_per_second", "num_parameters", "trainable_parameters", "error"]
    table = []
    for r in sorted(runs, key=lambda r: (r.model or "", _task_order(r.task), r.seed if r.seed is not None else -1, str(r.path))):
        m, done = r.metrics, r.status == "completed"
        values = [str(r.path), r.status, r.model, r.finetune, r.task, r.seed, r.selection, " ".join(r.overrides)]
        values += [m.get("main_metric"), m.get("main_metric_value"), r.task_score if done else None]
        values += [m.get("best", {}).get(name) for name in metric_names]
        values += [m.get(k) for k in ("best_step", "steps", "train_runtime_s", "total_runtime_s", "train_samples_per_second", "num_parameters", "trainable_parameters")]
        values.append(r.error)
        table.append(values)
    _write_csv(out / "runs.csv", columns, table)
    lines = ["# Runs", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_value(v) for v in values) + " |" for values in table]
    (out / "runs.md").write_text("\n".join(lines) + "\n")
    return columns, table


def _md_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def _write_csv(path: Path, columns: list[str], table: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in values] for values in table])


def write_leaderboard_md(path: Path, rows: list[Row], tasks: list[str], runs: list[Run], notes: list[str]) -> str:
    header = ["model", "finetune", "selection", *(_metric_label(t, rows) for t in tasks), "GLUE score", "GLUE tasks"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_mean_std(c.mean, c.std, len(c.runs)) if (c := row.cells.get(t)) else "" for t in tasks]
        per_seed = row.glue_per_seed
        glue = _mean_std(row.glue_mean, row.glue_std, len(per_seed)) if per_seed is not None else f"{row.glue_mean:.4f}"
        lines.append("| " + " | ".join([row.model, row.finetune, row.selection, *cells, glue, f"{', '.join(row.cells)} ({len(row.cells)}/{len(GLUE_ORDER)})"]) + " |")
    table = "\n".join(lines)
    completed = sum(r.status == "completed" for r in runs)
    text = [
        "# Leaderboard",
        "",
        f"{completed} completed run(s) of {len(runs)}, read {time.strftime('%Y-%m-%d %H:%M')}. Each task: the main dev metric, "
        "mean ± sample standard deviation (ddof=1) over the row's runs (n = runs, one per seed).",
        "GLUE score: per task the mean of its dev metrics (MRPC, QQP: F1 and accuracy; STS-B: Pearson and Spearman; "
        "MNLI: matched and mismatched accuracy), averaged over the tasks listed; ± over seeds when every task ran the same seeds.",
        "selection: the split that chose each run's checkpoint (dev: the reported dev set itself, which inflates the score; "
        "train_holdout: a held-out part of train, dev untouched).",
        "",
        table,
        "",
        "Plots: [per task](plots/), [heatmap](plots/heatmap.png). Every run: [runs.md](runs.md), [runs.csv](runs.csv).",
    ]
    left_out = [r for r in runs if r.status != "completed"]
    if left_out:
        text += ["", f"## Runs not in the leaderboard ({len(left_out)})", "", "| run | status | task | model | seed | error |", "|---|---|---|---|---|---|"]
        for r in left_out:
            why = r.error or ("no end recorded: still running, or killed" if r.status == "running" else "")
            text.append(f"| {r.path} | {r.status} | {r.task or '?'} | {r.model or '?'} | {'' if r.seed is None else r.seed} | {why} |")
    if notes:
        text += ["", "## Caveats", "", *(f"- {note}" for note in notes)]
    path.write_text("\n".join(text) + "\n")
    return table


def plot_task(path: Path, task: str, rows: list[Row]) -> None:
    present = [row for row in rows if task in row.cells]
    metric = present[0].cells[task].metric
    fig = Figure(figsize=(1.6 + 1.3 * len(present), 4.2), layout="constrained")
    ax = fig.subplots()
    for x, row in enumerate(present):
        cell = row.cells[task]
        offsets = np.linspace(-0.12, 0.12, len(cell.values)) if len(cell.values) > 1 else [0.0]
        ax.scatter(x + np.asarray(offsets), cell.values, s=22, alpha=0.7, color=f"C{x}", label="seeds" if x == 0 else None)
        ax.errorbar(x, cell.mean, yerr=cell.std or 0.0, fmt="_", markersize=26, capsize=8, color="black", label="mean ± std" if x == 0 else None)
    ax.set_xticks(range(len(present)), [_row_label(r) for r in present], rotation=20 if len(present) > 3 else 0, ha="right" if len(present) > 3 else "center")
    ax.set_xlim(-0.6, len(present) - 0.4)
    ax.set(ylabel=f"dev {metric}", title=f"{task}: {metric} per seed")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    fig.savefig(path, dpi=110)


def plot_heatmap(path: Path, rows: list[Row], tasks: list[str]) -> None:
    columns = [*tasks, "GLUE"]
    means = np.array([[row.cells[t].mean if t in row.cells else np.nan for t in tasks] + [row.glue_mean] for row in rows])
    fig = Figure(figsize=(2.5 + 1.25 * len(columns), 1.4 + 0.55 * len(rows)), layout="constrained")
    ax = fig.subplots()
    shown = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto")
    fig.colorbar(shown, ax=ax, label="mean dev score")
    ax.set_xticks(range(len(columns)), [_metric_label(t, rows) for t in tasks] + ["GLUE score"])
    ax.set_yticks(range(len(rows)), [_row_label(r) for r in rows])
    low, high = np.nanmin(means), np.nanmax(means)
    for (i, j), value in np.ndenumerate(means):
        if np.isnan(value):
            continue
        std = rows[i].cells[columns[j]].std if j < len(tasks) else rows[i].glue_std
        label = f"{value:.3f}" + (f"\n±{std:.3f}" if std is not None else "")
        ax.text(j, i, label, ha="center", va="center", fontsize=8, color="black" if value > (low + high) / 2 else "white")
    ax.set_title("mean dev score per model and task")
    fig.savefig(path, dpi=110)


def log_to_wandb(out: Path, project: str, entity: str | None, tables: dict[str, tuple[list[str], list[list]]], plots: list[Path]) -> None:
    """The leaderboard and per-run tables as W&B Tables, and the plots, in a run of job_type report."""
    import wandb

    from src.tracking import wandb_mode

    run = wandb.init(project=project, entity=entity, job_type="report", name=f"report-{time.strftime('%Y%m%d-%H%M%S')}", dir=str(out), mode=wandb_mode(None), config={"out": str(out)})
    run.log({name: wandb.Table(columns=columns, data=table) for name, (columns, table) in tables.items()} | {f"plots/{p.stem}": wandb.Image(str(p)) for p in plots})
    run.finish()


def write_report(roots: list[Path], out: Path, wandb_project: str | None = None, wandb_entity: str | None = None) -> str:
    """Read the runs under roots, write the report into out; returns the leaderboard table (markdown)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory: choose another --out")
    runs = find_runs(roots)
    rows = build_leaderboard(runs)
    tasks = leaderboard_tasks(rows)
    try:
        (out / "plots").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write the report into {out} ({e.strerror}): choose another --out") from None
    board = write_leaderboard_csv(out / "leaderboard.csv", rows, tasks)
    per_run = write_runs_table(out, runs)
    table = write_leaderboard_md(out / "leaderboard.md", rows, tasks, runs, caveats(rows))
    plots = []
    for task in tasks:
        plot_task(out / "plots" / f"{task}.png", task, rows)
        plots.append(out / "plots" / f"{task}.png")
    if rows:
        plot_heatmap(out / "plots" / "heatmap.png", rows, tasks)
        plots.append(out / "plots" / "heatmap.png")
    if wandb_project:
        log_to_wandb(out, wandb_project, wandb_entity, {"leaderboard": board, "runs": per_run}, plots)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = one_line_errors(argparse.ArgumentParser(prog="python -m src.report", description=__doc__.split("\n\n")[0]))
    parser.add_argument("dirs", nargs="+", type=Path, help="run directories, or folders holding runs (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("outputs/report"), help="where the report goes (default: outputs/report)")
    parser.add_argument("--wandb", action="store_true", help="also log the leaderboard, the per-run table and the plots to W&B (offline without an API key)")
    parser.add_argument("--wandb-project", default="basebench", help="W&B project (default: basebench)")
    parser.add_argument("--wandb-entity", default=None, help="W&B team or user (default: yours)")
    args = run_command(lambda: parser.parse_args(argv))
    table = run_command(lambda: write_report(args.dirs, args.out, args.wandb_project if args.wandb else None, args.wandb_entity))
    print(table)
    print(f"\nreport in {args.out}: leaderboard.md, leaderboard.csv, runs.md, runs.csv, plots/")


if __name__ == "__main__":
    main()
