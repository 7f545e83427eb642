"""Read a W&B run back from its offline files, as `wandb sync` would upload it.

wandb 0.31 ships the protobuf (`wandb.proto.wandb_internal_pb2.Record`) but no reader for the
run-<id>.wandb log, so this decodes it: a 7-byte file header (":W&B", 0xBEE1, version 0), then
LevelDB-style 32 KiB blocks of records, each with a 7-byte header (CRC-32, length, type), a
record split across blocks as FIRST, MIDDLE..., LAST pieces.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto.wandb_internal_pb2 import Record

BLOCK_SIZE = 32768
HEADER_SIZE = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[Record]:
    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:HEADER_SIZE]) == (b":W&B", 0xBEE1, 0), f"{path} is not a W&B run log"
    records, pending, pos = [], b"", HEADER_SIZE
    while pos + HEADER_SIZE <= len(data):
        if BLOCK_SIZE - pos % BLOCK_SIZE < HEADER_SIZE:  # too little room left in the block: zero padding
            pos += BLOCK_SIZE - pos % BLOCK_SIZE
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER_SIZE])
        if kind == 0 or pos + HEADER_SIZE + length > len(data):  # the tail of a log still being written
            break
        chunk = data[pos + HEADER_SIZE : pos + HEADER_SIZE + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == checksum, f"corrupt record at byte {pos} of {path}"
        pos += HEADER_SIZE + length
        pending += chunk
        if kind in (FULL, LAST):
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _set(tree: dict, keys: list[str], value) -> None:
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


def _items(updates) -> dict:
    """Protobuf items (key or nested_key, value_json) as a nested dict."""
    tree: dict = {}
    for item in updates:
        _set(tree, list(item.nested_key) or [item.key], json.loads(item.value_json))
    return tree


@dataclass
class OfflineRun:
    path: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    artifacts: list[tuple[str, str]] = field(default_factory=list)  # (type, name)
    exit_code: int | None = None  # None: the run never finished


def read_run(run_path: Path, wait_s: float = 20.0) -> OfflineRun:
    """One offline run directory (<run_dir>/wandb/offline-run-*). The wandb-core process writes the log
    on its own: `run.finish()` can return before the last records are on disk, so wait for the exit record."""
    (log_file,) = run_path.glob("run-*.wandb")
    deadline = time.monotonic() + wait_s
    records = read_records(log_file)
    while not any(r.WhichOneof("record_type") == "exit" for r in records) and time.monotonic() < deadline:
        time.sleep(0.1)
        records = read_records(log_file)
    run = OfflineRun(run_path)
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.name, run.group, run.job_type, run.tags = r.run_id, r.display_name, r.run_group, r.job_type, list(r.tags)
            run.config = {k: v for k, v in _items(r.config.update).items() if k != "_wandb"}
        elif kind == "config":
            run.config.update({k: v for k, v in _items(record.config.update).items() if k != "_wandb"})
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "summary":
            for item in record.summary.update:
                _set(run.summary, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "artifact":
            run.artifacts.append((record.artifact.type, record.artifact.name))
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def offline_runs(run_dir: Path) -> list[OfflineRun]:
    """Every offline W&B run written under a run directory, oldest first."""
    return [read_run(p) for p in sorted((run_dir / "wandb").glob("offline-run-*"))]
