"""Hydra multiruns as a researcher launches them: the sweep summary (CSV, Markdown, best configuration,
heatmap), the named experiments, the launchers, and the W&B and Optuna sweep configs."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import matplotlib.image
import pytest
import yaml
from conftest import CONF_DIR, GLUE_DIR, ROOT, read_metrics, read_table, run_train
from hydra import compose, initialize_config_dir
from wandb_files import offline_runs

from src.runs import Run
from src.sweep import Job, best_per_task, main, summarize

TINY_FAST = ["model=tiny", "trainer.max_steps=4", "trainer.batch_size=8", "data.max_eval_samples=40", "trainer.progress_bar=false"]


def test_six_job_lr_by_batch_size_sweep_in_parallel_leaves_grouped_wandb_runs_and_a_summary(tmp_path, cache_dir):
    """The issue's sweep (3 lr x 2 batch sizes), on the tiny model, through the joblib launcher."""
    sweep_dir = tmp_path / "sweep"
    out = run_train(
        "-m",
        "hydra/launcher=parallel",
        "task=rte",
        *TINY_FAST,
        "optimizer.lr=1e-4,1e-3,3e-3",
        "trainer.batch_size=8,16",
        "logger=wandb",
        "hardware.num_threads=1",
        f"data.cache_dir={cache_dir}",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    job_dirs = sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/hydra.yaml"))
    assert len(job_dirs) == 6

    runs = [run for d in job_dirs for run in offline_runs(d)]
    assert len(runs) == 6 and {run.group for run in runs} == {str(sweep_dir)}  # one group, across the worker processes
    assert all(run.exit_code == 0 and "eval/accuracy" in run.summary for run in runs)
    assert sorted((run.config["optimizer"]["lr"], run.config["trainer"]["batch_size"]) for run in runs) == sorted(
        (lr, bs) for lr in (1e-4, 1e-3, 3e-3) for bs in (8, 16)
    )

    rows = read_table(sweep_dir / "summary.csv")
    assert [int(r["job"]) for r in rows] == list(range(6))
    for row in rows:
        metrics = read_metrics(sweep_dir / row["dir"])
        assert row["status"] == "completed" and float(row["main_metric_value"]) == pytest.approx(metrics["main_metric_value"], abs=1e-6)
        overrides = dict(o.split("=", 1) for o in row["overrides"].split())
        assert float(overrides["optimizer.lr"]) == float(row["lr"]) and overrides["trainer.batch_size"] == row["batch_size"]
        assert row["main_metric"] == "accuracy" and row["seed"] == "42" and float(row["runtime_s"]) > 0
    best_row = max(rows, key=lambda r: float(r["main_metric_value"]))
    best = yaml.safe_load((sweep_dir / "best.yaml").read_text())["rte"]
    assert best["mean"] == pytest.approx(float(best_row["main_metric_value"]), abs=1e-6)
    assert best["command"].startswith("python -m src.train ") and "task=rte" in best["overrides"]

    md = (sweep_dir / "summary.md").read_text()
    assert "6 jobs: 6 completed, 0 failed, 0 unfinished." in md and md.count("| completed |") == 6
    assert "`task=rte`" in md.split("|")[0]  # shared overrides are said once, above the table
    assert best["command"] in md and "![heatmap](heatmap.png)" in md
    image = matplotlib.image.imread(sweep_dir / "heatmap.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200

    # the same summary again, later, from the directory alone
    written = {name: (sweep_dir / name).read_text() for name in ("summary.csv", "summary.md", "best.yaml")}
    for name in (*written, "heatmap.png"):
        (sweep_dir / name).unlink()
    assert main([str(sweep_dir)]) == 0
    assert {name: (sweep_dir / name).read_text() for name in written} == written
    assert (sweep_dir / "heatmap.png").is_file()


def test_a_failed_job_does_not_stop_the_sweep_and_the_summary_shows_it(tmp_path, cache_dir):
    """Job 0 has an impossible value; Hydra runs job 1 anyway, then exits non-zero (no on_multirun_end):
    the summary, written after each job, is complete. A killed job (status running, no metrics) is unfinished."""
    sweep_dir = tmp_path / "sweep"
    out = run_train("-m", "task=wnli", *TINY_FAST, "logger=none", "optimizer.lr=-1,1e-3", f"data.cache_dir={cache_dir}", f"hydra.sweep.dir={sweep_dir}")
    assert out.returncode != 0
    assert "error: optimizer.lr must be > 0, got -1.0" in out.stderr
    failed, completed = read_table(sweep_dir / "summary.csv")
    assert failed["status"] == "failed" and failed["error"] == "optimizer.lr must be > 0, got -1.0" and failed["main_metric_value"] == ""
    assert completed["status"] == "completed" and float(completed["main_metric_value"]) == read_metrics(sweep_dir / completed["dir"])["main_metric_value"]
    md = (sweep_dir / "summary.md").read_text()
    assert "2 jobs: 1 completed, 1 failed, 0 unfinished." in md and "| failed: optimizer.lr must be > 0, got -1.0 |" in md
    assert yaml.safe_load((sweep_dir / "best.yaml").read_text())["wnli"]["jobs"] == [1]

    killed = sweep_dir / "2_wnli_tiny"  # what a job killed mid-training leaves: Hydra's files, status "running"
    shutil.copytree(sweep_dir / completed["dir"] / ".hydra", killed / ".hydra")
    hydra_yaml = yaml.safe_load((killed / ".hydra" / "hydra.yaml").read_text())
    hydra_yaml["hydra"]["job"]["num"] = 2
    (killed / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra_yaml))
    (killed / "status.json").write_text(json.dumps({"status": "running", "error": None}))
    summarize(sweep_dir)
    assert [r["status"] for r in read_table(sweep_dir / "summary.csv")] == ["failed", "completed", "unfinished"]


def test_best_configuration_is_chosen_by_the_mean_over_seeds():
    def job(num, lr, seed, value):
        metrics = {"task": "rte", "main_metric": "accuracy", "main_metric_value": value, "best": {"accuracy": value}} if value is not None else {}
        run = Run(Path(str(num)), "completed" if value is not None else "failed", None, metrics, {"task": {"name": "rte"}}, [f"optimizer.lr={lr}", f"seed={seed}"])
        return Job(num, str(num), run)

    jobs = [job(0, 1e-3, 1, 0.9), job(1, 1e-3, 2, 0.5), job(2, 3e-3, 1, 0.7), job(3, 3e-3, 2, 0.72), job(4, 3e-3, 3, None)]
    (best,) = best_per_task(jobs).values()
    assert best.overrides == ["optimizer.lr=0.003"]  # 0.71 on average beats one lucky seed (0.9, then 0.5)
    assert best.spread.mean == pytest.approx(0.71) and best.spread.std == pytest.approx(0.01414, abs=1e-4) and len(best.jobs) == 3
    (single,) = best_per_task(jobs[:1]).values()
    assert single.spread.std is None  # one seed: no spread, as the report says (src.stats), not 0.0


def test_sweep_cli_fails_with_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path} holds no Hydra jobs (*/.hydra/hydra.yaml): pass a multirun's sweep directory"


