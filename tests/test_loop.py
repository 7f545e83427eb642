"""The loop's speed choices keep torch's maths (fused optimizers, clipping only over the limit), and mixed precision on CPU."""

from __future__ import annotations

import math

import pytest
import torch
from accelerate import Accelerator
from conftest import read_metrics, run_train
from safetensors.torch import load_file

from src.loop import build_optimizer, clip_gradients
from src.model import load_model


@pytest.fixture
def tiny_model(make_cfg, tiny_tokenizer):
    def _build(*overrides: str):
        cfg = make_cfg("task=rte", "model=tiny", *overrides)
        torch.manual_seed(0)
        return cfg, load_model(cfg.model, cfg.task, tiny_tokenizer)

    return _build


def one_step(cfg, model) -> dict[str, torch.Tensor]:
    optimizer = build_optimizer(cfg, model)
    torch.manual_seed(1)
    batch = {"input_ids": torch.randint(5, 90, (4, 12)), "labels": torch.tensor([0, 1, 1, 0])}
    model(**batch).loss.backward()
    optimizer.step()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_fused_optimizer_step_equals_torch_default(tiny_model, optimizer):
    cfg_fused, model_fused = tiny_model(f"optimizer={optimizer}", "optimizer.lr=1e-2", "optimizer.fused=true")
    cfg_loop, model_loop = tiny_model(f"optimizer={optimizer}", "optimizer.lr=1e-2", "optimizer.fused=false")
    assert build_optimizer(cfg_fused, model_fused).defaults["fused"] is True
    fused, looped = one_step(cfg_fused, model_fused), one_step(cfg_loop, model_loop)
    initial = tiny_model()[1].state_dict()
    assert any(not torch.equal(fused[name], initial[name]) for name in fused)  # the step moved the weights
    for name in fused:
        torch.testing.assert_close(fused[name], looped[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("max_norm", [1e-3, 1e3])  # clipped / under the limit
def test_clip_gradients_equals_torch_clip_grad_norm(tiny_model, max_norm):
    grads = []
    for clip in ("ours", "torch"):
        _, model = tiny_model()
        torch.manual_seed(1)
        model(input_ids=torch.randint(5, 90, (4, 12)), labels=torch.tensor([0, 1, 1, 0])).loss.backward()
        if clip == "ours":
            norm = clip_gradients(Accelerator(cpu=True), model, max_norm)
        else:
            expected_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    torch.testing.assert_close(norm, expected_norm)
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs)
    clipped_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads[0]]))
    assert clipped_norm <= max_norm * 1.0001 if norm > max_norm else torch.isclose(clipped_norm, norm)


def test_bf16_autocast_trains_on_cpu_and_keeps_fp32_weights(tmp_path, cache_dir):
    run_dir = tmp_path / "bf16"
    out = run_train(
        "task=sst2", "model=tiny", "logger=none", "hardware=cpu", "hardware.mixed_precision=bf16", "data.max_train_samples=256", "data.max_eval_samples=100",
        "trainer.max_steps=12", "trainer.batch_size=16", "optimizer.lr=2e-3", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["steps"] == 12 and math.isfinite(metrics["best"]["accuracy"])
    weights = load_file(run_dir / "checkpoint-best" / "model.safetensors")
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}  # autocast computes in bf16, the weights stay fp32


def test_fp16_on_cpu_is_refused_with_one_line(tmp_path):
    out = run_train("model=tiny", "logger=none", "hardware=cpu", "hardware.mixed_precision=fp16", f"output_dir={tmp_path / 'fp16'}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "error: fp16 needs a GPU: use hardware=fp16 on a GPU, or hardware.mixed_precision=bf16 on CPU"
