"""The TaskType interface, and what every task with one label per example (text or text pair) shares.

Heavy libraries (transformers, sklearn, matplotlib) are imported where they are used: validating a config
consults the registry and must stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from src.config import TaskConfig, UserError
from src.metrics import compute_metrics

if TYPE_CHECKING:
    from src.analysis import SplitAnalysis


class TaskType:
    """What differs between kinds of task: the model head, label encoding, logits to predictions, metrics,
    the predictions file, the error analysis and the submission rows."""

    name: str
    model_class: str  # transformers' Auto class of the head (AutoModelForSequenceClassification)
    model_mapping: str  # transformers' table of the model types that have that head (in transformers.models.auto.modeling_auto)
    peft_task_type: str  # peft's TaskType for adapters (SEQ_CLS)
    allowed_metrics: tuple[str, ...]  # names in src.metrics.METRICS that fit the type
    has_classes: bool  # predicts classes with names (task.label_names), rather than scores
    zero_shot: bool = False  # a language model can score it without training: one answer per class (task.prompt, src.zeroshot)
    predictions_format = "tsv"  # the extension of predictions_<split>.<format>, written by write_predictions
    train_label_column = "label"  # the tokenized column a training batch's `labels` come from
    eval_columns: tuple[str, ...] = ()  # tokenized columns an evaluation batch carries besides model inputs, idx and labels

    def check(self, task: TaskConfig) -> None:
        """The type's rules on a task config: one-line UserErrors."""
        if not self.zero_shot and (task.prompt.template is not None or task.prompt.choices is not None):
            raise UserError(f"task.prompt: a {self.name} task has no answer choices to score zero-shot (classification tasks do): remove the prompt")
        wrong = [m for m in task.metrics if m not in self.allowed_metrics]
        if wrong:
            raise UserError(f"task.metrics: {', '.join(wrong)} cannot score a {self.name} task: choose from {', '.join(self.allowed_metrics)}")
        valid_main = [m + task.split_suffix(split) for split in task.dev_splits for m in task.metrics]
        if task.main_metric not in valid_main:
            raise UserError(f"task.main_metric {task.main_metric!r} is not one of the task's metrics {valid_main}")

    def num_labels(self, task: TaskConfig) -> int:
        raise NotImplementedError

    def head_config(self, task: TaskConfig) -> dict:
        """from_pretrained keyword arguments that shape the head (num_labels, problem_type, label names)."""
        raise NotImplementedError

    def encode_labels(self, values: list, task: TaskConfig, label_names: list[str], where: Callable[[int], str]) -> list:
        """Raw label values of a split to what the model trains on; None where a row has no label.
        where(i) names row i of the source in an error message."""
        raise NotImplementedError

    def infer_label_names(self, task: TaskConfig, values: list) -> list[str]:
        """The label names of a split's raw label values when the task gives none (the sorted labels of train)."""
        raise NotImplementedError

    def auto_model(self):
        import transformers

        return getattr(transformers, self.model_class)

    def predict_batch(self, task: TaskConfig, model, batch: dict) -> dict:
        """An evaluation batch (without idx) through the model: {"logits", and "labels" when the split has them}, one
        row per example."""
        labels = batch.pop("labels", None)
        return {"logits": model(**batch).logits.float()} | ({"labels": labels} if labels is not None else {})

    def predictions(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Logits to predictions; labels (the gold, as predict_batch returned them) mark where there is something to predict."""
        raise NotImplementedError

    def metrics(self, task: TaskConfig, labels: np.ndarray, predictions: np.ndarray, suffix: str = "") -> dict[str, float]:
        return compute_metrics(task.metrics, labels, predictions, suffix, positive=self.positive_id(task))

    def positive_id(self, task: TaskConfig) -> int:
        return 1

    def write_predictions(self, path: Path, task: TaskConfig, examples, labels: np.ndarray, predictions: np.ndarray) -> None:
        """predictions_<split>.tsv: index<TAB>label<TAB>prediction, one row per example in file order (examples: the
        split's tokenized examples, for a format that shows the text)."""
        rows = (f"{i}\t{self.format_label(label)}\t{self.format_prediction(pred)}" for i, (label, pred) in enumerate(zip(labels, predictions)))
        path.write_text("\n".join(["index\tlabel\tprediction", *rows]) + "\n")

    def format_label(self, value: Any) -> str:
        raise NotImplementedError

    def format_prediction(self, value: Any) -> str:
        raise NotImplementedError

    def display(self, task: TaskConfig, value: Any) -> Any:
        """A label or prediction as people read it (W&B tables): a class name, or a score."""
        raise NotImplementedError

    def class_report(self, task: TaskConfig, labels: np.ndarray, predictions: np.ndarray) -> tuple[dict, str] | None:
        """Per-class precision/recall/F1 (dict, text), or None where the type has no classes."""
        return None

    def error_analysis(self, run_dir: Path, task: TaskConfig, title: str, split: str, texts: list[list[str]], labels: np.ndarray, logits: np.ndarray, num_errors: int) -> SplitAnalysis:
        raise NotImplementedError

    def submission_values(self, task: TaskConfig, logits: np.ndarray) -> list:
        """What a leaderboard's submission file holds for each example."""
        raise NotImplementedError

    def tokenize_function(self, task: TaskConfig, tokenizer, max_length: int) -> Callable[[dict], dict]:
        """A batched datasets.map function: an example's fields to model inputs (and labels), plus its length in tokens."""
        raise NotImplementedError

    def collator(self, tokenizer, pad_to_max_length: int | None, pad_to_multiple_of: int | None):
        """Pads a list of tokenized examples into a batch (to pad_to_max_length tokens when set)."""
        raise NotImplementedError

    def report_truncation(self, task: TaskConfig, split: str, tokenized, max_length: int) -> None:
        """Warn about what model.max_length cut from a tokenized split, where the type can say what is lost."""

    def adapt_tokenizer(self, tokenizer) -> None:
        """Set up a freshly loaded tokenizer for the way the type feeds it text (in place); most need nothing."""


class SequenceTask(TaskType):
    """One label per text or text pair: the text fields go to the tokenizer side by side; batches pad per batch; the
    head reads the whole sequence (the first token of an encoder, the last real token of a decoder)."""

    model_class = "AutoModelForSequenceClassification"
    model_mapping = "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"
    peft_task_type = "SEQ_CLS"

    def check(self, task: TaskConfig) -> None:
        super().check(task)
        if task.label_all_tokens or task.seqeval_mode is not None:
            raise UserError(f"task.label_all_tokens and task.seqeval_mode are for token_classification tasks, not {self.name}: remove them")

    def tokenize_function(self, task: TaskConfig, tokenizer, max_length: int) -> Callable[[dict], dict]:
        """A batched datasets.map function: the text field(s) to model inputs, plus each example's length."""
        if len(task.text_fields) > 2:
            raise UserError(f"task.text_fields: a {self.name} task reads one text or a pair, got {task.text_fields}")

        def encode(batch: dict) -> dict:
            encoded = tokenizer(*(batch[f] for f in task.text_fields), truncation=True, max_length=max_length)
            encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
            return encoded

        return encode

    def collator(self, tokenizer, pad_to_max_length: int | None, pad_to_multiple_of: int | None):
        return padding_collator(tokenizer, pad_to_max_length, pad_to_multiple_of)


def padding_collator(tokenizer, pad_to_max_length: int | None, pad_to_multiple_of: int | None):
    """Pads the model inputs of a list of examples per batch, or to pad_to_max_length tokens (src.collate's padding)."""
    from src.collate import PaddingCollator

    if pad_to_max_length:  # fixed shapes, as run_glue.py's default
        return PaddingCollator(tokenizer, padding="max_length", max_length=pad_to_max_length)
    return PaddingCollator(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
