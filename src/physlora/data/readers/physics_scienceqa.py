"""physics-scienceqa: JSONL rows with `input` (the question, possibly followed by its options) and `output`.

Options are recognised after an "Options:" or "Choices:" header, or inline as "(A) ... (B) ...", with
labels A-E in order. The output may be a letter ("B", "(B)", "The answer is B."), a letter with the option
text, or the answer text; with options it must select one of them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from physlora.data.clean import comparison_key
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
from physlora.data.readers.hub import iter_hub_splits
from physlora.data.readers.parsing import iter_jsonl

# NOTE: this layout is inferred from the field names of the hub dataset; no copy of it was available to check.
_OPTIONS_HEADER = re.compile(r"(?:^|\n)[ \t]*(?:options|choices)[ \t]*:", re.IGNORECASE)
_LABEL = re.compile(r"\(([A-E])\)")
_LINE_LABEL = re.compile(r"^[ \t]*\(?([A-E])[).:][ \t]+(.*)$", re.MULTILINE)
_QUESTION_PREFIX = re.compile(r"^\s*question\s*:\s*", re.IGNORECASE)
_ANSWER_PREFIX = re.compile(r"^\s*(?:the answer is|answer\s*:)\s*", re.IGNORECASE)
_LETTER_ANSWER = re.compile(r"^\(?([A-E])\)?(?:[.:)]?\s+(.*))?$", re.DOTALL)
_SPLIT_NAMES = {"validation": "validation", "valid": "validation", "val": "validation", "dev": "validation"}


class PhysicsScienceQaReader(Reader):
    name = "physics_scienceqa"
    default_path = "physics-scienceqa"
    split_aliases = {"train": "train", "test": "test", **_SPLIT_NAMES}

    def find_files(self, root: Path, splits: set[str] | None) -> list[SourceFile]:
        paths = [root] if root.is_file() else sorted(root.glob("*.jsonl"))
        files = [SourceFile(path, _SPLIT_NAMES.get(path.stem.lower(), path.stem.lower())) for path in paths]
        return [file for file in files if splits is None or file.split in splits]

    def read_file(self, file: SourceFile, context: ReadContext) -> Iterator[Row]:
        yield from convert_parsed(
            iter_jsonl(file.path), lambda value, location: convert_input_output_row(value, location, file.split, context)
        )

    def read_hub(self, context: ReadContext, splits: set[str] | None) -> Iterator[Row]:
        for hub_split, location, row in iter_hub_splits(context.source.hub_id):
            split = _SPLIT_NAMES.get(hub_split, hub_split)
            if splits is None or split in splits:
                yield convert_input_output_row(row, location, split, context)


def split_options(text: str) -> tuple[str, list[str]]:
    """Split an input into the question and its options ([] when it lists none)."""
    header = _OPTIONS_HEADER.search(text)
    if header is not None:
        question, block = text[: header.start()], text[header.end() :]
        options = _labelled_options(block) or _line_options(block)
        if not options:
            options = [line.strip() for line in block.splitlines() if line.strip()]
        return _QUESTION_PREFIX.sub("", question), options
    first = _LABEL.search(text)
    if first is not None and first.group(1) == "A":
        options = _labelled_options(text[first.start() :])
        if options:
            return _QUESTION_PREFIX.sub("", text[: first.start()]), options
    return _QUESTION_PREFIX.sub("", text), []


def _labelled_options(block: str) -> list[str]:
    """Options marked "(A) ... (B) ..."; only a run of labels A, B, C... in order counts."""
    marks = list(_LABEL.finditer(block))
    if not marks or marks[0].group(1) != "A" or block[: marks[0].start()].strip():
        return []
    labels = [mark.group(1) for mark in marks]
    if labels != [chr(ord("A") + index) for index in range(len(labels))]:
        return []
    ends = [mark.start() for mark in marks[1:]] + [len(block)]
    return [block[mark.end() : end].strip() for mark, end in zip(marks, ends)]


def _line_options(block: str) -> list[str]:
    """Options on their own lines as "A. ...", "A) ..." or "(A) ...", labels A, B, C... in order."""
    matches = _LINE_LABEL.findall(block)
    labels = [label for label, _ in matches]
    if not labels or labels != [chr(ord("A") + index) for index in range(len(labels))]:
        return []
    return [text.strip() for _, text in matches]


def select_option(answer: str, options: list[str]) -> int | None:
    """Return the index of the option `answer` names by its text or by its letter, or None when it names none."""
    answer = answer.rstrip(".").strip()
    for index, option in enumerate(options):
        if comparison_key(option) == comparison_key(answer):
            return index
    letter = _LETTER_ANSWER.match(answer)
    if letter is not None and ord(letter.group(1)) - ord("A") < len(options):
        return ord(letter.group(1)) - ord("A")
    return None


def convert_input_output_row(row: dict[str, Any], location: Location, split: str, context: ReadContext) -> Row:
    text = text_field(row, "input", location)
    if isinstance(text, Rejection):
        return text
    output = text_field(row, "output", location)
    if isinstance(output, Rejection):
        return output
    question, options = split_options(text)
    answer = _ANSWER_PREFIX.sub("", output).strip()
    index = select_option(answer, options) if options else None
    if options and index is None:
        return Rejection("answer matches no choice", location, f"output {output[:60]!r}, {len(options)} options")
    return build_record(
        context,
        location,
        split=split,
        question=question,
        answer=answer if index is None else options[index],
        choices=options,
        answer_index=index,
        physics=True,
    )
