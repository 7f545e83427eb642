"""token_classification: a tag per word, e.g. named entities (CoNLL-2003, or your own files in its format).

An example is a list of words (the task's one text field) and a tag per word (task.label_field) in the IOB scheme:
O outside any entity, B-X the first word of an entity of type X, I-X a later word of it.

- Training, as transformers' run_ner.py: the words go to the tokenizer as they are (is_split_into_words); the first
  sub-token of a word trains on the word's tag, the later ones are left out of the loss (-100), or, with
  task.label_all_tokens, train on it too (B-X as I-X).
- Evaluation is per word: a word's logits are its first sub-token's. A word the model never sees, because
  model.max_length cut it off (or the tokenizer made no token of it), is predicted O: its entities count as missed,
  and each split says how many such words it has (a warning). run_ner.py instead leaves them out of its scores.
- Metrics are NER papers': entity-level micro precision, recall and F1, by seqeval with conlleval's matching
  (task.seqeval_mode=strict: IOB2 strict matching), and word accuracy. The class report holds seqeval's per-entity
  report and scikit-learn's per-tag one.
- predictions_<split>.conll: `word gold predicted` a line, a blank line after each sentence (what conlleval reads).
- Error analysis: an entity-type confusion matrix, the most frequent confusions, the sentences with the most wrong
  entities.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from src.config import TaskConfig, UserError
from src.task_types.base import TaskType, padding_collator
from src.task_types.classification import encode_class_labels, label_key

log = logging.getLogger("basebench")

IGNORE = -100  # left out of the loss and the scores: padding, and the later sub-tokens of a word
OUTSIDE = "O"

Entity = tuple[str, int, int]  # type, first word, last word + 1


class TokenClassification(TaskType):
    name = "token_classification"
    model_class = "AutoModelForTokenClassification"
    model_mapping = "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES"
    peft_task_type = "TOKEN_CLS"
    allowed_metrics = ("f1", "precision", "recall", "accuracy")
    has_classes = True
    predictions_format = "conll"
    train_label_column = "token_labels"  # a tag per token; evaluation batches carry a tag per word (`label`)
    eval_columns = ("word_index",)  # per token: the word it is the first sub-token of, else -100

    def check(self, task: TaskConfig) -> None:
        super().check(task)
        if len(task.text_fields) != 1:
            raise UserError(f"task.text_fields: a token_classification task reads one field holding the words (e.g. [tokens]), got {task.text_fields}")
        if task.label_names is not None:
            check_tags(task, task.label_names, "task.label_names")
        if task.label_range is not None:
            raise UserError("task.label_range is for regression tasks (type: regression): remove it")
        if task.predict_splits:
            raise UserError("task.predict_splits: a token_classification task has no leaderboard submission files; score a labelled test split with task.test_split")

    def num_labels(self, task: TaskConfig) -> int:
        return len(task.label_names)

    def head_config(self, task: TaskConfig) -> dict:
        names = task.label_names
        return {"num_labels": len(names), "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}

    def infer_label_names(self, task: TaskConfig, values: list) -> list[str]:
        """The sorted tags of train, as run_ner.py."""
        names = sorted({key for tags in values if tags is not None for key in map(label_key, tags) if key is not None})
        check_tags(task, names, "the tags of train")
        return names

    def encode_labels(self, values: list, task: TaskConfig, label_names: list[str], where: Callable[[int], str]) -> list:
        """Each example's tags to tag ids, read as a sequence classifier reads one label (task.label_encoding)."""
        positions = [(i, j) for i, tags in enumerate(values) if tags is not None for j in range(len(tags))]
        ids = encode_class_labels([tag for tags in values if tags is not None for tag in tags], task, label_names, lambda k: f"{where(positions[k][0])}, word {positions[k][1] + 1}")
        missing = next((k for k, tag in enumerate(ids) if tag is None), None)
        if missing is not None:
            raise UserError(f"{where(positions[missing][0])}, word {positions[missing][1] + 1}: a word without a tag: every word needs one ({OUTSIDE} outside entities)")
        out, start = [], 0
        for tags in values:
            if tags is None:
                out.append(None)
                continue
            out.append(ids[start : start + len(tags)])
            start += len(tags)
        return out

    def tokenize_function(self, task: TaskConfig, tokenizer, max_length: int) -> Callable[[dict], dict]:
        """Words to tokens; per token the index of the word it starts (word_index) and, for labelled splits, the tag
        it trains on (token_labels)."""
        field = task.text_fields[0]
        if not tokenizer.is_fast:
            raise UserError(f"{task.name}: a token_classification task needs a fast tokenizer (it maps tokens to words), and {type(tokenizer).__name__} is not one")
        inside = inside_ids(task.label_names)

        def encode(batch: dict) -> dict:
            encoded = tokenizer(batch[field], is_split_into_words=True, truncation=True, max_length=max_length)
            word_ids = [encoded.word_ids(i) for i in range(len(batch[field]))]
            encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
            encoded["word_index"] = [[IGNORE if word is None or word == previous else word for previous, word in zip([None, *words], words)] for words in word_ids]
            if "label" not in batch:
                return encoded
            encoded["token_labels"] = []
            for words, tags, ids, starts, idx in zip(batch[field], batch["label"], word_ids, encoded["word_index"], batch["idx"]):
                if len(tags) != len(words):
                    raise UserError(f"{task.name}: example {idx} has {len(words)} words but {len(tags)} tags ({task.label_field}): every word needs one tag")
                encoded["token_labels"].append([token_label(tags, word, start, inside, task.label_all_tokens) for word, start in zip(ids, starts)])
            return encoded

        return encode

    def adapt_tokenizer(self, tokenizer) -> None:
        space_before_each_word(tokenizer)

    def collator(self, tokenizer, pad_to_max_length: int | None, pad_to_multiple_of: int | None):
        return TokenCollator(padding_collator(tokenizer, pad_to_max_length, pad_to_multiple_of))

    def report_truncation(self, task: TaskConfig, split: str, tokenized, max_length: int) -> None:
        lost = [len(words) - sum(start != IGNORE for start in starts) for words, starts in zip(tokenized[task.text_fields[0]][:], tokenized["word_index"][:])]
        if any(lost):
            words = sum(len(words) for words in tokenized[task.text_fields[0]][:])
            log.warning(
                f"{task.name} {split}: {sum(lost)} of {words} words, in {sum(n > 0 for n in lost)} example(s), get no token within model.max_length={max_length} "
                f"(or none at all): the model never sees them ({'they train nothing' if split == 'train' else f'predicted {OUTSIDE}: their entities count as missed'})"
            )

    def predict_batch(self, task: TaskConfig, model, batch: dict) -> dict:
        """A tag's logits per word: the first sub-token's; a word the model never sees gets 1 for O and 0 elsewhere, so
        it is predicted O. Rows are padded to the batch's longest example (in words) with labels -100."""
        import torch

        word_index, labels = batch.pop("word_index"), batch.pop("labels", None)
        logits = model(**batch).logits.float()  # [examples, tokens, tags]
        words = labels.shape[1] if labels is not None else word_index.shape[1]
        word_logits = torch.zeros(logits.shape[0], words, logits.shape[2], dtype=logits.dtype, device=logits.device)
        word_logits[..., task.label_names.index(OUTSIDE)] = 1.0
        rows, tokens = (word_index != IGNORE).nonzero(as_tuple=True)
        word_logits[rows, word_index[rows, tokens]] = logits[rows, tokens]
        return {"logits": word_logits} | ({"labels": labels} if labels is not None else {})

    def predictions(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.where(labels == IGNORE, IGNORE, logits.argmax(-1))

    def tag_sequences(self, task: TaskConfig, labels: np.ndarray, predictions: np.ndarray) -> tuple[list[list[str]], list[list[str]]]:
        """Gold and predicted tags, a list per example, as seqeval reads them."""
        names = np.array(task.label_names)
        words = labels != IGNORE
        return [names[row[mask]].tolist() for row, mask in zip(labels, words)], [names[row[mask]].tolist() for row, mask in zip(predictions, words)]

    def metrics(self, task: TaskConfig, labels: np.ndarray, predictions: np.ndarray, suffix: str = "") -> dict[str, float]:
        from seqeval import metrics as seqeval

        gold, pred = self.tag_sequences(task, labels, predictions)
        matching = seqeval_matching(task)
        scores = {
            "precision": lambda: seqeval.precision_score(gold, pred, **matching),
            "recall": lambda: seqeval.recall_score(gold, pred, **matching),
            "f1": lambda: seqeval.f1_score(gold, pred, **matching),
            "accuracy": lambda: seqeval.accuracy_score(gold, pred),
        }
        return {name + suffix: float(scores[name]()) for name in task.metrics}

    def class_report(self, task: TaskConfig, labels: np.ndarray, predictions: np.ndarray) -> tuple[dict, str]:
        """seqeval's per-entity report and scikit-learn's per-tag (per word) one."""
        from seqeval.metrics import classification_report

        from src.metrics import per_class_report, per_class_report_text

        gold, pred = self.tag_sequences(task, labels, predictions)
        matching = seqeval_matching(task)
        words = labels != IGNORE
        tags = (labels[words], predictions[words], task.label_names)
        report = {"entities": classification_report(gold, pred, output_dict=True, **matching), "tags": per_class_report(*tags)}
        text = f"entities (seqeval, {task.seqeval_mode or 'conlleval'} matching):\n{classification_report(gold, pred, digits=4, **matching)}\ntags, per word:\n{per_class_report_text(*tags)}"
        return report, text

    def write_predictions(self, path: Path, task: TaskConfig, examples, labels: np.ndarray, predictions: np.ndarray) -> None:
        """predictions_<split>.conll: `word gold predicted` a line, a blank line after each sentence (conlleval's input)."""
        names = task.label_names
        with open(path, "w", encoding="utf-8") as f:
            for words, gold, pred in zip(examples[task.text_fields[0]], labels, predictions):
                f.write("".join(f"{word} {names[g]} {names[p]}\n" for word, g, p in zip(words, gold, pred)) + "\n")

    def display(self, task: TaskConfig, value: Any) -> Any:
        return " ".join(task.label_names[tag] for tag in value if tag != IGNORE)

    def error_analysis(self, run_dir: Path, task: TaskConfig, title: str, split: str, texts: list[list[str]], labels: np.ndarray, logits: np.ndarray, num_errors: int):
        """confusion_matrix_<split>.tsv/.png between entity types, confusions_<split>.tsv (its off-diagonal cells, most
        frequent first), and the sentences with the most wrong entities. Each gold entity counts under the type of the
        predicted entity over it (an exact match first, else the first that overlaps it), or O if there is none; each
        predicted entity over no gold one counts under gold O. A wrong entity is one not predicted exactly (type and
        span), or predicted and not gold."""
        from src.analysis import SplitAnalysis, plot_confusion_matrix, write_tsv

        gold_tags, pred_tags = self.tag_sequences(task, labels, self.predictions(logits, labels))
        sentences = [(entities(task, gold), entities(task, pred)) for gold, pred in zip(gold_tags, pred_tags)]
        types = sorted({name[2:] for name in task.label_names if name[1:2] == "-"} | {e[0] for pair in sentences for side in pair for e in side})
        axis = [*types, OUTSIDE]
        matrix = np.zeros((len(axis), len(axis)), dtype=int)
        wrong = []
        for gold, pred in sentences:
            for entity in sorted(gold, key=lambda e: e[1]):
                over = entity if entity in pred else next((p for p in sorted(pred, key=lambda e: e[1]) if overlaps(p, entity)), None)
                matrix[axis.index(entity[0]), axis.index(over[0] if over else OUTSIDE)] += 1
            for entity in pred:
                if not any(overlaps(entity, g) for g in gold):
                    matrix[axis.index(OUTSIDE), axis.index(entity[0])] += 1
            wrong.append(len(gold ^ pred))

        write_tsv(run_dir / f"confusion_matrix_{split}.tsv", ["gold \\ predicted", *axis], [[name, *map(int, counts)] for name, counts in zip(axis, matrix)])
        confusions = sorted(((int(matrix[g, p]), axis[g], axis[p]) for g in range(len(axis)) for p in range(len(axis)) if g != p and matrix[g, p]), key=lambda c: -c[0])
        write_tsv(run_dir / f"confusions_{split}.tsv", ["gold", "predicted", "count"], [[g, p, n] for n, g, p in confusions])
        image = run_dir / f"confusion_matrix_{split}.png"
        num_gold = sum(len(gold) for gold, _ in sentences)
        plot_confusion_matrix(image, matrix, axis, f"{title}: entities ({num_gold} gold, {sum(wrong)} wrong)")

        worst = sorted((i for i in range(len(wrong)) if wrong[i]), key=lambda i: -wrong[i])[:num_errors]
        field = task.text_fields[0]
        rows = [[i, " ".join(texts[0][i]), wrong[i], spans(texts[0][i], sentences[i][0] - sentences[i][1]), spans(texts[0][i], sentences[i][1] - sentences[i][0])] for i in worst]
        return SplitAnalysis(split, ["index", field, "wrong_entities", "missed", "spurious"], rows, image)


def check_tags(task: TaskConfig, names: list[str], what: str) -> None:
    """IOB tags: at least two, each once, O among them; under strict matching every other tag is B-X or I-X."""
    if len(names) < 2 or len(set(names)) != len(names):
        raise UserError(f"{what} must name at least 2 tags, each once, got {names}")
    if OUTSIDE not in names:
        raise UserError(f"{what} {names} have no {OUTSIDE} (outside any entity): a token_classification task reads IOB tags (O, B-X, I-X)")
    if task.seqeval_mode == "strict":
        bad = [name for name in names if name != OUTSIDE and name[:2] not in ("B-", "I-")]
        if bad:
            raise UserError(f"{what}: {bad} are not IOB2 tags (B-X, I-X or O), which task.seqeval_mode=strict reads")


def space_before_each_word(tokenizer) -> None:
    """Make a byte-level BPE tokenizer (GPT-2, RoBERTa, ModernBERT, Pythia, Llama 3, Qwen2, SmolLM2) see each word given
    alone (is_split_into_words) as it sees it inside a sentence: after a space. Its vocabulary holds `Ġword` (` word`)
    apart from `word`, and without the space every word is tokenized as a text's first word, a spelling pretraining
    barely saw. run_ner.py loads the tokenizers of roberta, gpt2, bloom and deberta with add_prefix_space=True for
    this; here it goes by the tokenizer rather than the family: a ByteLevel pre-tokenizer gets add_prefix_space (saved
    with the checkpoint's tokenizer); one inside a Sequence, after a Split or Digits step, where add_prefix_space would
    put a space before every piece of a word (`1996` as ` 1 9 9 6`), gets a normalizer that puts one space before the
    word instead. In place, and idempotent (a checkpoint's tokenizer is set up again when loaded). WordPiece needs
    nothing, and a Metaspace (SentencePiece) pre-tokenizer that prepends its ▁ already does it for each word."""
    import json

    from tokenizers import normalizers, pre_tokenizers

    if not tokenizer.is_fast:
        return
    backend = tokenizer.backend_tokenizer
    state = json.loads(backend.to_str())
    pre = state.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel":
        if not pre.get("add_prefix_space"):
            backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, trim_offsets=pre.get("trim_offsets", True), use_regex=pre.get("use_regex", True))
        tokenizer.add_prefix_space = True  # GPT2Tokenizer, RobertaTokenizer: saved, and rebuilt so when loaded anywhere
        tokenizer.init_kwargs["add_prefix_space"] = True
        return
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    if any(step.get("type") == "ByteLevel" and not step.get("add_prefix_space") for step in steps) and not _prepends_space(state.get("normalizer")):
        prepend = normalizers.Prepend(" ")
        backend.normalizer = prepend if backend.normalizer is None else normalizers.Sequence([backend.normalizer, prepend])


