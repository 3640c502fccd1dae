"""Fixtures of the training tests: a small data folder and config factories for tiny random models."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from physics_records import write_data

from physlora.config import load_config
from physlora.config.schema import RunConfig

# A randomly initialised two-layer Gemma 3 with the T5 tokenizer (the tiny defaults of the gemma3 shape).
CAUSAL = ["model.name=tiny-gemma3", "model.architecture=gemma3", "model.family=causal", "model.config={}"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """40 training and 10 validation records."""
    return write_data(tmp_path / "data")


@pytest.fixture
def make_config(tmp_path: Path, t5_tokenizer_path: Path, data_dir: Path) -> Callable[..., RunConfig]:
    """Build a tiny-preset config writing into tmp_path/<run>. `causal=True` switches to tiny Gemma 3."""

    def make(*overrides: str, run: str = "run", causal: bool = False) -> RunConfig:
        base = [f"output.dir={tmp_path / run}", f"output.data_dir={data_dir}"]
        return load_config(preset="tiny", overrides=base + (CAUSAL if causal else []) + list(overrides))

    return make
