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
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src import lifecycle

log = logging.getLogger("basebench")
logging.getLogger("accelerate").setLevel(logging.WARNING)  # it logs every file of every checkpoint at INFO


def run(ctx: lifecycle.RunContext) -> float:
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
    cfg, tracker = ctx.cfg, ctx.tracker
    accelerator = lifecycle.make_accelerator(cfg)
    # every rank writes where rank 0 does, and resumes when it does (an unfinished run of the same config continues)
    run_dir, cfg.trainer.resume = broadcast_object_list([str(ctx.dir), cfg.trainer.resume])
    run_dir = Path(run_dir)
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

    result = train(cfg, accelerator, model, tokenizer, data, run_dir, tracker.log, ctx.stop)
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
        overrides=ctx.overrides,
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


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(raw_cfg: DictConfig) -> float:
    """A run or one job of a multirun, in the lifecycle every entry point shares (src/lifecycle.py)."""
    return lifecycle.hydra_job(raw_cfg, run, resume_with="python -m src.train trainer.resume={run_dir}")


if __name__ == "__main__":
    lifecycle.cli(main)
