"""`make bench-quality`: does our loop reach the Hugging Face Trainer's dev scores on the same recipe?

For each task and seed, `python -m src.train` and transformers' Trainer each fine-tune MiniLM-L6 in a fresh
process, and their best dev main metric over the epoch-end evaluations (the checkpoint src.train keeps) is
compared over seeds: means ± std, the difference, Welch's t-test and whether the Trainer is ahead by more than
one pooled standard deviation (the goal: on no task). Results go into BENCHMARKS.md.

--recipe identical (default): the Trainer gets our recipe exactly: the same tokenized data (max length, no
  padding to it), AdamW's lr, betas, eps and weight decay (not on biases and LayerNorm weights, as ours),
  a linear schedule with the same warmup steps, gradient clipping, batch size, epochs, length grouping, seed
  (and so the same initial head).
--recipe defaults: each side with its own defaults (ours: conf/; the Trainer's: TrainingArguments' defaults,
  lr 5e-5, batch size 8, no warmup, no weight decay, random batches), to see whether our defaults cost anything.

Every job's result is kept under --results as soon as it ends, so an interrupted run is continued by running the
same command again; our side's jobs are the same under both recipes (our defaults are the identical recipe), so a
second recipe reuses them and only runs the Trainer's. A full run (4 tasks x 3 seeds x 2 sides, 3 epochs) took 115
minutes of jobs on 2 idle CPU cores (2026-12-05); validate it on a subset first:

    python -m benchmarks.quality --tasks rte --seeds 1,2 --epochs 1 --max-train-samples 300
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import GLUE_DIR, ROOT, machine, make_cfg, python

MODEL = "minilm-l6"
TASKS = ("cola", "stsb", "rte", "mrpc")
IMPLS = ("ours", "trainer")
RESULTS = ROOT / "outputs" / "bench-quality"


def markers(recipe: str) -> tuple[str, str]:
    """The comments around a recipe's section of BENCHMARKS.md: a rerun replaces it, and nothing else."""
    return f"<!-- bench-quality {recipe}: written by `make bench-quality`, replaced on each run -->", f"<!-- /bench-quality {recipe} -->"


def overrides(task: str, seed: int, args: argparse.Namespace) -> list[str]:
    """The src.train overrides of one job (our side; the Trainer's recipe is derived from the same config)."""
    extra = [f"trainer.epochs={args.epochs}", *([f"data.max_train_samples={args.max_train_samples}"] if args.max_train_samples else [])]
    return [f"task={task}", f"model={args.model}", f"seed={seed}", *extra]


def results_dir(args: argparse.Namespace) -> Path:
    """One folder per setting, so that results of reduced settings never mix with those of the full run, nor results
    of an older default recipe (e.g. another model.lr) with today's: the folder name ends with a digest of it."""
    digest = hashlib.sha256(describe(make_cfg(*overrides(args.tasks[0], args.seeds[0], args))).encode()).hexdigest()[:8]
    return Path(args.results) / f"{args.model}-e{args.epochs:g}-n{args.max_train_samples or 'all'}-{digest}"


def result_name(impl: str, task: str, seed: int, recipe: str) -> str:
    """Our side runs our defaults under either recipe: one result serves both; the Trainer's are kept per recipe."""
    return f"ours-{task}-s{seed}.json" if impl == "ours" else f"trainer-{recipe}-{task}-s{seed}.json"


