"""The fine-tuning loop: read it top to bottom like an algorithm box.

    restore the newest resume checkpoint, if resuming
    for each epoch, for each batch (skipping those a resumed run already did):
        forward, backward (accumulated over grad_accum_steps micro-batches)
        clip gradients, optimizer step, scheduler step (AdaLoRA: reallocate the rank budget)
        every eval_every_steps and at each epoch end: evaluate on the selection split, keep the best checkpoint
        every checkpoint_every_steps and after each evaluation: save a resume checkpoint
        on Ctrl-C or SIGTERM (src/lifecycle.py): save a resume checkpoint and stop
    with a train holdout for selection: evaluate the best checkpoint on dev, once
    with a labelled test split: evaluate the best checkpoint on it, once

accelerate places tensors on the device, applies mixed precision, wraps the model for DDP and
saves/restores the full training state (model, optimizer, scheduler, RNG).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch.nn.utils import clip_grads_with_norm_, get_total_norm
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_scheduler

from src.checkpoint import load_best, load_newest_resume, save_best, save_resume
from src.config import Config, TaskConfig, UserError
from src.data import TaskData
from src.finetune import AdaLoraAllocatorState
from src.lifecycle import Interrupted, StopSignal
from src.task_types import task_type

SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
PAD_LABEL = -100  # pads per-example outputs to a common width; a label the metrics skip


@dataclass
class EvalResult:
    metrics: dict[str, float]
    predictions: dict[str, np.ndarray]  # metric suffix -> predictions in dev row order
    labels: dict[str, np.ndarray]
    logits: dict[str, np.ndarray]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"{kind}{sfx}": arr for kind in ("predictions", "labels", "logits") for sfx, arr in getattr(self, kind).items()}

    @classmethod
    def from_arrays(cls, metrics: dict[str, float], arrays: dict[str, np.ndarray]) -> EvalResult:
        parts = {kind: {key[len(kind) :]: arr for key, arr in arrays.items() if key.startswith(kind)} for kind in ("predictions", "labels", "logits")}
        return cls(metrics, **parts)


@dataclass
class TrainState:
    """Everything besides model, optimizer, scheduler and RNG that a resumed run needs."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_done: int = 0  # micro-batches done in the current epoch
    samples: int = 0
    train_time_s: float = 0.0
    best: dict[str, float] | None = None  # selection-split metrics at the best evaluation
    best_step: int = -1
    history: list[dict] = field(default_factory=list)


@dataclass
class TrainResult:
    final: dict[str, float] | None  # dev metrics at the last evaluation (None when dev is held out from selection)
    selection: dict[str, float]  # selection-split metrics at the best evaluation
    best_step: int
    best_eval: EvalResult  # dev predictions of the selected checkpoint
    test_eval: EvalResult | None  # the labelled test split's, of the same checkpoint (None: the task has none)
    steps: int
    train_samples: int
    train_runtime_s: float
    history: list[dict]
    first_step_at: float  # wall-clock time (time.time()) when this process finished its first optimizer step

    @property
    def best(self) -> dict[str, float]:
        """Dev metrics of the selected checkpoint."""
        return self.best_eval.metrics

    @property
    def train_samples_per_second(self) -> float:
        return self.train_samples / self.train_runtime_s if self.train_runtime_s > 0 else 0.0


def no_decay_parameters(model: torch.nn.Module) -> set[int]:
    """ids of the parameters weight decay leaves alone: biases, and the weights of normalisation layers, found by the
    layer's class (LayerNorm, LlamaRMSNorm, Qwen2RMSNorm, ...) rather than by names, which differ in every family
    (GPT-2's ln_1, Llama's input_layernorm, ModernBERT's attn_norm)."""
    norms = {id(p) for module in model.modules() if type(module).__name__.endswith("Norm") for p in module.parameters(recurse=False)}
    return norms | {id(p) for name, p in model.named_parameters() if "bias" in name}


