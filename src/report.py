"""Compare base models: read every run under the given directories and write a leaderboard that says which
differences are real.

    python -m src.report outputs/multiruns/2025-06-01 outputs/runs --out outputs/report [--wandb]

A run is any directory with a status.json or metrics.json (training runs, multirun jobs, src.evaluate
outputs), read by src.runs. --out receives:
- leaderboard.md and leaderboard.csv: one row per (model, the run it started from (model.init_from), finetune,
  selection protocol, protocol and number of few-shot examples): rows that must never be averaged together.
  Per task the main dev metric over that row's runs: mean ± sample standard deviation (ddof=1), the 95%
  confidence interval of the mean (Student's t) and n. Per task, the best row and every row not significantly
  different from it (p >= 0.05: a paired t-test when both ran the same seeds, else Welch's) are marked.
  Then one score per benchmark: GLUE over the GLUE tasks, SuperGLUE over the SuperGLUE tasks; any other
  task counts only in its own column. Failed and unfinished runs are listed below the table, never dropped
  silently, and a cell of fewer than 3 seeds is warned about.
- runs.md and runs.csv: one row per run (model, task, seed, overrides, every dev metric, run time).
- plots/<task>.png (each row's per-seed scores, mean and 95% CI, the marked rows) and plots/heatmap.png.

A benchmark's score, as its leaderboard computes it: a task's score is the mean of its dev metrics (GLUE: MRPC
and QQP F1 and accuracy, STS-B Pearson and Spearman, MNLI matched and mismatched accuracy, so MNLI-m and MNLI-mm
count half each; SuperGLUE: CB accuracy and macro-F1), and the score is the unweighted mean of the task scores
over the tasks the row has (listed beside it); AX is not scored. Its ± is the standard deviation over seeds of
the per-seed score, given only when every task of it ran the same seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from src.config import UserError
from src.lifecycle import one_line_errors, run_command
from src.runs import GLUE_TASKS, Run, read_run
from src.stats import ALPHA, Comparison, Spread, compare, spread

BENCHMARKS = {"glue": "GLUE", "superglue": "SuperGLUE"}  # a score column each, over its tasks only
MIN_SEEDS = 3  # fewer in a cell: its std, interval and tests are warned about
METRIC_ABBREVIATIONS = {"matthews_correlation": "mcc", "accuracy": "acc", "f1": "F1", "pearson": "pearson", "spearmanr": "spearman"}
# config keys that may differ between the runs of one leaderboard cell without making them different experiments
NOT_EXPERIMENT_KEYS = ("seed", "output_dir", "predict", "submission_dir", "data.glue_dir", "data.cache_dir", "logger.", "trainer.progress_bar", "analysis.")


def row_key(run: Run) -> tuple:
    """What makes runs one leaderboard row: everything but the seed that changes what the numbers mean."""
    init = run.init_from
    return (run.model or "?", init["task"] if init else None, run.finetune, run.selection, run.protocol, run.num_fewshot)


@dataclass
class Cell:
    """The runs of one leaderboard row on one task."""

    metric: str
    benchmark: str | None
    runs: list[Run]
    versus_best: Comparison | None = None  # the test against the task's best row (None: the best itself, or untestable)
    tied_best: bool = False  # the best row, or not significantly different from it

    @property
    def values(self) -> list[float]:
        return [r.metrics["main_metric_value"] for r in self.runs]

    @property
    def spread(self) -> Spread:
        return spread(self.values)

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs)


@dataclass
class Row:
    model: str
    init_task: str | None  # the task of the run it started from (model.init_from)
    finetune: str
    selection: str
    protocol: str
    num_fewshot: int | None
    cells: dict[str, Cell] = field(default_factory=dict)  # task -> cell, in leaderboard order

    @property
    def label(self) -> str:
        label = self.model + (f" ← {self.init_task}" if self.init_task else "")
        label += "" if self.finetune == "full" else f" [{self.finetune}]"
        label += "" if self.protocol == "finetune" else f" [{self.protocol}{'' if self.num_fewshot is None else f', {self.num_fewshot}-shot'}]"
        return label + ("" if self.selection == "dev" else f" (selected on {self.selection})")

    def benchmark_cells(self, benchmark: str) -> dict[str, Cell]:
        return {task: cell for task, cell in self.cells.items() if cell.benchmark == benchmark}

    def score(self, benchmark: str) -> float | None:
        """The benchmark's score: the unweighted mean over its tasks of each task's mean task score."""
        cells = self.benchmark_cells(benchmark)
        return statistics.fmean(statistics.fmean(r.task_score for r in cell.runs) for cell in cells.values()) if cells else None

    def score_per_seed(self, benchmark: str) -> list[float] | None:
        """The benchmark's score of each seed, when every task of it ran the same seeds once each."""
        cells = self.benchmark_cells(benchmark)
        seed_sets = {tuple(cell.seeds) for cell in cells.values()}
        if len(seed_sets) != 1:
            return None
        seeds = seed_sets.pop()
        if len(set(seeds)) != len(seeds):
            return None
        by_seed = {(task, r.seed): r.task_score for task, cell in cells.items() for r in cell.runs}
        return [statistics.fmean(by_seed[task, seed] for task in cells) for seed in seeds]

    def score_std(self, benchmark: str) -> float | None:
        per_seed = self.score_per_seed(benchmark)
        return spread(per_seed).std if per_seed else None


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
    """One row per row_key, best benchmark score first; each task's best row and its ties marked."""
    rows: dict[tuple, Row] = {}
    for run in sorted((r for r in runs if r.status == "completed"), key=lambda r: (_task_order(r.task, r.benchmark), r.seed if r.seed is not None else -1, str(r.path))):
        row = rows.setdefault(row_key(run), Row(*row_key(run)))
        row.cells.setdefault(run.task, Cell(run.metrics["main_metric"], run.benchmark, [])).runs.append(run)
    ordered = sorted(rows.values(), key=lambda row: (*(-(row.score(b) if row.score(b) is not None else -np.inf) for b in BENCHMARKS), row.label))
    mark_best(ordered)
    return ordered


