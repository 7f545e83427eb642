"""Decoders beside encoders: GPT-2, Llama, Qwen2 and GPT-NeoX base LMs saved as local directories (random, 2 layers)
with tokenizers that, as GPT-2's and Llama's, have no pad token. They train through `python -m src.train` with every
finetune method, predict the same whatever the batch size and padding side, reload, resume, track, report; what
cannot be built is refused in one line.

Tiny models run on one thread (hardware.num_threads=1, torch.set_num_threads(1)): a second one gains them nothing,
and on a shared 2-core machine it made their steps 8-14 times slower."""

from __future__ import annotations

import dataclasses
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from conftest import random_decoder, read_metrics, read_table, run_train
from omegaconf import OmegaConf
from safetensors.torch import load_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    MambaConfig,
    ModernBertConfig,
    PreTrainedTokenizerFast,
)
from wandb_files import offline_runs

from src.collate import PaddingCollator
from src.config import TINY_ARCHITECTURES, Config, UserError, validate
from src.data import build_eval_data, tokenizer_fingerprint
from src.evaluate import main as evaluate_main
from src.finetune import apply_finetune
from src.loop import build_optimizer, evaluate
from src.model import TINY_CONFIGS, build_tiny_tokenizer, load_model, load_tokenizer
from src.report import write_report

FAMILIES = ["gpt2", "llama", "qwen2", "gpt_neox"]  # decoders
METHODS = ["full", "linear_probe", "lora", "adalora"]
ONE_THREAD = "hardware.num_threads=1"
# left padding while training: the collator's position ids go through every method (peft included)
RECIPE = [
    "model.padding_side=left",
    "model.max_length=64",
    "data.max_train_samples=64",
    "data.max_eval_samples=48",
    "trainer.max_steps=4",
    "trainer.batch_size=8",
    "trainer.eval_every_steps=2",
    "trainer.checkpoint_every_steps=2",
    "optimizer.lr=5e-3",
    "logger=none",
    "trainer.progress_bar=false",
    ONE_THREAD,
]
HEAD = 64 * 2  # `score`: hidden size 64 -> 2 labels, no bias
TRAINABLE = {  # (tiny-gpt2, tiny-llama): 2 layers of width 64
    "linear_probe": (HEAD, HEAD),
    "lora": (2 * (8 * 64 + 192 * 8) + HEAD, 2 * 2 * (8 * 64 + 64 * 8) + HEAD),  # GPT-2: c_attn (64 -> 192); Llama: q_proj, v_proj
    "adalora": (2 * (12 * 64 + 192 * 12 + 12) + HEAD, 2 * 2 * (12 * 64 + 64 * 12 + 12) + HEAD),  # init_r = 12, + singular values
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: a second thread only slows them on a shared machine


def save_base_lm(family: str, directory: Path) -> Path:
    """A random base language model as the Hub holds them (a ...ForCausalLM checkpoint, ModernBERT's ...ForMaskedLM),
    with a pad-less tokenizer (ModernBERT's, an encoder's, has one)."""
    if family == "modernbert":
        tokenizer = build_tiny_tokenizer("bert")
        ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (("pad_token_id", "[PAD]"), ("cls_token_id", "[CLS]"), ("sep_token_id", "[SEP]"))}
        config = ModernBertConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=256, **ids)
        torch.manual_seed(0)
        AutoModelForMaskedLM.from_config(config).save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        return directory
    model, tokenizer = random_decoder(family)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def base_lms(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("base_lms")
    return {family: save_base_lm(family, root / family) for family in [*FAMILIES, "modernbert"]}


def local_model(directory: Path, *overrides: str) -> list[str]:
    return ["model=gpt2", f"model.name=local-{directory.name}", f"model.name_or_path={directory}", *overrides]


def run_config(run_dir: Path) -> Config:
    return validate(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(run_dir / "config.yaml")))


# ---------------------------------------------------------------- padding


