"""Answer questions with a run's adapted (or base) model: one question, or a JSONL or CSV file of them."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Callable

from physlora.errors import ConfigError, DataError
from physlora.eval.generation import Generated
from physlora.io import atomic_path
from physlora.serve.registry import BASE, AdapterRegistry, AdapterSpec

ADAPTED = "adapted"


def load_run_registry(run_dir: Path) -> AdapterRegistry:
    """Load the run's base model with its adapter named `adapted` (the base alone is model `base`)."""
    return AdapterRegistry.load([AdapterSpec(ADAPTED, Path(run_dir))], general=None)


def answer_questions(
    registry: AdapterRegistry,
    questions: list[str],
    *,
    base: bool = False,
    max_new_tokens: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Generated]:
    """Generate greedy answers in order, with the run's prompt template and limits.

    `max_new_tokens` and `batch_size` default to the run's settings (see runs.generation_settings).
    `progress` is called after every batch with (batches done, batches in total).
    """
    model = BASE if base else ADAPTED
    settings = registry.settings(ADAPTED)
    limit = max_new_tokens or settings.default_max_new_tokens
    batch_size = batch_size or settings.batch_size
    if limit < 1 or batch_size < 1:
        raise ConfigError(f"max_new_tokens={limit} and batch_size={batch_size} must be positive")
    prompts = [registry.prompt_for(ADAPTED, question) for question in questions]
    total = math.ceil(len(prompts) / batch_size)
    done = 0

    def on_batch() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return registry.generate(model, prompts, limit, settings.max_seq_length, batch_size, on_batch)


def read_questions(path: Path) -> list[dict]:
    """Read the rows of a .jsonl file (objects with a `question` field) or a .csv file (with a `question` column).

    Each row keeps its other fields so that an `id` can travel to the output. Raises DataError naming the
    line of the first row without a non-empty question.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"question file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = _read_jsonl_rows(path)
    elif suffix == ".csv":
        rows = _read_csv_rows(path)
    else:
        raise DataError(f"question file {path}: unknown format {suffix or '(no suffix)'!r}; use .jsonl or .csv")
    if not rows:
        raise DataError(f"question file {path} contains no questions")
    return rows


def _read_jsonl_rows(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path} line {line_number}: invalid JSON ({error.msg})") from error
            rows.append(_checked_row(row, path, line_number))
    return rows


def _read_csv_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "question" not in reader.fieldnames:
            raise DataError(f"{path}: no 'question' column (columns: {reader.fieldnames or []})")
        # Line numbers count the header as line 1.
        return [_checked_row(row, path, line_number) for line_number, row in enumerate(reader, start=2)]


def _checked_row(row: object, path: Path, line_number: int) -> dict:
    if not isinstance(row, dict):
        raise DataError(f"{path} line {line_number}: expected a JSON object with a 'question' field")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{path} line {line_number}: missing or empty 'question'")
    return row


def write_answers(path: Path, rows: list[dict], answers: list[Generated], model: str) -> None:
    """Write one JSONL line per input row, in input order: its id (when present), question and answer."""
    with atomic_path(path) as temp_path, open(temp_path, "w", encoding="utf-8", newline="\n") as handle:
        for row, answer in zip(rows, answers, strict=True):
            line = {"id": row["id"]} if row.get("id") not in (None, "") else {}
            line.update(
                question=row["question"],
                answer=answer.text,
                model=model,
                completion_tokens=answer.n_tokens,
                finish_reason="stop" if answer.stopped_at_eos else "length",
            )
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
