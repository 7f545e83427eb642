"""`make bench`: speed ratios measured inside one run, on the same model, data and batches.

This machine is shared and noisy, so only ratios between measurements taken side by side mean
anything: the two sides of a throughput ratio run in turn, several rounds, on the same batches,
and each step's fastest repeat counts (see `alternate`). Results go to BENCHMARKS.md.
Run: python -m benchmarks.run [--steps N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import GLUE_DIR, ROOT, build, machine, make_cfg, python, run_bare, run_ours, step_times, timed_subprocess
from benchmarks.lmeval import bench_speed

MODEL = "minilm-l6"
# a random decoder of about MiniLM's compute per token (4 layers of width 384), for the loop's overhead on decoders
DECODER = ("model=tiny-llama", "model.num_layers=4", "model.hidden_size=384", "model.num_heads=6")


def alternate(measure_a, measure_b, rounds: int, batch_size: int) -> tuple[float, float, float, float]:
    """Throughput ratio a/b from `rounds` runs of each side, taken side by side.

    Every run of a side trains on the same batches, so step k of one round repeats step k of the
    others: the fastest of its repeats is that step's time with the machine's noise (other
    tenants, a stray collection) filtered out, and throughput is batch_size * steps / the sum of
    those times. The order flips every round (a b, b a, ...) so neither side always runs first.
    Returns (ratio, a samples/s, b samples/s, median ratio of whole runs, unfiltered).
    """
    a_runs, b_runs = [], []
    for round_ in range(rounds):
        if round_ % 2:
            b_runs.append(measure_b())
            a_runs.append(measure_a())
        else:
            a_runs.append(measure_a())
            b_runs.append(measure_b())

    def throughput(step_times: list[float]) -> float:
        return batch_size * len(step_times) / sum(step_times)

    a, b = (throughput([min(repeats) for repeats in zip(*runs)]) for runs in (a_runs, b_runs))
    whole_runs = statistics.median(throughput(x) / throughput(y) for x, y in zip(a_runs, b_runs))
    return a / b, a, b, whole_runs


def detail(a: float, b: float, whole_runs: float) -> str:
    return f"{a:.1f} vs {b:.1f} samples/s; whole runs, unfiltered: {whole_runs:.3f}"


def loop_overrides(task: str, steps: int, *extra: str, model: tuple[str, ...] = (f"model={MODEL}",)) -> list[str]:
    # no mid-run evaluation or checkpoint: the loop itself is measured (its final evaluation is excluded from samples/s)
    # log_every_steps=1: each step's log call marks its end (benchmarks.common.run_ours)
    return [f"task={task}", *model, f"trainer.max_steps={steps}", "trainer.log_every_steps=1", "trainer.save_best=false", "trainer.checkpoint_every_steps=0", "data.max_eval_samples=16", *extra]


def bench_loop_vs_bare(steps: int, rounds: int, tmp: Path, model: tuple[str, ...] = (f"model={MODEL}",), name: str = "a. src.train loop / bare PyTorch loop") -> dict:
    cfg = make_cfg(*loop_overrides("cola", steps, "data.group_by_length=false", model=model))
    ratio, ours, bare, whole_runs = alternate(lambda: run_ours(cfg, tmp / f"a{time.time_ns()}"), lambda: run_bare(cfg, steps), rounds, cfg.trainer.batch_size)
    return {"name": f"{name} (CoLA, same batches, no length grouping)", "ratio": ratio, "detail": detail(ours, bare, whole_runs), "target": ">= 0.95"}


def bench_grouping_vs_padding(task: str, steps: int, rounds: int, tmp: Path) -> dict:
    grouped = make_cfg(*loop_overrides(task, steps))
    padded = make_cfg(*loop_overrides(task, steps, "data.group_by_length=false", "data.pad_to_max_length=true"))
    ratio, fast, slow, whole_runs = alternate(lambda: run_ours(grouped, tmp / f"g{time.time_ns()}"), lambda: run_ours(padded, tmp / f"p{time.time_ns()}"), rounds, grouped.trainer.batch_size)
    target = ">= 8" if task == "cola" else "(reported)"
    return {"name": f"b. length grouping + dynamic padding / padding to 128 ({task})", "ratio": ratio, "detail": detail(fast, slow, whole_runs), "target": target}


def data_prep_seconds(task: str, cache_dir: str) -> float:
    """build_data's time in a fresh process, as one job of a sweep (tokenizer loading excluded)."""
    code = (
        "import time; from benchmarks.common import make_cfg; from src.data import build_data; from src.model import load_tokenizer; "
        f"cfg = make_cfg('task={task}', 'model={MODEL}', 'data.cache_dir={cache_dir}'); tokenizer = load_tokenizer(cfg.model); "
        "started = time.perf_counter(); build_data(cfg, tokenizer); print(time.perf_counter() - started)"
    )
    out = subprocess.run([python(), "-c", code], cwd=ROOT, env=_env(), check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_cached_data(task: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        first, second = data_prep_seconds(task, cache), data_prep_seconds(task, cache)
    return {"name": f"c. data preparation, second job / first job ({task})", "ratio": second / first, "detail": f"{second:.3f} s vs {first:.3f} s", "target": "< 0.10"}


def bench_startup(tmp: Path) -> list[dict]:
    imports = statistics.median(timed_subprocess([python(), "-c", "import torch, transformers"]) for _ in range(3))
    cfg_job = statistics.median(timed_subprocess([python(), "-m", "src.train", "--cfg", "job"]) for _ in range(3))
    run_dir = tmp / "startup"
    args = [python(), "-m", "src.train", f"model={MODEL}", "logger=none", "trainer.max_steps=1", "trainer.save_best=false", "data.max_eval_samples=16", f"output_dir={run_dir}"]
    subprocess.run(args, cwd=ROOT, env={"GLUE_DIR": GLUE_DIR, **_env()}, check=True, capture_output=True)
    first_step = json.loads((run_dir / "metrics.json").read_text())["time_to_first_step_s"]
    return [
        {"name": "d. `python -m src.train --cfg job`, seconds", "ratio": cfg_job, "detail": f"`import torch, transformers` takes {imports:.2f} s", "target": "< 2 s"},
        {"name": "d. launch to first training step / `import torch, transformers`", "ratio": first_step / imports, "detail": f"{first_step:.2f} s vs {imports:.2f} s (MiniLM, CoLA, warm cache)", "target": "(reported)"},
    ]


def peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory of one command, measured from a fresh parent so that nothing else counts."""
    code = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    out = subprocess.run([python(), "-c", code, *args], cwd=ROOT, env=_env(), check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def bench_memory(steps: int, tmp: Path) -> dict:
    overrides = loop_overrides("cola", steps, "data.group_by_length=false")
    ours = peak_rss_mb([python(), "-m", "src.train", "logger=none", f"data.glue_dir={GLUE_DIR}", *overrides, f"output_dir={tmp / 'rss'}"])
    bare_code = f"from benchmarks.common import make_cfg, run_bare; run_bare(make_cfg(*{overrides!r}), {steps})"
    bare = peak_rss_mb([python(), "-c", bare_code])
    return {"name": "e. peak resident memory, src.train / bare loop", "ratio": ours / bare, "detail": f"{ours:.0f} MB vs {bare:.0f} MB", "target": "<= 1.1"}


def run_hf_trainer(cfg, steps: int, out_dir: Path) -> list[float]:
    """transformers' own Trainer, with length grouping and dynamic padding, on the same data and
    hyperparameters; step times as benchmarks.common.run_ours. Seeded alike, its LengthGroupedSampler
    draws the very batches of src.data.EpochSampler."""
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    class StepEnds(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    tokenizer, data, model = build(cfg)
    train = data.train.dataset
    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=cfg.trainer.batch_size,
        learning_rate=cfg.optimizer.lr,
        weight_decay=cfg.optimizer.weight_decay,
        warmup_steps=round(cfg.scheduler.warmup_ratio * steps),
        max_grad_norm=cfg.trainer.max_grad_norm,
        max_steps=steps,
        seed=cfg.seed,
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        save_strategy="no",
        eval_strategy="no",
        logging_steps=10_000,
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    lengths = data.train.sampler.lengths
    dataset = train.add_column("length", lengths).remove_columns(["idx"])
    step_ends = StepEnds()
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer), callbacks=[step_ends])
    trainer.train()
    return step_times(step_ends.ends)


def bench_vs_hf_trainer(steps: int, rounds: int, tmp: Path) -> dict:
    cfg = make_cfg(*loop_overrides("cola", steps))
    ratio, ours, hf, whole_runs = alternate(lambda: run_ours(cfg, tmp / f"o{time.time_ns()}"), lambda: run_hf_trainer(cfg, steps, tmp / f"hf{time.time_ns()}"), rounds, cfg.trainer.batch_size)
    return {"name": "f. src.train loop / Hugging Face Trainer (group_by_length, dynamic padding, CoLA)", "ratio": ratio, "detail": detail(ours, hf, whole_runs), "target": ">= 1.0"}


def _env() -> dict:
    return {**os.environ, "GLUE_DIR": GLUE_DIR, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def write_markdown(rows: list[dict], args: argparse.Namespace, seconds: float, load: tuple[float, float]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` (`python -m benchmarks.run --steps {args.steps} --rounds {args.rounds}`) on {time.strftime('%Y-%m-%d')}.",
        f"Machine: {machine()}. Model: {MODEL} (all-MiniLM-L6-v2, 22.7M parameters), batch size 32, fp32 on CPU.",
        "The two sides of a throughput ratio (a, b, f) ran in turn, each on the same batches every round; a step's",
        "time is the fastest of its repeats, which filters out the noise of this shared machine (the unfiltered median",
        "ratio of whole runs is in the detail column). Absolute numbers are not comparable between runs.",
        f"The whole run took {seconds / 60:.1f} minutes; the machine's 1-minute load average was {load[0]:.2f} at its start and {load[1]:.2f} at its end.",
        "",
        "| measurement | value | detail | target |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['name']} | {r['ratio']:.3f} | {r['detail']} | {r['target']} |" for r in rows]
    return "\n".join(lines) + "\n"


def replace_rows(text: str, rows: list[dict]) -> str:
    """BENCHMARKS.md with each row's line replaced (same name before its parenthesis), or added after the table's last."""
    lines = text.split("\n")
    for r in rows:
        line = f"| {r['name']} | {r['ratio']:.3f} | {r['detail']} | {r['target']} |"
        key = "| " + r["name"].split(" (")[0] + " ("
        same = [i for i, old in enumerate(lines) if old.startswith(key) and old.split(" | ")[0] == line.split(" | ")[0]]
        if same:
            lines[same[0]] = line
        else:
            last = max(i for i, old in enumerate(lines[: lines.index("## Notes") if "## Notes" in lines else len(lines)]) if old.startswith("| "))
            lines.insert(last + 1, line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per throughput measurement")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side per throughput ratio")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="where to write the results")
    parser.add_argument("--lmeval-python", default=str(ROOT / ".venv-lmeval" / "bin" / "python"), help="h: the python of a venv with lm-eval 0.4.13 (make bench creates .venv-lmeval)")
    parser.add_argument("--only", default=None, help="measure only these rows (letters, e.g. h); the table's other rows are kept as they are")
    args = parser.parse_args()
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        benches = (
            lambda: bench_loop_vs_bare(args.steps, args.rounds, tmp),
            lambda: bench_grouping_vs_padding("cola", args.steps, args.rounds, tmp),
            lambda: bench_grouping_vs_padding("mrpc", args.steps, args.rounds, tmp),
            lambda: bench_cached_data("cola"),
            lambda: bench_cached_data("sst2"),
            lambda: bench_startup(tmp),
            lambda: bench_memory(args.steps, tmp),
            lambda: bench_vs_hf_trainer(args.steps, args.rounds, tmp),
            lambda: bench_loop_vs_bare(args.steps, args.rounds, tmp, DECODER, "g. src.train loop / bare PyTorch loop, decoder: random 4-layer Llama, width 384"),
            lambda: bench_speed(args.lmeval_python, "cola", 0, 64, 32, args.rounds),  # short contexts
            lambda: bench_speed(args.lmeval_python, "rte", 0, 16, 16, args.rounds),  # contexts of ~300 tokens
        )
        letters = "abbccdefghh"  # each bench's row letter, in order
        for letter, bench in zip(letters, benches):
            if args.only and letter not in args.only:
                continue
            result = bench()
            for row in result if isinstance(result, list) else [result]:
                print(f"{row['name']}: {row['ratio']:.3f} ({row['detail']}; target {row['target']})", flush=True)
                rows.append(row)
    out = Path(args.out)
    text = out.read_text() if out.is_file() else ""
    if args.only:  # only some rows measured: they replace their namesakes in the table (or are added to it)
        out.write_text(replace_rows(text, rows))
        return
    notes = text.partition("\n## Notes")  # hand-written notes below the table survive a rerun
    out.write_text(write_markdown(rows, args, time.perf_counter() - started, (load_at_start, os.getloadavg()[0])) + "".join(notes[1:]))
    print(f"written to {args.out}; peak memory of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
