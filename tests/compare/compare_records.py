"""A small data folder for the comparison tests: train, validation and a test split with choices."""

from __future__ import annotations

from pathlib import Path

from physlora.data.records import Record, write_jsonl

UNITS = [("force", "newton"), ("energy", "joule"), ("power", "watt"), ("charge", "coulomb"),
         ("current", "ampere"), ("resistance", "ohm"), ("frequency", "hertz"), ("pressure", "pascal")]


def unit_records(count: int, prefix: str, with_choices: bool) -> list[Record]:
    records = []
    for index in range(count):
        quantity, unit = UNITS[index % len(UNITS)]
        choices = [unit, "volt", "tesla"] if with_choices else []
        records.append(Record(
            id=f"{prefix}-{index}", source="test", question=f"What is the SI unit of {quantity}? ({index})",
            answer=unit, choices=choices, answer_index=0 if with_choices else None, topic="mechanics",
            original_split=prefix, target=unit,
        ))
    return records


def write_compare_data(folder: Path) -> Path:
    """Write 16 train, 4 validation and 6 test records (the test ones multiple choice) into `folder`."""
    write_jsonl(unit_records(16, "train", with_choices=False), folder / "train.jsonl")
    write_jsonl(unit_records(4, "validation", with_choices=False), folder / "validation.jsonl")
    write_jsonl(unit_records(6, "test", with_choices=True), folder / "test.jsonl")
    return folder
