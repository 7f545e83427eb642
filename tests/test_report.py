"""src.report on a real run set (tiny model, CoLA and RTE, seeds 1-3): every leaderboard figure is
recomputed from the runs' own metrics.json."""

from __future__ import annotations

import json
import shutil
import statistics

import numpy as np
import pytest
from conftest import read_metrics, read_table
from matplotlib.image import imread
from scipy import stats as scipy_stats

from src.lifecycle import write_status
from src.outputs import write_json
from src.report import main as report_main
from src.report import write_report


def run_metrics(run_set) -> list[dict]:
    return [read_metrics(p.parent) for p in sorted(run_set.glob("*/metrics.json"))]


@pytest.fixture(scope="module")
def others(tiny_run_set, tmp_path_factory):
    """A failed run and one killed mid-training (status "running", no metrics.json), as train.py leaves them."""
    root = tmp_path_factory.mktemp("others")
    failed, killed = root / "failed_rte", root / "killed_cola"
    for run_dir, source in ((failed, "3_rte_tiny"), (killed, "0_cola_tiny")):
        run_dir.mkdir()
        shutil.copy(tiny_run_set / source / "config.yaml", run_dir / "config.yaml")
    write_status(failed, "failed", error="UserError: non-finite loss (nan) at step 3: lower optimizer.lr")
    write_status(killed, "running")
    return root


@pytest.fixture(scope="module")
def report_dir(tiny_run_set, others, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_report([tiny_run_set, others], out)
    return out


def test_leaderboard_is_mean_and_sample_std_of_the_runs_metrics(report_dir, tiny_run_set):
    metrics = run_metrics(tiny_run_set)
    assert sorted((m["task"], m["seed"]) for m in metrics) == [("cola", 1), ("cola", 2), ("cola", 3), ("rte", 1), ("rte", 2), ("rte", 3)]
    [row] = read_table(report_dir / "leaderboard.csv")
    assert (row["model"], row["finetune"], row["selection"]) == ("tiny", "full", "dev")
    md_row = next(line for line in (report_dir / "leaderboard.md").read_text().splitlines() if line.startswith("| tiny |"))
    for task, metric in (("cola", "matthews_correlation"), ("rte", "accuracy")):
        values = [m["best"][metric] for m in metrics if m["task"] == task]
        assert row[f"{task}_metric"] == metric and row[f"{task}_n"] == "3"
        assert float(row[f"{task}_mean"]) == pytest.approx(sum(values) / 3, abs=1e-12)
        assert float(row[f"{task}_std"]) == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        half = scipy_stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)  # (t.interval is nan where the tiny model's CoLA MCC is 0 for every seed)
        low, high = np.mean(values) - half, np.mean(values) + half
        assert float(row[f"{task}_ci_low"]) == pytest.approx(low, abs=1e-12) and float(row[f"{task}_ci_high"]) == pytest.approx(high, abs=1e-12)
        assert f"**{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}** [{low:.4f}, {high:.4f}] (n=3)" in md_row  # alone: the best
    rte = [m["best"]["accuracy"] for m in metrics if m["task"] == "rte"]
    assert np.std(rte) > 0  # the seeds really differ
    # GLUE score: per seed the mean of the task scores, then mean and std over the three seeds
    per_seed = [np.mean([statistics.mean(m["best"].values()) for m in metrics if m["seed"] == seed]) for seed in (1, 2, 3)]
    assert float(row["glue_mean"]) == pytest.approx(np.mean(per_seed), abs=1e-12)
    assert float(row["glue_std"]) == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
    assert row["glue_n"] == "3" and row["glue_tasks"] == "cola rte"
    assert "cola, rte (2/9)" in md_row


def test_failed_and_unfinished_runs_are_listed(report_dir, others):
    md = (report_dir / "leaderboard.md").read_text()
    assert "6 completed run(s) of 8" in md
    assert "## Runs not in the leaderboard (2)" in md
    failed_line = next(line for line in md.splitlines() if str(others / "failed_rte") in line)
    assert "| failed | rte | tiny | 1 | UserError: non-finite loss (nan) at step 3" in failed_line
    killed_line = next(line for line in md.splitlines() if str(others / "killed_cola") in line)
    assert "| running | cola | tiny | 1 | no end recorded: still running, or killed |" in killed_line
    statuses = sorted(r["status"] for r in read_table(report_dir / "runs.csv"))
    assert statuses == ["completed"] * 6 + ["failed", "running"]


