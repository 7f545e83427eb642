"""One run's life, shared by every entry point (src.train, src.evaluate, src.zeroshot), and the command line around it:

    validate the config -> lock and prepare the run directory -> start tracking -> status.json "running"
    -> the entry point's work -> status.json "completed" | "failed" (one line) | "interrupted"; the W&B run says the same

A Hydra entry point is its work plus a few lines:

    @hydra.main(config_path="../conf", config_name="config", version_base="1.3")
    def main(raw_cfg: DictConfig) -> float:
        return lifecycle.hydra_job(raw_cfg, work)   # work(run: RunContext) -> the value a sweeper optimises

    if __name__ == "__main__":
        lifecycle.cli(main)

Every mistake a user can make ends in one line `error: ...` on stderr and exit status 2, whether Hydra or OmegaConf
found it while composing, the schema while typing, `check` or the run itself; a bug keeps its traceback (status 1).
In a multirun a job that fails (its overrides too) fails alone: the other jobs run, the sweep summary lists it.
Ctrl-C stops with one line and status 130, SIGTERM (what SLURM sends before it preempts or times out a job) with
143; during training both first finish the step and save a resume checkpoint there.

This module imports nothing heavy: `--help` and `--cfg job` stay fast.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from src.config import Config, UserError, check, config_error_line, register_schema, to_plain_dict, to_typed
from src.tracking import Tracker, start_tracker

if TYPE_CHECKING:
    from accelerate import Accelerator

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
LOCK_FILE = ".lock"
COMPOSE_ERROR_KEY = "_compose_error_"  # set by JobConfigLoader in a job whose overrides did not compose
# OSErrors the user fixes (a full disk, a quota, a permission, a path through a file): one line, not a traceback
USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}
log = logging.getLogger("basebench")
T = TypeVar("T")
_run_started = False  # an error raised before a run started comes from composing the config (exit_status)


# ---------------------------------------------------------------- how a run ends


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped the run; `step` is where training stopped (a resume checkpoint was saved there)."""

    def __init__(self, signum: int = signal.SIGINT, step: int | None = None, message: str = ""):
        super().__init__(signum, step, message)
        self.signum, self.step, self.message = signum, step, message

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class JobFailed(Exception):
    """A job of a multirun failed: its error was printed and recorded; Hydra raises this once every job has run."""

    def __init__(self, line: str, is_user_error: bool, job: str):
        super().__init__(line, is_user_error, job)
        self.line, self.is_user_error, self.job = line, is_user_error, job


def user_error(error: BaseException) -> UserError | None:
    """The error as a UserError when the user can fix it: ours, or an OSError of USER_ERRNOS."""
    if isinstance(error, UserError):
        return error
    if isinstance(error, OSError) and error.errno in USER_ERRNOS:
        where = f"{error.filename}: " if error.filename else ""
        return UserError(f"{where}{(error.strerror or type(error).__name__).lower()}; {_ERRNO_HINTS.get(error.errno, 'choose a path you can write (output_dir=DIR, data.cache_dir=DIR)')}")
    return None


