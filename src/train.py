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
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.config import Config, UserError, register_schema, to_plain_dict, validate

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("task", "model", "optimizer", "scheduler", "hardware", "logger", "finetune", "experiment")
log = logging.getLogger("basebench")
logging.getLogger("accelerate").setLevel(logging.WARNING)  # it logs every file of every checkpoint at INFO


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
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from src.data import build_data
    from src.finetune import apply_finetune, count_parameters
    from src.loop import count_steps, train
    from src.model import check_max_length, load_model, load_tokenizer
    from src.outputs import class_reports, prepare_run_dir, write_class_reports, write_config, write_json, write_predictions, write_status
    from src.tracking import start_tracker

    started = time.perf_counter()
    if cfg.hardware.accelerator == "gpu" and not torch.cuda.is_available():
        raise UserError("hardware asks for a GPU but torch sees no CUDA device: use hardware=cpu, or install a CUDA build of torch (see README)")
    if cfg.hardware.num_threads:
        torch.set_num_threads(cfg.hardware.num_threads)
    accelerator = Accelerator(
        cpu=cfg.hardware.accelerator == "cpu",
        mixed_precision=cfg.hardware.mixed_precision,
        gradient_accumulation_steps=cfg.trainer.grad_accum_steps,
    )
    if accelerator.is_main_process:
        prepare_run_dir(run_dir)
        if not cfg.trainer.resume:
            write_config(run_dir, plain_config)
        write_status(run_dir, "running")

    set_seed(cfg.seed)
    tokenizer = load_tokenizer(cfg.model)
    data = build_data(cfg, tokenizer)
    set_seed(cfg.seed)  # the classification head's init must not depend on what data loading consumed
    model = load_model(cfg.model, cfg.task, tokenizer)
    check_max_length(cfg.model, model)
    # AdaLoRA's rank schedule spans the run: the optimizer steps of one process, whose loader gets 1/N of the batches
    model = apply_finetune(cfg.finetune, model, total_steps=count_steps(cfg, math.ceil(len(data.train) / accelerator.num_processes)))
    num_parameters, trainable_parameters = count_parameters(model)
    log.info(f"{cfg.model.name}, finetune={cfg.finetune.name}: {num_parameters:,} parameters ({trainable_parameters:,} trainable); {cfg.task.name}: {data.train_size} train examples")

    tracker = start_tracker(cfg, plain_config, run_dir, group, accelerator.is_main_process)
    try:
        result = train(cfg, accelerator, model, tokenizer, data, run_dir, tracker.log)
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
        "finetune": cfg.finetune.name,
        "seed": cfg.seed,
        "main_metric": main_metric,
        "main_metric_value": result.best[main_metric],
        "best": result.best,
        "best_step": result.best_step,
        "final": result.final,
        "selection_split": cfg.data.selection_split,
        "selection": result.selection,
        "steps": result.steps,
        "train_samples": result.train_samples,
        "train_samples_per_second": result.train_samples_per_second,
        "train_runtime_s": result.train_runtime_s,
        "total_runtime_s": time.perf_counter() - started,
        "num_parameters": num_parameters,
        "trainable_parameters": trainable_parameters,
        "classification_report": class_reports(cfg, best_eval.labels, best_eval.predictions),
        "history": result.history,
    }
    if accelerator.is_main_process:
        for sfx, preds in best_eval.predictions.items():
            write_predictions(run_dir / f"predictions_dev{sfx}.tsv", preds, best_eval.labels[sfx], cfg.task.is_regression)
        report = write_class_reports(run_dir, cfg, best_eval.labels, best_eval.predictions)
        write_json(run_dir / "metrics.json", metrics)
        if report:
            log.info("per-class report at the best evaluation:\n" + report)
        log.info(f"best {main_metric} = {result.best[main_metric]:.4f} at step {result.best_step}; {result.train_samples_per_second:.1f} train samples/s; outputs in {run_dir}")
        tracker.summary({f"best/{k}": v for k, v in result.best.items()} | {"main_metric": result.best[main_metric], "num_parameters": num_parameters, "trainable_parameters": trainable_parameters, "finetune": cfg.finetune.name, "train_samples_per_second": result.train_samples_per_second})
        tracker.log_predictions(_prediction_rows(cfg, data.dev_raw[""], best_eval), ["text", "label", "prediction"])
        if cfg.logger.log_model and cfg.trainer.save_best:
            tracker.log_model(run_dir / "checkpoint-best", f"{cfg.task.name}-{cfg.model.name}")
    tracker.finish()
    return result.best[main_metric]


def _prediction_rows(cfg: Config, dev_raw, best_eval) -> list[list]:
    names = cfg.task.label_names
    texts = [" [SEP] ".join(parts) for parts in zip(*(dev_raw[f] for f in cfg.task.text_fields))]
    rows = []
    for text, label, pred in zip(texts, best_eval.labels[""], best_eval.predictions[""]):
        rows.append([text, float(label), float(pred)] if cfg.task.is_regression else [text, names[int(label)], names[int(pred)]])
    return rows


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


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(raw_cfg: DictConfig) -> float:
    from src.outputs import write_status

    hydra_cfg = HydraConfig.get()
    run_dir = Path(raw_cfg.get("output_dir") or hydra_cfg.runtime.output_dir)
    is_main_process = os.environ.get("RANK", "0") == "0"  # torchrun sets RANK; only rank 0 writes
    try:
        if raw_cfg.trainer.resume:
            run_dir, raw_cfg = resumed_run(str(raw_cfg.trainer.resume), raw_cfg.get("output_dir"))
        cfg = validate(raw_cfg)
        group = cfg.logger.group or (str(Path(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None)
        result = run(cfg, to_plain_dict(raw_cfg), run_dir, group)
    except BaseException as e:  # KeyboardInterrupt included: the run directory says how it ended
        error = str(e).splitlines()[0] if isinstance(e, UserError) else f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
        if is_main_process and not isinstance(e, SystemExit) and not (run_dir / "metrics.json").exists():
            write_status(run_dir, "failed", error=error)  # never over a finished run's files
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