def _prepends_space(normalizer: dict | None) -> bool:
    if not normalizer:
        return False
    if normalizer.get("type") == "Sequence":
        return any(_prepends_space(step) for step in normalizer.get("normalizers", []))
    return normalizer.get("type") == "Prepend" and normalizer.get("prepend") == " "


def token_label(tags: list[int], word: int | None, start: int, inside: list[int], label_all_tokens: bool) -> int:
    """The tag a token trains on: its word's if it is the word's first sub-token; a later sub-token's only under
    label_all_tokens (B-X as I-X); none for special tokens."""
    if word is None:
        return IGNORE
    if start != IGNORE:
        return tags[word]
    return inside[tags[word]] if label_all_tokens else IGNORE


def inside_ids(names: list[str]) -> list[int]:
    """Per tag id, the id a later sub-token of its word trains on under label_all_tokens: I-X for B-X (run_ner.py's b_to_i_label)."""
    return [names.index("I-" + name[2:]) if name.startswith("B-") and "I-" + name[2:] in names else i for i, name in enumerate(names)]


def seqeval_matching(task: TaskConfig) -> dict:
    from seqeval.scheme import IOB2

    strict = {"mode": "strict", "scheme": IOB2} if task.seqeval_mode == "strict" else {}
    return {**strict, "zero_division": 0}  # no entity predicted yet (early in training): 0, silently


