"""The fine-tuning loop: read it top to bottom like an algorithm box.

    for each epoch, for each batch:
        forward, backward (accumulated over grad_accum_steps micro-batches)
        clip gradients, optimizer step, scheduler step
        every eval_every_steps and at each epoch end: evaluate on dev, keep the best checkpoint

accelerate places tensors on the device, applies mixed precision and wraps the model for DDP.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_scheduler

from src.config import Config, UserError
from src.data import GlueData
from src.metrics import compute_metrics

SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias", "norm.weight")


@dataclass
class EvalResult:
    metrics: dict[str, float]
    predictions: dict[str, np.ndarray]  # metric suffix -> predictions in dev row order
    labels: dict[str, np.ndarray]
    logits: dict[str, np.ndarray]


@dataclass
class TrainResult:
    best: dict[str, float]
    final: dict[str, float]
    best_step: int
    best_eval: EvalResult
    steps: int
    train_samples: int
    train_runtime_s: float
    history: list[dict] = field(default_factory=list)

    @property
    def train_samples_per_second(self) -> float:
        return self.train_samples / self.train_runtime_s if self.train_runtime_s > 0 else 0.0


def build_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    opt = cfg.optimizer
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if any(nd in name for nd in NO_DECAY) else decay).append(param)
    groups = [{"params": decay, "weight_decay": opt.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if opt.name == "adamw":
        return torch.optim.AdamW(groups, lr=opt.lr, betas=tuple(opt.betas), eps=opt.eps)
    if opt.name == "sgd":
        return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum)
    raise UserError(f"unknown optimizer {opt.name!r}: choose adamw or sgd")


def count_steps(cfg: Config, batches_per_epoch: int) -> int:
    """Total optimizer steps: trainer.max_steps if set, else epochs x steps per epoch."""
    if cfg.trainer.max_steps > 0:
        return cfg.trainer.max_steps
    return max(1, math.ceil(cfg.trainer.epochs * batches_per_epoch / cfg.trainer.grad_accum_steps))


@torch.inference_mode()
def predict_logits(accelerator: Accelerator, model: torch.nn.Module, loader) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits, and the gold labels when the split has them (test splits have none), in row order."""
    parts: dict[str, list[torch.Tensor]] = {"idx": [], "logits": [], "labels": []}
    for batch in loader:
        tensors = {"idx": batch.pop("idx")} | ({"labels": batch.pop("labels")} if "labels" in batch else {})
        tensors["logits"] = model(**batch).logits.float()
        for key, tensor in accelerator.gather_for_metrics(tensors).items():
            parts[key].append(tensor.cpu())
    order = torch.cat(parts["idx"]).argsort()  # batches ran longest first: back to row order
    labels = torch.cat(parts["labels"])[order].numpy() if parts["labels"] else None
    return torch.cat(parts["logits"])[order].numpy(), labels


def evaluate(cfg: Config, accelerator: Accelerator, model: torch.nn.Module, dev_loaders: dict) -> EvalResult:
    """Predict every dev split; metrics as GLUE defines them."""
    model.eval()
    metrics, predictions, labels_out, logits_out = {}, {}, {}, {}
    for suffix, loader in dev_loaders.items():
        logits, labels = predict_logits(accelerator, model, loader)
        preds = logits[:, 0] if cfg.task.is_regression else logits.argmax(-1)
        metrics.update(compute_metrics(cfg.task.metrics, labels, preds, suffix))
        predictions[suffix], labels_out[suffix], logits_out[suffix] = preds, labels, logits
    model.train()
    return EvalResult(metrics, predictions, labels_out, logits_out)


def save_checkpoint(accelerator: Accelerator, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    """A Hugging Face checkpoint (from_pretrained loads it), written beside and renamed into place."""
    if not accelerator.is_main_process:
        return
    partial = directory.with_name(directory.name + ".partial")
    accelerator.unwrap_model(model).save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    if directory.exists():
        old = directory.with_name(directory.name + ".old")
        directory.rename(old)
        partial.rename(directory)
        _remove_tree(old)
    else:
        partial.rename(directory)


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        _remove_tree(child) if child.is_dir() else child.unlink()
    path.rmdir()


def train(
    cfg: Config,
    accelerator: Accelerator,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: GlueData,
    run_dir: Path,
    log: Callable[[dict, int], None],
) -> TrainResult:
    tr = cfg.trainer
    main_metric = cfg.task.main_metric
    optimizer = build_optimizer(cfg, model)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, data.train)
    dev_loaders = {suffix: accelerator.prepare(loader) for suffix, loader in data.dev.items()}
    # counted on this process's shard of the data; the scheduler is stepped by hand, once per optimizer step
    total_steps = count_steps(cfg, len(train_loader))
    warmup = cfg.scheduler.warmup_steps if cfg.scheduler.warmup_steps is not None else round(cfg.scheduler.warmup_ratio * total_steps)
    scheduler = get_scheduler(SCHEDULERS[cfg.scheduler.name], optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)

    step, samples, best, best_step, best_eval, grad_norm = 0, 0, None, -1, None, None
    history: list[dict] = []
    train_time = 0.0
    bar = tqdm(total=total_steps, desc=f"{cfg.task.name}/{cfg.model.name}", disable=not (tr.progress_bar and accelerator.is_main_process), dynamic_ncols=True)

    def run_eval() -> None:
        nonlocal best, best_step, best_eval
        result = evaluate(cfg, accelerator, model, dev_loaders)
        record = {"step": step, "epoch": round(step * tr.grad_accum_steps / len(train_loader), 4), **result.metrics}
        history.append(record)
        log({f"eval/{k}": v for k, v in result.metrics.items()}, step)
        if best is None or result.metrics[main_metric] > best[main_metric]:
            best, best_step, best_eval = result.metrics, step, result
            if tr.save_best:
                save_checkpoint(accelerator, model, tokenizer, run_dir / "checkpoint-best")
        bar.write(f"step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()) + f" (best {main_metric}={best[main_metric]:.4f} at step {best_step})")

    model.train()
    epoch = 0
    while step < total_steps:
        train_loader.set_epoch(epoch)
        t0 = time.perf_counter()
        for batch in train_loader:
            batch.pop("idx")
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:  # the last micro-batch of an optimizer step
                    if tr.max_grad_norm > 0:
                        grad_norm = accelerator.clip_grad_norm_(model.parameters(), tr.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
            samples += batch["labels"].shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            step += 1
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise UserError(f"non-finite loss ({loss_value}) at step {step}: lower optimizer.lr or use hardware=bf16 instead of fp16")
            lr = scheduler.get_last_lr()[0]
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", refresh=False)
            if step % tr.log_every_steps == 0 or step == total_steps:
                entry = {"train/loss": loss_value, "train/lr": lr, "train/epoch": epoch}
                if grad_norm is not None:
                    entry["train/grad_norm"] = float(grad_norm)
                entry["train/samples_per_second"] = samples / (train_time + time.perf_counter() - t0)
                log(entry, step)
            if tr.eval_every_steps and step % tr.eval_every_steps == 0 and step < total_steps:
                train_time += time.perf_counter() - t0
                run_eval()
                t0 = time.perf_counter()
            if step >= total_steps:
                break
        train_time += time.perf_counter() - t0
        epoch += 1
        run_eval()  # at each epoch end, and once more when max_steps cut the last epoch short
    bar.close()
    final = history[-1]
    return TrainResult(
        best=best,
        final={k: v for k, v in final.items() if k not in ("step", "epoch")},
        best_step=best_step,
        best_eval=best_eval,
        steps=step,
        train_samples=samples,
        train_runtime_s=train_time,
        history=history,
    )