@pytest.mark.parametrize("family", FAMILIES)
def test_a_base_lm_without_pad_token_pads_with_eos_and_keeps_its_weights(make_cfg, base_lms, family):
    cfg = make_cfg("task=rte", *local_model(base_lms[family]))
    # transformers' Qwen2 tokenizer class brings <|endoftext|> as its pad token, as the real Qwen2.5's does
    assert AutoTokenizer.from_pretrained(base_lms[family]).pad_token == ("<|endoftext|>" if family == "qwen2" else None)
    tokenizer = load_tokenizer(cfg.model)
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.padding_side == "right"
    net = load_model(cfg.model, cfg.task, tokenizer)
    assert type(net).__name__.endswith("ForSequenceClassification") and net.config.pad_token_id == tokenizer.eos_token_id
    lm = AutoModelForCausalLM.from_pretrained(base_lms[family])
    loaded = net.base_model.state_dict()
    assert all(torch.equal(loaded[name], weight) for name, weight in lm.base_model.state_dict().items())  # the LM's body, a new head


def dev_logits(cfg: Config, net: torch.nn.Module, tokenizer, eval_batch_size: int) -> np.ndarray:
    cfg = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, eval_batch_size=eval_batch_size))
    loaders, _ = build_eval_data(cfg, tokenizer, tokenizer_fingerprint(tokenizer), cfg.task.label_names)
    if eval_batch_size > 1:  # the batches do pad: rows of several lengths
        assert not next(iter(loaders["dev"][""]))["attention_mask"].all()
    return evaluate(cfg, Accelerator(cpu=True), net, loaders["dev"]).logits[""]


@pytest.mark.parametrize("family,side", [(family, side) for family in FAMILIES for side in ("right", "left")] + [("modernbert", "right")])
def test_predictions_do_not_depend_on_the_batch(make_cfg, base_lms, family, side):
    """CoLA's sentences differ in length: in batches of 64 most rows are padded, one at a time none is."""
    cfg = make_cfg("task=cola", *local_model(base_lms[family], f"model.padding_side={side}"), "data.max_eval_samples=64")
    tokenizer = load_tokenizer(cfg.model)
    torch.manual_seed(0)
    net = load_model(cfg.model, cfg.task, tokenizer)
    alone, batched = dev_logits(cfg, net, tokenizer, 1), dev_logits(cfg, net, tokenizer, 64)
    np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-5)
    assert (batched.argmax(-1) == alone.argmax(-1)).all()


def test_left_padding_needs_the_position_ids(make_cfg, base_lms):
    """Why the collator adds position ids: GPT-2's absolute positions shift with the left padding without them."""
    cfg = make_cfg("task=cola", *local_model(base_lms["gpt2"], "model.padding_side=left"))
    tokenizer = load_tokenizer(cfg.model)
    net = load_model(cfg.model, cfg.task, tokenizer).eval()
    batch = PaddingCollator(tokenizer)([tokenizer("A short one."), tokenizer("A sentence that is a good deal longer than the other.")])
    with torch.no_grad():
        alone = net(**tokenizer("A short one.", return_tensors="pt")).logits[0]
        with_positions = net(**batch).logits[0]
        batch.pop("position_ids")
        without = net(**batch).logits[0]
    torch.testing.assert_close(with_positions, alone, rtol=0, atol=1e-5)
    assert (without - alone).abs().max() > 1e-3


# ---------------------------------------------------------------- training: every method, both tiny decoders, RTE and CoLA