def run_ours(task: str, seed: int, args: argparse.Namespace, work: Path) -> dict:
    run_dir = work / f"ours-{task}-s{seed}"
    command = [python(), "-m", "src.train", *overrides(task, seed, args), "logger=none", "trainer.progress_bar=false", "trainer.save_best=false", "trainer.keep_checkpoints=1"]
    command += [f"data.glue_dir={GLUE_DIR}", f"output_dir={run_dir}"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"src.train failed on {task} seed {seed}: {out.stderr.strip().splitlines()[-1]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"best": metrics["best"], "history": metrics["history"], "train_runtime_s": metrics["train_runtime_s"]}


def run_trainer(task: str, seed: int, args: argparse.Namespace, work: Path) -> dict:
    """The Trainer in a fresh process, as our side runs (`--trainer-job`, below)."""
    out_file = work / f"trainer-{task}-s{seed}.json"
    command = [python(), "-m", "benchmarks.quality", "--trainer-job", task, str(seed), str(out_file), "--model", args.model, "--recipe", args.recipe, "--epochs", f"{args.epochs:g}"]
    command += ["--max-train-samples", str(args.max_train_samples)] if args.max_train_samples else []
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the Trainer failed on {task} seed {seed}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out_file.read_text())


def trainer_job(task: str, seed: int, out_file: Path, args: argparse.Namespace) -> None:
    """Fine-tune with transformers' Trainer on the data src.train builds; write the best epoch's dev metrics."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from benchmarks.common import build
    from src.loop import SCHEDULERS, count_steps
    from src.task_types import task_type

    cfg = make_cfg(*overrides(task, seed, args))
    tokenizer, data, model = build(cfg)  # seeded as src.train: the same initial head
    if list(data.dev) != [""]:
        raise SystemExit(f"{task}: one dev split expected")
    train = data.train.dataset.add_column("length", data.train.sampler.lengths).remove_columns(["idx"])
    dev = data.dev[""].dataset.remove_columns(["idx"])
    common = dict(output_dir=str(out_file.parent / f"hf-{task}-s{seed}"), num_train_epochs=cfg.trainer.epochs, seed=seed, eval_strategy="epoch", save_strategy="no")
    common |= dict(report_to=[], disable_tqdm=True, use_cpu=True, logging_steps=10_000, dataloader_num_workers=0, per_device_eval_batch_size=cfg.trainer.eval_batch_size)
    if args.recipe == "identical":
        steps = count_steps(cfg, len(data.train))
        opt = cfg.optimizer
        warmup = cfg.scheduler.warmup_steps if cfg.scheduler.warmup_steps is not None else round(cfg.scheduler.warmup_ratio * steps)
        recipe = dict(learning_rate=opt.lr, weight_decay=opt.weight_decay, adam_beta1=opt.betas[0], adam_beta2=opt.betas[1], adam_epsilon=opt.eps)
        recipe |= dict(lr_scheduler_type=SCHEDULERS[cfg.scheduler.name], warmup_steps=warmup, max_grad_norm=cfg.trainer.max_grad_norm)
        recipe |= dict(per_device_train_batch_size=cfg.trainer.batch_size, gradient_accumulation_steps=cfg.trainer.grad_accum_steps)
        recipe |= dict(train_sampling_strategy="group_by_length" if cfg.data.group_by_length else "random", length_column_name="length")
    else:
        recipe = {}  # TrainingArguments' defaults
    training_args = TrainingArguments(**common, **recipe)

    kind = task_type(cfg.task)

    def metrics(prediction) -> dict:  # as src.loop.evaluate scores a dev split
        return kind.metrics(cfg.task, prediction.label_ids, kind.predictions(prediction.predictions, prediction.label_ids))

    trainer = Trainer(model=model, args=training_args, train_dataset=train, eval_dataset=dev, data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=metrics)
    output = trainer.train()
    history = [
        {"step": entry["step"], "epoch": entry["epoch"], **{name: entry[f"eval_{name}"] for name in cfg.task.metrics}} for entry in trainer.state.log_history if "eval_loss" in entry
    ]
    best = max(history, key=lambda entry: entry[cfg.task.main_metric])  # the first of equals, as src.train keeps
    result = {"best": {name: best[name] for name in cfg.task.metrics}, "history": history, "train_runtime_s": output.metrics["train_runtime"]}
    out_file.write_text(json.dumps(result, indent=2))


def run_all(args: argparse.Namespace) -> dict:
    """{(impl, task, seed): result}, each job run unless its result is already kept (resume)."""
    folder = results_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            for seed in args.seeds:
                for impl in IMPLS:
                    path = folder / result_name(impl, task, seed, args.recipe)
                    if path.is_file():
                        results[impl, task, seed] = json.loads(path.read_text())
                        continue
                    started = time.perf_counter()
                    result = (run_ours if impl == "ours" else run_trainer)(task, seed, args, Path(tmp))
                    result["wall_s"] = time.perf_counter() - started
                    tmp_path = path.with_suffix(".tmp")
                    tmp_path.write_text(json.dumps(result, indent=2))
                    os.replace(tmp_path, path)  # whole or absent: a kill never leaves half a result
                    results[impl, task, seed] = result
                    print(f"{impl} {task} seed {seed}: {result['best']} ({result['wall_s']:.0f} s)", flush=True)
    return results


def parity_rows(results: dict, args: argparse.Namespace) -> list[dict]:
    from src.stats import spread, welch_p

    rows = []
    for task in args.tasks:
        metric = make_cfg(f"task={task}").task.main_metric
        values = {impl: [results[impl, task, seed]["best"][metric] for seed in args.seeds] for impl in IMPLS}
        ours, hf = spread(values["ours"]), spread(values["trainer"])
        pooled = math.sqrt((ours.std**2 + hf.std**2) / 2) if ours.std is not None else None  # equal n on both sides
        wall = {impl: sum(results[impl, task, seed]["wall_s"] for seed in args.seeds) for impl in IMPLS}
        rows.append(
            {
                "task": task,
                "metric": metric,
                "ours": ours,
                "trainer": hf,
                "diff": ours.mean - hf.mean,
                "p": welch_p(values["ours"], values["trainer"]) if ours.n > 1 else None,
                "pooled_std": pooled,
                "trainer_ahead": pooled is not None and hf.mean - ours.mean > pooled,
                "wall": wall,
            }
        )
    return rows


def describe(cfg) -> str:
    """Our recipe in words, as both sides ran it."""
    opt, sched = cfg.optimizer, cfg.scheduler
    warmup = f"{sched.warmup_steps} warmup steps" if sched.warmup_steps is not None else f"warmup over {sched.warmup_ratio:.0%} of the steps"
    return (
        f"AdamW lr {opt.lr:g}, betas {tuple(opt.betas)}, eps {opt.eps:g}, weight decay {opt.weight_decay:g} (not on biases and LayerNorm weights), "
        f"{sched.name} schedule, {warmup}, gradient clipping at {cfg.trainer.max_grad_norm:g}, batch size {cfg.trainer.batch_size}, "
        f"max length {cfg.model.max_length}, " + ("length-grouped batches" if cfg.data.group_by_length else "random batches")
    )


def _mean_std(s) -> str:
    return f"{s.mean:.4f} ± {s.std:.4f}" if s.std is not None else f"{s.mean:.4f}"


def markdown(rows: list[dict], args: argparse.Namespace, load: tuple[float, float]) -> str:
    command = f"python -m benchmarks.quality --model {args.model} --recipe {args.recipe} --tasks {','.join(args.tasks)} --seeds {','.join(map(str, args.seeds))} --epochs {args.epochs:g}"
    command += f" --max-train-samples {args.max_train_samples}" if args.max_train_samples else ""
    recipe = f"the identical recipe on both sides ({describe(make_cfg(*overrides(args.tasks[0], args.seeds[0], args)))})"
    if args.recipe == "defaults":
        recipe = "each side's own defaults (ours: conf/; the Trainer's: TrainingArguments(): lr 5e-5, batch size 8, no warmup or weight decay, random batches)"
    start, end = markers(args.recipe)
    lines = [
        start,
        f"## Quality parity with the Hugging Face Trainer ({args.recipe} recipe)",
        "",
        f"Measured by `make bench-quality` (`{command}`) on {time.strftime('%Y-%m-%d')}; {machine()}.",
        f"{args.model}, {recipe}; seeds {', '.join(map(str, args.seeds))}; {args.epochs:g} epoch(s)"
        + (f" on the first {args.max_train_samples} training examples" if args.max_train_samples else " on the full training sets")
        + "; best dev main metric over the epoch-end evaluations (the checkpoint src.train keeps), full dev sets.",
        f"The jobs took {sum(sum(r['wall'].values()) for r in rows) / 60:.1f} minutes in all (each job's time is kept with its result, so a resumed run counts"
        f" every job once); 1-minute load average {load[0]:.2f} at the start of this invocation, {load[1]:.2f} at its end.",
        "Goal: no task where the Trainer is ahead by more than one pooled standard deviation.",
        "",
        "| task (metric) | ours, mean ± std | Trainer, mean ± std | ours − Trainer | Welch p | Trainer ahead by > 1 pooled std | run time ours / Trainer (s, all seeds) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = "" if r["p"] is None else f"{r['p']:.3f}"
        ahead = "n/a (1 seed)" if r["pooled_std"] is None else ("**yes**" if r["trainer_ahead"] else "no") + f" (pooled std {r['pooled_std']:.4f})"
        lines.append(
            f"| {r['task']} ({r['metric']}) | {_mean_std(r['ours'])} | {_mean_std(r['trainer'])} | {r['diff']:+.4f} | {p} | {ahead} | {r['wall']['ours']:.0f} / {r['wall']['trainer']:.0f} |"
        )
    return "\n".join(lines + ["", end]) + "\n"


def write_section(path: Path, section: str, recipe: str) -> None:
    """Replace the recipe's section written before, or append it; the rest of the file stays."""
    start, end = markers(recipe)
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    if start in text and end in text:
        before, _, rest = text.partition(start)
        text = before + section + rest.partition(end + "\n")[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def _csv(kind):
    return lambda text: [kind(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=MODEL, help=f"a model of conf/model (default: {MODEL})")
    parser.add_argument("--tasks", type=_csv(str), default=list(TASKS), help=f"comma-separated tasks (default: {','.join(TASKS)})")
    parser.add_argument("--seeds", type=_csv(int), default=[1, 2, 3], help="comma-separated seeds (default: 1,2,3)")
    parser.add_argument("--epochs", type=float, default=3.0, help="training epochs of every job (default: 3, our default)")
    parser.add_argument("--max-train-samples", type=int, default=None, help="train on the first N examples only (for a quick check)")
    parser.add_argument("--recipe", choices=("identical", "defaults"), default="identical", help="the Trainer on our recipe, or each side on its own defaults")
    parser.add_argument("--results", default=str(RESULTS), help=f"where each job's result is kept, to resume (default: {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="the file whose bench-quality section is (re)written")
    parser.add_argument("--trainer-job", nargs=3, metavar=("TASK", "SEED", "OUT"), help=argparse.SUPPRESS)  # one Trainer job, run by run_trainer
    args = parser.parse_args(argv)
    if args.trainer_job:
        task, seed, out = args.trainer_job
        trainer_job(task, int(seed), Path(out), args)
        return
    problems = [f"unknown task {t!r} (conf/task/)" for t in args.tasks if not (ROOT / "conf" / "task" / f"{t}.yaml").is_file()]
    problems += [f"unknown model {args.model!r} (conf/model/)"] if not (ROOT / "conf" / "model" / f"{args.model}.yaml").is_file() else []
    problems += ["--seeds needs at least one seed"] if not args.seeds else []
    problems += ["--epochs must be > 0"] if args.epochs <= 0 else []
    problems += ["--max-train-samples must be >= 1"] if args.max_train_samples is not None and args.max_train_samples < 1 else []
    if problems:
        print(f"error: {'; '.join(problems)}", file=sys.stderr)
        sys.exit(2)
    load_at_start = os.getloadavg()[0]
    results = run_all(args)
    section = markdown(parity_rows(results, args), args, (load_at_start, os.getloadavg()[0]))
    write_section(Path(args.out), section, args.recipe)
    print(section)


if __name__ == "__main__":
    main()