_ERRNO_HINTS = {
    errno.ENOSPC: "free some space, or write elsewhere (output_dir=DIR, data.cache_dir=DIR)",
    errno.EDQUOT: "free some of your quota, or write elsewhere (output_dir=DIR, data.cache_dir=DIR)",
    errno.ENOTDIR: "a file stands where a directory is expected: choose another path",
    errno.EISDIR: "a directory stands where a file is expected: choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def failure_line(error: BaseException) -> str:
    """The one line status.json, W&B and the console give a failure: a user error's message, else the exception's type and first line."""
    known = user_error(error)
    if known is not None:
        return str(known).splitlines()[0]
    if isinstance(error, Interrupted):
        return error.message
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"


def exit_status(error: BaseException) -> int:
    """Say on stderr, in one line, what ended the command, and return its exit status; a bug is re-raised (its traceback matters)."""
    if isinstance(error, SystemExit):
        raise error
    if isinstance(error, Interrupted):
        line, status = error.message or "interrupted", error.exit_status
    elif isinstance(error, KeyboardInterrupt):
        line, status = "interrupted", 130
    elif isinstance(error, JobFailed):
        line, status = f"error: {error.line} (job {error.job}; the other jobs ran: the sweep summary lists every job)", 2 if error.is_user_error else 1
    else:
        known = user_error(error) or (UserError(config_error_line(error)) if _from_composition(error) else None)
        if known is None:
            raise error
        line, status = f"error: {known}", 2
    print(line, file=sys.stderr)
    return status


def _from_composition(error: BaseException) -> bool:
    """Raised by Hydra or OmegaConf before any run started: composing the config from the command line failed."""
    if _run_started:
        return False
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        return True
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and any(f"{os.sep}{lib}{os.sep}" in tb.tb_frame.f_code.co_filename for lib in ("hydra", "omegaconf"))


# ---------------------------------------------------------------- the command line


def cli(main: Callable[[], Any]) -> None:
    """Run a Hydra entry point's main() as a command: errors as exit_status says, never Hydra's multi-line report."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises what it would print over several lines; exit_status says it in one
    try:
        _check_flags(sys.argv[1:])
        if {"-m", "--multirun"} & set(sys.argv) and {"--cfg", "-c"} & set(sys.argv):  # every job's config (Hydra allows only one of them)
            from src.sweep import print_job_configs

            register_schema()
            print_job_configs([a for a in sys.argv[1:] if a not in ("-m", "--multirun", "--cfg", "-c", "job")], CONF_DIR)
            return
        if os.environ.get("RANK", "0") != "0":
            # DDP: ranks > 0 write into rank 0's run directory (broadcast by the work); Hydra's own one stays out of outputs/
            sys.argv += [f"hydra.run.dir={os.environ.get('TMPDIR', '/tmp')}/basebench-rank{os.environ['RANK']}", "hydra.output_subdir=null"]
        register_schema()
        main()
    except BaseException as e:
        sys.exit(exit_status(e))


def run_command(main: Callable[[], T]) -> T:
    """Run an argparse entry point's main (src.evaluate, src.report, src.sweep) with cli's error handling."""
    try:
        return main()
    except BaseException as e:
        sys.exit(exit_status(e))


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """An argparse parser whose mistakes (a missing argument, an unknown flag) are a UserError instead of usage + error."""

    def error(message: str) -> NoReturn:
        raise UserError(f"{message}; {parser.prog} --help lists the arguments")

    parser.error = error  # type: ignore[method-assign]
    return parser


def _check_flags(argv: list[str]) -> None:
    """Hydra's own flags (--cfg, --multirun, ...) parsed as Hydra will, so that a wrong one is one line."""
    from hydra._internal.utils import get_args_parser

    parser = one_line_errors(get_args_parser())
    parser.prog = f"python -m {sys.modules['__main__'].__spec__.name}" if getattr(sys.modules["__main__"], "__spec__", None) else parser.prog
    parser.parse_args(argv)


# ---------------------------------------------------------------- composing each job of a multirun


class JobErrors(Callback):
    """Hydra callback (conf/config.yaml): each job of a multirun is composed by JobConfigLoader, so that a job whose
    overrides do not compose (a wrong type, an unknown key or group choice) fails alone while the others run."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra = GlobalHydra.instance().hydra
        if hydra is not None and not isinstance(hydra.config_loader, JobConfigLoader):
            hydra.config_loader = JobConfigLoader(hydra.config_loader)  # the launcher gets it with the HydraContext


class JobConfigLoader:
    """Hydra's config loader, except that a job whose overrides do not compose gets the config of those that do,
    with every override recorded and the error line under COMPOSE_ERROR_KEY: `execute` fails it with that line,
    status.json and the sweep summary say so. Picklable, as the joblib and submitit launchers need."""

    def __init__(self, loader: Any):
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # everything else is Hydra's
        if name.startswith("_") or name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        try:
            return self.loader.load_sweep_config(master_config, sweep_overrides)
        except Exception as e:
            error = config_error_line(e)
        composes: list[str] = []
        for override in sweep_overrides:
            try:
                self.loader.load_sweep_config(master_config, [*composes, override])
                composes.append(override)
            except Exception:
                continue
        cfg = self.loader.load_sweep_config(master_config, composes)
        with open_dict(cfg):
            cfg.hydra.overrides.task = list(sweep_overrides)
            cfg[COMPOSE_ERROR_KEY] = error
        return cfg


# ---------------------------------------------------------------- the run directory


class RunLock:
    """One process per run directory: an exclusive flock on <run_dir>/.lock, which names its owner. The kernel drops
    the lock when that process ends, however it ends (kill -9 too), so a lock left behind is free: it is taken over
    with one warning naming the process that left it. The file stays (deleting it would let two processes lock)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or fail with one line naming the process that holds it."""
        if not self._take(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)):
            owner = self.path.read_text(errors="replace").strip() or "another process"
            raise UserError(f"{self.path.parent} is in use by {owner}: wait for it to end or stop it, or choose another output_dir")

    def try_acquire(self) -> bool:
        """Take the lock if the directory exists and no live process holds it (for recording a failure)."""
        try:
            return self._fd is not None or self._take(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644))
        except OSError:
            return False

    def _take(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        left = os.read(fd, 200).decode(errors="replace").strip()
        if left:  # released cleanly, the file is empty: its owner was killed
            log.warning(f"{self.path.parent}: taking over the lock left by {left}, which no longer runs")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def write_text_atomic(path: Path, text: str) -> None:
    """Write-then-rename, so that a reader, or a run killed meanwhile, never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_status(run_dir: Path, status: str, error: str | None = None) -> None:
    """status.json: running | completed | failed | interrupted, with the error line. A killed run stays "running"."""
    try:
        write_text_atomic(run_dir / "status.json", json.dumps({"status": status, "error": error, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")
    except OSError:  # an unwritable or missing run directory has already been reported
        pass


def read_run_config(run_dir: Path) -> DictConfig:
    """The config an earlier run of run_dir started with (its config.yaml), over the schema; unreadable: one line."""
    path = run_dir / "config.yaml"
    if not path.exists():
        raise UserError(f"{run_dir} holds no config.yaml of an earlier run: pass the directory of a basebench run")
    try:
        return OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path))  # type: ignore[return-value]
    except Exception as e:  # not YAML, not a mapping, a directory, a value the schema refuses
        reason = config_error_line(e) if isinstance(e, OmegaConfBaseException) else (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path} does not load ({reason}): restore it, or start the run anew in another output_dir") from None


def resumed_run(resume: str, output_dir: str | None) -> tuple[Path, DictConfig]:
    """The run directory trainer.resume names and its saved config (a resumed run keeps its recipe)."""
    if resume.lower() == "true":
        if not output_dir:
            raise UserError("trainer.resume=true continues output_dir's run: add output_dir=RUN_DIR, or pass trainer.resume=RUN_DIR")
        resume = output_dir
    run_dir = Path(resume)
    if not run_dir.is_dir():
        what = "is a file, not a run directory" if run_dir.exists() else "does not exist"
        raise UserError(f"trainer.resume: {run_dir} {what}; pass the directory of the run to continue")
    saved = read_run_config(run_dir)
    saved.trainer.resume = str(run_dir)
    saved.output_dir = str(run_dir)
    log.info(f"resuming {run_dir} with its saved config (other overrides are ignored)")
    return run_dir, saved


def run_config(raw_cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, Path, bool]:
    """The config this run uses, its directory and whether it resumes, before typing and `check`: a job whose
    overrides did not compose fails with that line; trainer.resume swaps in the saved config and directory (a
    resumed run keeps its recipe)."""
    if COMPOSE_ERROR_KEY in raw_cfg:
        raise UserError(raw_cfg[COMPOSE_ERROR_KEY])
    resume = OmegaConf.select(raw_cfg, "trainer.resume", throw_on_resolution_failure=False)  # one that does not resolve: to_typed says so
    if resume:
        output_dir = OmegaConf.select(raw_cfg, "output_dir", throw_on_resolution_failure=False)
        run_dir, raw_cfg = resumed_run(str(resume), output_dir)
    return raw_cfg, run_dir, bool(resume)


def prepare_run_dir(run_dir: Path, lock: RunLock, plain_config: dict, resuming: bool) -> bool:
    """Create and lock the run directory; True when it holds an unfinished run to continue. Refused in one line: a
    directory another live process uses, a finished run (metrics.json), an unfinished run of another config, a
    directory of other files (a user's)."""
    others = _not_a_run(run_dir)  # before the lock, which adds a file
    if others:
        raise UserError(f"{run_dir} holds files that are not a basebench run ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}): choose a new or empty output_dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as e:
        raise UserError(f"cannot write to the output directory {run_dir} ({e.strerror}): choose another with output_dir=DIR or hydra.run.dir=DIR") from None
    if (run_dir / "metrics.json").exists():
        raise UserError(f"{run_dir} already holds a finished run (metrics.json): choose another output_dir, or delete that run")
    if resuming or not (run_dir / "config.yaml").exists():
        return resuming
    # an unfinished run (interrupted, killed, failed): the same config continues it (a requeued SLURM job, the same command again)
    saved = _flatten(to_plain_dict(read_run_config(run_dir)))
    here = _flatten(plain_config)
    differs = next((key for key in sorted(saved.keys() | here.keys()) if key not in ("trainer.resume", "output_dir") and saved.get(key) != here.get(key)), None)
    if differs is not None:
        raise UserError(
            f"{run_dir} holds an unfinished run of another config ({differs}: {saved.get(differs)!r} there, {here.get(differs)!r} here): "
            f"continue it with trainer.resume={run_dir}, or choose another output_dir"
        )
    log.info(f"{run_dir} holds an unfinished run of this config: continuing it")
    return True


def _not_a_run(run_dir: Path) -> list[str]:
    """The files of a directory that holds no run (no status.json, no config.yaml) besides Hydra's own (.hydra/, its
    log) and the lock: a user's, never to be written among. [] for a run's directory, an empty or a new one."""
    if not run_dir.is_dir() or (run_dir / "status.json").exists() or (run_dir / "config.yaml").exists():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.name not in (LOCK_FILE, ".hydra") and p.suffix != ".log")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    return {key: value for name, child in tree.items() for key, value in _flatten(child, f"{prefix}{name}.").items()}


# ---------------------------------------------------------------- interrupts


class StopSignal:
    """SIGINT (Ctrl-C), SIGTERM, and SIGUSR2 where submitit handles it (its notice of a SLURM time limit), during a run.

    They stop the run at once (Interrupted), except inside `at_step_end` (the training loop): there the loop finishes
    its step, saves a resume checkpoint and stops (src/loop.py checks `requested` at each step end); a second signal
    stops at once. Whoever handled the signal before (submitit, which then requeues the job) is called afterwards."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._waiting = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self._waiting and self.signum is None:
            self.signum = signum
            return
        raise Interrupted(signum)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGUSR2] if callable(signal.getsignal(signal.SIGUSR2)) else [])
        previous = {s: signal.signal(s, self._handle) for s in signals}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextmanager
    def at_step_end(self) -> Iterator[None]:
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False

    def requested(self, accelerator: Accelerator | None = None) -> bool:
        """Whether a signal asked to stop; under DDP, whether any rank's did (every rank stops at the same step)."""
        if accelerator is not None and accelerator.num_processes > 1:
            import torch

            flag = torch.tensor([self.signum or 0], device=accelerator.device)
            self.signum = int(accelerator.reduce(flag, reduction="max").item()) or None
        return self.signum is not None


def _forward(signum: int) -> None:
    """Hand a signal on to whoever handled it before the run (submitit: it requeues the job, then exits)."""
    handler = signal.getsignal(signum)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signum, None)


def _interrupted(error: KeyboardInterrupt, run_dir: Path, started: bool, resume_with: str | None) -> Interrupted:
    """The Interrupted to end with, whose message says where the run stopped and how to continue it."""
    signum, step = getattr(error, "signum", signal.SIGINT), getattr(error, "step", None)
    name = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    if not started:
        return Interrupted(signum, step, f"{name} before the run started: nothing was written")
    if resume_with is None:
        return Interrupted(signum, step, f"{name}: {run_dir} is left unfinished; run the same command again")
    at = f" at step {step}" if step is not None else ""
    return Interrupted(signum, step, f"{name}{at}: resume with {resume_with.format(run_dir=run_dir)}")


# ---------------------------------------------------------------- the lifecycle


@dataclass
class RunContext:
    """What an entry point's work gets: the validated config, and the run directory, tracker and stop signal it owns."""

    cfg: Config
    dir: Path
    tracker: Tracker
    stop: StopSignal
    overrides: list[str]  # the command line's


def hydra_job(raw_cfg: DictConfig, work: Callable[[RunContext], T], resume_with: str | None = None) -> T:
    """`execute` for the config Hydra composed: a single run, or one job of a multirun (run directory, overrides and
    W&B group from Hydra). resume_with: the command that continues an interrupted run ({run_dir} filled in)."""
    hydra_cfg = HydraConfig.get()
    sweep_dir = str(Path(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None
    try:
        output_dir = raw_cfg.get("output_dir")
    except OmegaConfBaseException:  # an interpolation that does not resolve: execute says so, in one line
        output_dir = None
    run_dir = Path(output_dir or hydra_cfg.runtime.output_dir)
    overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)  # as typed: output_dir=${x} stays so
    return execute(raw_cfg, run_dir, work, overrides=overrides, sweep_dir=sweep_dir, resume_with=resume_with)  # type: ignore[arg-type]


def execute(raw_cfg: DictConfig, run_dir: Path, work: Callable[[RunContext], T], overrides: list[str], sweep_dir: str | None = None, resume_with: str | None = None) -> T:
    """One run's life: validate, lock and prepare run_dir, start tracking, run `work`, record how it ended.

    Only the process that locked run_dir writes its status.json (rank 0 under DDP), and never over a finished run's
    files; a failure before that is recorded only in a directory nobody wrote a status into (Hydra's new job dir).
    A user error's line is printed here, then the run ends with exit status 2 (SystemExit, which Hydra passes on
    without a report of its own); in a multirun (sweep_dir set) as JobFailed instead, after a bug's traceback too:
    the job fails, the other jobs run."""
    global _run_started
    _run_started = True
    is_main_process = os.environ.get("RANK", "0") == "0"  # torchrun sets RANK; only rank 0 writes
    lock, tracker, typed, owned = RunLock(run_dir), Tracker(), None, False
    stop = StopSignal()
    try:
        with stop.installed():
            raw_cfg, run_dir, resuming = run_config(raw_cfg, run_dir)
            lock = RunLock(run_dir)
            typed = to_typed(raw_cfg)
            cfg = check(typed)
            plain_config = to_plain_dict(raw_cfg)
            if is_main_process:
                if prepare_run_dir(run_dir, lock, plain_config, resuming):
                    cfg.trainer.resume = str(run_dir)
                else:
                    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(plain_config, sort_keys=False))
                owned = True
                write_status(run_dir, "running")
            tracker = start_tracker(cfg, plain_config, run_dir, cfg.logger.group or sweep_dir, is_main_process)
            result = work(RunContext(cfg, run_dir, tracker, stop, overrides))
            tracker.finish()
            if is_main_process:
                write_status(run_dir, "completed")
            return result
    except BaseException as error:
        ended = _interrupted(error, run_dir, owned or not is_main_process, resume_with) if isinstance(error, KeyboardInterrupt) else error
        line = failure_line(ended)
        fresh = run_dir.is_dir() and not any((run_dir / f).exists() for f in ("status.json", "config.yaml")) and not _not_a_run(run_dir)  # Hydra's new job dir
        ours = is_main_process and (owned or (fresh and lock.try_acquire()))
        if ours and not isinstance(ended, SystemExit) and not (run_dir / "metrics.json").exists():
            write_status(run_dir, "interrupted" if isinstance(ended, Interrupted) else "failed", line)
            if sweep_dir is not None and typed is not None and type(tracker) is Tracker:  # the sweep's W&B group shows every job
                tracker = _tracker_for_failed_job(typed, raw_cfg, run_dir, sweep_dir, is_main_process)
        if isinstance(ended, Interrupted):
            tracker.interrupted(line, preempted=ended.signum != signal.SIGINT)
            lock.release()
            _forward(ended.signum)
            raise ended from None
        tracker.fail(line)
        if isinstance(ended, SystemExit) or (sweep_dir is None and user_error(ended) is None):
            raise  # a bug in a single run: its traceback
        if user_error(ended) is None:  # a bug in a job of a multirun: its traceback now, the sweep goes on
            traceback.print_exception(ended)
        print(f"error: {line}", file=sys.stderr)
        if sweep_dir is None:
            raise SystemExit(2) from None
        raise JobFailed(line, user_error(ended) is not None, run_dir.name) from error
    finally:
        lock.release()


def _tracker_for_failed_job(cfg: Config, raw_cfg: DictConfig, run_dir: Path, sweep_dir: str, is_main_process: bool) -> Tracker:
    """A W&B run for a job that failed before its own started (a bad value), so that it can be marked failed."""
    try:
        return start_tracker(cfg, to_plain_dict(raw_cfg), run_dir, cfg.logger.group or sweep_dir, is_main_process)
    except Exception:  # e.g. the run directory cannot be written: the summary and status.json still say why
        return Tracker()


def make_accelerator(cfg: Config) -> Accelerator:
    """The accelerate.Accelerator for cfg.hardware (shared by every entry point)."""
    import torch
    from accelerate import Accelerator

    if cfg.hardware.accelerator == "gpu" and not torch.cuda.is_available():
        raise UserError("hardware asks for a GPU but torch sees no CUDA device: use hardware=cpu, or install a CUDA build of torch (see README)")
    if cfg.hardware.num_threads:
        torch.set_num_threads(cfg.hardware.num_threads)
    return Accelerator(
        cpu=cfg.hardware.accelerator == "cpu" or (cfg.hardware.accelerator == "auto" and not torch.cuda.is_available()),
        mixed_precision=cfg.hardware.mixed_precision,
        gradient_accumulation_steps=cfg.trainer.grad_accum_steps,
        dynamo_backend="inductor" if cfg.hardware.compile else None,
    )
