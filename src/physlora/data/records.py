"""The normalised record every reader produces, and its JSONL form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable

from physlora.io import atomic_path


@dataclass(frozen=True)
class Record:
    """One physics question with its answer, whatever source it came from.

    `answer` is always the answer text; for multiple-choice items `answer_index` points into `choices`.
    `target` is the free-form training target (the answer, optionally followed by the explanation).
    """

    id: str
    source: str
    question: str
    answer: str
    choices: list[str] = field(default_factory=list)
    answer_index: int | None = None
    explanation: str = ""
    topic: str = "other"
    original_split: str = ""
    target: str = ""

    def with_changes(self, **changes: object) -> Record:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        return cls(**data)


def write_jsonl(records: Iterable[Record], path: Path) -> int:
    """Write records atomically as UTF-8 JSONL (keys in field order, no ASCII escaping); return how many."""
    count = 0
    with atomic_path(path) as temp_path, open(temp_path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> list[Record]:
    """Read records written by `write_jsonl`."""
    with open(path, encoding="utf-8") as handle:
        return [Record.from_dict(json.loads(line)) for line in handle if line.strip()]
