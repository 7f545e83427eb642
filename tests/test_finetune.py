"""finetune=full | linear_probe | lora | adalora: one real multirun trains the tiny model under each method
(with W&B offline and a train holdout, so the best checkpoint is reloaded in place at the end); its run
directories are then read back: parameter counts, frozen encoder, adapter checkpoints reloaded, resume."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from conftest import read_metrics, read_table, run_train
from omegaconf import OmegaConf
from safetensors.torch import load_file
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPTNeoXConfig,
    GPTNeoXForSequenceClassification,
    LlamaConfig,
    LlamaForSequenceClassification,
    ModernBertConfig,
    ModernBertForSequenceClassification,
    OPTConfig,
    OPTForSequenceClassification,
    Qwen2Config,
    Qwen2ForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)
from wandb_files import offline_runs

from src.checkpoint import complete_checkpoints, load_best, save_best
from src.config import Config, UserError, validate
from src.data import build_data
from src.evaluate import main as evaluate_main
from src.finetune import apply_finetune, count_parameters
from src.loop import build_optimizer, evaluate
from src.model import load_model, load_trained

METHODS = ["full", "linear_probe", "lora", "adalora"]
RECIPE = [
    "task=cola",
    "model=tiny",
    "model.max_length=64",
    "logger=wandb",
    "data.max_train_samples=400",
    "data.max_eval_samples=100",
    "data.selection_split=train_holdout",  # the best checkpoint is put back into the model at the end
    "trainer.max_steps=12",
    "trainer.batch_size=8",
    "trainer.eval_every_steps=4",
    "trainer.checkpoint_every_steps=2",
    "trainer.keep_checkpoints=10",
    "optimizer.lr=5e-3",
    "trainer.progress_bar=false",
]
TINY = 151_042  # the tiny BERT with a 2-label head
HEAD = (64 * 64 + 64) + (64 * 2 + 2)  # its task head: pooler and classifier
LORA = 2 * 2 * (8 * 64 + 64 * 8)  # 2 layers x (query, value) x (A: r x 64, B: 64 x r), r = 8
ADALORA = 2 * 2 * (12 * 64 + 64 * 12 + 12)  # ... x (A, B and the singular values E), init_r = 12
PARAMETERS = {  # (all, trainable)
    "full": (TINY, TINY),
    "linear_probe": (TINY, HEAD),
    "lora": (TINY + LORA, LORA + HEAD),
    "adalora": (TINY + ADALORA + 4, ADALORA + HEAD),  # + AdaLoRA's frozen rank counters, one per adapted matrix
}
DEV_KEYS = ("best", "best_step", "selection", "history", "steps", "train_samples", "main_metric_value")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir) -> dict[str, Path]:
    sweep_dir = tmp_path_factory.mktemp("sweep")
    out = run_train("-m", f"finetune={','.join(METHODS)}", *RECIPE, f"data.cache_dir={cache_dir}", f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=${finetune.name}")
    assert out.returncode == 0, out.stderr[-3000:]
    return {method: sweep_dir / method for method in METHODS}


def run_config(run_dir: Path) -> Config:
    return validate(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(run_dir / "config.yaml")))


def dev_predictions(run_dir: Path) -> list[int]:
    return [int(row["prediction"]) for row in read_table(run_dir / "predictions_dev.tsv", "\t")]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_the_tiny_model_in_a_sweep(runs, method):
    run_dir = runs[method]
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "completed" and metrics["finetune"] == method
    assert metrics["steps"] == 12 and [h["step"] for h in metrics["history"]] == [4, 8, 12]
    assert (metrics["num_parameters"], metrics["trainable_parameters"]) == PARAMETERS[method]
    assert run_config(run_dir).finetune.name == method
    best = run_dir / "checkpoint-best"
    if method in ("lora", "adalora"):  # adapters, the head they trained, and what rebuilds their base
        assert not (best / "model.safetensors").exists()
        saved = set(load_file(best / "adapter_model.safetensors"))
        assert {"base_model.model.classifier.weight", "base_model.model.bert.pooler.dense.weight"} <= saved
        assert OmegaConf.load(best / "base_model.yaml").model.name == "tiny"
    else:
        assert (best / "model.safetensors").is_file()


@pytest.mark.parametrize("method", METHODS)
def test_wandb_summary_holds_the_method_and_its_parameter_counts(runs, method):
    (run,) = offline_runs(runs[method])
    summary = run.summary
    assert summary["finetune"] == method
    assert (summary["num_parameters"], summary["trainable_parameters"]) == PARAMETERS[method]


def test_src_evaluate_counts_a_lora_checkpoint_as_training_did(runs, tmp_path, cache_dir, glue_dir):
    # peft's frozen copy of the head it trains (original_module) is not counted twice; an AdaLoRA checkpoint would
    # differ from training's count for a real reason: its adapters are saved at their final, pruned ranks
    out = tmp_path / "eval"
    evaluate_main([str(runs["lora"]), "logger=none", f"output_dir={out}", "data.max_eval_samples=50", f"data.cache_dir={cache_dir}", f"data.glue_dir={glue_dir}"])
    assert read_metrics(out)["num_parameters"] == read_metrics(runs["lora"])["num_parameters"] == PARAMETERS["lora"][0]


def test_linear_probe_changes_no_encoder_weight(runs, tiny_tokenizer):
    cfg = run_config(runs["linear_probe"])
    set_seed(cfg.seed)  # as src.train does: the tiny model's weights come from the seed
    initial = load_model(cfg.model, cfg.task, tiny_tokenizer).state_dict()
    trained = load_file(runs["linear_probe"] / "checkpoint-best" / "model.safetensors")
    encoder = [key for key in initial if key.startswith("bert.") and not key.startswith("bert.pooler.")]
    assert len(encoder) > 30 and set(trained) == set(initial)
    for key in encoder:
        assert torch.equal(trained[key], initial[key]), key
    for key in ("bert.pooler.dense.weight", "classifier.weight"):  # the head did train
        assert not torch.equal(trained[key], initial[key]), key
    full = load_file(runs["full"] / "checkpoint-best" / "model.safetensors")
    assert not torch.equal(full["bert.encoder.layer.0.attention.self.query.weight"], initial["bert.encoder.layer.0.attention.self.query.weight"])


@pytest.mark.parametrize("method", ["lora", "adalora"])
def test_adapter_checkpoint_reloads_with_its_head_and_gives_the_same_predictions(runs, method):
    run_dir = runs[method]
    metrics, cfg = read_metrics(run_dir), run_config(run_dir)
    model, tokenizer = load_trained(str(run_dir / "checkpoint-best"), cfg.model, cfg.task)
    data = build_data(cfg, tokenizer)
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(model)
    on_dev = evaluate(cfg, accelerator, model, {sfx: accelerator.prepare(loader) for sfx, loader in data.dev.items()})
    assert on_dev.predictions[""].tolist() == dev_predictions(run_dir) and on_dev.metrics == metrics["best"]
    # the logits of the best evaluation, kept for resuming, are reproduced: no head re-initialised, no adapter lost
    assert metrics["best_step"] <= 10  # so the last resume checkpoint (step 10) holds them
    on_selection = evaluate(cfg, accelerator, model, {sfx: accelerator.prepare(loader) for sfx, loader in data.selection.items()})
    with np.load(complete_checkpoints(run_dir)[-1] / "best_eval.npz") as saved:
        np.testing.assert_allclose(on_selection.logits[""], saved["logits"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_best_checkpoint_is_put_back_in_place_for_every_method(make_cfg, tiny_tokenizer, tmp_path, method):
    """What a train-holdout run does at its end: checkpoint-best's weights back into the trained model. For AdaLoRA
    the rank pattern changes after the best checkpoint (the final allocation), the hard case."""
    cfg = make_cfg("model=tiny", f"finetune={method}", "finetune.rank_warmup=0", "finetune.rank_final=0.5")
    model = apply_finetune(cfg.finetune, load_model(cfg.model, cfg.task, tiny_tokenizer), total_steps=4, peft_task_type="SEQ_CLS")
    accelerator = Accelerator(cpu=True)
    batch = tiny_tokenizer(["The cat sat.", "Sat the cat on mat the."], padding=True, return_tensors="pt")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)

    def train_step(step: int) -> None:  # as src.loop takes an optimizer step
        model.train()
        model(**batch, labels=torch.tensor([1, 0])).loss.backward()
        optimizer.step()
        if method == "adalora":
            model.base_model.update_and_allocate(step)
        optimizer.zero_grad()

    def logits() -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            return model(**batch).logits

    train_step(0)
    train_step(1)
    best = logits()
    save_best(cfg, accelerator, model, tiny_tokenizer, tmp_path)
    train_step(2)
    train_step(3)
    assert not torch.allclose(logits(), best, atol=1e-4)
    load_best(accelerator, model, tmp_path)
    torch.testing.assert_close(logits(), best)


def test_adalora_resumed_from_a_mid_checkpoint_equals_the_uninterrupted_run(runs, tmp_path):
    """Kill-free resume: the uninterrupted run's state at step 6 (config, resume checkpoint, best checkpoint),
    in the middle of AdaLoRA's rank allocation, continued in a new process must end exactly as the uninterrupted run did."""
    reference, resumed = runs["adalora"], tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(reference / "config.yaml", resumed)
    shutil.copytree(reference / "checkpoints" / "step-0000006", resumed / "checkpoints" / "step-0000006")
    shutil.copytree(reference / "checkpoint-best", resumed / "checkpoint-best")  # the best so far (if a later one exists, the resumed run writes it)
    out = run_train(f"trainer.resume={resumed}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming from" in out.stdout + out.stderr
    got, expected = read_metrics(resumed), read_metrics(reference)
    for key in DEV_KEYS:
        assert got[key] == expected[key], key
    assert dev_predictions(resumed) == dev_predictions(reference)
    # the state after the rank allocations of steps 7-10: every weight, and AdaLoRA's allocator (importance scores, rank pattern)
    last = Path("checkpoints") / "step-0000010"
    weights, reference_weights = load_file(resumed / last / "model.safetensors"), load_file(reference / last / "model.safetensors")
    assert weights.keys() == reference_weights.keys() and all(torch.equal(weights[k], reference_weights[k]) for k in weights)
    allocator, reference_allocator = (torch.load(run / last / "custom_checkpoint_1.pkl", weights_only=False) for run in (resumed, reference))
    assert allocator["rank_pattern"] == reference_allocator["rank_pattern"] and allocator["rank_pattern"] is not None
    assert all(torch.equal(allocator["exp_avg_ipt"][k], reference_allocator["exp_avg_ipt"][k]) for k in reference_allocator["exp_avg_ipt"])


def small_model(family: str) -> torch.nn.Module:
    sizes = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ids = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)  # within the small vocabulary
    return {
        "bert": lambda: BertForSequenceClassification(BertConfig(**sizes)),
        "roberta": lambda: RobertaForSequenceClassification(RobertaConfig(**sizes)),
        "deberta-v2": lambda: DebertaV2ForSequenceClassification(DebertaV2Config(**sizes)),
        "distilbert": lambda: DistilBertForSequenceClassification(DistilBertConfig(vocab_size=64, dim=16, n_layers=1, n_heads=2, hidden_dim=32)),
        "modernbert": lambda: ModernBertForSequenceClassification(ModernBertConfig(**sizes, **ids, cls_token_id=1, sep_token_id=2)),
        "gpt2": lambda: GPT2ForSequenceClassification(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, **ids)),
        "llama": lambda: LlamaForSequenceClassification(LlamaConfig(**sizes, **ids)),
        "qwen2": lambda: Qwen2ForSequenceClassification(Qwen2Config(**sizes, num_key_value_heads=1, **ids)),
        "gpt_neox": lambda: GPTNeoXForSequenceClassification(GPTNeoXConfig(**sizes, **ids)),
    }[family]()