def mark_best(rows: list[Row]) -> None:
    """Per task: the row with the best mean, and the rows whose runs are not significantly different from its
    (src.stats.compare: paired over shared seeds, else Welch; p >= ALPHA). A row of a single run cannot be tested:
    the best is the best of the rows with several runs (if any), so that a lucky single run does not hide the others."""
    for task in leaderboard_tasks(rows):
        cells = [row.cells[task] for row in rows if task in row.cells]
        best = max([c for c in cells if len(c.runs) > 1] or cells, key=lambda c: c.spread.mean)
        best.tied_best = True
        for cell in cells:
            if cell is not best:
                cell.versus_best = compare(_seed_values(best), _seed_values(cell))
                cell.tied_best = cell.versus_best is not None and cell.versus_best.p_value >= ALPHA


def _seed_values(cell: Cell) -> list[tuple[int | None, float]]:
    return [(r.seed, v) for r, v in zip(cell.runs, cell.values)]


def _task_order(task: str | None, benchmark: str | None) -> tuple:
    """GLUE tasks in the GLUE paper's order, then SuperGLUE's, then every other task, by name."""
    rank = list(BENCHMARKS).index(benchmark) if benchmark in BENCHMARKS else len(BENCHMARKS)
    return (rank, GLUE_TASKS.index(task) if task in GLUE_TASKS else len(GLUE_TASKS), task or "")


def leaderboard_tasks(rows: list[Row]) -> list[str]:
    benchmark_of = {task: cell.benchmark for row in rows for task, cell in row.cells.items()}
    return sorted(benchmark_of, key=lambda task: _task_order(task, benchmark_of[task]))


def leaderboard_benchmarks(rows: list[Row]) -> list[str]:
    return [b for b in BENCHMARKS if any(row.benchmark_cells(b) for row in rows)]


