"""metrics.jsonl: the training measurements of a run folder, one JSON object per line.

Record types and fields are documented in docs/run-folder.md. Lines are appended and flushed as they
happen, so a crashed run keeps everything measured before the crash.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import torch

from physlora.io import write_text_atomic

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
    """Append-only writer that flushes each record to the operating system before `write` returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "a", encoding="utf-8", newline="\n")

    def write(self, record: dict) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_metrics(path: Path) -> list[dict]:
    """Read all records of a metrics file, skipping a last line cut off by a crash."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def keep_until_checkpoint(path: Path, step: int, epochs_done: int) -> list[dict]:
    """Rewrite the metrics file without the records a resume from checkpoint `step` will write again.

    Step records after `step` and epoch records after epoch `epochs_done` are dropped, and events stay as
    history. Returns the records kept.
    """
    kept = []
    for record in read_metrics(path):
        if record.get("type") == "step" and record["step"] > step:
            continue
        if record.get("type") == "epoch" and record["epoch"] > epochs_done:
            continue
        kept.append(record)
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in kept))
    return kept


def finite_or_none(value: float) -> float | None:
    """Return `value`, or None for NaN and infinity, which JSON cannot represent."""
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def peak_memory(device_type: str) -> tuple[int, str]:
    """High-water mark of memory use and its kind: CUDA bytes allocated by torch, or the process RSS."""
    if device_type == "cuda":
        return int(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports ru_maxrss in kibibytes, macOS in bytes.
    return (max_rss if sys.platform == "darwin" else max_rss * 1024), "rss"
