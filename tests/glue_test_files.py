"""Unlabelled GLUE test files in the exact layout of the official download (the real ones are not in
../shared/data/glue: their labels are private). The sentences come from the real dev files where we
have them, so they tokenize like real data, bare quotes included."""

from __future__ import annotations

import csv
from pathlib import Path

# task folder -> (file, header), as the GLUE download script writes them
TEST_FILES = {
    "CoLA": [("test.tsv", ["index", "sentence"])],
    "SST-2": [("test.tsv", ["index", "sentence"])],
    "MRPC": [("test.tsv", ["\ufeffindex", "#1 ID", "#2 ID", "#1 String", "#2 String"])],  # the header starts with a BOM
    "QQP": [("test.tsv", ["id", "question1", "question2"])],
    "STS-B": [("test.tsv", ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"])],
    "MNLI": [
        (name, ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"])
        for name in ("test_matched.tsv", "test_mismatched.tsv")
    ],
    "QNLI": [("test.tsv", ["index", "question", "sentence"])],
    "RTE": [("test.tsv", ["index", "sentence1", "sentence2"])],
    "WNLI": [("test.tsv", ["index", "sentence1", "sentence2"])],
    "diagnostic": [("diagnostic.tsv", ["index", "sentence1", "sentence2"])],
}
SUBMISSION_FILES = ["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv", "MNLI-mm.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv"]


def dev_sentence_pairs(glue_dir: Path, n: int) -> list[tuple[str, str]]:
    with open(glue_dir / "RTE" / "dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r["sentence1"], r["sentence2"]) for r in rows[:n]]


def write_test_files(target: Path, real_glue_dir: Path, rows: int = 7) -> None:
    """Every task's test file(s) under target; train/dev of the local tasks are linked from the real copy."""
    pairs = dev_sentence_pairs(real_glue_dir, rows)
    pairs[0] = ('He said " no .', 'A bare " quote stays .')  # GLUE files hold bare quotes: read with QUOTE_NONE
    for folder, files in TEST_FILES.items():
        (target / folder).mkdir(parents=True, exist_ok=True)
        real = real_glue_dir / folder
        if real.is_dir():
            for path in real.glob("*.tsv"):
                (target / folder / path.name).symlink_to(path)
        for name, header in files:
            lines = ["\t".join(header)]
            for i, (first, second) in enumerate(pairs):
                index = str(1000 + i) if folder == "QQP" else str(i)  # QQP's test ids are its own
                fields = {"index": index, "\ufeffindex": index, "id": index, "question1": first, "question2": second, "question": first}
                fields["sentence"] = second if folder == "QNLI" else first  # QNLI: question, then sentence
                fields |= {"sentence1": first, "sentence2": second, "#1 String": first, "#2 String": second}
                lines.append("\t".join(fields.get(column, f"x{i}") for column in header))
            (target / folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
