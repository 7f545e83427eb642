"""token_classification on the real CoNLL-2003 files: the CoNLL reader, sub-word alignment, words cut off by
max_length, seqeval's scores recomputed from predictions_<split>.conll, the reports and error analysis, and one
real multirun of the tiny model under every finetune method, read back by src.evaluate, a resume and the sweep summary."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
from accelerate.utils import set_seed
from conftest import CONLL_DIR, load_split, read_metrics, read_table, run_train
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from wandb_files import offline_runs

from src.config import UserError
from src.data import tokenize, tokenizer_fingerprint
from src.evaluate import main as evaluate_main
from src.model import build_tiny_model
from src.sources import resolve_label_names, split_sources
from src.task_types import task_type

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]  # the Hub's tag ids
METHODS = ["full", "linear_probe", "lora", "adalora"]
SUBSET = {"train.txt": 400, "valid.txt": 150, "test.txt": 100}  # the first sentences of each file: cheap runs
RECIPE = [
    "task=conll2003",
    "model=tiny",
    "model.max_length=64",  # the tiny tokenizer makes a token of each character: long sentences lose words
    "logger=wandb",
    "trainer.max_steps=16",
    "trainer.eval_every_steps=8",
    "trainer.checkpoint_every_steps=4",
    "trainer.keep_checkpoints=10",
    "trainer.batch_size=16",
    "optimizer.lr=5e-3",
    "trainer.progress_bar=false",
]
TINY_HEAD = 64 * 9 + 9  # the tiny BERT's token classifier over 9 tags (no pooler)
TINY = 151_042 - (64 * 64 + 64) - (64 * 2 + 2) + TINY_HEAD  # test_finetune's tiny sequence classifier, less its pooler and 2-label head
LORA = 2 * 2 * (8 * 64 + 64 * 8)
PARAMETERS = {"full": (TINY, TINY), "linear_probe": (TINY, TINY_HEAD), "lora": (TINY + LORA, LORA + TINY_HEAD)}  # (all, trainable)


def first_sentences(text: str, n: int) -> str:
    """The beginning of a CoNLL file, up to the end of its n-th sentence."""
    lines, sentences = text.split("\n"), 0
    for number, line in enumerate(lines):
        if not line.strip() and number and lines[number - 1].strip() and not lines[number - 1].startswith("-DOCSTART-"):
            sentences += 1
            if sentences == n:
                return "\n".join(lines[: number + 1]) + "\n"
    return text


def read_conll(path: Path) -> list[list[list[str]]]:
    """A CoNLL file as conlleval reads it: sentences of lines of fields."""
    return [[line.split(" ") for line in block.splitlines()] for block in path.read_text(encoding="utf-8").split("\n\n") if block.strip()]


def conll_scores(path: Path) -> dict[str, float]:
    sentences = read_conll(path)
    gold, pred = [[f[1] for f in s] for s in sentences], [[f[2] for f in s] for s in sentences]
    return {"f1": f1_score(gold, pred), "precision": precision_score(gold, pred), "recall": recall_score(gold, pred), "accuracy": accuracy_score(gold, pred)}


# ---------------------------------------------------------------- data


@pytest.mark.parametrize("split,sentences,words", [("train", 14041, 203621), ("dev", 3250, 51362), ("test", 3453, 46435)])
def test_conll_files_read_as_the_hub_dataset(make_cfg, split, sentences, words):
    """SOURCES.md's counts; -DOCSTART- lines are no sentence; tag ids are the Hub's."""
    cfg = make_cfg("task=conll2003", "model=tiny")
    ds = load_split(cfg, split)
    tokens, labels = ds["tokens"][:], ds["label"][:]
    assert len(ds) == sentences and sum(map(len, tokens)) == words
    assert all(len(words) == len(tags) for words, tags in zip(tokens, labels))
    assert "-DOCSTART-" not in {t for words in tokens for t in words}
    if split == "train":
        assert tokens[0] == ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
        assert labels[0] == [3, 0, 7, 0, 0, 0, 7, 0, 0]  # B-ORG O B-MISC O ...
        assert Counter(t for tags in labels for t in tags)[TAGS.index("B-PER")] == 6600  # PER entities of eng.train


def test_conll_errors_name_the_line(make_cfg, tmp_path):
    (tmp_path / "train.conll").write_text("EU B-ORG\nrejects O\n\nPeter B-PERSON\n")
    cfg = make_cfg("task=conll2003", f"task.data_dir={tmp_path}", "task.data_files.train=train.conll")
    with pytest.raises(UserError, match=r"train.conll:4, word 1: label 'B-PERSON' is not one of the conll2003 labels"):
        load_split(cfg, "train")
    (tmp_path / "train.conll").write_text("EU NNP B-NP B-ORG\nrejects VBZ O\n")
    with pytest.raises(UserError, match=r"train.conll:2: 3 field\(s\) where the file has 4 \(tokens pos_tags chunk_tags ner_tags\): a malformed line"):
        load_split(cfg, "train")


def test_a_hub_dataset_with_a_tag_per_word(make_cfg, tmp_path):
    """The Hub's conll2003 (a local copy of a dataset repository): tags are a list of ClassLabel, read as its ids."""
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")), "ner_tags": datasets.List(datasets.ClassLabel(names=TAGS))})
    rows = {"tokens": [["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]], "ner_tags": [[1, 2], [5, 0]]}
    for split in ("train", "validation"):
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / f"{split}.parquet"))
    cfg = make_cfg("task=conll2003", "data.conll_dir=null", f"task.hub.path={tmp_path}", "task.label_names=null")
    assert resolve_label_names(cfg.task, cfg.data.cache_dir) == TAGS
    assert load_split(cfg, "dev")["label"] == [[1, 2], [5, 0]]


def test_first_sub_token_carries_the_tag_and_cut_words_are_counted(make_cfg, tiny_tokenizer, caplog, tmp_path):
    """run_ner.py's alignment on real sentences (the first 50 of CoNLL-2003's dev): the tiny tokenizer makes a token of
    each character."""
    (tmp_path / "valid.txt").write_text(first_sentences((CONLL_DIR / "valid.txt").read_text(), 50))
    cfg = make_cfg("task=conll2003", "model=tiny", "model.max_length=16", f"data.conll_dir={tmp_path}")
    source = split_sources(cfg.task, ["dev"], TAGS)["dev"]
    with caplog.at_level(logging.WARNING, logger="basebench"):
        dev = tokenize(source, cfg.task, tiny_tokenizer, tokenizer_fingerprint(tiny_tokenizer), 16, cfg.data.cache_dir, "dev")
    first = dev[1]  # LONDON 1996-08-30: [CLS] L ##O ##N ##D ##O ##N 1 ##9 ... [SEP]
    assert first["tokens"] == ["LONDON", "1996-08-30"] and first["label"] == [5, 0]
    assert first["word_index"] == [-100, 0, *[-100] * 5, 1, *[-100] * 7, -100]  # 1996-08-30 is cut after 8 tokens
    assert first["token_labels"] == [-100, 5, *[-100] * 5, 0, *[-100] * 7, -100]
    cut = sum(len(t) - sum(i >= 0 for i in w) for t, w in zip(dev["tokens"], dev["word_index"]))
    assert len(dev) == 50 and cut > 0 and f"conll2003 dev: {cut} of {sum(map(len, dev['tokens'][:]))} words" in caplog.text

    all_tokens = make_cfg("task=conll2003", "model=tiny", "model.max_length=16", f"data.conll_dir={tmp_path}", "task.label_all_tokens=true")
    source = split_sources(all_tokens.task, ["dev"], TAGS)["dev"]
    dev = tokenize(source, all_tokens.task, tiny_tokenizer, tokenizer_fingerprint(tiny_tokenizer), 16, all_tokens.data.cache_dir, "dev")
    assert dev[1]["token_labels"] == [-100, 5, *[6] * 5, *[0] * 8, -100]  # B-LOC's later sub-tokens train as I-LOC


WORDS = ["EU", "rejects", "German", "call", "1996", "U.S."]


def byte_level_tokenizers() -> dict:
    """Byte-level BPE tokenizers of one token per byte: the tiny GPT-2 one, the same behind a Digits step (as SmolLM2's;
    Llama 3's and Qwen2's put a Split step there), and transformers' RobertaTokenizer class over the byte alphabet."""
    from tokenizers import pre_tokenizers
    from transformers import RobertaTokenizer

    from src.model import build_tiny_tokenizer

    sequence = build_tiny_tokenizer("gpt2")
    sequence.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    roberta_vocab = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *sorted(pre_tokenizers.ByteLevel.alphabet())]
    roberta = RobertaTokenizer(vocab={token: i for i, token in enumerate(roberta_vocab)}, merges=[])
    return {"gpt2": build_tiny_tokenizer("gpt2"), "digits+gpt2": sequence, "roberta": roberta}


