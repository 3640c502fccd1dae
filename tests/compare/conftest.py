"""Fixtures of the comparison tests: a shared data folder and tiny T5 / Gemma 3 configs per method."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from compare_records import CAUSAL, SHORT, WIDE_T5, write_compare_data

from physlora.config import load_config
from physlora.config.schema import RunConfig


@pytest.fixture(scope="module")
def compare_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_compare_data(tmp_path_factory.mktemp("compare-data"))


@pytest.fixture
def method_config(tmp_path: Path, t5_tokenizer_path: Path, compare_data: Path) -> Callable[..., RunConfig]:
    """Build a tiny-preset config for one method, writing into tmp_path/<method>."""

    def make(method: str, *overrides: str, causal: bool = False) -> RunConfig:
        base = [f"output.dir={tmp_path / method}", f"output.data_dir={compare_data}", f"lora.method={method}"]
        shape = CAUSAL if causal else WIDE_T5
        return load_config(preset="tiny", overrides=base + SHORT + shape + list(overrides))

    return make
