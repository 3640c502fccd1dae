"""The readers and a small build on the real SciQ, ARC and MMLU files; skipped when they are absent."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from physlora.config.loading import validate
from physlora.config.schema import SourceConfig
from physlora.data.build import build_dataset
from physlora.data.sources import SourceData, SourcePlan, read_source


def read(path: Path, **source: object) -> SourceData:
    return read_source(SourcePlan(0, SourceConfig(**source), path), seed=42)


@pytest.mark.parametrize(("source_type", "rows"), [("sciq", 13_679), ("arc", 7_787), ("mmlu", 557)])
def test_real_source_reads_without_rejections(shared_data_dir, source_type, rows):
    data = read(shared_data_dir / source_type, type=source_type)
    assert data.stats.read == rows
    assert dict(data.stats.rejected) == {}
    assert len(data.items) == rows


def test_real_sciq_train_rows(shared_data_dir):
    data = read(shared_data_dir / "sciq", type="sciq", splits=["train"])
    assert len(data.items) == 11_679
    assert sum(item.record.explanation == "" for item in data.items) == 1_198


def test_real_arc_challenge_train_numeric_labels(shared_data_dir):
    path = shared_data_dir / "arc" / "ARC-Challenge-Train.jsonl"
    data = read(path, type="arc")
    assert len(data.items) == 1_119
    records = {item.record.id.removeprefix("arc-train-"): item.record for item in data.items}
    numeric = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        labels = [choice["label"] for choice in row["question"]["choices"]]
        if not labels[0].isdigit():
            continue
        numeric += 1
        record = records[row["id"]]
        assert labels[record.answer_index] == row["answerKey"]
        assert record.choices[record.answer_index] == record.answer
    assert numeric == 23
    assert Counter(len(record.choices) for record in records.values()) == Counter({4: 1_117, 3: 1, 5: 1})


def test_real_mmlu_test_rows_per_subject(shared_data_dir):
    data = read(shared_data_dir / "mmlu", type="mmlu", splits=["test"])
    per_file = Counter(Path(item.location.file).name for item in data.items)
    assert per_file == {
        "high_school_physics_test.csv": 151,
        "college_physics_test.csv": 102,
        "conceptual_physics_test.csv": 235,
    }
    assert all("\r" not in item.record.question for item in data.items)


def test_real_small_build(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(shared_data_dir))
    sources = [
        {"type": "sciq", "path": "sciq", "max_items": 120},
        {"type": "arc", "path": "arc", "splits": ["train"], "max_items": 60},
        {"type": "mmlu", "path": "mmlu", "max_items": 60},
    ]
    audit = build_dataset(validate({"data": {"sources": sources}}), tmp_path / "out")
    assert audit["checks"]["counts_reconcile"] is True
    assert sum(audit["splits"].values()) == 240
    assert audit["leakage"]["found"] == 0
    for label in ("sciq", "arc"):
        assert audit["sources"][label]["filtered_non_physics"] > audit["sources"][label]["kept"]
    assert audit["sources"]["mmlu"]["filtered_non_physics"] == 0