@pytest.fixture(scope="module")
def decoder_runs(tmp_path_factory, cache_dir) -> Path:
    sweep = tmp_path_factory.mktemp("decoders") / "multirun"
    out = run_train(
        "-m", "model=tiny-gpt2,tiny-llama", f"finetune={','.join(METHODS)}", "task=rte,cola", *RECIPE, f"data.cache_dir={cache_dir}",
        f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${model.name}_${task.name}_${finetune.name}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return sweep


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", ["tiny-gpt2", "tiny-llama"])
def test_every_method_trains_each_tiny_decoder_on_rte_and_cola(decoder_runs, model, method):
    for task in ("rte", "cola"):
        run_dir = decoder_runs / f"{model}_{task}_{method}"
        metrics = read_metrics(run_dir)
        assert (metrics["status"], metrics["finetune"], metrics["steps"]) == ("completed", method, 4)
        assert [h["step"] for h in metrics["history"]] == [2, 4]
        expected = metrics["num_parameters"] if method == "full" else TRAINABLE[method][model == "tiny-llama"]
        assert metrics["trainable_parameters"] == expected
        best = run_dir / "checkpoint-best"
        if method in ("lora", "adalora"):  # the adapters and the head they trained with
            assert "base_model.model.score.weight" in load_file(best / "adapter_model.safetensors")
        else:
            assert "score.weight" in load_file(best / "model.safetensors")
        assert (run_dir / "errors_dev.tsv").is_file() and (run_dir / "confusion_matrix_dev.tsv").is_file()
        assert len(read_table(run_dir / "predictions_dev.tsv", "\t")) == 48


def test_a_linear_probe_changes_nothing_but_the_head(decoder_runs):
    run_dir = decoder_runs / "tiny-gpt2_rte_linear_probe"
    cfg = run_config(run_dir)
    torch.manual_seed(cfg.seed)  # as src.train does: the tiny model's weights come from the seed
    initial = load_model(cfg.model, cfg.task, load_tokenizer(cfg.model)).state_dict()
    trained = load_file(run_dir / "checkpoint-best" / "model.safetensors")
    changed = {name for name in initial if not torch.equal(trained[name], initial[name])}
    assert changed == {"score.weight"}


@pytest.mark.parametrize("method", ["full", "lora", "adalora"])
def test_src_evaluate_reloads_the_checkpoint_and_reproduces_its_predictions_one_row_at_a_time(decoder_runs, cache_dir, glue_dir, tmp_path, method):
    """peft's saved head (`score`, modules_to_save) comes back: no fresh random head, no lost adapter; and a batch of
    one predicts as training's batches of 128 did."""
    run_dir, out = decoder_runs / f"tiny-llama_rte_{method}", tmp_path / "eval"
    evaluate_main([str(run_dir), "logger=none", ONE_THREAD, "trainer.eval_batch_size=1", f"output_dir={out}", "data.max_eval_samples=48", f"data.cache_dir={cache_dir}", f"data.glue_dir={glue_dir}"])
    assert (out / "predictions_dev.tsv").read_text() == (run_dir / "predictions_dev.tsv").read_text()
    assert read_metrics(out)["best"] == read_metrics(run_dir)["best"]


def test_a_decoder_run_resumed_from_its_mid_checkpoint_ends_as_the_uninterrupted_one(decoder_runs, tmp_path):
    """Kill-free resume (test_resume kills for real): the state at step 2 continued in a new process."""
    reference, resumed = decoder_runs / "tiny-gpt2_rte_lora", tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(reference / "config.yaml", resumed)
    shutil.copytree(reference / "checkpoints" / "step-0000002", resumed / "checkpoints" / "step-0000002")
    shutil.copytree(reference / "checkpoint-best", resumed / "checkpoint-best")
    out = run_train(f"trainer.resume={resumed}")
    assert out.returncode == 0, out.stderr[-3000:]
    got, expected = read_metrics(resumed), read_metrics(reference)
    for key in ("best", "final", "best_step", "history", "steps", "train_samples"):
        assert got[key] == expected[key], key
    assert (resumed / "predictions_dev.tsv").read_text() == (reference / "predictions_dev.tsv").read_text()
    weights = load_file(resumed / "checkpoint-best" / "adapter_model.safetensors")
    reference_weights = load_file(reference / "checkpoint-best" / "adapter_model.safetensors")
    assert all(torch.equal(weights[name], reference_weights[name]) for name in reference_weights)


# ---------------------------------------------------------------- a local GPT-2 in bf16 with LoRA, W&B, predict=true, the leaderboard


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory, base_lms, cache_dir, glue_with_test_files) -> Path:
    run_dir = tmp_path_factory.mktemp("bf16") / "run"
    out = run_train(
        "task=rte", *local_model(base_lms["gpt2"], "model.torch_dtype=bf16"), "finetune=lora", "optimizer.lr=5e-3", "logger=wandb", "predict=true",
        "model.max_length=64", "data.max_train_samples=64", "data.max_eval_samples=48", "trainer.max_steps=4", "trainer.batch_size=8",
        "trainer.progress_bar=false", ONE_THREAD, f"data.glue_dir={glue_with_test_files}", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return run_dir


def test_bf16_lora_keeps_adapters_in_fp32_and_reloads(bf16_run, cache_dir, glue_with_test_files, tmp_path):
    saved = load_file(bf16_run / "checkpoint-best" / "adapter_model.safetensors")
    assert {t.dtype for name, t in saved.items() if "lora_" in name} == {torch.float32}  # peft's adapters: fp32 updates
    assert saved["base_model.model.score.weight"].dtype == torch.bfloat16  # the head, as the model's weights
    out = tmp_path / "eval"
    evaluate_main([str(bf16_run), "logger=none", ONE_THREAD, f"output_dir={out}", "data.max_eval_samples=48", f"data.cache_dir={cache_dir}", f"data.glue_dir={glue_with_test_files}"])
    assert (out / "predictions_dev.tsv").read_text() == (bf16_run / "predictions_dev.tsv").read_text()


def test_wandb_submission_and_error_analysis_of_a_decoder_run(bf16_run, glue_with_test_files):
    (run,) = offline_runs(bf16_run)
    metrics = read_metrics(bf16_run)
    assert run.summary["finetune"] == "lora" and run.summary["trainable_parameters"] == metrics["trainable_parameters"] == 2 * (8 * 32 + 96 * 8) + 32 * 2
    submission = read_table(bf16_run / "glue_submission" / "RTE.tsv", "\t")
    assert len(submission) == len(read_table(glue_with_test_files / "RTE" / "test.tsv", "\t"))
    assert {row["prediction"] for row in submission} <= {"entailment", "not_entailment"}
    errors = read_table(bf16_run / "errors_dev.tsv", "\t")
    assert list(errors[0]) == ["index", "sentence1", "sentence2", "gold", "predicted", "probability"]


def test_the_leaderboard_has_a_row_per_decoder(decoder_runs, bf16_run, tmp_path):
    write_report([decoder_runs, bf16_run], tmp_path)
    rows = read_table(tmp_path / "leaderboard.csv")
    assert {(row["model"], row["finetune"]) for row in rows} == {(model, method) for model in ("tiny-gpt2", "tiny-llama") for method in METHODS} | {("local-gpt2", "lora")}


# ---------------------------------------------------------------- large-model knobs


def tiny_llama(make_cfg, *overrides: str):
    cfg = make_cfg("task=rte", "model=tiny-llama", "model.dropout=0", *overrides)
    tokenizer = load_tokenizer(cfg.model)
    torch.manual_seed(0)
    return cfg, tokenizer, load_model(cfg.model, cfg.task, tokenizer)


def test_gradient_checkpointing_gives_the_same_gradients(make_cfg):
    grads = []
    for checkpointing in ("false", "true"):
        _, tokenizer, net = tiny_llama(make_cfg, f"model.gradient_checkpointing={checkpointing}")
        assert net.is_activation_checkpointing == (checkpointing == "true")
        net.train()
        batch = tokenizer(["The cat sat.", "A longer sentence, with a comma."], padding=True, return_tensors="pt")
        net(**batch, labels=torch.tensor([0, 1])).loss.backward()
        grads.append({name: p.grad for name, p in net.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)


def test_eager_and_sdpa_attention_agree(make_cfg):
    logits = []
    for attention in ("sdpa", "eager"):
        _, tokenizer, net = tiny_llama(make_cfg, f"model.attn_implementation={attention}", "model.padding_side=left")
        assert net.config._attn_implementation == attention
        batch = PaddingCollator(tokenizer)([tokenizer("The cat sat."), tokenizer("A longer sentence, with a comma.")])
        with torch.no_grad():
            logits.append(net.eval()(**batch).logits)
    torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-5)


def test_bf16_weights_train_with_fused_adamw_on_cpu(make_cfg):
    """Frozen weights in bf16, peft's adapters in fp32, one fused AdamW over both."""
    cfg, tokenizer, net = tiny_llama(make_cfg, "model.torch_dtype=bf16", "finetune=lora", "optimizer.lr=1e-2")
    assert {p.dtype for p in net.parameters()} == {torch.bfloat16}
    net = apply_finetune(cfg.finetune, net, total_steps=2, peft_task_type="SEQ_CLS")
    assert {p.dtype for name, p in net.named_parameters() if "lora_" in name} == {torch.float32}
    optimizer = build_optimizer(cfg, net)
    assert optimizer.defaults["fused"] is True
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    loss = net(**tokenizer(["The cat sat.", "It rained."], padding=True, return_tensors="pt"), labels=torch.tensor([0, 1])).loss
    loss.backward()
    optimizer.step()
    moved = {name for name, p in net.named_parameters() if not torch.equal(p, before[name])}
    assert torch.isfinite(loss) and moved == {name for name, p in net.named_parameters() if p.requires_grad}


# ---------------------------------------------------------------- what cannot be built: one line


def save_unknown_type(directory: Path) -> None:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "brand_new_arch", "hidden_size": 8}))
    build_tiny_tokenizer("gpt2").save_pretrained(directory)