def caveats(rows: list[Row]) -> list[str]:
    """What makes a cell's figures weaker than they look: few seeds, repeated seeds, runs that differ in config."""
    notes = []
    for row in rows:
        for task, cell in row.cells.items():
            where = f"{task} / {row.label}"
            if len(cell.runs) < MIN_SEEDS:
                notes.append(f"{where}: {len(cell.runs)} run(s), fewer than {MIN_SEEDS} seeds: its std, confidence interval and significance are unreliable")
            repeated = sorted({s for s in cell.seeds if cell.seeds.count(s) > 1})
            if repeated:
                notes.append(f"{where}: seed(s) {', '.join(map(str, repeated))} counted more than once ({len(cell.runs)} runs)")
            configs = [_flatten(r.config) for r in cell.runs]
            differing = sorted(
                key
                for key in {k for c in configs for k in c}
                if not key.startswith(NOT_EXPERIMENT_KEYS) and len({json.dumps(c.get(key), sort_keys=True) for c in configs}) > 1
            )
            if differing:
                notes.append(f"{where}: the runs differ in {', '.join(differing)}, not only in the seed")
    return notes


# ---------------------------------------------------------------- writing


def _metric_label(task: str, rows: list[Row]) -> str:
    metric = next(row.cells[task].metric for row in rows if task in row.cells)
    return f"{task} ({METRIC_ABBREVIATIONS.get(metric, metric)})"


def _mean_std(mean: float, std: float | None, n: int) -> str:
    return f"{mean:.4f} ± {std:.4f} (n={n})" if std is not None else f"{mean:.4f} (n={n})"


def _cell_md(cell: Cell) -> str:
    """mean ± std [95% CI] (n), bold when best or not significantly different, with the p-value against the best."""
    s = cell.spread
    text = f"{s.mean:.4f} ± {s.std:.4f}" if s.std is not None else f"{s.mean:.4f}"
    text = f"**{text}**" if cell.tied_best else text
    if s.ci_low is not None:
        text += f" [{s.ci_low:.4f}, {s.ci_high:.4f}]"
    text += f" (n={s.n}"
    if cell.versus_best is not None:
        text += f", p={cell.versus_best.p_value:.3f}"
    return text + ")"


def _score_md(row: Row, benchmark: str) -> str:
    score = row.score(benchmark)
    if score is None:
        return ""
    per_seed = row.score_per_seed(benchmark)
    return _mean_std(score, row.score_std(benchmark), len(per_seed)) if per_seed is not None else f"{score:.4f}"


def write_leaderboard_csv(path: Path, rows: list[Row], tasks: list[str], benchmarks: list[str]) -> tuple[list[str], list[list]]:
    columns = ["model", "init_from", "finetune", "selection", "protocol", "num_fewshot"]
    for task in tasks:
        columns += [f"{task}_{key}" for key in ("metric", "mean", "std", "ci_low", "ci_high", "n", "test_vs_best", "p_vs_best", "best_or_tied")]
    for benchmark in benchmarks:
        columns += [f"{benchmark}_{key}" for key in ("mean", "std", "n", "tasks")]
    table = []
    for row in rows:
        values: list = [row.model, row.init_task, row.finetune, row.selection, row.protocol, row.num_fewshot]
        for task in tasks:
            cell = row.cells.get(task)
            if cell is None:
                values += [None] * 5 + [0, None, None, False]
                continue
            s, versus = cell.spread, cell.versus_best
            values += [cell.metric, s.mean, s.std, s.ci_low, s.ci_high, s.n, versus and versus.test, versus and versus.p_value, cell.tied_best]
        for benchmark in benchmarks:
            per_seed = row.score_per_seed(benchmark)
            cells = row.benchmark_cells(benchmark)
            values += [row.score(benchmark), row.score_std(benchmark), len(per_seed) if per_seed is not None and cells else None, " ".join(cells)]
        table.append(values)
    _write_csv(path, columns, table)
    return columns, table


