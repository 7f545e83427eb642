"""Fine-tune a pretrained encoder on a GLUE task and evaluate it on dev.

    python -m src.train task=cola model=bert-base
    python -m src.train -m task=cola optimizer.lr=1e-5,2e-5,5e-5 trainer.batch_size=16,32
    python -m src.train --cfg job          # print the composed config

config -> data + model -> loop -> metrics -> run directory (+ W&B).
Heavy libraries are imported inside `run`, so --help and --cfg stay fast.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.config import Config, UserError, check, register_schema, to_plain_dict, to_typed
from src.tracking import Tracker, start_tracker

if TYPE_CHECKING:
    from accelerate import Accelerator

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("task", "model", "optimizer", "scheduler", "hardware", "logger", "finetune", "experiment")
log = logging.getLogger("basebench")
logging.getLogger("accelerate").setLevel(logging.WARNING)  # it logs every file of every checkpoint at INFO


def check_group_choices(overrides: list[str]) -> None:
    """One clear line for an unknown task/model/... instead of Hydra's multi-line error. Folders added with
    hydra.searchpath=[file://DIR,...] offer their choices too."""
    folders = [CONF_DIR]
    for arg in overrides:
        if arg.startswith("hydra.searchpath="):
            folders += [Path(entry.strip().removeprefix("file://")) for entry in arg.partition("=")[2].strip("[]").split(",") if entry.strip().startswith("file://")]
    for arg in overrides:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or value in ("null", ""):
            continue
        choices = sorted({p.stem for folder in folders for p in (folder / key).glob("*.yaml") if not p.stem.startswith("_")})  # _glue.yaml: a base, not a choice
        for choice in value.removeprefix("choice(").removesuffix(")").split(","):
            if choice.strip() not in choices:
                raise UserError(f"unknown {key} {choice.strip()!r}: choose one of {', '.join(choices)}")


def run(cfg: Config, run_dir: Path, tracker: Tracker) -> float:
    """Train, evaluate and write the run's results; returns the best dev main metric (for sweepers)."""
    import psutil
    from accelerate.utils import broadcast_object_list, set_seed

    from src.analysis import publish_results
    from src.data import build_data
    from src.finetune import apply_finetune, count_parameters
    from src.loop import count_steps, train
    from src.model import check_max_length, load_model, load_tokenizer, load_trained
    from src.outputs import metrics_record
    from src.submission import check_test_files, submission_dir, write_submission
    from src.task_types import task_type

    started = time.perf_counter()
    accelerator = make_accelerator(cfg)
    run_dir = Path(broadcast_object_list([str(run_dir)])[0])  # every rank writes where rank 0 does
    if cfg.predict:
        check_test_files(cfg)  # before training, not after it

    set_seed(cfg.seed)
    tokenizer = load_tokenizer(cfg.model, cfg.task)
    data = build_data(cfg, tokenizer)
    set_seed(cfg.seed)  # the classification head's init must not depend on what data loading consumed
    model = load_model(cfg.model, cfg.task, tokenizer)
    check_max_length(cfg.model, model)
    # AdaLoRA's rank schedule spans the run: the optimizer steps of one process, whose loader gets 1/N of the batches
    steps = count_steps(cfg, math.ceil(len(data.train) / accelerator.num_processes))
    model = apply_finetune(cfg.finetune, model, total_steps=steps, peft_task_type=task_type(cfg.task).peft_task_type)
    num_parameters, trainable_parameters = count_parameters(model)
    log.info(f"{cfg.model.name}, finetune={cfg.finetune.name}: {num_parameters:,} parameters ({trainable_parameters:,} trainable); {cfg.task.name}: {data.train_size} train examples")

    result = train(cfg, accelerator, model, tokenizer, data, run_dir, tracker.log)
    if cfg.predict:
        accelerator.wait_for_everyone()  # the main process has written checkpoint-best
        best_model, best_tokenizer = load_trained(str(run_dir / "checkpoint-best"), cfg.model, cfg.task)
        write_submission(cfg, accelerator, accelerator.prepare(best_model), best_tokenizer, submission_dir(cfg, run_dir))

    main_metric = cfg.task.main_metric
    metrics = metrics_record(
        cfg,
        result.best_eval,
        result.test_eval,
        finetune=cfg.finetune.name,
        best_step=result.best_step,
        final=result.final,
        selection_split=cfg.data.selection_split,
        selection=result.selection,
        steps=result.steps,
        train_samples=result.train_samples,
        train_samples_per_second=result.train_samples_per_second,
        train_runtime_s=result.train_runtime_s,
        total_runtime_s=time.perf_counter() - started,
        time_to_first_step_s=result.first_step_at - psutil.Process().create_time(),  # from process launch
        num_parameters=num_parameters,
        trainable_parameters=trainable_parameters,
        history=result.history,
        overrides=list(HydraConfig.get().overrides.task),
    )
    if accelerator.is_main_process:
        summary = {"trainable_parameters": trainable_parameters, "finetune": cfg.finetune.name, "train_samples_per_second": result.train_samples_per_second}
        report = publish_results(run_dir, cfg, result.best_eval, result.test_eval, data.examples, metrics, tracker, summary)
        if report:
            log.info("per-class report at the best evaluation:\n" + report)
        log.info(f"best {main_metric} = {result.best[main_metric]:.4f} at step {result.best_step}; {result.train_samples_per_second:.1f} train samples/s; outputs in {run_dir}")
        if result.test_eval is not None:
            log.info(f"test ({cfg.task.test_split}), once, at step {result.best_step}: " + ", ".join(f"{k}={v:.4f}" for k, v in result.test_eval.metrics.items()))
        if cfg.logger.log_model and cfg.trainer.save_best:
            tracker.log_model(run_dir / "checkpoint-best", f"{cfg.task.name}-{cfg.model.name}")
    accelerator.end_training()  # shuts down the process group under DDP
    return result.best[main_metric]


def make_accelerator(cfg: Config) -> Accelerator:
    """The accelerate.Accelerator for cfg.hardware (shared by training and src.evaluate)."""
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


def resumed_run(resume: str, output_dir: str | None) -> tuple[Path, DictConfig]:
    """The run directory to continue and its saved config (a resumed run must not change its recipe)."""
    if resume.lower() == "true":
        if not output_dir:
            raise UserError("trainer.resume=true continues output_dir's run: add output_dir=RUN_DIR, or pass trainer.resume=RUN_DIR")
        resume = output_dir
    run_dir = Path(resume)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"cannot resume {run_dir}: it holds no config.yaml of an earlier run")
    saved = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(run_dir / "config.yaml"))
    saved.trainer.resume = str(run_dir)
    saved.output_dir = str(run_dir)
    log.info(f"resuming {run_dir} with its saved config (other overrides are ignored)")
    return run_dir, saved