def save_mamba(directory: Path) -> None:  # a model type transformers knows, with no sequence-classification class
    MambaConfig(vocab_size=260, hidden_size=16, num_hidden_layers=1).save_pretrained(directory)
    build_tiny_tokenizer("gpt2").save_pretrained(directory)


CUSTOM_CONFIG = "from transformers import GPT2Config\n\n\nclass TinyCustomConfig(GPT2Config):\n    model_type = 'tiny_custom_gpt2'\n"
CUSTOM_MODEL = (
    "from transformers import GPT2ForSequenceClassification\n\nfrom .configuration_tiny_custom import TinyCustomConfig\n\n\n"
    "class TinyCustomForSequenceClassification(GPT2ForSequenceClassification):\n    config_class = TinyCustomConfig\n"
)


def save_custom_code(directory: Path) -> None:
    """A model that brings its own code, as some Hub repositories do: a GPT-2 under a model type transformers lacks."""
    tokenizer = build_tiny_tokenizer("gpt2")
    GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    config = json.loads((directory / "config.json").read_text())
    config["model_type"] = "tiny_custom_gpt2"
    config["architectures"] = ["TinyCustomForSequenceClassification"]
    config["auto_map"] = {"AutoConfig": "configuration_tiny_custom.TinyCustomConfig", "AutoModelForSequenceClassification": "modeling_tiny_custom.TinyCustomForSequenceClassification"}
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "configuration_tiny_custom.py").write_text(CUSTOM_CONFIG)
    (directory / "modeling_tiny_custom.py").write_text(CUSTOM_MODEL)