def write_runs_table(out: Path, runs: list[Run]) -> tuple[list[str], list[list]]:
    metric_names = sorted({m for r in runs for m in r.metrics.get("best", {})})
    columns = ["run", "status", "model", "init_from", "finetune", "task", "benchmark", "task_type", "seed", "selection", "protocol", "overrides", "main_metric", "main_metric_value", "task_score"]
    columns += [f"dev_{m}" for m in metric_names]
    columns += ["best_step", "steps", "train_runtime_s", "total_runtime_s", "train_samples_per_second", "num_parameters", "trainable_parameters", "error"]
    table = []
    for r in sorted(runs, key=lambda r: (r.model or "", _task_order(r.task, r.benchmark), r.seed if r.seed is not None else -1, str(r.path))):
        m, done = r.metrics, r.status == "completed"
        values = [str(r.path), r.status, r.model, r.init_from and r.init_from["run_dir"], r.finetune, r.task, r.benchmark, r.task_type, r.seed, r.selection, r.protocol, " ".join(r.overrides)]
        values += [m.get("main_metric"), r.value, r.task_score if done else None]
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


def write_leaderboard_md(path: Path, rows: list[Row], tasks: list[str], benchmarks: list[str], runs: list[Run], notes: list[str]) -> str:
    header = ["model", "finetune", "selection", "protocol", *(_metric_label(t, rows) for t in tasks)]
    for benchmark in benchmarks:
        header += [f"{BENCHMARKS[benchmark]} score", f"{BENCHMARKS[benchmark]} tasks"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        protocol = row.protocol + ("" if row.num_fewshot is None else f" ({row.num_fewshot}-shot)")
        values = [row.model + (f" ← {row.init_task}" if row.init_task else ""), row.finetune, row.selection, protocol]
        values += [_cell_md(c) if (c := row.cells.get(t)) else "" for t in tasks]
        for benchmark in benchmarks:
            cells = row.benchmark_cells(benchmark)
            values += [_score_md(row, benchmark), f"{', '.join(cells)} ({len(cells)}/{len(GLUE_TASKS)})" if benchmark == "glue" else ", ".join(cells)]
        lines.append("| " + " | ".join(values) + " |")
    table = "\n".join(lines)
    completed = sum(r.status == "completed" for r in runs)
    scores = " and ".join(f"{BENCHMARKS[b]} score" for b in benchmarks) or "Benchmark scores"
    text = [
        "# Leaderboard",
        "",
        f"{completed} completed run(s) of {len(runs)}, read {time.strftime('%Y-%m-%d %H:%M')}. Each task: the main dev metric, "
        "mean ± sample standard deviation (ddof=1) over the row's runs, [the 95% confidence interval of the mean] (n = runs, one per seed).",
        f"**Bold**: the task's best row, and every row not significantly different from it (p >= {ALPHA}, p given: a paired t-test "
        "when both rows ran the same seeds, else Welch's t-test; two-sided, not corrected for the number of comparisons). "
        "A row of a single run cannot be tested: it is marked only when no row of the task has several runs.",
        f"{scores}: per task the mean of its dev metrics (GLUE: MRPC, QQP F1 and accuracy; STS-B Pearson and Spearman; "
        "MNLI matched and mismatched accuracy; SuperGLUE: CB accuracy and macro-F1), averaged over that benchmark's tasks listed; "
        "± over seeds when every one of them ran the same seeds. Tasks of no benchmark count only in their own column.",
        "selection: the split that chose each run's checkpoint (dev: the reported dev set itself, which inflates the score; "
        "train_holdout: a held-out part of train, dev untouched). model ← task: started from a run fine-tuned on that task (model.init_from).",
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
    """Each row's per-seed scores, its mean and 95% CI; the best row and its ties (bold in the leaderboard) starred."""
    present = [row for row in rows if task in row.cells]
    metric = present[0].cells[task].metric
    fig = Figure(figsize=(1.6 + 1.3 * len(present), 4.4), layout="constrained")
    ax = fig.subplots()
    for x, row in enumerate(present):
        cell = row.cells[task]
        s = cell.spread
        offsets = np.linspace(-0.12, 0.12, s.n) if s.n > 1 else [0.0]
        ax.scatter(x + np.asarray(offsets), cell.values, s=22, alpha=0.7, color=f"C{x}", label="seeds" if x == 0 else None)
        yerr = [[s.mean - s.ci_low], [s.ci_high - s.mean]] if s.ci_low is not None else None
        ax.errorbar(x, s.mean, yerr=yerr, fmt="_", markersize=26, capsize=8, color="black", label="mean, 95% CI" if x == 0 else None)
        if cell.tied_best:
            ax.annotate("★", (x, s.ci_high if s.ci_high is not None else s.mean), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=13, color="darkorange")
    ax.set_xticks(range(len(present)), [row.label for row in present], rotation=20 if len(present) > 3 else 0, ha="right" if len(present) > 3 else "center")
    for tick, row in zip(ax.get_xticklabels(), present):
        tick.set_fontweight("bold" if row.cells[task].tied_best else "normal")
    ax.set_xlim(-0.6, len(present) - 0.4)
    ax.set(ylabel=f"dev {metric}", title=f"{task}: {metric} per seed\n★ best, or not significantly different from it (p ≥ {ALPHA})")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    fig.savefig(path, dpi=110)


def plot_heatmap(path: Path, rows: list[Row], tasks: list[str], benchmarks: list[str]) -> None:
    means = np.array([[row.cells[t].spread.mean if t in row.cells else np.nan for t in tasks] + [np.nan if row.score(b) is None else row.score(b) for b in benchmarks] for row in rows])
    labels = [_metric_label(t, rows) for t in tasks] + [f"{BENCHMARKS[b]} score" for b in benchmarks]
    fig = Figure(figsize=(2.5 + 1.25 * len(labels), 1.4 + 0.55 * len(rows)), layout="constrained")
    ax = fig.subplots()
    shown = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto")
    fig.colorbar(shown, ax=ax, label="mean dev score")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(rows)), [row.label for row in rows])
    low, high = np.nanmin(means), np.nanmax(means)
    for (i, j), value in np.ndenumerate(means):
        if np.isnan(value):
            continue
        std = rows[i].cells[tasks[j]].spread.std if j < len(tasks) else rows[i].score_std(benchmarks[j - len(tasks)])
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


