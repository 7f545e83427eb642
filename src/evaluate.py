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
import re
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from src import lifecycle
from src.config import UserError, config_error_line, is_local_path, register_schema

log = logging.getLogger("basebench")
EVAL_ROOT = Path("outputs/evals")
RUN_FILES = ("config.yaml", "status.json", "metrics.json")  # any of them marks a basebench run directory


def find_checkpoint(checkpoint: str) -> tuple[str, Path | None]:
    """(what from_pretrained reads, the training run it came from or None); a path that cannot be either is one line."""
    path = Path(checkpoint)
    if (path / "checkpoint-best").is_dir():
        return str(path / "checkpoint-best"), path
    if path.is_dir():
        if any((path / name).is_file() for name in RUN_FILES):
            raise UserError(f"{path} is a run directory without checkpoint-best/: it ran with trainer.save_best=false or stopped before its first evaluation; train with trainer.save_best=true (the default) to get one")
        is_run = all((path.parent / name).is_file() for name in ("config.yaml", "status.json"))
        if not is_run and not (path / "config.json").is_file():
            raise UserError(f"{path} holds neither a model (config.json) nor a run (checkpoint-best/): pass a run directory, its checkpoint-best/, or a model directory")
        return checkpoint, path.parent if is_run else None
    if path.exists():
        raise UserError(f"{path} is a file, not a directory: pass a run directory, its checkpoint-best/, or a model directory")
    if is_local_path(checkpoint):
        raise UserError(f"{checkpoint} does not exist: pass a run directory, its checkpoint-best/, or a Hub id")
    return checkpoint, None


def compose_config(checkpoint: str, source_run: Path | None, overrides: list[str]) -> DictConfig:
    """conf/ composed with the user's overrides over defaults taken from the source run (if any)."""
    run_cfg = OmegaConf.to_container(lifecycle.read_run_config(source_run)) if source_run is not None else None
    if run_cfg is not None:
        task = run_cfg["task"]["name"] if (lifecycle.CONF_DIR / "task" / f"{run_cfg['task']['name']}.yaml").is_file() else "custom"
        defaults = [f"task={task}", f"seed={run_cfg['seed']}", *(f"model.{key}={_value(value)}" for key, value in run_cfg["model"].items())]
    else:
        defaults = [f"model.name={_value(checkpoint)}", f"model.name_or_path={_value(checkpoint)}", "model.source=hub"]
    defaults.append("logger.job_type=evaluate")
    overridden = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if source_run is None and "task" not in overridden:
        raise UserError(f"{checkpoint} is not the checkpoint of a basebench run: say which task to evaluate it on, e.g. task=rte")
    register_schema()
    with initialize_config_dir(config_dir=str(lifecycle.CONF_DIR), version_base="1.3"):
        try:
            raw = compose(config_name="config", overrides=[d for d in defaults if d.split("=", 1)[0] not in overridden] + overrides)
        except Exception as e:  # a key conf/ does not have, a value of the wrong type, an unknown task
            raise UserError(config_error_line(e)) from None
    if run_cfg is not None and "task" not in overridden:  # task=NAME on the command line: that task, as conf/ defines it
        keep_run_task(raw, run_cfg["task"], overridden)
    return raw


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


def default_output_dir(raw_cfg: DictConfig) -> Path:
    model = re.sub(r"[^\w.-]+", "_", str(raw_cfg.model.name)).strip("_")
    return EVAL_ROOT / time.strftime("%Y-%m-%d") / f"{time.strftime('%H-%M-%S')}_{raw_cfg.task.name}_{model}"


def evaluate_checkpoint(run: lifecycle.RunContext, checkpoint: str, source_run: Path | None) -> dict:
    """Evaluate on dev (and predict test with predict=true); write the run directory; returns metrics.json's content."""
    from src.analysis import publish_results
    from src.data import build_eval_data, tokenizer_fingerprint
    from src.finetune import count_parameters
    from src.loop import evaluate
    from src.model import align_head, check_max_length, load_trained
    from src.outputs import metrics_record
    from src.submission import check_test_files, submission_dir, write_submission
    from src.task_types import task_type

    started = time.perf_counter()
    cfg, out_dir = run.cfg, run.dir
    accelerator = lifecycle.make_accelerator(cfg)
    if cfg.predict:
        check_test_files(cfg)
    try:
        model, tokenizer = load_trained(checkpoint, cfg.model, cfg.task)
    except (UserError, OSError):
        raise
    except Exception as e:  # a damaged file: safetensors', json's or peft's error
        raise UserError(f"{checkpoint} does not load ({type(e).__name__}: {(str(e).splitlines() or [''])[0]}): the checkpoint is damaged; train again, or pass another") from None
    check_max_length(cfg.model, model)
    if cfg.task.label_names is None and task_type(cfg.task).has_classes:  # inferred from train when the run trained: the head knows them
        cfg.task.label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    model = align_head(model, cfg.task)
    loaders, examples = build_eval_data(cfg, tokenizer, tokenizer_fingerprint(tokenizer), cfg.task.label_names or [])
    num_parameters, _ = count_parameters(model)
    model = accelerator.prepare(model)
    source_metrics = _read_json(source_run / "metrics.json") if source_run is not None else {}

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
        overrides=run.overrides,
        **({"finetune": source_metrics["finetune"]} if "finetune" in source_metrics else {}),
    )
    if accelerator.is_main_process:
        run.tracker.log({f"eval/{k}": v for k, v in result.metrics.items()} | ({f"test/{k}": v for k, v in test.metrics.items()} if test else {}), 0)
        publish_results(out_dir, cfg, result, test, examples, metrics, run.tracker, summary={})
        log.info(f"{cfg.task.name} dev: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()) + f"; outputs in {out_dir}")
        if test:
            log.info(f"{cfg.task.name} test: " + ", ".join(f"{k}={v:.4f}" for k, v in test.metrics.items()))
    return metrics


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):  # the source run's metrics only add the protocol that chose the checkpoint
        log.warning(f"{path} does not load: the protocol that chose the checkpoint is recorded as unknown")
        return {}


def main(argv: list[str] | None = None) -> dict:
    parser = lifecycle.one_line_errors(argparse.ArgumentParser(prog="python -m src.evaluate", description=__doc__.split("\n\n")[0]))
    parser.add_argument("checkpoint", help="a run directory, its checkpoint-best/, or a Hub id or local directory of a model with a classification head")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for src.train: task=rte data.max_eval_samples=500 predict=true output_dir=DIR")

    def evaluate_command() -> dict:
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        checkpoint, source_run = find_checkpoint(args.checkpoint)
        raw_cfg = compose_config(checkpoint, source_run, args.overrides)
        out_dir = Path(raw_cfg.output_dir) if raw_cfg.get("output_dir") else default_output_dir(raw_cfg)
        return lifecycle.execute(raw_cfg, out_dir, lambda run: evaluate_checkpoint(run, checkpoint, source_run), overrides=args.overrides)

    return lifecycle.run_command(evaluate_command)


if __name__ == "__main__":
    main()
