"""model.init_from: a run starts from another run's fine-tuned encoder with a fresh head (MNLI -> RTE), on the tiny
model: the CoLA runs of the session's run set are the source."""

from __future__ import annotations

import pytest
import torch
from accelerate.utils import set_seed
from conftest import read_metrics, read_table, run_train
from safetensors.torch import load_file

from src.config import UserError
from src.model import load_model
from src.report import write_report


@pytest.fixture(scope="module")
def source_run(tiny_run_set):
    run_dir = tiny_run_set / "0_cola_tiny"
    assert read_metrics(run_dir)["task"] == "cola"
    return run_dir


def test_encoder_comes_from_the_run_and_the_head_is_fresh(make_cfg, tiny_tokenizer, source_run):
    cfg = make_cfg("task=rte", "model=tiny", "seed=5", f"model.init_from={source_run}")
    set_seed(cfg.seed)
    net = load_model(cfg.model, cfg.task, tiny_tokenizer)
    set_seed(cfg.seed)
    fresh = load_model(make_cfg("task=rte", "model=tiny", "seed=5").model, cfg.task, tiny_tokenizer)

    trained = load_file(source_run / "checkpoint-best" / "model.safetensors")
    encoder = net.base_model.state_dict()
    assert set(encoder) == {key.removeprefix("bert.") for key in trained if key.startswith("bert.")}
    for key, value in encoder.items():
        assert torch.equal(value, trained[f"bert.{key}"]), key
    assert not torch.equal(encoder["embeddings.word_embeddings.weight"], fresh.base_model.state_dict()["embeddings.word_embeddings.weight"])
    # the head: as a run without init_from builds it with this seed, not the source run's trained one
    for key, value in net.classifier.state_dict().items():
        assert torch.equal(value, fresh.classifier.state_dict()[key]) and not torch.equal(value, trained[f"classifier.{key}"]), key


def test_a_run_started_from_another_records_it_and_the_leaderboard_shows_it(tmp_path, cache_dir, source_run):
    """init_from relative to the job's own directory, as experiment=modernbert_glue finds its seed's MNLI run."""
    run_dir = source_run.parent.parent / "rte_from_cola"
    out = run_train(
        "task=rte", "model=tiny", "model.init_from=${hydra:runtime.output_dir}/../" + f"{source_run.parent.name}/{source_run.name}", "logger=none",
        "trainer.max_steps=2", "trainer.batch_size=8", "optimizer.lr=1e-3", "data.max_eval_samples=40", "trainer.progress_bar=false",
        f"data.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    source = read_metrics(source_run)
    assert read_metrics(run_dir)["init_from"] == {"run_dir": str(source_run.resolve()), "task": "cola", "model": "tiny", "seed": source["seed"]}
    write_report([run_dir], tmp_path / "report")
    [row] = read_table(tmp_path / "report" / "leaderboard.csv")
    assert (row["model"], row["init_from"]) == ("tiny", "cola")
    assert "| tiny ← cola | full | dev | finetune |" in (tmp_path / "report" / "leaderboard.md").read_text()


def test_init_from_is_checked_at_start_up(make_cfg, source_run, tmp_path):
    with pytest.raises(UserError, match=r"is not a finished run \(no metrics.json\)"):
        make_cfg("model=tiny", f"model.init_from={tmp_path}")
    with pytest.raises(UserError, match=rf"^model.init_from={source_run} fine-tuned tiny, not minilm-l6: set model=tiny$"):
        make_cfg("model=minilm-l6", f"model.init_from={source_run}")
