"""The loop's speed choices keep torch's maths: fused optimizers and clipping only when over the limit."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

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