def save_deberta(directory: Path) -> None:
    DebertaV2ForSequenceClassification(DebertaV2Config(vocab_size=128, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(directory)
    build_tiny_tokenizer("bert").save_pretrained(directory)


@pytest.mark.parametrize(
    "save,overrides,message",
    [
        (save_unknown_type, [], "/model is of model type 'brand_new_arch', which transformers 5.24.0 does not know: upgrade transformers"),
        (save_mamba, [], "is of model type 'mamba', which has no sequence-classification class in transformers 5.24.0 or in its own code: choose a model of another family"),
        (save_custom_code, [], "is of model type 'tiny_custom_gpt2', which transformers 5.24.0 does not ship: its repository brings its own code; set model.trust_remote_code=true"),
        (save_deberta, ["model.padding_side=right"], "model.attn_implementation=sdpa does not work for local-model: DebertaV2ForSequenceClassification does not support"),
        (save_deberta, ["model.attn_implementation=eager", "model.padding_side=left"], "model.padding_side=left is for decoders (gpt2, llama, qwen2, gpt_neox), whose head reads the last token"),
    ],
)
def test_what_cannot_be_built_is_one_line(make_cfg, tmp_path, save, overrides, message):
    save(tmp_path / "model")
    cfg = make_cfg("task=rte", *local_model(tmp_path / "model", *overrides))
    with pytest.raises(UserError) as error:
        load_model(cfg.model, cfg.task, load_tokenizer(cfg.model))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_tokenizer_with_neither_pad_nor_eos_is_refused(make_cfg, tmp_path):
    bare = build_tiny_tokenizer("gpt2").backend_tokenizer
    PreTrainedTokenizerFast(tokenizer_object=bare).save_pretrained(tmp_path / "model")
    shutil.copy(save_base_lm("gpt2", tmp_path / "lm") / "config.json", tmp_path / "model")
    cfg = make_cfg("task=rte", *local_model(tmp_path / "model"))
    with pytest.raises(UserError, match="has neither a pad token nor an EOS token to pad with"):
        load_tokenizer(cfg.model)


def test_trust_remote_code_runs_a_model_that_brings_its_own_code(tmp_path, cache_dir):
    save_custom_code(tmp_path / "model")
    out = run_train(
        "task=rte", *local_model(tmp_path / "model", "model.trust_remote_code=true"), *RECIPE, "model.padding_side=right", "trainer.max_steps=2",
        f"data.cache_dir={cache_dir}", f"output_dir={tmp_path / 'run'}", env={"HF_MODULES_CACHE": str(tmp_path / "modules")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert read_metrics(tmp_path / "run")["steps"] == 2
    assert json.loads((tmp_path / "run" / "checkpoint-best" / "config.json").read_text())["model_type"] == "tiny_custom_gpt2"


class GatedHub(http.server.BaseHTTPRequestHandler):
    """The Hub's answer to an account without access to a gated model (huggingface_hub reads X-Error-Code)."""

    def refuse(self) -> None:
        self.send_response(403)
        self.send_header("X-Error-Code", "GatedRepo")
        self.send_header("X-Error-Message", "Access to this model is restricted: you are not in the authorized list.")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = refuse

    def log_message(self, *args) -> None:
        pass


def test_a_gated_model_says_so_in_one_line(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GatedHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    try:
        env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "", "HF_DATASETS_OFFLINE": "", "TRANSFORMERS_OFFLINE": ""}
        out = run_train("task=rte", "model=llama-3.2-1b", "logger=none", f"output_dir={tmp_path / 'run'}", env=env)
    finally:
        server.shutdown()
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: model meta-llama/Llama-3.2-1B is gated on the Hub: request access at {endpoint}/meta-llama/Llama-3.2-1B, "
        "then log in (hf auth login, or HF_TOKEN=...) and run again"
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model.padding_side=middle"], "model.padding_side must be one of right, left, got 'middle'"),
        (["model.torch_dtype=fp16"], "model.torch_dtype must be one of fp32, bf16, got 'fp16'"),
        (["model.attn_implementation=flash"], "model.attn_implementation must be one of sdpa, eager, flash_attention_2, flex_attention, got 'flash'"),
        (["model.attn_implementation=flash_attention_2"], "model.attn_implementation=flash_attention_2 needs a GPU: use sdpa on CPU"),
        (["model.torch_dtype=bf16", "hardware=fp16"], "model.torch_dtype=bf16 cannot train under fp16 mixed precision: use hardware=bf16"),
        (["model.architecture=mamba"], "model.architecture must be one of bert, gpt2, llama, got 'mamba'"),
        (["finetune=lora", "finetune.target_modules=attention"], "finetune.target_modules must be one of null, all-linear or a list (module names, e.g. [q_proj,v_proj]), got 'attention'"),
    ],
)
def test_bad_model_values_are_one_line_errors(make_cfg, overrides, message):
    with pytest.raises(UserError) as error:
        make_cfg("model=tiny-llama", *overrides)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_every_tiny_architecture_the_config_accepts_can_be_built():
    assert set(TINY_CONFIGS) == set(TINY_ARCHITECTURES)