def wandb_group(cfg: Config) -> str | None:
    """logger.group, else one group per multirun (its sweep directory)."""
    hydra_cfg = HydraConfig.get()
    return cfg.logger.group or (str(Path(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None)


def tracker_for_failed_job(cfg: Config, raw_cfg: DictConfig, run_dir: Path, is_main_process: bool) -> Tracker:
    """A W&B run for a job that failed before its own started (a bad value), so it can be marked failed."""
    try:
        return start_tracker(cfg, to_plain_dict(raw_cfg), run_dir, wandb_group(cfg), is_main_process)
    except Exception:  # e.g. the run directory cannot be written: the summary and status.json still say why
        return Tracker()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(raw_cfg: DictConfig) -> float:
    """One run's life: validate, prepare the run directory, start tracking, run, and record how it ended
    (status.json and the W&B run), so that a failed job of a multirun is marked failed and the next starts clean."""
    from src.outputs import prepare_run_dir, record_failure, write_config, write_status

    hydra_cfg = HydraConfig.get()
    run_dir = Path(raw_cfg.get("output_dir") or hydra_cfg.runtime.output_dir)
    is_main_process = os.environ.get("RANK", "0") == "0"  # torchrun sets RANK; only rank 0 writes
    tracker, typed = Tracker(), None
    try:
        if raw_cfg.trainer.resume:
            run_dir, raw_cfg = resumed_run(str(raw_cfg.trainer.resume), raw_cfg.get("output_dir"))
        typed = to_typed(raw_cfg)
        cfg = check(typed)
        plain_config = to_plain_dict(raw_cfg)
        if is_main_process:
            prepare_run_dir(run_dir)
            if not cfg.trainer.resume:  # a resumed run keeps the config it started with
                write_config(run_dir, plain_config)
            write_status(run_dir, "running")
        tracker = start_tracker(cfg, plain_config, run_dir, wandb_group(cfg), is_main_process)
        result = run(cfg, run_dir, tracker)
    except BaseException as e:  # KeyboardInterrupt included: the run directory and W&B say how it ended
        error = record_failure(run_dir, e) if is_main_process else ""  # other ranks track nothing
        if hydra_cfg.mode == RunMode.MULTIRUN and typed is not None and type(tracker) is Tracker:
            tracker = tracker_for_failed_job(typed, raw_cfg, run_dir, is_main_process)  # the sweep's W&B group shows every job
        tracker.fail(error)
        if isinstance(e, UserError):
            print(f"error: {e}", file=sys.stderr)
            if hydra_cfg.mode == RunMode.RUN:
                sys.exit(2)
        raise  # in a multirun the job fails, the other jobs go on
    tracker.finish()
    if is_main_process:
        write_status(run_dir, "completed")
    return result


def cli() -> None:
    try:
        check_group_choices(sys.argv[1:])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if {"-m", "--multirun"} & set(sys.argv) and {"--cfg", "-c"} & set(sys.argv):  # every job's config (Hydra allows only one of them)
        from src.sweep import print_job_configs

        register_schema()
        print_job_configs([a for a in sys.argv[1:] if a not in ("-m", "--multirun", "--cfg", "-c", "job")], CONF_DIR)
        return
    if os.environ.get("RANK", "0") != "0":
        # DDP: ranks > 0 write into rank 0's run directory (broadcast in `run`); Hydra's own one stays out of outputs/
        sys.argv += [f"hydra.run.dir={tempfile.gettempdir()}/basebench-rank{os.environ['RANK']}", "hydra.output_subdir=null"]
    register_schema()
    main()


if __name__ == "__main__":
    cli()
