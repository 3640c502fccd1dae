"""Deduplication, subsampling, the stratified grouped split and the leakage check on crafted records."""

from __future__ import annotations

from collections import Counter

import pytest

from physlora.data.records import Record
from physlora.data.split import (
    SPLITS,
    allocate,
    make_ids_unique,
    remove_duplicates,
    remove_leakage,
    stratified_split,
    subsample,
)


def record(index: int, topic: str = "energy", question: str | None = None, answer: str | None = None) -> Record:
    return Record(
        id=f"src-train-{index}",
        source="src",
        question=question or f"Question number {index} about {topic}?",
        answer=answer or f"answer {index}",
        topic=topic,
    )


@pytest.mark.parametrize(
    ("total", "expected"),
    [(10, [8, 1, 1]), (7, [5, 1, 1]), (3, [3, 0, 0]), (0, [0, 0, 0]), (25, [20, 3, 2]), (101, [81, 10, 10])],
)
def test_allocate_largest_remainder(total, expected):
    assert allocate(total, (0.8, 0.1, 0.1)) == expected
    assert sum(allocate(total, (0.8, 0.1, 0.1))) == total


def test_each_topic_split_matches_fractions():
    sizes = {"energy": 50, "momentum": 30, "kinematics": 7, "other": 101}
    records = [record(index, topic) for topic, size in sizes.items() for index in range(size)]
    splits = stratified_split(records, (0.8, 0.1, 0.1), seed=3)
    for topic, size in sizes.items():
        counts = [sum(item.topic == topic for item in splits[name]) for name in SPLITS]
        assert counts == allocate(size, (0.8, 0.1, 0.1)), topic


def test_same_question_stays_in_one_split():
    repeated = "What is the unit of power?"
    records = [record(index) for index in range(40)]
    records += [record(100 + index, question=repeated, answer=f"watt {index}") for index in range(6)]
    records += [record(200, question="what is the UNIT of power", answer="the watt")]
    splits = stratified_split(records, (0.8, 0.1, 0.1), seed=11)
    holding = [name for name in SPLITS if any("unit of power" in item.question.lower() for item in splits[name])]
    assert len(holding) == 1
    assert sum("unit of power" in item.question.lower() for item in splits[holding[0]]) == 7
    cleaned, removed = remove_leakage(splits)
    assert removed == []
    assert cleaned == splits


def test_leakage_check_removes_offenders():
    shared = record(1, question="What is the unit of force?")
    splits = {
        "train": [shared, record(2)],
        "validation": [record(3, question="What is the unit of force ?"), record(4)],
        "test": [record(5, question="WHAT IS THE UNIT OF FORCE"), record(6)],
    }
    cleaned, removed = remove_leakage(splits)
    assert [item.id for item in removed] == ["src-train-3", "src-train-1"]
    assert [item.id for item in cleaned["train"]] == ["src-train-2"]
    assert [item.id for item in cleaned["validation"]] == ["src-train-4"]
    assert len(cleaned["test"]) == 2


def test_validation_question_removed_from_train():
    splits = {
        "train": [record(1, question="Q one?"), record(2)],
        "validation": [record(3, question="q ONE")],
        "test": [record(4)],
    }
    cleaned, removed = remove_leakage(splits)
    assert [item.id for item in removed] == ["src-train-1"]
    assert len(cleaned["validation"]) == 1


def test_split_is_deterministic_per_seed():
    records = [record(index, topic) for topic in ("energy", "momentum") for index in range(60)]
    first = stratified_split(records, (0.8, 0.1, 0.1), seed=5)
    again = stratified_split(list(reversed(records)), (0.8, 0.1, 0.1), seed=5)
    other = stratified_split(records, (0.8, 0.1, 0.1), seed=6)
    assert first == again
    assert {item.id for item in first["test"]} != {item.id for item in other["test"]}


def test_duplicates_removed_across_sources_in_order():
    first = Record(id="a-1", source="a", question="What is the unit of energy?", answer="Joule")
    same = Record(id="b-1", source="b", question="what is the unit of energy", answer="joule.")
    other_answer = Record(id="b-2", source="b", question="What is the unit of energy?", answer="calorie")
    kept, removed = remove_duplicates({"a": [first], "b": [same, other_answer]})
    assert kept == {"a": [first], "b": [other_answer]}
    assert removed == Counter({"b": 1})


def test_repeated_ids_get_suffixes():
    records = [record(1), record(1), record(2), record(1)]
    unique, renamed = make_ids_unique(records)
    assert [item.id for item in unique] == ["src-train-1", "src-train-1-2", "src-train-2", "src-train-1-3"]
    assert renamed == 2


def test_subsample_is_seeded_and_keeps_order():
    records = [record(index) for index in range(50)]
    chosen = subsample(records, 10, seed=1, label="src")
    assert len(chosen) == 10
    assert chosen == subsample(records, 10, seed=1, label="src")
    assert chosen != subsample(records, 10, seed=2, label="src")
    positions = [int(item.id.split("-")[-1]) for item in chosen]
    assert positions == sorted(positions)
    assert subsample(records, None, seed=1, label="src") == records