def entities(task: TaskConfig, tags: list[str]) -> set[Entity]:
    """The entities of one example's tags, as the metrics match them."""
    if task.seqeval_mode == "strict":
        from seqeval.scheme import IOB2, Entities

        return {(e.tag, e.start, e.end) for e in Entities([tags], IOB2).entities[0]}
    from seqeval.metrics.sequence_labeling import get_entities

    return {(kind, start, end + 1) for kind, start, end in get_entities(tags)}


def overlaps(a: Entity, b: Entity) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def spans(words: list[str], found: set[Entity]) -> str:
    """Entities as people read them: `PER: John Smith; LOC: Paris`, in sentence order."""
    return "; ".join(f"{kind}: {' '.join(words[start:end])}" for kind, start, end in sorted(found, key=lambda e: (e[1], e[0])))


class TokenCollator:
    """Pads the model inputs as the sequence tasks do, and the per-token lists (word_index; labels when training) to the
    batch's token length with -100; per-word labels (evaluation) may be longer, when max_length cut words off."""

    def __init__(self, pad_inputs):
        self.pad_inputs = pad_inputs

    def __call__(self, features: list[dict]):
        import torch

        lists = [key for key in ("labels", "word_index") if key in features[0]]
        batch = self.pad_inputs([{k: v for k, v in f.items() if k not in lists} for f in features])
        tokens = batch["input_ids"].shape[1]
        for key in lists:
            width = max([tokens, *(len(f[key]) for f in features)]) if key == "labels" else tokens
            batch[key] = torch.tensor([f[key] + [IGNORE] * (width - len(f[key])) for f in features])
        return batch