FAMILIES = {  # model_type: (attention projections that get adapters, the task head)
    "bert": ({"query", "value"}, {"bert.pooler", "classifier"}),
    "roberta": ({"query", "value"}, {"classifier"}),
    "deberta-v2": ({"query_proj", "value_proj"}, {"pooler", "classifier"}),
    "distilbert": ({"q_lin", "v_lin"}, {"pre_classifier", "classifier"}),
    "modernbert": ({"Wqkv"}, {"head", "classifier"}),
    "gpt2": ({"c_attn"}, {"score"}),
    "llama": ({"q_proj", "v_proj"}, {"score"}),
    "qwen2": ({"q_proj", "v_proj"}, {"score"}),
    "gpt_neox": ({"query_key_value"}, {"score"}),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_defaults_per_model_family(make_cfg, family):
    targets, head = FAMILIES[family]
    lora = apply_finetune(make_cfg("finetune=lora").finetune, small_model(family), total_steps=10, peft_task_type="SEQ_CLS")
    adapted = {name.split(".")[-1] for name, module in lora.named_modules() if hasattr(module, "lora_A")}
    assert adapted == targets
    trained_in_full = {name.split(".modules_to_save.")[0].removeprefix("base_model.model.") for name, p in lora.named_parameters() if p.requires_grad and "lora_" not in name}
    assert trained_in_full == head
    probe = apply_finetune(make_cfg("finetune=linear_probe").finetune, small_model(family), total_steps=10, peft_task_type="SEQ_CLS")
    trained = [name for name, p in probe.named_parameters() if p.requires_grad]
    assert all(any(name.startswith(h + ".") for h in head) for name in trained)  # nothing but the head
    assert all(any(name.startswith(h + ".") for name in trained) for h in head)  # all of it
    assert all(m.p == 0 for m in probe.base_model.modules() if isinstance(m, torch.nn.Dropout))  # fixed features
    all_params, trainable = count_parameters(probe)
    assert all_params == sum(p.numel() for p in small_model(family).parameters()) and 0 < trainable < all_params


@pytest.mark.parametrize("family", FAMILIES)
def test_no_weight_decay_on_biases_and_normalisation_weights(make_cfg, family):
    """By layer class, whatever the family names them: BERT's LayerNorm, GPT-2's ln_1/ln_f, Llama's RMSNorm
    input_layernorm/norm, GPT-NeoX's final_layer_norm, ModernBERT's attn_norm."""
    model = small_model(family)
    optimizer = build_optimizer(make_cfg(), model)
    names = {id(p): name for name, p in model.named_parameters()}
    decayed, exempt = ({names[id(p)] for p in group["params"]} for group in optimizer.param_groups)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.01, 0.0]
    assert exempt == {name for name in names.values() if "bias" in name or re.search("norm|ln_", name, re.IGNORECASE)}
    assert decayed | exempt == set(names.values()) and any("norm" in name.lower() or "ln_" in name for name in exempt)


