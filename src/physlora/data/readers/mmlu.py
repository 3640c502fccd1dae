"""MMLU physics subjects: headerless CSV files `<split>/<subject>_<split>.csv` with 6 columns.

Columns are question, four options and the answer letter A-D. Only high_school_physics, college_physics
and conceptual_physics are read, so every row is physics by definition (its topic is still tagged).
"""

from __future__ import annotations

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
)
from physlora.data.readers.hub import iter_hub_rows
from physlora.data.readers.parsing import iter_csv
from physlora.errors import DataError

PHYSICS_SUBJECTS = ("college_physics", "conceptual_physics", "high_school_physics")
_SPLITS = ("dev", "val", "test")
_LETTERS = ("A", "B", "C", "D")
_COLUMNS = 6


class MmluReader(Reader):
    name = "mmlu"
    default_path = "mmlu"
    split_aliases = {"dev": "dev", "validation": "val", "valid": "val", "val": "val", "test": "test"}
    _hub_splits = {"dev": "dev", "val": "validation", "test": "test"}

    def find_files(self, root: Path, splits: set[str] | None) -> list[SourceFile]:
        if root.is_file():
            subject, _, split = root.stem.rpartition("_")
            if subject not in PHYSICS_SUBJECTS:
                raise DataError(f"mmlu: {root} is not one of the physics subjects {', '.join(PHYSICS_SUBJECTS)}")
            return [SourceFile(root, split)]
        files = []
        for split in _SPLITS:
            if splits is not None and split not in splits:
                continue
            found = [root / split / f"{subject}_{split}.csv" for subject in PHYSICS_SUBJECTS]
            found = [path for path in found if path.is_file()]
            if splits is not None and not found:
                raise DataError(f"mmlu: no physics files for split {split} in {root / split}")
            files.extend(SourceFile(path, split) for path in found)
        return files

    def read_file(self, file: SourceFile, context: ReadContext) -> Iterator[Row]:
        yield from convert_parsed(
            iter_csv(file.path), lambda fields, location: convert_mmlu_row(fields, location, file.split, context)
        )

    def read_hub(self, context: ReadContext, splits: set[str] | None) -> Iterator[Row]:
        for subject in PHYSICS_SUBJECTS:
            for split in sorted(splits or self._hub_splits):
                for location, row in iter_hub_rows(context.source.hub_id, subject, self._hub_splits[split]):
                    yield convert_mmlu_row(_hub_row_to_fields(row), location, split, context)


def _hub_row_to_fields(row: dict[str, Any]) -> list[str]:
    """Hub rows hold a `choices` list and an integer `answer`; rebuild the 6 CSV columns from them."""
    choices = [str(choice) for choice in row.get("choices") or []]
    answer = row.get("answer")
    letter = _LETTERS[answer] if isinstance(answer, int) and 0 <= answer < len(_LETTERS) else str(answer)
    return [str(row.get("question") or ""), *choices, letter]


def convert_mmlu_row(fields: list[str], location: Location, split: str, context: ReadContext) -> Row:
    if len(fields) != _COLUMNS:
        return Rejection("wrong column count", location, f"{len(fields)} columns, expected {_COLUMNS}")
    question, *choices, letter = fields
    key = letter.strip().upper()
    if key not in _LETTERS:
        return Rejection("answer key matches no choice", location, f"answer {letter!r}, expected one of A, B, C, D")
    index = _LETTERS.index(key)
    return build_record(
        context,
        location,
        split=split,
        question=question,
        answer=choices[index],
        choices=choices,
        answer_index=index,
        physics=True,
    )
