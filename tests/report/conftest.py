"""A real tiny run for report tests: hand-made records, a short training run, evaluation, an audit.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from physlora.config import load_config
from physlora.data.records import Record, write_jsonl

ANSWERS = ["newton", "joule", "watt", "the speed of light", "kinetic energy", "a longitudinal wave"]
TOPICS = ["mechanics", "energy", "waves_optics"]
SPLIT_SIZES = {"train": 24, "validation": 6, "test": 9}
# 24 training records in micro-batches of 4 with accumulation 2 give 3 steps per epoch, so 5 steps
# end inside epoch 2 and leave a partial epoch record.
MAX_STEPS = 5


def make_split(split: str, count: int) -> list[Record]:
    records = []
    for index in range(count):
        answer = ANSWERS[index % len(ANSWERS)]
        choices = [answer, "volt", "ohm"] if index % 2 else []
        if index % 4 == 3:
            choices = ["volt", "ohm", answer]
        records.append(Record(
            id=f"hand-{split}-{index}", source="arc" if choices else "sciq",
            question=f"Which unit or quantity is meant in case {index}?", answer=answer, choices=choices,
            answer_index=choices.index(answer) if choices else None, topic=TOPICS[index % len(TOPICS)],
            original_split=split, target=answer,
        ))
    return records


def write_audit(data_dir: Path, splits: dict[str, list[Record]]) -> None:
    """An audit.json with the keys `physlora data build` writes, counted from the hand-made splits."""
    topic_by_split = {topic: {name: sum(1 for r in records if r.topic == topic) for name, records in splits.items()}
                      for topic in TOPICS}
    source_by_split = {source: {name: sum(1 for r in records if r.source == source) for name, records in splits.items()}
                       for source in ("sciq", "arc")}
    kept = {source: sum(row.values()) for source, row in source_by_split.items()}
    audit = {
        "seed": 42,
        "splits": {name: len(records) for name, records in splits.items()},
        "sources": {source: {"read": kept[source] + 7, "rejected": 1, "filtered_non_physics": 4,
                             "duplicates_removed": 2, "subsampled_away": 0, "leakage_removed": 0, "kept": kept[source]}
                    for source in kept},
        "topics": {topic: sum(row.values()) for topic, row in topic_by_split.items()},
        "topic_by_split": topic_by_split,
        "source_by_split": source_by_split,
        "duplicates": {"removed": 4, "by_source": {"sciq": 2, "arc": 2}, "ids_renamed": 0},
        "leakage": {"found": 0, "removed": 0, "by_original_split": {}},
        "tokens": {"measured": True, "truncated": {"prompt": {"train": 0, "validation": 0, "test": 0},
                                                   "target": {"train": 1, "validation": 0, "test": 0}}},
        "checks": {"counts_reconcile": True},
    }
    (data_dir / "audit.json").write_text(json.dumps(audit, indent=2), encoding="utf-8")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, t5_tokenizer_path) -> Path:
    """A run folder made by the real trainer and evaluator: train_run(max_steps=5), then evaluate_run."""
    from physlora.eval.runner import evaluate_run
    from physlora.train.trainer import train_run

    run_dir = tmp_path_factory.mktemp("report") / "run"
    splits = {name: make_split(name, count) for name, count in SPLIT_SIZES.items()}
    for name, records in splits.items():
        write_jsonl(records, run_dir / "data" / f"{name}.jsonl")
    write_audit(run_dir / "data", splits)
    config = load_config(preset="tiny", overrides=[f"output.dir={run_dir}", "training.learning_rate=0.01"])
    train_run(config, max_steps=MAX_STEPS)
    evaluate_run(run_dir)
    return run_dir


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of the trained run that a test may change."""
    target = tmp_path / "run"
    shutil.copytree(trained_run, target)
    return target