def compose_multirun(*overrides: str):
    from src.config import register_schema

    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=[f"data.glue_dir={GLUE_DIR}", *overrides], return_hydra_config=True)


def test_named_experiments_define_their_sweeps():
    grid = compose_multirun("experiment=cola_lr_bs")
    assert (grid.task.name, grid.model.name) == ("cola", "minilm-l6")
    assert dict(grid.hydra.sweeper.params) == {"optimizer.lr": "1e-5,2e-5,5e-5", "trainer.batch_size": "16,32"}
    seeds = compose_multirun("experiment=multi_seed", "task=rte")
    assert seeds.task.name == "rte" and seeds.hydra.sweeper.params.seed == "1,2,3,4,5"
    glue = compose_multirun("experiment=glue_baseline")
    glue_tasks = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml") if "_glue" in yaml.safe_load(p.read_text()).get("defaults", []))
    assert len(glue_tasks) == 9 and sorted(glue.hydra.sweeper.params.task.split(",")) == glue_tasks  # every GLUE task: conf/task has others now
    assert (glue.optimizer.lr, glue.trainer.batch_size, glue.trainer.epochs) == (2e-5, 32, 3)


def test_published_recipes_compose_every_job():
    """experiment=bert_paper: the BERT paper's lr grid per task; experiment=modernbert_glue: ModernBERT's per-task
    recipes, 3 seeds, MNLI first, RTE/MRPC/STS-B from their seed's MNLI run; `-m ... --cfg job` prints every job."""
    bert = compose_multirun("experiment=bert_paper")
    assert (bert.trainer.batch_size, bert.trainer.epochs, bert.scheduler.warmup_ratio) == (32, 3, 0.1)
    assert bert.hydra.sweeper.params["optimizer.lr"] == "2e-5,3e-5,4e-5,5e-5" and len(bert.hydra.sweeper.params.task.split(",")) == 8

    out = run_train("-m", "experiment=modernbert_glue", "model=tiny", "--cfg", "job")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = [yaml.safe_load(text) for text in re.split(r"^# job \d+: .*$", out.stdout, flags=re.MULTILINE)[1:]]
    assert [(job["task"]["name"], job["seed"]) for job in jobs] == [(t, s) for t in ("mnli", "cola", "sst2", "qqp", "qnli", "rte", "mrpc", "stsb") for s in (1, 2, 3)]
    recipes = {job["task"]["name"]: job for job in jobs if job["seed"] == 1}
    rte = recipes["rte"]
    assert (rte["optimizer"]["lr"], rte["optimizer"]["weight_decay"], rte["trainer"]["epochs"], rte["trainer"]["batch_size"], rte["trainer"]["eval_every_steps"]) == (1e-5, 1.0, 3, 16, 100)
    assert (rte["model"]["name"], rte["model"]["max_length"], rte["optimizer"]["betas"], rte["optimizer"]["eps"]) == ("tiny", 256, [0.9, 0.98], 1e-6)
    assert {task: job["model"]["init_from"] for task, job in recipes.items() if job["model"]["init_from"]} == dict.fromkeys(
        ("rte", "mrpc", "stsb"), "${hydra:runtime.output_dir}/../mnli-s${seed}"
    )
    assert (recipes["mnli"]["optimizer"]["lr"], recipes["mnli"]["trainer"]["epochs"], recipes["mrpc"]["optimizer"]["lr"]) == (5e-5, 2, 8e-5)


