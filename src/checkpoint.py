"""Checkpoints, written so that a kill at any moment never leaves one that loads wrongly.

- checkpoint-best/: the best model by the task's main metric, in Hugging Face format (from_pretrained); under
  finetune=lora/adalora, peft's format (the adapters and the task head) plus base_model.yaml, the model, task and
  seed that rebuild the base they go on (src.model.load_trained loads both kinds).
- checkpoints/step-NNNNNNN/: everything needed to resume exactly (accelerate's save_state: model,
  optimizer, scheduler, every RNG state; plus trainer_state.json and the best evaluation's arrays).

Each is written under a `.partial` name and renamed into place; a directory without that suffix is complete.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate import Accelerator
from omegaconf import OmegaConf
from peft import PeftModel
from safetensors.torch import load_file
from transformers import PreTrainedTokenizerBase

from src.config import Config, ModelConfig, TaskConfig, UserError, to_plain_dict

BEST_DIR = "checkpoint-best"
RESUME_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
BEST_EVAL_FILE = "best_eval.npz"
BASE_RECIPE_FILE = "base_model.yaml"
log = logging.getLogger("basebench")

# peft checks an AdaLoRA rank pattern (keyed by lora_E parameters) as if it were LoRA's (keyed by modules) and warns
# on every load that it is ignored; AdaLoRA applies it itself, resizing the adapters it loads
warnings.filterwarnings("ignore", message="The following rank_pattern keys did not match any targeted module", category=RuntimeWarning)


def save_best(cfg: Config, accelerator: Accelerator, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, run_dir: Path) -> None:
    """The best model so far, as a directory src.model.load_trained loads, swapped in atomically."""
    if not accelerator.is_main_process:
        return
    target = run_dir / BEST_DIR
    partial, old = target.with_name(BEST_DIR + ".partial"), target.with_name(BEST_DIR + ".old")
    shutil.rmtree(partial, ignore_errors=True)
    net = accelerator.unwrap_model(model)
    net.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    if isinstance(net, PeftModel):  # adapters alone: the base they go on is named too (a random tiny base exists only as model + seed)
        recipe = {"model": to_plain_dict(cfg.model), "task": to_plain_dict(cfg.task), "seed": cfg.seed}
        (partial / BASE_RECIPE_FILE).write_text(yaml.safe_dump(recipe, sort_keys=False))
    if target.exists():
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def read_base_recipe(checkpoint_dir: Path) -> tuple[ModelConfig, TaskConfig, int]:
    """The model, task and seed an adapter checkpoint's base model was built from."""
    recipe = OmegaConf.load(checkpoint_dir / BASE_RECIPE_FILE)
    model = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), recipe.model))
    task = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), recipe.task))
    return model, task, recipe.seed  # type: ignore[return-value]


def load_best(accelerator: Accelerator, model: torch.nn.Module, run_dir: Path) -> None:
    """Put checkpoint-best's weights back into the model, in place, whatever the finetune method."""
    net = accelerator.unwrap_model(model)
    if isinstance(net, PeftModel):
        # a second adapter read with its own saved config: AdaLoRA's rank pattern at the best step may differ from the live one
        net.load_adapter(str(run_dir / BEST_DIR), adapter_name="best", torch_device=str(accelerator.device))
        net.set_adapter("best")
    else:
        net.load_state_dict(load_file(run_dir / BEST_DIR / "model.safetensors"), strict=False)


def repair_best(run_dir: Path) -> None:
    """After a kill between the two renames of save_best, put the previous best back."""
    target, old = run_dir / BEST_DIR, run_dir / (BEST_DIR + ".old")
    if not target.exists() and old.exists():
        old.rename(target)
    shutil.rmtree(run_dir / (BEST_DIR + ".partial"), ignore_errors=True)


def save_resume(accelerator: Accelerator, run_dir: Path, state: dict, best_eval: dict[str, np.ndarray], keep: int) -> None:
    """Write checkpoints/step-N atomically, then prune to the newest `keep` (checkpoint-best is separate)."""
    final = run_dir / RESUME_DIR / f"step-{state['step']:07d}"
    partial = final.with_name(final.name + ".partial")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial), safe_serialization=True)  # every rank writes its own RNG state
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    np.savez(partial / BEST_EVAL_FILE, **best_eval)
    (partial / STATE_FILE).write_text(json.dumps(state))
    shutil.rmtree(final, ignore_errors=True)  # a checkpoint of the same step from before a resume
    partial.rename(final)
    for stale in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(stale)


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Resume checkpoints that were fully written, oldest first."""
    root = run_dir / RESUME_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if not p.name.endswith(".partial") and (p / STATE_FILE).is_file())


def load_newest_resume(accelerator: Accelerator, run_dir: Path) -> tuple[Path, dict, dict[str, np.ndarray]] | None:
    """Restore the newest resume checkpoint that loads (see load_resume): (its path, trainer state, best-eval arrays),
    or None when the run has none. One that does not load (a damaged file) is skipped, with one warning naming both."""
    checkpoints = complete_checkpoints(run_dir)
    if not checkpoints:
        return None
    repair_best(run_dir)
    newest, failure = checkpoints[-1], None
    for checkpoint in reversed(checkpoints):
        try:
            state, arrays = load_resume(accelerator, checkpoint)
        except Exception as e:  # a truncated or damaged file: accelerate's, safetensors', numpy's or json's error
            failure = failure or f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
            continue
        if failure:
            log.warning(f"resume checkpoint {newest} does not load ({failure}): resuming from {checkpoint} instead")
        return checkpoint, state, arrays
    raise UserError(f"no resume checkpoint of {run_dir} loads ({newest.name}: {failure}): start the run anew in another output_dir")


def load_resume(accelerator: Accelerator, checkpoint: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Restore model, optimizer, scheduler and RNG states in place; return the trainer state and best-eval arrays."""
    accelerator.load_state(str(checkpoint))
    with np.load(checkpoint / BEST_EVAL_FILE) as arrays:
        best_eval = {key: arrays[key] for key in arrays.files}
    return json.loads((checkpoint / STATE_FILE).read_text()), best_eval
