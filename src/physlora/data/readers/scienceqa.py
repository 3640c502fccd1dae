"""ScienceQA `problems.json`: one JSON object mapping problem id to problem.

Each problem has question, choices, answer (an index into choices), subject, topic, split, hint, lecture and
solution. Only topic "physics" is kept; other topics are counted as filtered. The hint contains context some
questions need, so a non-empty hint is put before the question. The solution becomes the explanation.
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
    text_field,
)
from physlora.data.readers.hub import iter_hub_rows
from physlora.data.readers.parsing import iter_json_document
from physlora.errors import DataError

_FILE_NAME = "problems.json"


class ScienceQaReader(Reader):
    name = "scienceqa"
    default_path = "scienceqa"
    split_aliases = {"train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val", "test": "test"}
    _hub_splits = {"train": "train", "val": "validation", "test": "test"}

    def find_files(self, root: Path, splits: set[str] | None) -> list[SourceFile]:
        path = root if root.is_file() else root / _FILE_NAME
        if not path.is_file():
            raise DataError(f"scienceqa: {_FILE_NAME} not found in {root}")
        return [SourceFile(path, "")]

    def read_file(self, file: SourceFile, context: ReadContext) -> Iterator[Row]:
        splits = self.resolve_splits(context.source.splits, context.label)
        for row in iter_json_document(file.path, expected="object"):
            if isinstance(row, Rejection):
                yield row
                continue
            location, (problem_id, problem) = row
            if not isinstance(problem, dict):
                yield Rejection("not a JSON object", location, f"problem {problem_id}: got {type(problem).__name__}")
                continue
            split = str(problem.get("split") or "")
            if splits is None or split in splits:
                yield convert_scienceqa_problem(problem, problem_id, location, split, context)

    def read_hub(self, context: ReadContext, splits: set[str] | None) -> Iterator[Row]:
        for split in sorted(splits or self._hub_splits):
            for location, row in iter_hub_rows(context.source.hub_id, None, self._hub_splits[split]):
                yield convert_scienceqa_problem(row, str(location.line), location, split, context)


def convert_scienceqa_problem(
    problem: dict[str, Any], problem_id: str, location: Location, split: str, context: ReadContext
) -> Row:
    question = text_field(problem, "question", location)
    if isinstance(question, Rejection):
        return question
    choices = problem.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(choice, str) for choice in choices):
        return Rejection("missing field 'choices'", location, "expected a non-empty list of strings")
    answer = problem.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        return Rejection("answer key matches no choice", location, f"answer {answer!r}, {len(choices)} choices")

    hint = problem.get("hint") if isinstance(problem.get("hint"), str) else ""
    solution = problem.get("solution") if isinstance(problem.get("solution"), str) else ""
    return build_record(
        context,
        location,
        split=split,
        question=f"{hint}\n{question}" if hint.strip() else question,
        answer=choices[answer],
        choices=choices,
        answer_index=answer,
        explanation=solution,
        raw_id=str(problem_id),
        physics=str(problem.get("topic") or "").strip().lower() == "physics",
    )
