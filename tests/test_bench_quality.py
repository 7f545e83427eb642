"""`make bench-quality` (benchmarks/quality.py) end to end on the tiny model: both sides train in their own
processes, every result is kept and reused by a rerun (and our side's by the other recipe), and BENCHMARKS.md's
section of each recipe is recomputed from them."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys

from conftest import GLUE_DIR, ROOT
from scipy import stats as scipy_stats


def test_parity_benchmark_trains_both_sides_keeps_each_result_and_writes_its_section(tmp_path, cache_dir):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nnotes written by hand\n")
    command = [sys.executable, "-m", "benchmarks.quality", "--model", "tiny", "--tasks", "rte", "--seeds", "1,2", "--epochs", "1", "--max-train-samples", "32"]
    command += ["--results", str(tmp_path / "results"), "--out", str(out)]
    env = {**os.environ, "GLUE_DIR": str(GLUE_DIR), "BASEBENCH_CACHE": cache_dir}
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]

    kept = {path.stem: json.loads(path.read_text()) for path in next((tmp_path / "results").glob("tiny-e1-n32-*")).glob("*.json")}
    assert sorted(kept) == ["ours-rte-s1", "ours-rte-s2", "trainer-identical-rte-s1", "trainer-identical-rte-s2"]
    assert all(len(result["history"]) == 1 and result["wall_s"] > 0 for result in kept.values())  # one epoch, one evaluation
    ours, trainer = ([kept[f"{impl}-rte-s{seed}"]["best"]["accuracy"] for seed in (1, 2)] for impl in ("ours", "trainer-identical"))
    p = scipy_stats.ttest_ind(ours, trainer, equal_var=False).pvalue
    p = 1.0 if math.isnan(p) else p  # the same accuracy for both seeds on both sides: nothing differs
    text = out.read_text()
    [row] = [line for line in text.splitlines() if line.startswith("| rte (accuracy) |")]
    cells = row.split(" | ")
    assert cells[1:5] == [
        f"{statistics.mean(ours):.4f} ± {statistics.stdev(ours):.4f}",
        f"{statistics.mean(trainer):.4f} ± {statistics.stdev(trainer):.4f}",
        f"{statistics.mean(ours) - statistics.mean(trainer):+.4f}",
        f"{p:.3f}",
    ]
    assert text.startswith("# Benchmarks\n\nnotes written by hand\n")

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "seed 1:" not in again.stdout  # every job's result was kept: nothing trains again
    assert out.read_text().count("## Quality parity") == 1 and row in out.read_text()

    # Our side runs our defaults under either recipe: the Trainer's defaults train, ours are reused.
    defaults = subprocess.run([*command, "--recipe", "defaults"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert defaults.returncode == 0, defaults.stderr[-3000:]
    assert [line.split(":")[0] for line in defaults.stdout.splitlines() if " seed " in line] == ["trainer rte seed 1", "trainer rte seed 2"]
    text = out.read_text()
    assert text.count("## Quality parity") == 2 and row in text and "(defaults recipe)" in text


def test_bad_arguments_are_one_line_errors():
    out = subprocess.run([sys.executable, "-m", "benchmarks.quality", "--tasks", "nope", "--epochs", "0"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: unknown task 'nope' (conf/task/); --epochs must be > 0"
