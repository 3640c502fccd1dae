"""ARC (AI2 Reasoning Challenge), Easy and Challenge: compact JSONL, one question per line.

Choice labels are A-E or 1-5 and questions have 3 to 5 choices, so the answer is found by matching
`answerKey` against the labels, never by converting a letter to a position.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from physlora.data.readers.base import (
    Location,
    ReadContext,
    Reader,
    Rejection,
    Row,
    SourceFile,
    build_record,
    convert_parsed,
    text_field,
)
from physlora.data.readers.hub import iter_hub_rows
from physlora.data.readers.parsing import iter_jsonl

# ARC-Challenge-Train.jsonl, ARC-Easy-Dev.jsonl, ...: subset, then split.
_FILE_NAME = re.compile(r"^ARC-(Challenge|Easy)-(Train|Dev|Test)\.jsonl$", re.IGNORECASE)
_HUB_CONFIGS = ("ARC-Challenge", "ARC-Easy")


class ArcReader(Reader):
    name = "arc"
    default_path = "arc"
    split_aliases = {"train": "train", "validation": "dev", "valid": "dev", "val": "dev", "dev": "dev", "test": "test"}
    _hub_splits = {"train": "train", "dev": "validation", "test": "test"}

    def find_files(self, root: Path, splits: set[str] | None) -> list[SourceFile]:
        if root.is_file():
            match = _FILE_NAME.match(root.name)
            return [SourceFile(root, match.group(2).lower() if match else root.stem)]
        files = []
        for path in sorted(root.rglob("*.jsonl")):
            match = _FILE_NAME.match(path.name)
            if match and (splits is None or match.group(2).lower() in splits):
                files.append(SourceFile(path, match.group(2).lower()))
        return files

    def read_file(self, file: SourceFile, context: ReadContext) -> Iterator[Row]:
        yield from convert_parsed(
            iter_jsonl(file.path), lambda value, location: convert_arc_row(value, location, file.split, context)
        )

    def read_hub(self, context: ReadContext, splits: set[str] | None) -> Iterator[Row]:
        for config_name in _HUB_CONFIGS:
            for split in sorted(splits or self._hub_splits):
                for location, row in iter_hub_rows(context.source.hub_id, config_name, self._hub_splits[split]):
                    yield convert_arc_row(_hub_row_to_file_layout(row), location, split, context)


def _hub_row_to_file_layout(row: dict[str, Any]) -> dict[str, Any]:
    """Hub rows hold the stem in `question` and parallel `choices.text` / `choices.label` lists."""
    choices = row.get("choices") or {}
    pairs = zip(choices.get("text") or [], choices.get("label") or [])
    return {
        "id": row.get("id"),
        "question": {"stem": row.get("question"), "choices": [{"text": text, "label": label} for text, label in pairs]},
        "answerKey": row.get("answerKey"),
    }


def convert_arc_row(row: dict[str, Any], location: Location, split: str, context: ReadContext) -> Row:
    question = row.get("question")
    if not isinstance(question, dict):
        return Rejection("missing field 'question'", location, "expected an object with stem and choices")
    stem = text_field(question, "stem", location)
    if isinstance(stem, Rejection):
        return Rejection("missing field 'question.stem'", location, stem.detail)
    answer_key = text_field(row, "answerKey", location)
    if isinstance(answer_key, Rejection):
        return answer_key
    raw_choices = question.get("choices")
    if not isinstance(raw_choices, list) or not raw_choices:
        return Rejection("missing field 'question.choices'", location, "expected a non-empty list")

    texts, labels = [], []
    for choice in raw_choices:
        text = text_field(choice, "text", location) if isinstance(choice, dict) else None
        label = text_field(choice, "label", location) if isinstance(choice, dict) else None
        if not isinstance(text, str) or not isinstance(label, str):
            return Rejection("invalid choice", location, "each choice needs text and label")
        texts.append(text)
        labels.append(label.strip())

    key = answer_key.strip()
    if key not in labels:
        return Rejection("answer key matches no choice", location, f"answerKey {key!r}, labels {labels}")
    index = labels.index(key)
    raw_id = row.get("id")
    return build_record(
        context,
        location,
        split=split,
        question=stem,
        answer=texts[index],
        choices=texts,
        answer_index=index,
        raw_id=str(raw_id) if raw_id is not None else None,
    )