def build_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    opt = cfg.optimizer
    decay, no_decay, exempt = [], [], no_decay_parameters(model)
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if id(param) in exempt else decay).append(param)
    groups = [{"params": decay, "weight_decay": opt.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if opt.name == "adamw":
        return torch.optim.AdamW(groups, lr=opt.lr, betas=tuple(opt.betas), eps=opt.eps, fused=opt.fused)
    if opt.name == "sgd":
        return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum, fused=opt.fused)
    raise UserError(f"unknown optimizer {opt.name!r}: choose adamw or sgd")


def clip_gradients(accelerator: Accelerator, model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """Scale the gradients down to norm max_norm if above it; returns their norm before clipping.

    torch's clip_grad_norm_ rescales every gradient even when the norm is under the limit, as it
    mostly is after the first steps: skipping that pass over all weights makes a MiniLM step on CPU 2% faster.
    """
    accelerator.unscale_gradients()  # fp16: the true gradients, before they are measured
    parameters = [p for p in model.parameters() if p.grad is not None]
    norm = get_total_norm([p.grad for p in parameters])
    if norm > max_norm:
        clip_grads_with_norm_(parameters, max_norm, norm)
    return norm


def count_steps(cfg: Config, batches_per_epoch: int) -> int:
    """Total optimizer steps: trainer.max_steps if set, else epochs x steps per epoch."""
    if cfg.trainer.max_steps > 0:
        return cfg.trainer.max_steps
    return max(1, math.ceil(cfg.trainer.epochs * batches_per_epoch / cfg.trainer.grad_accum_steps))


@torch.inference_mode()
def predict_logits(accelerator: Accelerator, model: torch.nn.Module, loader, task: TaskConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits, and the gold labels when the split has them (test splits have none), in row order: a row per example as
    the task type shapes it (token classification: a row per word, padded to the longest example with labels -100)."""
    kind = task_type(task)
    parts: dict[str, list[torch.Tensor]] = {"idx": [], "logits": [], "labels": []}
    for batch in loader:
        tensors = {"idx": batch.pop("idx"), **kind.predict_batch(task, model, batch)}
        tensors = accelerator.pad_across_processes(tensors, dim=1, pad_index=PAD_LABEL)  # words per example differ between processes
        for key, tensor in accelerator.gather_for_metrics(tensors).items():
            parts[key].append(tensor.cpu())
    order = torch.cat(parts["idx"]).argsort()  # batches ran longest first: back to row order
    labels = _concat(parts["labels"])[order].numpy() if parts["labels"] else None
    return _concat(parts["logits"])[order].numpy(), labels


def _concat(batches: list[torch.Tensor]) -> torch.Tensor:
    """Batches along the first dimension, padding the second where it differs between batches (words per example)."""
    if batches[0].dim() < 2:
        return torch.cat(batches)
    width = max(b.shape[1] for b in batches)
    return torch.cat([torch.nn.functional.pad(b, (0, 0) * (b.dim() - 2) + (0, width - b.shape[1]), value=PAD_LABEL) for b in batches])


def evaluate(cfg: Config, accelerator: Accelerator, model: torch.nn.Module, loaders: dict) -> EvalResult:
    """Predict every split in `loaders` (metric suffix -> loader); the task's metrics on each."""
    model.eval()
    kind = task_type(cfg.task)
    metrics, predictions, labels_out, logits_out = {}, {}, {}, {}
    for suffix, loader in loaders.items():
        logits, labels = predict_logits(accelerator, model, loader, cfg.task)
        preds = kind.predictions(logits, labels)
        metrics.update(kind.metrics(cfg.task, labels, preds, suffix))
        predictions[suffix], labels_out[suffix], logits_out[suffix] = preds, labels, logits
    model.train()
    return EvalResult(metrics, predictions, labels_out, logits_out)


def train(
    cfg: Config,
    accelerator: Accelerator,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TaskData,
    run_dir: Path,
    log: Callable[[dict, int], None],
    stop: StopSignal | None = None,
) -> TrainResult:
    tr = cfg.trainer
    main_metric = cfg.task.main_metric
    dev_selects = data.selection is data.dev  # False with a train holdout: dev is then evaluated once, at the end
    optimizer = build_optimizer(cfg, model)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, data.train)
    dev_loaders = {sfx: accelerator.prepare(loader) for sfx, loader in data.dev.items()}
    selection_loaders = dev_loaders if dev_selects else {sfx: accelerator.prepare(loader) for sfx, loader in data.selection.items()}
    # counted on this process's shard of the data; the scheduler is stepped by hand, once per optimizer step
    total_steps = count_steps(cfg, len(train_loader))
    warmup = cfg.scheduler.warmup_steps if cfg.scheduler.warmup_steps is not None else round(cfg.scheduler.warmup_ratio * total_steps)
    scheduler = get_scheduler(SCHEDULERS[cfg.scheduler.name], optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
    accelerator.register_for_checkpointing(scheduler)
    if cfg.finetune.name == "adalora":  # its rank allocator's state is not in the weights: resume checkpoints carry it too
        accelerator.register_for_checkpointing(AdaLoraAllocatorState(accelerator.unwrap_model(model)))

    state, best_eval = TrainState(), None
    resumed = load_newest_resume(accelerator, run_dir) if tr.resume else None
    if resumed:
        checkpoint, saved, arrays = resumed
        state = TrainState(**saved)
        best_eval = EvalResult.from_arrays(state.best, arrays) if state.best is not None else None
        print(f"resuming from {checkpoint} (step {state.step}, epoch {state.epoch})")

    bar = tqdm(total=total_steps, initial=state.step, desc=f"{cfg.task.name}/{cfg.model.name}", disable=not (tr.progress_bar and accelerator.is_main_process), dynamic_ncols=True)
    grad_norm, first_step_at = None, None

    def run_eval() -> None:
        nonlocal best_eval
        result = evaluate(cfg, accelerator, model, selection_loaders)
        if not all(np.isfinite(logits).all() for logits in result.logits.values()):
            raise UserError(f"the model outputs non-finite values at step {state.step}: lower optimizer.lr; the best checkpoint so far is kept")
        state.history.append({"step": state.step, "epoch": round(state.epoch + state.batches_done / len(train_loader), 4), **result.metrics})
        log({f"{'eval' if dev_selects else 'selection'}/{k}": v for k, v in result.metrics.items()}, state.step)
        if state.best is None or result.metrics[main_metric] > state.best[main_metric]:
            state.best, state.best_step, best_eval = result.metrics, state.step, result
            if tr.save_best:
                save_best(cfg, accelerator, model, tokenizer, run_dir)
        bar.write(f"step {state.step}: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()) + f" (best {main_metric}={state.best[main_metric]:.4f} at step {state.best_step})")

    def checkpoint() -> None:
        save_resume(accelerator, run_dir, asdict(state), best_eval.to_arrays() if best_eval else {}, tr.keep_checkpoints)

    stop = stop or StopSignal()
    with bar, stop.at_step_end():  # the bar is closed before any error propagates, so the error line is the last one printed
        model.train()
        while state.step < total_steps:
            train_loader.set_epoch(state.epoch)
            t0 = time.perf_counter()
            batches = accelerator.skip_first_batches(train_loader, state.batches_done) if state.batches_done else train_loader
            for batch in batches:
                batch.pop("idx")
                with accelerator.accumulate(model):
                    loss = model(**batch).loss
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:  # the last micro-batch of an optimizer step
                        if tr.max_grad_norm > 0:
                            grad_norm = clip_gradients(accelerator, model, tr.max_grad_norm)
                        optimizer.step()
                        scheduler.step()
                        if cfg.finetune.name == "adalora":  # moves the rank budget by this step's gradients, before they are zeroed
                            accelerator.unwrap_model(model).base_model.update_and_allocate(state.step)
                        optimizer.zero_grad(set_to_none=True)
                state.batches_done += 1
                state.samples += batch["labels"].shape[0] * accelerator.num_processes
                if not accelerator.sync_gradients:
                    continue
                state.step += 1
                first_step_at = first_step_at or time.time()
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise UserError(f"non-finite loss ({loss_value}) at step {state.step}: lower optimizer.lr, or use bf16 instead of fp16; the best checkpoint so far is kept")
                lr = scheduler.get_last_lr()[0]
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", refresh=False)
                if state.step % tr.log_every_steps == 0 or state.step == total_steps:
                    elapsed = state.train_time_s + time.perf_counter() - t0
                    entry = {"train/loss": loss_value, "train/lr": lr, "train/epoch": state.epoch, "train/samples_per_second": state.samples / elapsed}
                    if grad_norm is not None:
                        entry["train/grad_norm"] = float(grad_norm)
                    log(entry, state.step)
                evaluate_now = tr.eval_every_steps and state.step % tr.eval_every_steps == 0 and state.step < total_steps
                stop_now = stop.requested(accelerator) and state.step < total_steps
                checkpoint_now = evaluate_now or stop_now or (tr.checkpoint_every_steps and state.step % tr.checkpoint_every_steps == 0 and state.step < total_steps)
                if checkpoint_now:
                    state.train_time_s += time.perf_counter() - t0
                    if evaluate_now:
                        run_eval()
                    checkpoint()
                    t0 = time.perf_counter()
                if stop_now:  # a resumed run continues from this step's checkpoint
                    raise Interrupted(stop.signum, state.step)
                if state.step >= total_steps:
                    break
            state.train_time_s += time.perf_counter() - t0
            state.epoch, state.batches_done = state.epoch + 1, 0
            run_eval()  # at each epoch end, and once more when max_steps cut the last epoch short
            if state.step < total_steps:
                checkpoint()

    if not dev_selects or data.test:  # the selected checkpoint's weights, for the splits it has not met yet
        load_best(accelerator, model, run_dir)
    if dev_selects:
        dev_eval = best_eval
        final = {k: v for k, v in state.history[-1].items() if k not in ("step", "epoch")}
    else:  # the selected checkpoint meets dev once, here
        dev_eval = evaluate(cfg, accelerator, model, dev_loaders)
        log({f"eval/{k}": v for k, v in dev_eval.metrics.items()}, state.step)
        final = None
    test_eval = None
    if data.test:  # the labelled test split: evaluated once, on the checkpoint selected above
        test_eval = evaluate(cfg, accelerator, model, {sfx: accelerator.prepare(loader) for sfx, loader in data.test.items()})
        log({f"test/{k}": v for k, v in test_eval.metrics.items()}, state.step)
    return TrainResult(
        final=final,
        selection=state.best,
        best_step=state.best_step,
        best_eval=dev_eval,
        test_eval=test_eval,
        steps=state.step,
        train_samples=state.samples,
        train_runtime_s=state.train_time_s,
        history=state.history,
        first_step_at=first_step_at or time.time(),
    )
