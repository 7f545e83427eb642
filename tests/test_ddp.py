"""Data-parallel training: 2 CPU processes with gloo under torchrun equal one process with the same global batch,
for the tiny BERT and for a tiny decoder padded on the left (its position ids travel with every shard)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import GLUE_DIR, ROOT, read_metrics, run_train
from safetensors.torch import load_file

# dropout off and a train size divisible by the global batch: the two runs then differ only by float summation order
RECIPE = ["model.dropout=0", "logger=none", "data.max_train_samples=1024", "data.max_eval_samples=300", "data.group_by_length=false", "trainer.max_steps=40", "optimizer.lr=2e-3", "trainer.progress_bar=false"]
# the decoder on RTE, whose training set its byte-level tokenizer reads in a second (SST-2's takes far longer);
# one thread per process: two processes share 2 cores
MODELS = {"tiny": ["task=sst2", "model=tiny"], "tiny-llama": ["task=rte", "model=tiny-llama", "model.padding_side=left", "hardware.num_threads=1"]}


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="torchrun not installed")
@pytest.mark.parametrize("model", MODELS)
def test_two_process_ddp_matches_one_process(tmp_path, cache_dir, model):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    recipe = [*RECIPE, *MODELS[model]]
    out = run_train(*recipe, "trainer.batch_size=32", f"data.cache_dir={cache_dir}", f"output_dir={single}")
    assert out.returncode == 0, out.stderr[-3000:]
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--nproc_per_node", "2", "-m", "src.train", "hardware=ddp", *recipe, "trainer.batch_size=16", f"data.cache_dir={cache_dir}", f"output_dir={ddp}"]
    out = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "GLUE_DIR": str(GLUE_DIR)}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]

    one, two = read_metrics(single), read_metrics(ddp)
    assert one["steps"] == two["steps"] == 40
    assert one["train_samples"] == two["train_samples"] == 40 * 32
    assert abs(one["best"]["accuracy"] - two["best"]["accuracy"]) <= 0.01
    weights_one = load_file(single / "checkpoint-best" / "model.safetensors")
    weights_two = load_file(ddp / "checkpoint-best" / "model.safetensors")
    assert weights_one.keys() == weights_two.keys()
    for name, tensor in weights_one.items():
        torch.testing.assert_close(weights_two[name], tensor, atol=2e-4, rtol=1e-3, msg=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]  # one run directory for both ranks
    assert (ddp / "metrics.json").is_file() and (ddp / "predictions_dev.tsv").is_file()