def test_per_run_table_has_overrides_dev_metrics_and_run_time(report_dir, tiny_run_set):
    rows = {r["run"]: r for r in read_table(report_dir / "runs.csv") if r["status"] == "completed"}
    assert len(rows) == 6
    for run_dir in tiny_run_set.glob("*_tiny"):
        m = read_metrics(run_dir)
        row = rows[str(run_dir)]
        assert (row["model"], row["task"], row["seed"], row["selection"]) == ("tiny", m["task"], str(m["seed"]), "dev")
        assert (row["benchmark"], row["task_type"], row["protocol"], row["init_from"]) == ("glue", "sequence_classification", "finetune", "")
        assert f"task={m['task']}" in row["overrides"].split() and f"seed={m['seed']}" in row["overrides"].split()
        for metric, value in m["best"].items():
            assert float(row[f"dev_{metric}"]) == pytest.approx(value, abs=1e-12)
        assert float(row["train_runtime_s"]) == pytest.approx(m["train_runtime_s"]) and float(row["total_runtime_s"]) > 0
    assert (report_dir / "runs.md").read_text().count("| completed |") == 6


def test_plots_render(report_dir):
    for name in ("cola.png", "rte.png", "heatmap.png"):
        image = imread(report_dir / "plots" / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200, name
        assert image[..., :3].std() > 0.05, f"{name} is blank"


def test_glue_score_as_the_glue_leaderboard_and_rows_per_method(tmp_path):
    """BERT-base on the GLUE leaderboard: score 78.3 from these task results (MNLI-m/mm count half each)."""
    bert_base = {
        "cola": {"matthews_correlation": 0.521},
        "sst2": {"accuracy": 0.935},
        "mrpc": {"f1": 0.889, "accuracy": 0.848},
        "stsb": {"pearson": 0.871, "spearmanr": 0.858},
        "qqp": {"f1": 0.712, "accuracy": 0.892},
        "mnli": {"accuracy": 0.846, "accuracy_mm": 0.834},
        "qnli": {"accuracy": 0.905},
        "rte": {"accuracy": 0.664},
        "wnli": {"accuracy": 0.651},
    }
    runs = [(f"bert_{task}", task, best, {}) for task, best in bert_base.items()]
    runs += [("lora_cola", "cola", {"matthews_correlation": 0.40}, {"finetune": "lora"})]
    runs += [("holdout_cola", "cola", {"matthews_correlation": 0.50}, {"selection_split": "train_holdout"})]
    for name, task, best, extra in runs:
        run_dir = tmp_path / "runs" / name
        run_dir.mkdir(parents=True)
        main_metric = next(iter(best))
        write_json(run_dir / "metrics.json", {"task": task, "model": "bert-base", "seed": 1, "main_metric": main_metric, "main_metric_value": best[main_metric], "best": best, "selection_split": "dev"} | extra)
        write_status(run_dir, "completed")
    write_report([tmp_path / "runs"], tmp_path / "report")
    rows = read_table(tmp_path / "report" / "leaderboard.csv")
    assert [(r["model"], r["finetune"], r["selection"]) for r in rows] == [("bert-base", "full", "dev"), ("bert-base", "full", "train_holdout"), ("bert-base", "lora", "dev")]
    full = rows[0]
    assert round(100 * float(full["glue_mean"]), 1) == 78.3
    assert full["glue_tasks"] == "cola sst2 mrpc stsb qqp mnli qnli rte wnli"
    assert float(full["mnli_mean"]) == 0.846 and full["mnli_std"] == ""  # one seed: no spread
    assert float(rows[2]["glue_mean"]) == 0.40 and rows[2]["glue_tasks"] == "cola"


def test_report_logs_the_leaderboard_as_a_wandb_table(tiny_run_set, tmp_path, capsys):
    report_main([str(tiny_run_set), "--out", str(tmp_path), "--wandb"])
    printed = capsys.readouterr().out
    assert printed.startswith("| model | finetune | selection | protocol | cola (mcc) | rte (acc) | GLUE score | GLUE tasks |")
    [table_file] = tmp_path.glob("wandb/offline-run-*/files/media/table/leaderboard_*.table.json")
    table = json.loads(table_file.read_text())
    csv_rows = read_table(tmp_path / "leaderboard.csv")
    assert table["columns"] == list(csv_rows[0])
    assert table["data"][0][:5] == ["tiny", None, "full", "dev", "finetune"]
    assert table["data"][0][table["columns"].index("rte_mean")] == pytest.approx(float(csv_rows[0]["rte_mean"]))
    [runs_file] = tmp_path.glob("wandb/offline-run-*/files/media/table/runs_*.table.json")
    assert len(json.loads(runs_file.read_text())["data"]) == 6
    assert len(list(tmp_path.glob("wandb/offline-run-*/files/media/images/plots/*.png"))) == 3


def test_bad_directories_are_one_line_errors(tmp_path, capsys):
    for args, message in (([str(tmp_path / "nope")], "does not exist"), ([str(tmp_path)], "no runs found under")):
        with pytest.raises(SystemExit) as exit_info:
            report_main(args)
        assert exit_info.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def write_run(root, name: str, task: str, model: str, seed: int, best: dict, **extra) -> None:
    """A finished run directory as src.train leaves it (metrics.json, status.json), with chosen dev metrics."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    main_metric = next(iter(best))
    metrics = {"task": task, "model": model, "seed": seed, "main_metric": main_metric, "main_metric_value": best[main_metric], "best": best, "selection_split": "dev"}
    write_json(run_dir / "metrics.json", metrics | extra)
    write_status(run_dir, "completed")


def test_which_models_are_not_significantly_different_from_the_best_as_scipy_says(tmp_path, capsys):
    """Per cell the 95% CI of scipy's t distribution; per task a paired t-test against the best where both ran
    the same seeds, Welch's otherwise (scipy's p-values); marked when p >= 0.05; a cell of < 3 seeds warned about."""
    cola = {
        "best-model": {1: 0.52, 2: 0.55, 3: 0.50},
        "paired-close": {1: 0.51, 2: 0.53, 3: 0.50},  # same seeds: paired
        "paired-worse": {1: 0.40, 2: 0.44, 3: 0.41},
        "welch-close": {4: 0.49, 5: 0.56, 6: 0.47, 7: 0.53},  # other seeds: Welch
        "one-seed": {1: 0.60},  # the highest value, but one run: cannot be tested, never marked
    }
    for model, values in cola.items():
        for seed, value in values.items():
            write_run(tmp_path / "runs", f"{model}-{seed}", "cola", model, seed, {"matthews_correlation": value})
    report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert warnings == ["warning: cola / one-seed: 1 run(s), fewer than 3 seeds: its std, confidence interval and significance are unreliable"]

    rows = {r["model"]: r for r in read_table(tmp_path / "report" / "leaderboard.csv")}
    best = [cola["best-model"][s] for s in (1, 2, 3)]
    for model, values in cola.items():
        row, x = rows[model], list(values.values())
        assert float(row["cola_mean"]) == pytest.approx(np.mean(x), abs=1e-12) and row["cola_n"] == str(len(x))
        if len(x) > 1:
            low, high = scipy_stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=scipy_stats.sem(x))
            assert (float(row["cola_ci_low"]), float(row["cola_ci_high"])) == pytest.approx((low, high), abs=1e-12)
    assert (rows["best-model"]["cola_best_or_tied"], rows["best-model"]["cola_p_vs_best"]) == ("True", "")
    expected = {
        "paired-close": ("paired", scipy_stats.ttest_rel(best, [cola["paired-close"][s] for s in (1, 2, 3)]).pvalue),
        "paired-worse": ("paired", scipy_stats.ttest_rel(best, [cola["paired-worse"][s] for s in (1, 2, 3)]).pvalue),
        "welch-close": ("welch", scipy_stats.ttest_ind(best, list(cola["welch-close"].values()), equal_var=False).pvalue),
    }
    for model, (test, p) in expected.items():
        assert rows[model]["cola_test_vs_best"] == test and float(rows[model]["cola_p_vs_best"]) == pytest.approx(p, rel=1e-9)
        assert rows[model]["cola_best_or_tied"] == str(p >= 0.05)
    assert [rows[m]["cola_best_or_tied"] for m in ("paired-close", "paired-worse", "welch-close")] == ["True", "False", "True"]
    assert rows["one-seed"]["cola_best_or_tied"] == "False" and rows["one-seed"]["cola_p_vs_best"] == "" and rows["one-seed"]["cola_std"] == ""

    md = {line.split(" | ")[0][2:]: line for line in (tmp_path / "report" / "leaderboard.md").read_text().splitlines() if line.startswith("| ") and " | full | " in line}
    assert "**0.5233 ± 0.0252**" in md["best-model"] and "**" in md["paired-close"] and "**" not in md["paired-worse"]
    assert f"p={expected['paired-worse'][1]:.3f})" in md["paired-worse"] and "| 0.6000 (n=1) |" in md["one-seed"]
    assert "- cola / one-seed: 1 run(s), fewer than 3 seeds" in (tmp_path / "report" / "leaderboard.md").read_text()


def test_benchmarks_are_scored_apart_and_protocols_never_averaged_together(tmp_path):
    """The GLUE score over GLUE tasks only, the SuperGLUE score over SuperGLUE tasks (CB: the mean of accuracy and
    macro-F1), any other task in its own column; zero-shot runs and runs started from another run get rows of their own."""
    runs = tmp_path / "runs"
    for seed in (1, 2):
        write_run(runs, f"cola-{seed}", "cola", "m", seed, {"matthews_correlation": 0.5 + seed / 100})
        write_run(runs, f"rte-{seed}", "rte", "m", seed, {"accuracy": 0.6}, benchmark="glue", task_type="sequence_classification")
        write_run(runs, f"cb-{seed}", "cb", "m", seed, {"accuracy": 0.8, "f1_macro": 0.6 + seed / 10}, benchmark="superglue")
        write_run(runs, f"boolq-{seed}", "boolq", "m", seed, {"accuracy": 0.7}, benchmark="superglue")
        write_run(runs, f"emotion-{seed}", "tweet_emotion", "m", seed, {"f1_macro": 0.3}, benchmark=None)
        write_run(runs, f"rte-init-{seed}", "rte", "m", seed, {"accuracy": 0.7}, init_from={"run_dir": "/x/mnli", "task": "mnli", "model": "m", "seed": 1})
        write_run(runs, f"rte-zs-{seed}", "rte", "m", seed, {"accuracy": 0.55}, protocol="zeroshot", num_fewshot=5)
    write_report([runs], tmp_path / "report")
    rows = {(r["model"], r["init_from"], r["protocol"], r["num_fewshot"]): r for r in read_table(tmp_path / "report" / "leaderboard.csv")}
    assert sorted(rows) == [("m", "", "finetune", ""), ("m", "", "zeroshot", "5"), ("m", "mnli", "finetune", "")]
    plain, init, zeroshot = rows["m", "", "finetune", ""], rows["m", "mnli", "finetune", ""], rows["m", "", "zeroshot", "5"]
    cola = [0.51, 0.52]
    assert float(plain["glue_mean"]) == pytest.approx((np.mean(cola) + 0.6) / 2) and plain["glue_tasks"] == "cola rte"
    assert float(plain["glue_std"]) == pytest.approx(np.std([(0.51 + 0.6) / 2, (0.52 + 0.6) / 2], ddof=1))
    cb = [(0.8 + 0.7) / 2, (0.8 + 0.8) / 2]
    assert float(plain["superglue_mean"]) == pytest.approx((np.mean(cb) + 0.7) / 2) and plain["superglue_tasks"] == "boolq cb"
    assert float(plain["tweet_emotion_mean"]) == 0.3 and "tweet_emotion" not in plain["glue_tasks"] + plain["superglue_tasks"]
    assert float(init["rte_mean"]) == 0.7 and float(zeroshot["rte_mean"]) == 0.55  # never averaged with the plain row's 0.6
    md = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "| m ← mnli | full | dev | finetune |" in md and "| m | full | dev | zeroshot (5-shot) |" in md
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert header.split(" | ")[4:] == ["cola (mcc)", "rte (acc)", "boolq (acc)", "cb (acc)", "tweet_emotion (f1_macro)", "GLUE score", "GLUE tasks", "SuperGLUE score", "SuperGLUE tasks |"]
