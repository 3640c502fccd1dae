"""Fixtures of the reliability tests: a small built data set for training commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from physlora.data.records import Record, write_jsonl

QUESTION_ANSWERS = [
    ("What is the SI unit of force?", "newton"),
    ("What is the SI unit of energy?", "joule"),
    ("What is the SI unit of power?", "watt"),
    ("What is the SI unit of electric charge?", "coulomb"),
    ("What is the SI unit of electric current?", "ampere"),
    ("What is the SI unit of resistance?", "ohm"),
    ("What is the SI unit of frequency?", "hertz"),
    ("What is the SI unit of pressure?", "pascal"),
    ("What quantity is mass times acceleration?", "force"),
    ("What quantity is mass times velocity?", "momentum"),
    ("What is the rate of change of velocity called?", "acceleration"),
    ("What is the bending of light entering glass called?", "refraction"),
    ("What is heat transfer through direct contact called?", "conduction"),
    ("What particle carries a negative elementary charge?", "an electron"),
    ("What is the unit of magnetic flux density?", "tesla"),
    ("What type of wave is sound in air?", "longitudinal"),
]


def physics_records(count: int, prefix: str) -> list[Record]:
    """`count` records cycling through QUESTION_ANSWERS; repeated questions get a numbered suffix."""
    records = []
    for index in range(count):
        question, answer = QUESTION_ANSWERS[index % len(QUESTION_ANSWERS)]
        if index >= len(QUESTION_ANSWERS):
            question = f"{question} (variant {index // len(QUESTION_ANSWERS)})"
        records.append(Record(id=f"{prefix}-{index}", source="reliability", question=question, answer=answer,
                              topic="mechanics", original_split="train", target=answer))
    return records


def write_train_data(folder: Path, train_count: int, validation_count: int) -> Path:
    """Write train.jsonl and validation.jsonl, as `physlora data build` would, into `folder`."""
    write_jsonl(physics_records(train_count, "t"), folder / "train.jsonl")
    write_jsonl(physics_records(validation_count, "v"), folder / "validation.jsonl")
    return folder


@pytest.fixture(scope="session")
def train_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built data set of 16 training and 4 validation records."""
    return write_train_data(tmp_path_factory.mktemp("train-data"), 16, 4)