def test_launcher_configs_compose():
    parallel = compose_multirun("hydra/launcher=parallel")
    assert parallel.hydra.launcher._target_.endswith("JoblibLauncher") and parallel.hydra.launcher.n_jobs == 2
    slurm = compose_multirun("hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher") and slurm.hydra.launcher.partition == "gpu"
    assert slurm.hydra.launcher.gpus_per_node == 1 and slurm.hydra.launcher.timeout_min == 240


def test_wandb_sweep_config_drives_src_train_with_hydra_overrides(make_cfg):
    """Build the command `wandb agent` runs, with wandb's own code, and compose its overrides."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    sweep = yaml.safe_load((ROOT / "experiments" / "wandb_sweeps" / "cola_bayes.yaml").read_text())
    assert sweep["metric"] == {"name": "main_metric", "goal": "maximize"} and sweep["method"] == "bayes"
    sample = {name: {"value": p["value"] if "value" in p else p["values"][0] if "values" in p else p["min"]} for name, p in sweep["parameters"].items()}
    args = create_sweep_command_args({"args": sample})
    command = [part for chunk in create_sweep_command(sweep["command"]) for part in ([chunk] if not chunk.startswith("${") else args.get(chunk[2:-1], [chunk]))]
    assert command[:4] == ["${env}", "${interpreter}", "-m", "src.train"]  # the agent fills in /usr/bin/env python
    cfg = make_cfg(*command[4:])
    assert (cfg.task.name, cfg.model.name, cfg.optimizer.lr, cfg.trainer.batch_size) == ("cola", "minilm-l6", 5e-6, 16)


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None, reason="optional extra: pip install -e '.[optuna]'")
def test_optuna_sweeper_gets_the_main_metric_back(tmp_path, cache_dir):
    sweep_dir = tmp_path / "sweep"
    out = run_train(
        "-m", "experiment=optuna_cola", "task=rte", *TINY_FAST, "logger=none", "hydra.sweeper.n_trials=3", f"data.cache_dir={cache_dir}", f"hydra.sweep.dir={sweep_dir}"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = read_table(sweep_dir / "summary.csv")
    result = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert len(rows) == 3 and result["best_value"] == pytest.approx(max(float(r["main_metric_value"]) for r in rows))
