"""Evaluate a fine-tuned model on a GLUE task's dev set without training; write what a training run writes.

    python -m src.evaluate outputs/runs/2025-06-01/10-00-00_rte_minilm-l6          # a run (its checkpoint-best/)
    python -m src.evaluate textattack/roberta-base-RTE task=rte                     # a Hub or local model with a head
    python -m src.evaluate RUN_DIR predict=true submission_dir=outputs/glue_submission   # + the GLUE test file(s)

CHECKPOINT is a run directory, its checkpoint-best/, or a Hub id or local directory of a model that
already has a classification head. The overrides are conf/'s keys, as for src.train: task, data.*,
trainer.eval_batch_size, hardware, logger, analysis.*, predict, submission_dir, output_dir. For a
run's checkpoint, the task, model name, model.max_length and seed default to the run's.

output_dir (default outputs/evals/DATE/TIME_TASK_MODEL) gets config.yaml, status.json, metrics.json,
predictions_dev.tsv, the classification report and the error analysis, as a training run's directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from src.config import Config, UserError, register_schema, to_plain_dict, validate
from src.train import CONF_DIR, check_group_choices, make_accelerator

log = logging.getLogger("basebench")
EVAL_ROOT = Path("outputs/evals")


def find_checkpoint(checkpoint: str) -> tuple[str, Path | None]:
    """(what from_pretrained reads, the training run it came from or None)."""
    path = Path(checkpoint)
    if (path / "checkpoint-best").is_dir():
        return str(path / "checkpoint-best"), path
    is_run = path.is_dir() and (path.parent / "config.yaml").is_file() and (path.parent / "status.json").is_file()
    return checkpoint, path.parent if is_run else None


def compose_config(checkpoint: str, source_run: Path | None, overrides: list[str]) -> tuple[Config, dict]:
    """conf/ composed with the user's overrides over defaults taken from the source run (if any)."""
    run_cfg = yaml.safe_load((source_run / "config.yaml").read_text()) if source_run is not None else None
    if run_cfg is not None:
        task = run_cfg["task"]["name"] if (CONF_DIR / "task" / f"{run_cfg['task']['name']}.yaml").is_file() else "custom"
        defaults = [f"task={task}", f"seed={run_cfg['seed']}", *(f"model.{key}={_value(value)}" for key, value in run_cfg["model"].items())]
    else:
        defaults = [f"model.name={_value(checkpoint)}", f"model.name_or_path={_value(checkpoint)}", "model.source=hub"]
    defaults.append("logger.job_type=evaluate")
    overridden = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if source_run is None and "task" not in overridden:
        raise UserError(f"{checkpoint} is not the checkpoint of a basebench run: say which task to evaluate it on, e.g. task=rte")
    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            raw = compose(config_name="config", overrides=[d for d in defaults if d.split("=", 1)[0] not in overridden] + overrides)
        except Exception as e:  # a key conf/ does not have, or a value of the wrong type
            raise UserError(f"invalid override: {str(e).splitlines()[0]}") from None
    if run_cfg is not None and "task" not in overridden:  # task=NAME on the command line: that task, as conf/ defines it
        keep_run_task(raw, run_cfg["task"], overridden)
    return validate(raw), to_plain_dict(raw)


def keep_run_task(raw: DictConfig, run_task: dict, overridden: set[str]) -> None:
    """The task as the run defined it (its own files and labels, a task from another config folder), except what
    the command line overrides and the data location: where the task's data lives now wins, when it says."""
    for key, value in run_task.items():
        if any(o == f"task.{key}" or o.startswith(f"task.{key}.") for o in overridden):
            continue
        if key == "data_dir" and OmegaConf.select(raw, "task.data_dir") is not None:
            continue
        if OmegaConf.select(raw, f"task.{key}") != value:
            OmegaConf.update(raw, f"task.{key}", value, merge=isinstance(value, dict))  # a typed node (task.hub) takes a dict by merging


