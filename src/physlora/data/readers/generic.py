"""Generic JSONL and CSV files with a column mapping (`columns`: record field -> column name).

Columns default to the field names. Question and answer are required; choices, explanation, topic and id
are optional. In CSV the first row is the header, and a choices cell is either a JSON list or options
separated by "|". With choices, the answer must match one option's text, or be its letter (A, B, ...) or,
in JSONL, its 0-based integer index. A topic cell must be one of the topic names; it marks the row as
physics and is kept instead of the classifier's topic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from physlora.config.schema import TOPICS
from physlora.data.clean import clean_text, comparison_key
from physlora.data.readers.base import (
    Location,
    ReadContext,
    Reader,
    Rejection,
    Row,
    SourceFile,
    build_record,
    text_field,
)
from physlora.data.readers.hub import iter_hub_splits
from physlora.data.readers.parsing import iter_csv, iter_jsonl
from physlora.errors import ConfigError

MAPPED_FIELDS = ("question", "answer", "choices", "explanation", "topic", "id")
_SPLIT_NAMES = {"validation": "validation", "valid": "validation", "val": "validation", "dev": "validation"}


def column_mapping(context: ReadContext) -> dict[str, str]:
    """Return field -> column for every mapped field, checking the configured names."""
    unknown = sorted(set(context.source.columns) - set(MAPPED_FIELDS))
    if unknown:
        raise ConfigError(
            f"{context.label}: unknown field(s) {', '.join(unknown)} in `columns`; allowed: {', '.join(MAPPED_FIELDS)}"
        )
    return {field: context.source.columns.get(field, field) for field in MAPPED_FIELDS}


class _GenericReader(Reader):
    suffix = ""
    split_aliases = {"train": "train", "test": "test", **_SPLIT_NAMES}

    def find_files(self, root: Path, splits: set[str] | None) -> list[SourceFile]:
        paths = [root] if root.is_file() else sorted(root.glob(f"*{self.suffix}"))
        files = [SourceFile(path, _SPLIT_NAMES.get(path.stem.lower(), path.stem.lower())) for path in paths]
        return [file for file in files if splits is None or file.split in splits]

    def read_hub(self, context: ReadContext, splits: set[str] | None) -> Iterator[Row]:
        columns = column_mapping(context)
        for hub_split, location, row in iter_hub_splits(context.source.hub_id):
            split = _SPLIT_NAMES.get(hub_split, hub_split)
            if splits is None or split in splits:
                yield convert_mapped_row(row, location, split, context, columns)


class JsonlReader(_GenericReader):
    name = "jsonl"
    suffix = ".jsonl"

    def read_file(self, file: SourceFile, context: ReadContext) -> Iterator[Row]:
        columns = column_mapping(context)
        for row in iter_jsonl(file.path):
            if isinstance(row, Rejection):
                yield row
            else:
                location, value = row
                yield convert_mapped_row(value, location, file.split, context, columns)


class CsvReader(_GenericReader):
    name = "csv"
    suffix = ".csv"

    def read_file(self, file: SourceFile, context: ReadContext) -> Iterator[Row]:
        columns = column_mapping(context)
        header: list[str] | None = None
        for row in iter_csv(file.path):
            if isinstance(row, Rejection):
                yield row
                continue
            location, fields = row
            if header is None:
                header = fields
                continue
            if len(fields) != len(header):
                yield Rejection("wrong column count", location, f"{len(fields)} columns, header has {len(header)}")
                continue
            yield convert_mapped_row(dict(zip(header, fields)), location, file.split, context, columns)


def _parse_choices(value: Any, location: Location) -> list[str] | Rejection:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                return Rejection("invalid choices", location, f"JSON list: {error.msg}")
        else:
            return text.split("|") if text else []
    if not isinstance(value, list) or not all(isinstance(choice, (str, int, float)) for choice in value):
        return Rejection("invalid choices", location, "expected a list of strings")
    return [str(choice) for choice in value]


def _answer_index(answer: Any, choices: list[str]) -> int | None:
    if isinstance(answer, int) and not isinstance(answer, bool):
        return answer if 0 <= answer < len(choices) else None
    text = clean_text(str(answer))
    for index, choice in enumerate(choices):
        if comparison_key(choice) == comparison_key(text):
            return index
    if len(text) == 1 and "A" <= text.upper() <= "Z" and ord(text.upper()) - ord("A") < len(choices):
        return ord(text.upper()) - ord("A")
    return None


def convert_mapped_row(
    row: dict[str, Any], location: Location, split: str, context: ReadContext, columns: dict[str, str]
) -> Row:
    question = text_field(row, columns["question"], location)
    if isinstance(question, Rejection):
        return question
    if row.get(columns["answer"]) is None:
        return Rejection(f"missing field {columns['answer']!r}", location)
    raw_answer = row[columns["answer"]]

    choices: list[str] = []
    if row.get(columns["choices"]) is not None:
        parsed = _parse_choices(row[columns["choices"]], location)
        if isinstance(parsed, Rejection):
            return parsed
        choices = parsed
    index = _answer_index(raw_answer, choices) if choices else None
    if choices and index is None:
        return Rejection("answer matches no choice", location, f"answer {str(raw_answer)[:60]!r}")
    answer = text_field(row, columns["answer"], location) if index is None else choices[index]
    if isinstance(answer, Rejection):
        return answer

    topic = clean_text(str(row.get(columns["topic"]) or "")).lower() or None
    if topic is not None and topic not in TOPICS:
        return Rejection("unknown topic", location, f"{topic!r}; allowed: {', '.join(TOPICS)}")
    explanation = row.get(columns["explanation"])
    raw_id = row.get(columns["id"])
    return build_record(
        context,
        location,
        split=split,
        question=question,
        answer=answer,
        choices=choices,
        answer_index=index,
        explanation=explanation if isinstance(explanation, str) else "",
        raw_id=str(raw_id) if raw_id not in (None, "") else None,
        physics=True if topic is not None else None,
        topic=topic,
    )
