"""Shared fixtures: where the real data and the real T5 tokenizer are, and tiny run configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def _first_existing(*candidates: str | Path | None) -> Path | None:
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch():
    # Tests run beside other work on 2-core machines; one thread keeps timings steady and results
    # independent of the core count.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """Folder with the real SciQ, ARC and MMLU files; tests that need it skip when it is absent."""
    found = _first_existing(os.environ.get("PHYSLORA_DATA_DIR"), SHARED / "data")
    if found is None:
        pytest.skip("real data folder not found (set PHYSLORA_DATA_DIR)")
    return found


@pytest.fixture(scope="session")
def t5_tokenizer_path() -> Path:
    """Folder with the real T5 tokenizer (tokenizer.json), used with randomly initialised models."""
    found = _first_existing(os.environ.get("PHYSLORA_T5_TOKENIZER"), SHARED / "models" / "t5-tokenizer")
    if found is None:
        pytest.skip("T5 tokenizer folder not found (set PHYSLORA_T5_TOKENIZER)")
    os.environ["PHYSLORA_T5_TOKENIZER"] = str(found)
    return found
