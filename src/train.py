"""Fine-tune a pretrained encoder on a GLUE task and evaluate it on dev.

    python -m src.train task=cola model=bert-base
    python -m src.train -m task=cola optimizer.lr=1e-5,2e-5,5e-5 trainer.batch_size=16,32
    python -m src.train --cfg job          # print the composed config

config -> data + model -> loop -> metrics -> run directory (+ W&B).
Heavy libraries are imported inside `run`, so --help and --cfg stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.config import Config, UserError, register_schema, to_plain_dict, validate

if TYPE_CHECKING:
    from accelerate import Accelerator

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("task", "model", "optimizer", "scheduler", "hardware", "logger", "experiment")
log = logging.getLogger("basebench")


def check_group_choices(overrides: list[str]) -> None:
    """One clear line for an unknown task/model/... instead of Hydra's multi-line error."""
    for arg in overrides:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or value in ("null", ""):
            continue
        choices = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
        for choice in value.removeprefix("choice(").removesuffix(")").split(","):
            if choice.strip() not in choices:
                raise UserError(f"unknown {key} {choice.strip()!r}: choose one of {', '.join(choices)}")


def run(cfg: Config, plain_config: dict, run_dir: Path, group: str | None) -> float:
    """Train, evaluate and write the run directory; returns the best dev main metric (for sweepers)."""
    from accelerate.utils import set_seed

    from src.analysis import log_error_analysis, prediction_rows, write_error_analysis
    from src.data import build_data
    from src.loop import train
    from src.model import check_max_length, load_model, load_tokenizer, load_trained
    from src.outputs import class_reports, prepare_run_dir, write_config, write_dev_outputs, write_json, write_status
    from src.submission import check_test_files, submission_dir, write_submission
    from src.tracking import start_tracker

    started = time.perf_counter()
    accelerator = make_accelerator(cfg)
    if cfg.predict:
        check_test_files(cfg)
    if accelerator.is_main_process:
        prepare_run_dir(run_dir)
        write_config(run_dir, plain_config)
        write_status(run_dir, "running")

    set_seed(cfg.seed)
    tokenizer = load_tokenizer(cfg.model)
    data = build_data(cfg, tokenizer)
    set_seed(cfg.seed)  # the classification head's init must not depend on what data loading consumed
    model = load_model(cfg.model, cfg.task, tokenizer)
    check_max_length(cfg.model, model)
    num_parameters = sum(p.numel() for p in model.parameters())
    trainable_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(f"{cfg.model.name}: {num_parameters:,} parameters ({trainable_parameters:,} trainable); {cfg.task.name}: {data.train_size} train examples")

    tracker = start_tracker(cfg, plain_config, run_dir, group, accelerator.is_main_process)
    try:
        result = train(cfg, accelerator, model, tokenizer, data, run_dir, tracker.log)
        if cfg.predict:
            accelerator.wait_for_everyone()  # the main process has written checkpoint-best
            best_model, best_tokenizer = load_trained(str(run_dir / "checkpoint-best"))
            write_submission(cfg, accelerator, accelerator.prepare(best_model), best_tokenizer, submission_dir(cfg, run_dir))
    except BaseException:
        tracker.finish(exit_code=1)
        raise

    main_metric = cfg.task.main_metric
    best_eval = result.best_eval
    metrics = {
        "status": "completed",
        "task": cfg.task.name,
        "model": cfg.model.name,
        "model_name_or_path": cfg.model.name_or_path,
        "seed": cfg.seed,
        "main_metric": main_metric,
        "main_metric_value": result.best[main_metric],
        "best": result.best,
        "best_step": result.best_step,
        "final": result.final,
        "selection_split": "dev",
        "steps": result.steps,
        "train_samples": result.train_samples,
        "train_samples_per_second": result.train_samples_per_second,
        "train_runtime_s": result.train_runtime_s,
        "total_runtime_s": time.perf_counter() - started,
        "num_parameters": num_parameters,
        "trainable_parameters": trainable_parameters,
        "classification_report": class_reports(cfg, best_eval.labels, best_eval.predictions),
        "history": result.history,
        "overrides": list(HydraConfig.get().overrides.task),
    }
    if accelerator.is_main_process:
        report = write_dev_outputs(run_dir, cfg, best_eval)
        analyses = write_error_analysis(run_dir, cfg, best_eval, data.dev_raw)
        write_json(run_dir / "metrics.json", metrics)
        if report:
            log.info("per-class report at the best evaluation:\n" + report)
        log.info(f"best {main_metric} = {result.best[main_metric]:.4f} at step {result.best_step}; {result.train_samples_per_second:.1f} train samples/s; outputs in {run_dir}")
        tracker.summary({f"best/{k}": v for k, v in result.best.items()} | {"main_metric": result.best[main_metric], "num_parameters": num_parameters, "train_samples_per_second": result.train_samples_per_second})
        tracker.log_predictions(prediction_rows(cfg, data.dev_raw[""], best_eval), ["text", "label", "prediction"])
        log_error_analysis(tracker, analyses)
        if cfg.logger.log_model and cfg.trainer.save_best:
            tracker.log_model(run_dir / "checkpoint-best", f"{cfg.task.name}-{cfg.model.name}")
    tracker.finish()
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
        cpu=cfg.hardware.accelerator == "cpu",
        mixed_precision=cfg.hardware.mixed_precision,
        gradient_accumulation_steps=cfg.trainer.grad_accum_steps,
    )


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(raw_cfg: DictConfig) -> float:
    from src.outputs import record_failure, write_status

    hydra_cfg = HydraConfig.get()
    run_dir = Path(raw_cfg.get("output_dir") or hydra_cfg.runtime.output_dir)
    is_main_process = os.environ.get("RANK", "0") == "0"  # torchrun sets RANK; only rank 0 writes
    try:
        cfg = validate(raw_cfg)
        group = cfg.logger.group or (str(Path(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None)
        result = run(cfg, to_plain_dict(raw_cfg), run_dir, group)
    except BaseException as e:  # KeyboardInterrupt included: the run directory says how it ended
        if is_main_process:
            record_failure(run_dir, e)
        if isinstance(e, UserError):
            print(f"error: {e}", file=sys.stderr)
            if hydra_cfg.mode == RunMode.RUN:
                sys.exit(2)
        raise  # in a multirun the job fails, the other jobs go on
    if is_main_process:
        write_status(run_dir, "completed")
    return result


def cli() -> None:
    try:
        check_group_choices(sys.argv[1:])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    register_schema()
    main()


if __name__ == "__main__":
    cli()
