"""Adaptation methods (finetune=...): what of a loaded model trains.

- full: every weight trains, as in the GLUE papers.
- linear_probe: the encoder is frozen, its dropout off so that it computes fixed features; only the task head trains.
- lora, adalora: peft adapters on the attention projections of the frozen encoder (per family: src/families.py,
  or finetune.target_modules); the task head trains in full and is saved with the adapters (peft's modules_to_save),
  so that a reloaded checkpoint keeps it.

The task head, unless finetune.head_modules names other modules, is every module outside the base model (and BERT's
pooler). In an encoder, a dense layer over the first token and the classifier: BERT: pooler and classifier; RoBERTa:
classifier (dense and out_proj); DistilBERT: pre_classifier and classifier; DeBERTa: pooler and classifier; ModernBERT:
head and classifier. In a decoder (GPT-2, Llama, Qwen2, GPT-NeoX), `score`, a linear layer over the last real token.
"""

from __future__ import annotations

import torch
from peft import AdaLoraConfig, LoraConfig, PeftModel, TaskType, get_peft_model
from transformers.pytorch_utils import Conv1D

from src.config import ALL_LINEAR, FinetuneConfig, UserError
from src.families import FAMILIES, UNKNOWN


def apply_finetune(finetune: FinetuneConfig, model: torch.nn.Module, total_steps: int, peft_task_type: str) -> torch.nn.Module:
    """The model to train under the method: itself (full, linear_probe, with parameters frozen) or a peft model.
    total_steps sets AdaLoRA's rank budget schedule; peft_task_type is peft's name for the head (SEQ_CLS)."""
    if finetune.name == "full":
        return model
    head = _existing(model, finetune.head_modules or _task_head(model), "finetune.head_modules")
    if finetune.name == "linear_probe":
        return _freeze_encoder(model, head)
    targets = finetune.target_modules or _default_targets(finetune, model)
    if targets != ALL_LINEAR:
        _existing(model, targets, "finetune.target_modules")
    lora_args = dict(
        task_type=TaskType[peft_task_type],
        target_modules=targets,
        lora_alpha=finetune.alpha,
        lora_dropout=finetune.dropout,
        modules_to_save=head,
        # GPT-2's Conv1D layers hold their weight transposed: peft would otherwise warn and flip this per layer
        fan_in_fan_out=any(isinstance(module, Conv1D) for module in model.modules()),
    )
    if finetune.name == "lora":
        return get_peft_model(model, LoraConfig(r=finetune.rank, **lora_args))
    adalora = AdaLoraConfig(
        target_r=finetune.rank,
        init_r=finetune.init_rank,
        tinit=int(finetune.rank_warmup * total_steps),  # rounded down, both: the allocation phase keeps at least one step
        tfinal=int(finetune.rank_final * total_steps),
        deltaT=finetune.rank_update_every_steps,
        orth_reg_weight=finetune.orth_reg_weight,
        total_step=total_steps,
        **lora_args,
    )
    return get_peft_model(model, adalora)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(all, trainable) parameters of the model as it computes: peft's frozen copy of each module it trains in
    full (`original_module`, kept to switch adapters off) is not counted."""
    used = [p for name, p in model.named_parameters() if ".original_module." not in name]
    return sum(p.numel() for p in used), sum(p.numel() for p in used if p.requires_grad)


def _task_head(model: torch.nn.Module) -> list[str]:
    """Every module outside the encoder, and the encoder's pooler if it has one: BERT's pooler is the dense layer over
    the first token that the other families keep in their heads, and frozen it starves the head where pretraining
    left it near zero (sentence-transformers' MiniLM: a linear probe behind it stays at the majority class)."""
    encoder = model.base_model_prefix
    head = [name for name, child in model.named_children() if name != encoder and any(True for _ in child.parameters())]
    if getattr(model.base_model, "pooler", None) is not None:
        head.append(f"{encoder}.pooler")
    return head


def _default_targets(finetune: FinetuneConfig, model: torch.nn.Module) -> list[str]:
    model_type = model.config.model_type
    targets = FAMILIES.get(model_type, UNKNOWN).lora_targets
    if not targets:
        known = ", ".join(FAMILIES)
        raise UserError(f"finetune={finetune.name} knows no default target modules for model type {model_type!r} (only {known}): set finetune.target_modules=[...] or all-linear")
    return list(targets)


def _matches(module_name: str, names: list[str]) -> bool:
    """peft's rule: a name selects every module whose dotted path ends with it."""
    return any(module_name == name or module_name.endswith("." + name) for name in names)


def _existing(model: torch.nn.Module, names: list[str], key: str) -> list[str]:
    present = [module_name for module_name, _ in model.named_modules()]
    missing = [name for name in names if not any(_matches(module_name, [name]) for module_name in present)]
    if missing:
        raise UserError(f"{key}: {', '.join(missing)} names no module of {type(model).__name__}")
    return names


def _freeze_encoder(model: torch.nn.Module, head: list[str]) -> torch.nn.Module:
    model.requires_grad_(False)
    for name, module in model.named_modules():
        if _matches(name, head):
            module.requires_grad_(True)
    for module in model.base_model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


class AdaLoraAllocatorState:
    """AdaLoRA's importance estimates and current rank pattern live outside the model's weights: registered for
    checkpointing with accelerate, they are saved and restored with each resume checkpoint, so a resumed run
    allocates ranks exactly as an uninterrupted one."""

    def __init__(self, model: PeftModel):
        self.adalora = model.base_model
        self.config = self.adalora.peft_config[self.adalora.trainable_adapter_name]

    def state_dict(self) -> dict:
        allocator = self.adalora.rankallocator
        return {"ipt": allocator.ipt, "exp_avg_ipt": allocator.exp_avg_ipt, "exp_avg_unc": allocator.exp_avg_unc, "rank_pattern": self.config.rank_pattern}

    def load_state_dict(self, state: dict) -> None:
        allocator = self.adalora.rankallocator
        device = next(self.adalora.parameters()).device
        for key in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
            setattr(allocator, key, {name: tensor.to(device) for name, tensor in state[key].items()})
        self.config.rank_pattern = state["rank_pattern"]