def test_all_linear_adapts_every_linear_layer_but_the_head(make_cfg):
    finetune = make_cfg("finetune=lora", "finetune.target_modules=all-linear").finetune
    adapted = {}
    for family in ("gpt2", "llama"):
        model = apply_finetune(finetune, small_model(family), total_steps=10, peft_task_type="SEQ_CLS")
        adapted[family] = {name.split(".")[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}
        assert model.peft_config["default"].fan_in_fan_out == (family == "gpt2")  # GPT-2's Conv1D weights are transposed
    assert adapted == {"gpt2": {"c_attn", "c_proj", "c_fc"}, "llama": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}


def test_target_modules_in_config_and_their_errors(make_cfg):
    finetune = make_cfg("finetune=lora", "finetune.target_modules=[query,key,value,dense]", "finetune.rank=2").finetune
    model = apply_finetune(finetune, small_model("bert"), total_steps=10, peft_task_type="SEQ_CLS")
    assert model.peft_config["default"].r == 2 and model.peft_config["default"].target_modules == {"query", "key", "value", "dense"}
    with pytest.raises(UserError, match=r"^finetune.target_modules: qkv names no module of BertForSequenceClassification$"):
        apply_finetune(make_cfg("finetune=lora", "finetune.target_modules=[qkv]").finetune, small_model("bert"), total_steps=10, peft_task_type="SEQ_CLS")
    opt = OPTForSequenceClassification(OPTConfig(vocab_size=64, hidden_size=16, word_embed_proj_dim=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2))
    with pytest.raises(UserError, match=r"no default target modules for model type 'opt' .*: set finetune.target_modules=\[...\] or all-linear$"):
        apply_finetune(make_cfg("finetune=adalora").finetune, opt, total_steps=10, peft_task_type="SEQ_CLS")


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["finetune.name=prefix"], "finetune.name must be one of full, linear_probe, lora, adalora, got 'prefix'"),
        (["finetune=lora", "finetune.rank=0"], "finetune.rank must be >= 1, got 0"),
        (["finetune=lora", "finetune.dropout=1"], "finetune.dropout must be in [0, 1), got 1.0"),
        (["finetune=lora", "finetune.target_modules=[]"], "finetune.target_modules must be one of null, all-linear or a non-empty list"),
        (["finetune=adalora", "finetune.init_rank=4"], "finetune.init_rank must be >= finetune.rank (the target average rank), got 4 < 8"),
        (["finetune=adalora", "finetune.rank_warmup=0.5", "finetune.rank_final=0.5"], "finetune.rank_warmup + finetune.rank_final must be < 1"),
    ],
)
def test_bad_finetune_values_are_one_line_errors(make_cfg, overrides, message):
    with pytest.raises(UserError) as error:
        make_cfg("model=tiny", *overrides)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_default_method_and_unknown_choice(make_cfg):
    assert make_cfg().finetune.name == "full"
    out = run_train("finetune=qlora", "model=tiny", "logger=none")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: finetune: unknown choice 'qlora'; choose one of adalora, full, linear_probe, lora"]
