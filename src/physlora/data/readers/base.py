"""Types and helpers every reader shares: row results, locations, the reader interface and record construction."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Union

from physlora.config.schema import SourceConfig
from physlora.data.clean import clean_text, content_hash
from physlora.data.records import Record
from physlora.errors import ConfigError, DataError


@dataclass(frozen=True)
class Location:
    """Origin of a row: a file (or hub dataset and split) and, when known, a 1-based line number."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Rejection:
    """A row that could not be turned into a record. `reason` is the audit category, `detail` the specifics."""

    reason: str
    location: Location
    detail: str = ""

    def message(self) -> str:
        suffix = f" ({self.detail})" if self.detail else ""
        return f"{self.location}: {self.reason}{suffix}"


@dataclass(frozen=True)
class Item:
    """A record read from a source, with the source's own physics label.

    `physics` is True when the source declares the row physics (MMLU physics subjects, ScienceQA topic
    physics), False when it declares another subject, and None when the source has no subject label.
    """

    record: Record
    location: Location
    physics: bool | None = None
    topic_from_source: bool = False
    """True when the source set `record.topic` itself, so the classifier must not replace it."""


Row = Union[Item, Rejection]


def convert_parsed(parsed: Iterable, convert: Callable[[Any, Location], Row]) -> Iterator[Row]:
    """Pass parser rejections through and convert every parsed (location, value) pair with `convert`."""
    for row in parsed:
        if isinstance(row, Rejection):
            yield row
        else:
            location, value = row
            yield convert(value, location)


@dataclass(frozen=True)
class SourceFile:
    """One local file of a source and the original split it holds."""

    path: Path
    split: str


@dataclass(frozen=True)
class ReadContext:
    """Settings a reader needs besides the file: the source config, its record label and the data seed."""

    source: SourceConfig
    seed: int

    @property
    def label(self) -> str:
        return self.source.label


class Reader(ABC):
    """One source format. Subclasses list their files, parse them, and convert hub rows.

    `split_aliases` maps every accepted split name (lower case) to the source's own split name, so a config
    can use `validation` whether the files call it `valid`, `dev` or `val`.
    """

    name: ClassVar[str]
    default_path: ClassVar[str | None] = None
    split_aliases: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def find_files(self, root: Path, splits: set[str] | None) -> list[SourceFile]:
        """List the files under `root` (a folder or one file) holding the wanted original splits."""

    @abstractmethod
    def read_file(self, file: SourceFile, context: ReadContext) -> Iterator[Row]:
        """Yield one Item or Rejection per row of the file."""

    def read_hub(self, context: ReadContext, splits: set[str] | None) -> Iterator[Row]:
        """Yield the rows of the source's hub dataset; readers without a hub layout do not support it."""
        raise ConfigError(f"{context.label}: reading type {self.name} from the Hugging Face hub is not supported")

    def resolve_splits(self, requested: list[str] | None, label: str) -> set[str] | None:
        """Map configured split names to the source's own names; None means every split."""
        if requested is None:
            return None
        resolved = set()
        for name in requested:
            key = name.strip().lower()
            if key not in self.split_aliases:
                allowed = ", ".join(sorted(self.split_aliases))
                raise ConfigError(f"{label}: unknown split {name!r} for type {self.name}; allowed: {allowed}")
            resolved.add(self.split_aliases[key])
        return resolved


_INVALID_BYTE = re.compile("[\udc80-\udcff]")


def invalid_utf8(text: str) -> str | None:
    """Describe the first byte that was not valid UTF-8, for text decoded with errors='surrogateescape'."""
    match = _INVALID_BYTE.search(text)
    if match is None:
        return None
    return f"invalid byte 0x{ord(match.group()) - 0xDC00:02X}"


def text_field(row: dict[str, Any], field: str, location: Location) -> str | Rejection:
    """Return `row[field]` as text; numbers are converted, a missing or null field or any other type is rejected."""
    if field not in row or row[field] is None:
        return Rejection(f"missing field {field!r}", location)
    value = row[field]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return Rejection(f"field {field!r} is not text", location, f"got {type(value).__name__}")
    return str(value)


def build_record(
    context: ReadContext,
    location: Location,
    *,
    split: str,
    question: str,
    answer: str,
    choices: Iterable[str] = (),
    answer_index: int | None = None,
    explanation: str = "",
    raw_id: str | None = None,
    physics: bool | None = None,
    topic: str | None = None,
) -> Row:
    """Clean the fields and return an Item, or a Rejection when a required field ends up empty or undecodable.

    The id is `<label>-<split>-<raw_id>`; sources without ids get a hash of the cleaned question, answer and
    choices instead. Choices keep their order, so `answer_index` must already point at `answer`.
    """
    raw_fields = [question, answer, explanation, *choices]
    for text in raw_fields:
        problem = invalid_utf8(text)
        if problem is not None:
            return Rejection("not UTF-8", location, problem)

    question = clean_text(question)
    answer = clean_text(answer)
    cleaned_choices = [clean_text(choice) for choice in choices]
    if not question:
        return Rejection("empty question", location)
    if not answer:
        return Rejection("empty answer", location)
    if any(not choice for choice in cleaned_choices):
        return Rejection("empty choice", location)

    record_id = raw_id.strip() if raw_id and raw_id.strip() else content_hash(question, answer, *cleaned_choices)
    record = Record(
        id=f"{context.label}-{split}-{record_id}",
        source=context.label,
        question=question,
        answer=answer,
        choices=cleaned_choices,
        answer_index=answer_index if cleaned_choices else None,
        explanation=clean_text(explanation),
        topic=topic or "other",
        original_split=split,
    )
    return Item(record, location, physics, topic_from_source=topic is not None)


def fixed_layout_files(
    root: Path, file_names: dict[str, str], splits: set[str] | None, reader_name: str
) -> list[SourceFile]:
    """Files of a source whose folder contains one file per split under a fixed name (split -> file name).

    A single file may be given instead of the folder; its split is the one whose file name matches, else
    its stem. A split named in `splits` whose file is missing is an error, so nothing is skipped unnoticed.
    """
    if root.is_file():
        by_name = {name: split for split, name in file_names.items()}
        return [SourceFile(root, by_name.get(root.name, root.stem))]
    wanted = file_names if splits is None else {split: file_names[split] for split in sorted(splits)}
    found = [SourceFile(root / name, split) for split, name in wanted.items() if (root / name).is_file()]
    missing = [name for split, name in wanted.items() if not (root / name).is_file()]
    if splits is not None and missing:
        raise DataError(
            f"{reader_name}: {', '.join(missing)} not found in {root}; add the file or remove its split from `splits`"
        )
    return found