def word_tokens(tokenizer, words: list[str]) -> list[str]:
    return tokenizer(words, is_split_into_words=True, add_special_tokens=False).tokens()


@pytest.mark.parametrize("name", ["gpt2", "digits+gpt2", "roberta"])
def test_byte_level_tokenizers_see_each_word_after_a_space(make_cfg, name, tmp_path):
    """Words given one by one are tokenized as inside a sentence (`Ġword`), as run_ner.py's add_prefix_space=True does
    for roberta and gpt2; transformers 5 no longer refuses them without it, it silently tokenizes each word as a text's
    first. The set-up is idempotent and survives save_pretrained / AutoTokenizer (a checkpoint's tokenizer)."""
    from transformers import AutoTokenizer

    tokenizer = byte_level_tokenizers()[name]
    in_a_sentence = tokenizer(" " + " ".join(WORDS), add_special_tokens=False).tokens()
    assert word_tokens(tokenizer, WORDS) == [t for t in in_a_sentence if t != "Ġ"]  # before: no word has its space
    kind = task_type(make_cfg("task=conll2003").task)
    kind.adapt_tokenizer(tokenizer)
    assert word_tokens(tokenizer, WORDS) == in_a_sentence  # `1996` stays `Ġ 1 9 9 6`, not `Ġ1 Ġ9 Ġ9 Ġ6`
    encoded = tokenizer(WORDS, is_split_into_words=True, add_special_tokens=False)
    assert [encoded.word_ids()[i] for i, t in enumerate(encoded.tokens()) if t == "Ġ"] == list(range(len(WORDS)))  # each space is its word's first sub-token
    state = tokenizer.backend_tokenizer.to_str()
    kind.adapt_tokenizer(tokenizer)
    assert tokenizer.backend_tokenizer.to_str() == state
    tokenizer.save_pretrained(tmp_path)
    assert word_tokens(AutoTokenizer.from_pretrained(tmp_path), WORDS) == in_a_sentence


