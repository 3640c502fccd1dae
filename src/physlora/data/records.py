"""The normalised record every reader produces, and its JSONL form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable

from physlora.errors import DataError
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
    """Read records written by `write_jsonl`; raise DataError naming the file and line of a malformed record."""
    records = []
    # Binary lines end at b"\n" only, so U+2028 and similar characters inside a JSON string never split a line.
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                records.append(_parse_record(line, path, number))
    return records


def _parse_record(line: bytes, path: Path, number: int) -> Record:
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise _invalid_record(path, number, f"invalid UTF-8 byte 0x{line[error.start]:02X}") from error
    except json.JSONDecodeError as error:
        raise _invalid_record(path, number, f"{error.msg.removesuffix(' at')} at column {error.colno}") from error
    if not isinstance(data, dict):
        raise _invalid_record(path, number, f"expected a JSON object, got {type(data).__name__}")
    try:
        return Record.from_dict(data)
    except TypeError as error:
        # Record(**data) raises TypeError for a missing or an unknown field.
        raise _invalid_record(path, number, str(error).replace("Record.__init__() ", "")) from error


def _invalid_record(path: Path, line: int, detail: str) -> DataError:
    return DataError(
        f"{path}:{line}: invalid record ({detail}); the file was not written by `physlora data build` "
        "or was changed since, so build the data set again"
    )