def _value(value) -> str:
    """A value in Hydra's override syntax (strings quoted: a path may hold = or ,)."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return json.dumps(value)  # null, true, numbers, lists


def default_output_dir(cfg: Config) -> Path:
    model = re.sub(r"[^\w.-]+", "_", cfg.model.name).strip("_")
    return EVAL_ROOT / time.strftime("%Y-%m-%d") / f"{time.strftime('%H-%M-%S')}_{cfg.task.name}_{model}"


def evaluate_checkpoint(cfg: Config, plain_config: dict, checkpoint: str, source_run: Path | None, out_dir: Path, overrides: list[str]) -> dict:
    """Evaluate on dev (and predict test with predict=true); write out_dir; returns metrics.json's content."""
    from src.analysis import publish_results
    from src.data import build_eval_data, tokenizer_fingerprint
    from src.finetune import count_parameters
    from src.loop import evaluate
    from src.model import align_head, check_max_length, load_trained
    from src.outputs import failure_line, metrics_record, prepare_run_dir, write_config, write_status
    from src.submission import check_test_files, submission_dir, write_submission
    from src.task_types import task_type
    from src.tracking import start_tracker

    started = time.perf_counter()
    accelerator = make_accelerator(cfg)
    if cfg.predict:
        check_test_files(cfg)
    if accelerator.is_main_process:
        prepare_run_dir(out_dir)
        write_config(out_dir, plain_config)
        write_status(out_dir, "running")
    model, tokenizer = load_trained(checkpoint, cfg.model, cfg.task)
    check_max_length(cfg.model, model)
    if cfg.task.label_names is None and task_type(cfg.task).has_classes:  # inferred from train when the run trained: the head knows them
        cfg.task.label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    model = align_head(model, cfg.task)
    loaders, examples = build_eval_data(cfg, tokenizer, tokenizer_fingerprint(tokenizer), cfg.task.label_names or [])
    num_parameters, _ = count_parameters(model)
    model = accelerator.prepare(model)
    source_metrics = _read_json(source_run / "metrics.json") if source_run is not None else {}

    tracker = start_tracker(cfg, plain_config, out_dir, None, accelerator.is_main_process)
    try:
        result = evaluate(cfg, accelerator, model, {sfx: accelerator.prepare(loader) for sfx, loader in loaders["dev"].items()})
        test = evaluate(cfg, accelerator, model, {sfx: accelerator.prepare(loader) for sfx, loader in loaders["test"].items()}) if loaders["test"] else None
        if cfg.predict:
            write_submission(cfg, accelerator, model, tokenizer, submission_dir(cfg, out_dir))
        metrics = metrics_record(
            cfg,
            result,
            test,
            checkpoint=checkpoint,
            best_step=0,
            final=result.metrics,
            # the protocol that chose this checkpoint; unknown for a model trained elsewhere
            selection_split=source_metrics.get("selection_split"),
            selection=source_metrics.get("selection"),
            steps=0,
            train_samples=0,
            train_samples_per_second=0.0,
            train_runtime_s=0.0,
            total_runtime_s=time.perf_counter() - started,
            time_to_first_step_s=None,  # nothing trained
            num_parameters=num_parameters,
            trainable_parameters=0,
            history=[{"step": 0, "epoch": 0.0, **result.metrics}],
            overrides=overrides,
            **({"finetune": source_metrics["finetune"]} if "finetune" in source_metrics else {}),
        )
        if accelerator.is_main_process:
            tracker.log({f"eval/{k}": v for k, v in result.metrics.items()} | ({f"test/{k}": v for k, v in test.metrics.items()} if test else {}), 0)
            publish_results(out_dir, cfg, result, test, examples, metrics, tracker, summary={})
            log.info(f"{cfg.task.name} dev: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()) + f"; outputs in {out_dir}")
            if test:
                log.info(f"{cfg.task.name} test: " + ", ".join(f"{k}={v:.4f}" for k, v in test.metrics.items()))
    except BaseException as e:
        tracker.fail(failure_line(e))
        raise
    tracker.finish()
    return metrics


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a run directory, its checkpoint-best/, or a Hub id or local directory of a model with a classification head")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for src.train: task=rte data.max_eval_samples=500 predict=true output_dir=DIR")
    args = parser.parse_args(argv)
    from src.outputs import record_failure, write_status  # here: it imports sklearn, which --help does not need

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    is_main_process = os.environ.get("RANK", "0") == "0"
    out_dir = None
    try:
        check_group_choices(args.overrides)
        checkpoint, source_run = find_checkpoint(args.checkpoint)
        cfg, plain_config = compose_config(checkpoint, source_run, args.overrides)
        out_dir = Path(cfg.output_dir) if cfg.output_dir else default_output_dir(cfg)
        evaluate_checkpoint(cfg, plain_config, checkpoint, source_run, out_dir, args.overrides)
    except BaseException as e:
        if is_main_process and out_dir is not None and (out_dir / "status.json").exists():
            record_failure(out_dir, e)
        if isinstance(e, UserError):
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        raise
    if is_main_process:
        write_status(out_dir, "completed")


if __name__ == "__main__":
    main()
