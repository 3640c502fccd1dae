"""Fixtures of the data tests: a temporary data folder holding every source format, and config factories."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from source_files import (
    ARC_TRAIN,
    MMLU_DEV_ROWS,
    MMLU_OTHER_SUBJECT,
    MMLU_TEST_ROWS,
    PHYSICS_SCIENCEQA_LINES,
    SCIENCEQA_PROBLEMS,
    SCIQ_TEST,
    SCIQ_TRAIN,
    generated_physics_rows,
    write_bytes,
    write_json,
    write_jsonl_lines,
)

from physlora.config.loading import validate
from physlora.config.schema import RunConfig


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder with every source format; PHYSLORA_DATA_DIR is unset so configs choose the folder."""
    monkeypatch.delenv("PHYSLORA_DATA_DIR", raising=False)
    root = tmp_path / "data"
    write_json(root / "sciq" / "train.json", SCIQ_TRAIN)
    write_json(root / "sciq" / "test.json", SCIQ_TEST)
    write_jsonl_lines(root / "arc" / "ARC-Challenge-Train.jsonl", ARC_TRAIN)
    write_bytes(root / "mmlu" / "test" / "high_school_physics_test.csv", MMLU_TEST_ROWS)
    write_bytes(root / "mmlu" / "dev" / "college_physics_dev.csv", MMLU_DEV_ROWS)
    write_bytes(root / "mmlu" / "test" / "astronomy_test.csv", MMLU_OTHER_SUBJECT)
    write_json(root / "scienceqa" / "problems.json", SCIENCEQA_PROBLEMS)
    write_jsonl_lines(root / "physics-scienceqa" / "train.jsonl", PHYSICS_SCIENCEQA_LINES)
    write_jsonl_lines(root / "generated" / "train.jsonl", generated_physics_rows(80))
    return root


@pytest.fixture
def make_config(monkeypatch) -> Callable[..., RunConfig]:
    """Return a factory: make_config(data_root, sources, **data_keys) -> validated RunConfig.

    PHYSLORA_DATA_DIR is unset, because it would override the data_dir these configs choose.
    """
    monkeypatch.delenv("PHYSLORA_DATA_DIR", raising=False)

    def factory(root: Path | None, sources: list[dict[str, Any]], **data_keys: Any) -> RunConfig:
        data = {"sources": sources, **data_keys}
        if root is not None:
            data["data_dir"] = str(root)
        return validate({"data": data})

    return factory
