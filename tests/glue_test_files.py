"""A GLUE folder with an unlabelled test file for every task, in the exact layout of the official download.

The real copy in ../shared/data/glue has the official test files of CoLA, SST-2 and STS-B; those are linked
as they are. The other tasks' test files are not public there, so synthetic ones in the official layout are
written, with sentences from the real RTE dev file so they tokenize like real data, bare quotes included.
Nothing is ever written into the real copy: only new files are created in `target`, never through a link.
"""

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
# submission file -> the test file it predicts (relative to the GLUE folder)
SUBMISSION_SOURCES = {
    "CoLA.tsv": "CoLA/test.tsv",
    "SST-2.tsv": "SST-2/test.tsv",
    "MRPC.tsv": "MRPC/test.tsv",
    "STS-B.tsv": "STS-B/test.tsv",
    "QQP.tsv": "QQP/test.tsv",
    "MNLI-m.tsv": "MNLI/test_matched.tsv",
    "MNLI-mm.tsv": "MNLI/test_mismatched.tsv",
    "QNLI.tsv": "QNLI/test.tsv",
    "RTE.tsv": "RTE/test.tsv",
    "WNLI.tsv": "WNLI/test.tsv",
    "AX.tsv": "diagnostic/diagnostic.tsv",
}
SUBMISSION_FILES = list(SUBMISSION_SOURCES)


def dev_sentence_pairs(glue_dir: Path, n: int) -> list[tuple[str, str]]:
    with open(glue_dir / "RTE" / "dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r["sentence1"], r["sentence2"]) for r in rows[:n]]


def write_test_files(target: Path, real_glue_dir: Path, rows: int = 7) -> dict[str, bool]:
    """Every task's test file(s) under target: the real ones linked, the missing ones synthetic; train/dev of the
    local tasks linked from the real copy. Returns {folder/file: True if real} for each test file."""
    pairs = dev_sentence_pairs(real_glue_dir, rows)
    pairs[0] = ('He said " no .', 'A bare " quote stays .')  # GLUE files hold bare quotes: read with QUOTE_NONE
    real_test = {}
    for folder, files in TEST_FILES.items():
        (target / folder).mkdir(parents=True, exist_ok=True)
        real = real_glue_dir / folder
        for path in sorted(real.glob("*.tsv")) if real.is_dir() else []:
            (target / folder / path.name).symlink_to(path)
        for name, header in files:
            path = target / folder / name
            real_test[f"{folder}/{name}"] = path.exists()
            if path.exists() or path.is_symlink():  # a real test file, linked above: never written through
                continue
            lines = ["\t".join(header)]
            for i, (first, second) in enumerate(pairs):
                index = str(1000 + i) if folder == "QQP" else str(i)  # QQP's test ids are its own
                fields = {"index": index, "\ufeffindex": index, "id": index, "question1": first, "question2": second, "question": first}
                fields["sentence"] = second if folder == "QNLI" else first  # QNLI: question, then sentence
                fields |= {"sentence1": first, "sentence2": second, "#1 String": first, "#2 String": second}
                lines.append("\t".join(fields.get(column, f"x{i}") for column in header))
            with open(path, "x", encoding="utf-8") as f:  # "x": fails rather than write over anything
                f.write("\n".join(lines) + "\n")
    return real_test
