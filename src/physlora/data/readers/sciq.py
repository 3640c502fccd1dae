"""SciQ: JSON arrays of objects with question, correct_answer, distractor1-3 and support.

The answer is text and the file has no option order, so the options are shuffled with a generator seeded
by the data seed and the item's content: the same seed gives the same answer_index on every run.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Iterator

from physlora.data.clean import content_hash
from physlora.data.readers.base import (
    Location,
    ReadContext,
    Reader,
    Rejection,
    Row,
    SourceFile,
    build_record,
    convert_parsed,
    fixed_layout_files,
    text_field,
)
from physlora.data.readers.hub import iter_hub_rows
from physlora.data.readers.parsing import iter_json_document

_FIELDS = ("question", "correct_answer", "distractor1", "distractor2", "distractor3")


class SciQReader(Reader):
    name = "sciq"
    default_path = "sciq"
    split_aliases = {
        "train": "train", "validation": "valid", "valid": "valid", "val": "valid", "dev": "valid", "test": "test",
    }  # fmt: skip
    _files = {"train": "train.json", "valid": "valid.json", "test": "test.json"}
    _hub_splits = {"train": "train", "valid": "validation", "test": "test"}

    def find_files(self, root: Path, splits: set[str] | None) -> list[SourceFile]:
        return fixed_layout_files(root, self._files, splits, self.name)

    def read_file(self, file: SourceFile, context: ReadContext) -> Iterator[Row]:
        yield from convert_parsed(
            iter_json_document(file.path, expected="array"), lambda value, location: convert_sciq_row(value, location, file.split, context)
        )

    def read_hub(self, context: ReadContext, splits: set[str] | None) -> Iterator[Row]:
        for split in sorted(splits or self._hub_splits):
            for location, row in iter_hub_rows(context.source.hub_id, None, self._hub_splits[split]):
                yield convert_sciq_row(row, location, split, context)


def convert_sciq_row(row: Any, location: Location, split: str, context: ReadContext) -> Row:
    if not isinstance(row, dict):
        return Rejection("not a JSON object", location, f"got {type(row).__name__}")
    values = []
    for field in _FIELDS:
        value = text_field(row, field, location)
        if isinstance(value, Rejection):
            return value
        values.append(value)
    question, answer, *distractors = values
    support = row.get("support") or ""
    if not isinstance(support, str):
        return Rejection("field 'support' is not text", location, f"got {type(support).__name__}")

    # Track positions rather than texts: a few real items repeat the answer text among the distractors.
    order = list(range(4))
    random.Random(f"{context.seed}:{content_hash(question, answer, *distractors)}").shuffle(order)
    options = [answer, *distractors]
    choices = [options[position] for position in order]
    return build_record(
        context,
        location,
        split=split,
        question=question,
        answer=answer,
        choices=choices,
        answer_index=order.index(0),
        explanation=support,
    )