def test_only_token_classification_sets_up_the_tokenizer(make_cfg):
    """load_tokenizer with a token classification task prefixes words for the tiny GPT-2; sentence tasks, and WordPiece
    (BERT, MiniLM: the tokenization cache stays valid), are left as they were."""
    from src.model import build_tiny_tokenizer, load_tokenizer

    ner, cola = make_cfg("task=conll2003", "model=tiny-gpt2"), make_cfg("task=cola", "model=tiny-gpt2")
    assert word_tokens(load_tokenizer(ner.model, ner.task), WORDS)[:3] == ["Ġ", "E", "U"]
    assert load_tokenizer(cola.model, cola.task).backend_tokenizer.to_str() == build_tiny_tokenizer("gpt2").backend_tokenizer.to_str()
    bert = make_cfg("task=conll2003", "model=tiny")
    assert load_tokenizer(bert.model, bert.task).backend_tokenizer.to_str() == build_tiny_tokenizer().backend_tokenizer.to_str()  # fresh: a call leaves its truncation on the backend


def test_strict_matching_leaves_out_entities_that_start_with_i(make_cfg):
    """conlleval's matching reads `O I-LOC` as an entity; IOB2 strict matching does not."""
    labels = np.array([[TAGS.index(t) for t in ("B-PER", "I-PER", "O", "I-LOC")]])
    preds = np.array([[TAGS.index(t) for t in ("B-PER", "I-PER", "O", "O")]])
    kind = task_type(make_cfg("task=conll2003").task)
    assert kind.metrics(make_cfg("task=conll2003").task, labels, preds)["recall"] == 0.5
    assert kind.metrics(make_cfg("task=conll2003", "task.seqeval_mode=strict").task, labels, preds)["recall"] == 1.0


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["task=conll2003", "task.seqeval_mode=lenient"], "task.seqeval_mode must be one of null, strict (strict: IOB2 strict matching; null: conlleval's), got 'lenient'"),
        (["task=conll2003", "task.label_names=[B-PER,I-PER]"], "task.label_names ['B-PER', 'I-PER'] have no O (outside any entity)"),
        (["task=conll2003", "task.seqeval_mode=strict", "task.label_names=[O,S-PER]"], "task.label_names: ['S-PER'] are not IOB2 tags"),
        (["task=conll2003", "task.metrics=[matthews_correlation]"], "task.metrics: matthews_correlation cannot score a token_classification task"),
        (["task=conll2003", "task.text_fields=[tokens,pos_tags]"], "a token_classification task reads one field holding the words"),
        (["task=conll2003", "predict=true"], "predict=true: task conll2003 has no unlabelled test split"),
        (["task=cola", "task.label_all_tokens=true"], "task.label_all_tokens and task.seqeval_mode are for token_classification tasks, not sequence_classification"),
        (["data.conll_dir=/does/not/exist"], "data.conll_dir must be an existing directory (a CoNLL-2003 folder (train.txt, valid.txt, test.txt), e.g. data.conll_dir=../shared/data/conll2003), got '/does/not/exist'"),
    ],
)
def test_bad_token_classification_values(make_cfg, overrides, message):
    with pytest.raises(UserError) as caught:
        make_cfg(*overrides)
    assert message in str(caught.value)


