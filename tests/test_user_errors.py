"""Bad inputs and faults as a user meets them, each through a real entry point in a subprocess (src.train,
src.evaluate, src.zeroshot, src.report, src.sweep): each ends with its exit status and a single `error:` line at the end of
stderr, never a traceback, and a finished run's files are byte-identical afterwards. Faults that need training
(two runs at once, Ctrl-C, SIGTERM then a requeued job, kill -9, damaged checkpoints and cache) come after.

The corpus runs two subprocesses at a time: most inputs stop at start-up, in about a second."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import GLUE_DIR, ROOT, read_metrics, read_table

# 60 optimizer steps of the tiny model, a resume checkpoint every 5: long enough to be interrupted mid-way
RECIPE = [
    "task=rte",
    "model=tiny",
    "logger=none",
    "model.max_length=64",
    "data.max_eval_samples=40",
    "trainer.max_steps=60",
    "trainer.batch_size=8",
    "trainer.checkpoint_every_steps=5",
    "optimizer.lr=1e-3",
    "trainer.progress_bar=false",
    "hardware.num_threads=1",
]
DEV_KEYS = ("best", "final", "best_step", "history", "steps", "train_samples", "main_metric_value")


def command(entry: str, *args: str, cache_dir: str | None = None) -> list[str]:
    own_cache = [f"data.cache_dir={cache_dir}"] if cache_dir and entry in ("train", "zeroshot") and not any(a.startswith("data.cache_dir=") for a in args) else []
    return [sys.executable, "-m", f"src.{entry}", *args, *own_cache]


def run(entry: str, *args: str, cwd: Path, cache_dir: str | None = None) -> subprocess.CompletedProcess:
    """python -m src.<entry> ARGS, from cwd (so that Hydra's own directories land there), as a user runs it."""
    env = {**os.environ, "GLUE_DIR": str(GLUE_DIR), "PYTHONPATH": str(ROOT)}
    return subprocess.run(command(entry, *args, cache_dir=cache_dir), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def start(entry: str, *args: str, cwd: Path, cache_dir: str) -> subprocess.Popen:
    env = {**os.environ, "GLUE_DIR": str(GLUE_DIR), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command(entry, *args, cache_dir=cache_dir), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def digests(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_one_error_line(out: subprocess.CompletedProcess, message: str) -> None:
    """stderr ends in one `error:` line holding message, and shows no traceback."""
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and last_line(out.stderr) == errors[0], out.stderr[-3000:]
    assert message in errors[0], errors[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Where every command of this module runs: Hydra's outputs/ goes here, not into the checkout."""
    return tmp_path_factory.mktemp("user_errors")


@pytest.fixture(scope="module")
def race(work, cache_dir) -> tuple[Path, list[subprocess.CompletedProcess]]:
    """Two identical runs started at once on one output_dir: the finished run every other test compares against."""
    finished = work / "finished"
    procs = [start("train", *RECIPE, f"output_dir={finished}", cwd=work, cache_dir=cache_dir) for _ in range(2)]
    outs = [subprocess.CompletedProcess(p.args, p.wait(timeout=600), *p.communicate()) for p in procs]
    return finished, outs


@pytest.fixture(scope="module")
def finished(race) -> Path:
    run_dir, outs = race
    assert sorted(o.returncode for o in outs) == [0, 2], [o.stderr[-2000:] for o in outs]
    return run_dir


def test_two_runs_started_at_once_on_one_output_dir_exactly_one_runs(race, finished):
    loser = next(o for o in race[1] if o.returncode == 2)
    # the second either found the first holding the directory, or (started late) its finished run
    assert_one_error_line(loser, "")
    assert f"{finished} is in use by process" in loser.stderr or f"{finished} already holds a finished run" in loser.stderr
    assert read_metrics(finished)["steps"] == 60 and json.loads((finished / "status.json").read_text())["status"] == "completed"


@dataclass
class Case:
    id: str
    entry: str  # train | evaluate | zeroshot | report | sweep
    args: list[str]  # {finished}, {a_file}, ... are filled in from places()
    message: str  # in the error line
    status: int = 2


CASES = [
    # composition: Hydra's and OmegaConf's errors, one line each
    Case("wrong type", "train", ["trainer.batch_size=abc"], "trainer.batch_size: 'abc' is not an integer"),
    Case("list for a number", "train", ["trainer.batch_size=[1,2]"], "trainer.batch_size: [1, 2] is not an integer"),
    Case("unknown key", "train", ["trainer.batchsize=8"], "trainer.batchsize: no such key (did you mean trainer.batch_size?)"),
    Case("null for a value", "train", ["trainer.batch_size=null"], "trainer.batch_size: cannot be null"),
    Case("bad override syntax", "train", ["trainer.batch_size=[1,2"], "trainer.batch_size=[1,2: not a valid override"),
    Case("unknown root key", "train", ["foo=1"], "foo: no such key"),
    Case("added root key", "train", ["+foo=1"], "foo: no such key; remove it"),
    Case("added nested key", "train", ["+trainer.batchsize=8"], "trainer.batchsize: no such key (did you mean trainer.batch_size?)"),
    Case("+ on an existing key", "train", ["+trainer.batch_size=8"], "trainer.batch_size: already exists"),
    Case("deleting a key", "train", ["~trainer.batch_size"], "trainer.batch_size: cannot be deleted"),
    Case("a group given a value", "train", ["trainer=3"], "trainer: is a group of keys, not a value"),
    Case("unknown task", "train", ["task=colaa"], "task: unknown choice 'colaa'; choose one of boolq, cb, cola, conll2003, custom, mnli,"),
    Case("unknown model", "train", ["model=bert-bas"], "model: unknown choice 'bert-bas'; choose one of bert-base,"),
    Case("unknown optimizer", "train", ["optimizer=adam"], "optimizer: unknown choice 'adam'; choose one of adamw, sgd"),
    Case("unknown launcher", "train", ["-m", "hydra/launcher=nope"], "hydra/launcher: unknown choice 'nope'"),
    Case("unknown Hydra key", "train", ["hydra.launcher.n_jobs=2"], "hydra.launcher.n_jobs: no such key; python -m src.train --cfg hydra"),
    Case("bad flag", "train", ["--cfg", "jobb"], "argument --cfg/-c: invalid choice: 'jobb'"),
    Case("unresolvable interpolation", "train", ["output_dir=${{nope}}"], "output_dir: Interpolation key 'nope' not found"),
    Case("several values without -m", "train", ["optimizer.lr=1e-3,abc"], "optimizer.lr=1e-3,abc: several values; add -m to sweep over them"),
    # values: every field's rule and the rules between fields
    Case("log every 0 steps", "train", ["trainer.log_every_steps=0"], "trainer.log_every_steps must be >= 1, got 0"),
    Case("negative seed", "train", ["seed=-1"], "seed must be in [0, 4294967295], got -1"),
    Case("zero learning rate", "train", ["optimizer.lr=0"], "optimizer.lr must be > 0, got 0.0"),
    Case("infinite learning rate", "train", ["optimizer.lr=inf"], "optimizer.lr must be a finite number > 0, got inf"),
    Case("one Adam beta", "train", ["optimizer.betas=[0.9]"], "optimizer.betas must be a list of 2 items, got [0.9]"),
    Case("heads that do not divide", "train", ["model=tiny", "model.num_heads=3"], "model.hidden_size (64) must be a multiple of model.num_heads (3)"),
    Case("zero threads", "train", ["hardware.num_threads=0"], "hardware.num_threads must be >= 1, got 0"),
    Case("negative workers", "train", ["hardware.dataloader_workers=-1"], "hardware.dataloader_workers must be >= 0, got -1"),
    Case("nothing to train", "train", ["trainer.epochs=0"], "nothing to train: set trainer.epochs > 0 or trainer.max_steps > 0"),
    Case("warmup over 1", "train", ["scheduler.warmup_ratio=1.5"], "scheduler.warmup_ratio must be in [0, 1], got 1.5"),
    Case("unknown selection split", "train", ["data.selection_split=test"], "data.selection_split must be one of dev, train_holdout, got 'test'"),
    Case("unknown W&B mode", "train", ["logger.mode=sometimes"], "logger.mode must be one of null, online, offline, disabled, got 'sometimes'"),
    Case("fp16 on CPU", "train", ["hardware.mixed_precision=fp16"], "fp16 needs a GPU"),
    Case("unknown weight dtype", "train", ["model=tiny-llama", "model.torch_dtype=fp16"], "model.torch_dtype must be one of fp32, bf16, got 'fp16'"),
    Case("LoRA targets as one word", "train", ["finetune=lora", "finetune.target_modules=attention"], "finetune.target_modules must be one of null, all-linear or a list"),
    Case("unknown seqeval mode", "train", ["task=conll2003", "task.seqeval_mode=lenient"], "task.seqeval_mode must be one of null, strict"),
    # paths
    Case("GLUE folder that does not exist", "train", ["data.glue_dir=/nonexistent/glue"], "data.glue_dir must be an existing directory"),
    Case("CoNLL folder that does not exist", "train", ["task=conll2003", "data.conll_dir=/nonexistent/conll"], "data.conll_dir must be an existing directory"),
    Case("GLUE folder that is a file", "train", ["data.glue_dir={a_file}"], "data.glue_dir must be a directory, not a file"),
    Case("cache folder that is a file", "train", ["data.cache_dir={a_file}"], "data.cache_dir must be a directory, not a file"),
    Case("output_dir that is a file", "train", ["output_dir={a_file}"], "output_dir must be a directory, not a file"),
    Case("output_dir below a file", "train", ["output_dir={a_file}/run"], "output_dir must be a directory that can be created"),
    Case("Hydra's run dir below a file", "train", ["hydra.run.dir={a_file}/run"], "a file stands where a directory is expected"),
    Case("local model that does not exist", "train", ["model=bert-base", "model.name_or_path=/nonexistent/model"], "model.name_or_path: /nonexistent/model does not exist"),
    Case("output_dir holding a user's files", "train", [*RECIPE, "output_dir={user_dir}"], "{user_dir} holds files that are not a basebench run (notes.txt)"),
    Case("output_dir of a finished run", "train", [*RECIPE, "output_dir={finished}"], "{finished} already holds a finished run (metrics.json)"),
    Case("output_dir of another config's unfinished run", "train", [*RECIPE, "optimizer.lr=3e-3", "output_dir={unfinished}"], "holds an unfinished run of another config (optimizer.lr: 0.001 there, 0.003 here)"),
    Case("resume a run that does not exist", "train", ["trainer.resume=/nonexistent/run"], "trainer.resume: /nonexistent/run does not exist"),
    Case("resume a file", "train", ["trainer.resume={a_file}"], "is a file, not a run directory"),
    Case("resume a run whose config.yaml does not load", "train", ["trainer.resume={bad_config}"], "config.yaml does not load"),
    Case("resume true without output_dir", "train", ["trainer.resume=true"], "trainer.resume=true continues output_dir's run"),
    Case("resume a finished run", "train", ["trainer.resume={finished}"], "{finished} already holds a finished run"),
    Case("predict without test files", "train", [*RECIPE, "predict=true", "output_dir={fresh}"], "RTE/test.tsv not found: task rte reads its test split there"),
    # multiruns
    Case("a wrong value every job shares", "train", ["-m", "trainer.batch_size=abc", "seed=1,2", "hydra.sweep.dir={fresh}"], "trainer.batch_size: 'abc' is not an integer"),
    # src.evaluate
    Case("evaluate a path that does not exist", "evaluate", ["/nonexistent/run"], "/nonexistent/run does not exist"),
    Case("evaluate a file", "evaluate", ["{a_file}"], "is a file, not a directory"),
    Case("evaluate a run without checkpoint-best", "evaluate", ["{no_best}"], "is a run directory without checkpoint-best/"),
    Case("evaluate an empty directory", "evaluate", ["{empty}"], "holds neither a model (config.json) nor a run"),
    Case("evaluate damaged weights", "evaluate", ["{damaged_weights}", "task=rte", "output_dir={fresh}"], "does not load (SafetensorError"),
    Case("evaluate a damaged model config", "evaluate", ["{damaged_config}", "task=rte", "output_dir={fresh}"], "does not load as a model (It looks like the config file"),
    Case("evaluate a Hub model without a task", "evaluate", ["someone/some-model"], "say which task to evaluate it on"),
    Case("evaluate on an unknown task", "evaluate", ["{finished}", "task=rtee"], "task: unknown choice 'rtee'"),
    Case("evaluate with a wrong value", "evaluate", ["{finished}", "data.max_eval_samples=0"], "data.max_eval_samples must be >= 1"),
    Case("evaluate with an unknown key", "evaluate", ["{finished}", "trainer.no_such_key=1"], "trainer.no_such_key: no such key"),
    Case("evaluate into a finished run", "evaluate", ["{finished}", "output_dir={finished}"], "already holds a finished run"),
    Case("evaluate without arguments", "evaluate", [], "the following arguments are required: checkpoint"),
    # src.zeroshot
    Case("zero-shot with an encoder", "zeroshot", ["task=rte", "model=tiny", "logger=none", "output_dir={fresh}"], "model tiny is an encoder (bert): zero- and few-shot scoring needs a decoder"),
    Case("zero-shot on a regression task", "zeroshot", ["task=stsb", "model=tiny-gpt2", "logger=none", "output_dir={fresh}"], "task stsb is a regression task: zero- and few-shot scoring picks one of a classification task's answers"),
    Case("zero-shot on a task without a prompt", "zeroshot", ["task=custom", "task.data_files.dev=dev.csv", "task.text_fields=[text]", "model=tiny-gpt2", "logger=none", "output_dir={fresh}"], "task custom has no prompt: set task.prompt.template and task.prompt.choices"),
    Case("a prompt reading a field the task lacks", "zeroshot", ["task=rte", "task.prompt.template='{{{{premise}}}} ok?'", "model=tiny-gpt2"], "task.prompt.template reads premise, which task rte does not have"),
    Case("an answer per class missing", "zeroshot", ["task=cola", "task.prompt.choices=[no,yes,maybe]", "model=tiny-gpt2"], "task.prompt.choices has 3 answers for the 2 classes of cola"),
    Case("negative few-shot", "zeroshot", ["num_fewshot=-1"], "num_fewshot must be >= 0, got -1"),
    Case("more few-shot examples than train holds", "zeroshot", ["task=rte", "model=tiny-gpt2", "num_fewshot=5000", "logger=none", "output_dir={fresh}"], "num_fewshot=5000: the few-shot pool holds only 2490 examples"),
    Case("zero-shot with predict", "zeroshot", ["task=rte", "model=tiny-gpt2", "predict=true", "logger=none", "output_dir={fresh}"], "predict=true writes submission files of a fine-tuned checkpoint"),
    # src.report
    Case("report a path that does not exist", "report", ["/nonexistent/runs"], "/nonexistent/runs does not exist"),
    Case("report a file", "report", ["{a_file}"], "is a file, not a directory"),
    Case("report a folder without runs", "report", ["{empty}"], "no runs found"),
    Case("report into a file", "report", ["{finished}", "--out", "{a_file}"], "is a file, not a directory: choose another --out"),
    Case("report without arguments", "report", [], "the following arguments are required: dirs"),
    Case("report with an unknown flag", "report", ["{finished}", "--bogus"], "unrecognized arguments: --bogus"),
    # src.sweep
    Case("summarize a path that does not exist", "sweep", ["/nonexistent/sweep"], "/nonexistent/sweep does not exist"),
    Case("summarize a file", "sweep", ["{a_file}"], "is a file, not a directory"),
    Case("summarize a folder without jobs", "sweep", ["{empty}"], "holds no Hydra jobs"),
    Case("summarize without arguments", "sweep", [], "give one sweep directory"),
]


@pytest.fixture(scope="module")
def places(work, finished) -> dict[str, str]:
    """The paths the cases name: the finished run, an unfinished one of another config, damaged copies, a file."""
    a_file, empty, user_dir = work / "a-file.txt", work / "empty", work / "user-dir"
    a_file.write_text("not a directory\n")
    empty.mkdir()
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("a user's file\n")
    no_best = work / "no-best"
    shutil.copytree(finished, no_best, ignore=shutil.ignore_patterns("checkpoint-best"))
    unfinished = work / "unfinished"  # what an interrupted run leaves: no metrics.json
    shutil.copytree(finished, unfinished, ignore=shutil.ignore_patterns("metrics.json"))
    (unfinished / "status.json").write_text(json.dumps({"status": "interrupted", "error": "interrupted at step 5", "time": ""}))
    bad_config = work / "bad-config"
    shutil.copytree(unfinished, bad_config)
    (bad_config / "config.yaml").write_text("task: [unclosed\n")
    damaged = {}
    for name, file in (("damaged_weights", "model.safetensors"), ("damaged_config", "config.json")):
        shutil.copytree(finished / "checkpoint-best", work / name)
        (work / name / file).write_text("truncated")
        damaged[name] = str(work / name)
    return {"finished": str(finished), "unfinished": str(unfinished), "no_best": str(no_best), "bad_config": str(bad_config), "a_file": str(a_file), "empty": str(empty), "user_dir": str(user_dir), **damaged}


@pytest.fixture(scope="module")
def corpus(work, places, cache_dir) -> dict[str, tuple[subprocess.CompletedProcess, bool]]:
    """Every case's outcome, two at a time, and whether the finished and unfinished runs (and a user's folder) were
    byte-identical after it."""
    protected = [Path(places["finished"]), Path(places["unfinished"]), Path(places["user_dir"])]
    before = [digests(d) for d in protected]

    def outcome(case: Case) -> tuple[subprocess.CompletedProcess, bool]:
        fresh = work / "fresh" / case.id.replace(" ", "-")
        args = [a.format(**places, fresh=fresh) for a in case.args]
        out = run(case.entry, *args, cwd=work, cache_dir=cache_dir)
        return out, [digests(d) for d in protected] == before

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((c.id for c in CASES), pool.map(outcome, CASES)))


def test_the_corpus_is_large_and_distinct():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    assert len({(c.entry, tuple(c.args)) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_one_line_and_loses_nothing(case, corpus, places):
    out, untouched = corpus[case.id]
    assert out.returncode == case.status, out.stderr[-3000:]
    assert_one_error_line(out, case.message.format(**places))
    assert untouched, "a finished or unfinished run's files, or a user's, changed"


def test_a_shared_wrong_value_stops_the_sweep_before_any_job(corpus, work):
    assert not (work / "fresh" / "a-wrong-value-every-job-shares").exists()


def test_a_job_whose_overrides_do_not_compose_fails_alone(work, cache_dir):
    """Through the joblib launcher: of (rte, colaa) x (64 examples, abc), only (rte, 64) is a valid job. It trains;
    each other job fails alone with its own line in status.json and the summary; the sweep ends with one error line."""
    sweep = work / "sweep"
    out = run("train", "-m", "hydra/launcher=parallel", *RECIPE, "trainer.max_steps=2", "task=rte,colaa", "data.max_train_samples=64,abc", f"hydra.sweep.dir={sweep}", cwd=work, cache_dir=cache_dir)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert last_line(out.stderr).startswith("error: ") and "the other jobs ran: the sweep summary lists every job" in last_line(out.stderr)
    rows = read_table(sweep / "summary.csv")
    assert [(r["status"], r["error"].split(":")[0]) for r in rows] == [("completed", ""), ("failed", "data.max_train_samples"), ("failed", "task"), ("failed", "task")]
    assert json.loads((sweep / rows[1]["dir"] / "status.json").read_text())["error"].startswith("data.max_train_samples: 'abc' is not an integer")


@pytest.fixture(scope="module")
def interrupted(work, cache_dir, finished, tmp_path_factory) -> dict:
    """RECIPE in its own directory and cache, stopped by SIGTERM once its first resume checkpoint exists."""
    run_dir, cache = work / "sigterm", str(tmp_path_factory.mktemp("own_cache"))
    proc = start("train", *RECIPE, f"output_dir={run_dir}", cwd=work, cache_dir=cache)
    wait_for(run_dir / "checkpoints" / "step-0000005", proc)
    proc.send_signal(signal.SIGTERM)
    out = subprocess.CompletedProcess(proc.args, proc.wait(timeout=300), *proc.communicate())
    return {"dir": run_dir, "out": out, "cache": cache}


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path} never appeared: {proc.poll()=}"


def test_sigterm_saves_a_checkpoint_and_stops_cleanly(interrupted):
    out, run_dir = interrupted["out"], interrupted["dir"]
    assert out.returncode == 143 and "Traceback" not in out.stderr, out.stderr[-3000:]
    line = last_line(out.stderr)
    assert line.startswith("stopped by SIGTERM at step ") and line.endswith(f": resume with python -m src.train trainer.resume={run_dir}"), line
    step = int(line.split("at step ")[1].split(":")[0])
    assert 5 <= step < 60 and (run_dir / "checkpoints" / f"step-{step:07d}").is_dir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted" and status["error"] == line
    assert not (run_dir / "metrics.json").exists()


def test_a_requeued_job_continues_past_a_damaged_checkpoint_and_cache(interrupted, finished, work):
    """The same command again (what a requeued SLURM job runs) continues the interrupted run. Its newest checkpoint
    and its tokenized training data were damaged meanwhile: it resumes from the checkpoint before, rebuilds the
    cache, each with one warning, and ends exactly as the run that was never interrupted."""
    run_dir = interrupted["dir"]
    newest = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
    (newest / "model.safetensors").write_bytes(b"truncated")
    (cache_file,) = Path(interrupted["cache"]).glob("tokenized/rte-train-*.arrow")
    cache_file.write_bytes(cache_file.read_bytes()[:100])
    out = run("train", *RECIPE, f"output_dir={run_dir}", cwd=work, cache_dir=interrupted["cache"])
    assert out.returncode == 0, out.stderr[-3000:]
    logs = out.stdout + out.stderr
    assert f"{run_dir} holds an unfinished run of this config: continuing it" in logs
    assert logs.count("does not load") == 1 and f"resume checkpoint {newest} does not load" in logs and "resuming from" in logs
    assert logs.count("does not read") == 1 and f"tokenized-data cache {cache_file} does not read" in logs
    resumed, reference = read_metrics(run_dir), read_metrics(finished)
    for key in DEV_KEYS:
        assert resumed[key] == reference[key], key
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"


def test_ctrl_c_is_one_line_with_how_to_resume(work, cache_dir):
    run_dir = work / "ctrl-c"
    proc = start("train", *RECIPE, f"output_dir={run_dir}", cwd=work, cache_dir=cache_dir)
    wait_for(run_dir / "checkpoints" / "step-0000005", proc)
    proc.send_signal(signal.SIGINT)
    out = subprocess.CompletedProcess(proc.args, proc.wait(timeout=300), *proc.communicate())
    assert out.returncode == 130 and "Traceback" not in out.stderr, out.stderr[-3000:]
    line = last_line(out.stderr)
    assert line.startswith("interrupted at step ") and line.endswith(f": resume with python -m src.train trainer.resume={run_dir}"), out.stderr[-3000:]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"


def test_a_lock_left_by_kill_9_is_taken_over(work, cache_dir):
    """kill -9 leaves the lock file naming the dead process, but no lock: the next process on the directory takes
    it over with one warning (here a run of another config, which it then refuses without touching the run)."""
    run_dir = work / "killed"
    proc = start("train", *RECIPE, f"output_dir={run_dir}", cwd=work, cache_dir=cache_dir)
    wait_for(run_dir / "checkpoints" / "step-0000005", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert f"process {proc.pid} on" in (run_dir / ".lock").read_text()
    before = digests(run_dir)
    out = run("train", *RECIPE, "optimizer.lr=3e-3", f"output_dir={run_dir}", cwd=work, cache_dir=cache_dir)
    assert f"taking over the lock left by process {proc.pid}" in out.stdout + out.stderr
    assert_one_error_line(out, f"{run_dir} holds an unfinished run of another config")
    assert (run_dir / ".lock").read_text() == "" and {k: v for k, v in digests(run_dir).items() if k != ".lock"} == {k: v for k, v in before.items() if k != ".lock"}