def write_report(roots: list[Path], out: Path, wandb_project: str | None = None, wandb_entity: str | None = None) -> tuple[str, list[str]]:
    """Read the runs under roots, write the report into out; returns the leaderboard table (markdown) and its caveats."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory: choose another --out")
    runs = find_runs(roots)
    rows = build_leaderboard(runs)
    tasks, benchmarks = leaderboard_tasks(rows), leaderboard_benchmarks(rows)
    notes = caveats(rows)
    try:
        (out / "plots").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write the report into {out} ({e.strerror}): choose another --out") from None
    board = write_leaderboard_csv(out / "leaderboard.csv", rows, tasks, benchmarks)
    per_run = write_runs_table(out, runs)
    table = write_leaderboard_md(out / "leaderboard.md", rows, tasks, benchmarks, runs, notes)
    plots = []
    for task in tasks:
        plot_task(out / "plots" / f"{task}.png", task, rows)
        plots.append(out / "plots" / f"{task}.png")
    if rows:
        plot_heatmap(out / "plots" / "heatmap.png", rows, tasks, benchmarks)
        plots.append(out / "plots" / "heatmap.png")
    if wandb_project:
        log_to_wandb(out, wandb_project, wandb_entity, {"leaderboard": board, "runs": per_run}, plots)
    return table, notes


def main(argv: list[str] | None = None) -> None:
    parser = one_line_errors(argparse.ArgumentParser(prog="python -m src.report", description=__doc__.split("\n\n")[0]))
    parser.add_argument("dirs", nargs="+", type=Path, help="run directories, or folders holding runs (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("outputs/report"), help="where the report goes (default: outputs/report)")
    parser.add_argument("--wandb", action="store_true", help="also log the leaderboard, the per-run table and the plots to W&B (offline without an API key)")
    parser.add_argument("--wandb-project", default="basebench", help="W&B project (default: basebench)")
    parser.add_argument("--wandb-entity", default=None, help="W&B team or user (default: yours)")
    args = run_command(lambda: parser.parse_args(argv))
    table, notes = run_command(lambda: write_report(args.dirs, args.out, args.wandb_project if args.wandb else None, args.wandb_entity))
    print(table)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    print(f"\nreport in {args.out}: leaderboard.md, leaderboard.csv, runs.md, runs.csv, plots/")


if __name__ == "__main__":
    main()