# ---------------------------------------------------------------- training, outputs, evaluation


@pytest.fixture(scope="module")
def conll_subset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("conll_subset")
    for name, n in SUBSET.items():
        (folder / name).write_text(first_sentences((CONLL_DIR / name).read_text(), n))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir, conll_subset) -> dict[str, Path]:
    sweep_dir = tmp_path_factory.mktemp("ner_sweep")
    out = run_train(
        "-m", f"finetune={','.join(METHODS)}", *RECIPE, f"data.conll_dir={conll_subset}", f"data.cache_dir={cache_dir}", f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=${finetune.name}"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "conll2003 dev: " in out.stdout and "predicted O: their entities count as missed" in out.stdout  # words cut by max_length 64 (Hydra logs to stdout)
    return {method: sweep_dir / method for method in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_a_token_classifier(runs, method):
    metrics = read_metrics(runs[method])
    assert (metrics["task"], metrics["task_type"], metrics["finetune"], metrics["status"]) == ("conll2003", "token_classification", method, "completed")
    assert metrics["main_metric"] == "f1" and metrics["main_metric_value"] == metrics["best"]["f1"]
    assert set(metrics["best"]) == set(metrics["test"]) == {"f1", "precision", "recall", "accuracy"}
    assert metrics["label_names"] == TAGS
    if method in PARAMETERS:  # the linear probe trains the classifier alone: a token classifier has no pooler
        assert (metrics["num_parameters"], metrics["trainable_parameters"]) == PARAMETERS[method]


@pytest.mark.parametrize("method", ["full", "lora"])
def test_scores_are_seqevals_of_the_conll_files(runs, conll_subset, make_cfg, method):
    run_dir = runs[method]
    metrics = read_metrics(run_dir)
    for split, key in (("dev", "best"), ("test", "test")):
        assert conll_scores(run_dir / f"predictions_{split}.conll") == pytest.approx(metrics[key], abs=1e-12)
    dev = load_split(make_cfg("task=conll2003", f"data.conll_dir={conll_subset}"), "dev")
    sentences = read_conll(run_dir / "predictions_dev.conll")
    assert len(sentences) == SUBSET["valid.txt"] and len(read_conll(run_dir / "predictions_test.conll")) == SUBSET["test.txt"]
    assert [[f[0] for f in s] for s in sentences] == dev["tokens"][:]  # every word, those cut off by max_length too
    assert [[TAGS.index(f[1]) for f in s] for s in sentences] == dev["label"][:]


def test_words_beyond_max_length_are_predicted_o(runs, tiny_tokenizer):
    for sentence in read_conll(runs["full"] / "predictions_dev.conll"):
        tokens = 1  # [CLS]
        for word, _, predicted in sentence:
            tokens += len(tiny_tokenizer.tokenize(word))
            if tokens > 63:  # no room before [SEP]
                assert predicted == "O"


def test_reports_and_error_analysis(runs):
    run_dir = runs["full"]
    report = (run_dir / "classification_report_dev.txt").read_text()
    assert report.startswith("entities (seqeval, conlleval matching):")
    for name in ("LOC", "MISC", "ORG", "PER", "micro avg", "tags, per word:", *TAGS):
        assert name in report
    saved = read_metrics(run_dir)["classification_report"]
    assert set(saved) == {"dev", "test"} and set(saved["dev"]) == {"entities", "tags"}
    assert saved["dev"]["entities"]["micro avg"]["f1-score"] == pytest.approx(read_metrics(run_dir)["best"]["f1"])

    sentences = read_conll(run_dir / "predictions_dev.conll")
    gold = [set(get_entities([f[1] for f in s])) for s in sentences]
    pred = [set(get_entities([f[2] for f in s])) for s in sentences]
    matrix = read_table(run_dir / "confusion_matrix_dev.tsv", "\t")
    types = ["LOC", "MISC", "ORG", "PER", "O"]
    assert [r["gold \\ predicted"] for r in matrix] == types
    by_gold = {r["gold \\ predicted"]: sum(int(r[t]) for t in types) for r in matrix}
    assert by_gold == {t: sum(e[0] == t for g in gold for e in g) for t in types[:-1]} | {"O": by_gold["O"]}  # each gold entity once
    confusions = read_table(run_dir / "confusions_dev.tsv", "\t")
    assert [int(r["count"]) for r in confusions] == sorted((int(r["count"]) for r in confusions), reverse=True)
    assert all(r["gold"] != r["predicted"] and int(r["count"]) == int(matrix[types.index(r["gold"])][r["predicted"]]) for r in confusions)

    errors = read_table(run_dir / "errors_dev.tsv", "\t")
    wrong = [len(g ^ p) for g, p in zip(gold, pred)]
    assert [int(r["wrong_entities"]) for r in errors] == sorted(wrong, reverse=True)[: len(errors)] and len(errors) == min(20, sum(w > 0 for w in wrong))
    for r in errors:
        i = int(r["index"])
        assert r["tokens"] == " ".join(f[0] for f in sentences[i]) and int(r["wrong_entities"]) == wrong[i]

    (run,) = offline_runs(run_dir)
    assert run.summary["best/f1"] == read_metrics(run_dir)["best"]["f1"]
    [table] = run_dir.glob("wandb/offline-run-*/files/media/table/analysis/errors_dev_*.table.json")
    assert json.loads(table.read_text())["columns"] == ["index", "tokens", "wrong_entities", "missed", "spurious"]


def test_the_sweep_summary_lists_every_method(runs):
    rows = read_table(runs["full"].parent / "summary.csv")
    assert sorted(r["status"] for r in rows) == ["completed"] * 4
    for row in rows:
        assert float(row["main_metric_value"]) == pytest.approx(read_metrics(runs[row["dir"]])["main_metric_value"], abs=1e-6)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_src_evaluate_reproduces_the_runs_predictions(runs, conll_subset, method, cache_dir, tmp_path):
    out = tmp_path / "eval"
    evaluate_main([str(runs[method]), "logger=none", f"output_dir={out}", f"data.cache_dir={cache_dir}", f"data.conll_dir={conll_subset}"])
    for name in ("predictions_dev.conll", "predictions_test.conll", "classification_report_dev.txt", "errors_dev.tsv", "confusion_matrix_dev.tsv"):
        assert (out / name).read_text() == (runs[method] / name).read_text(), name
    assert read_metrics(out)["best"] == pytest.approx(read_metrics(runs[method])["best"])


def test_resume_from_a_checkpoint_ends_as_the_uninterrupted_run(runs, tmp_path, cache_dir):
    """What a kill after step 8 leaves (checkpoints, no metrics.json), continued: the same checkpoint, the same scores."""
    run_dir = tmp_path / "run"
    shutil.copytree(runs["full"], run_dir, ignore=shutil.ignore_patterns("wandb", "step-0000012", "*.conll", "*.tsv", "*.txt", "*.png", "metrics.json"))
    out = run_train("trainer.resume=true", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming from" in out.stdout + out.stderr
    resumed, reference = read_metrics(run_dir), read_metrics(runs["full"])
    for key in ("best", "test", "best_step", "steps", "train_samples"):
        assert resumed[key] == reference[key], key
    assert (run_dir / "predictions_dev.conll").read_text() == (runs["full"] / "predictions_dev.conll").read_text()


def test_a_users_own_conll_files_are_one_task_file(tmp_path, cache_dir):
    """Another NER set in CoNLL format (two columns, other tags): a task file in a folder of the user's, nothing else."""
    renamed = {"PER": "PERSON", "ORG": "ORGANISATION", "LOC": "PLACE", "MISC": "OTHER"}
    for split, part in (("train", first_sentences((CONLL_DIR / "valid.txt").read_text(), 40)), ("dev", first_sentences((CONLL_DIR / "test.txt").read_text(), 20))):
        rows = [" ".join([f[0], f[-1][:2] + renamed[f[-1][2:]] if f[-1] != "O" else "O"]) if f else "" for f in (line.split() for line in part.splitlines())]
        (tmp_path / f"{split}.conll").write_text("\n".join(rows) + "\n")
    (tmp_path / "my_tasks" / "task").mkdir(parents=True)
    (tmp_path / "my_tasks" / "task" / "news_ner.yaml").write_text(
        f"name: news_ner\ntype: token_classification\ndata_dir: {tmp_path}\ndata_files: {{train: train.conll, dev: dev.conll}}\n"
        "text_fields: [tokens]\nlabel_field: ner_tags\nmetrics: [f1, accuracy]\nmain_metric: f1\n"
    )
    run_dir = tmp_path / "run"
    out = run_train(f"hydra.searchpath=[file://{tmp_path}/my_tasks]", "task=news_ner", "model=tiny", "logger=none", "trainer.max_steps=4", "trainer.batch_size=8", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["label_names"] == ["B-ORGANISATION", "B-OTHER", "B-PERSON", "B-PLACE", "I-ORGANISATION", "I-OTHER", "I-PERSON", "I-PLACE", "O"]  # sorted, as run_ner.py
    assert conll_scores(run_dir / "predictions_dev.conll")["f1"] == pytest.approx(metrics["best"]["f1"], abs=1e-12)
    given = [s for s in read_conll(tmp_path / "dev.conll") if s[0][0] != "-DOCSTART-"]
    assert [[f[:2] for f in s] for s in read_conll(run_dir / "predictions_dev.conll")] == given  # word and gold tag as given


@pytest.mark.slow
def test_minilm_learns_conll2003(tmp_path, cache_dir):
    """The packaged MiniLM, an epoch on the first 2,000 training sentences: entity F1 on the first 500 dev sentences
    above a floor: this recipe measured 0.300 there at seed 42 (0.278 on all of dev; run_ner.py 0.370, in its random order: seed noise, BENCHMARKS.md), on a loaded CPU."""
    run_dir = tmp_path / "run"
    out = run_train(
        "task=conll2003", "model=minilm-l6", "logger=none", "trainer.epochs=1", "optimizer.lr=5e-5", "data.max_train_samples=2000", "data.max_eval_samples=500",
        "task.test_split=null", f"data.cache_dir={cache_dir}", f"output_dir={run_dir}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["best"]["f1"] > F1_FLOOR
    assert conll_scores(run_dir / "predictions_dev.conll")["f1"] == pytest.approx(metrics["best"]["f1"], abs=1e-12)


F1_FLOOR = 0.2


def test_a_random_model_is_scored_as_seqeval_reads_its_conll_file(make_cfg, tiny_tokenizer, conll_subset, cache_dir, tmp_path):
    """An untrained head predicts entities of every type at random: the scores, reports and errors still agree with the file."""
    checkpoint, out = tmp_path / "model", tmp_path / "eval"
    cfg = make_cfg("task=conll2003", "model=tiny")
    set_seed(0)
    build_tiny_model(cfg.model, cfg.task, tiny_tokenizer).save_pretrained(checkpoint)
    tiny_tokenizer.save_pretrained(checkpoint)
    evaluate_main([str(checkpoint), "task=conll2003", "model.max_length=64", "logger=none", f"output_dir={out}", f"data.cache_dir={cache_dir}", f"data.conll_dir={conll_subset}"])
    metrics = read_metrics(out)
    assert 0 < metrics["best"]["f1"] < 0.5 and metrics["best"]["precision"] > 0
    assert conll_scores(out / "predictions_dev.conll") == pytest.approx(metrics["best"], abs=1e-12)
    assert conll_scores(out / "predictions_test.conll") == pytest.approx(metrics["test"], abs=1e-12)
    spurious = sum(int(r["count"]) for r in read_table(out / "confusions_dev.tsv", "\t") if r["gold"] == "O")
    assert spurious > 0 and any(r["spurious"] for r in read_table(out / "errors_dev.tsv", "\t"))
