"""Fixtures of the comparison tests: a shared data folder and tiny T5 / Gemma 3 configs per method."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from compare_records import write_compare_data

from physlora.config import load_config
from physlora.config.schema import RunConfig

# A randomly initialised two-layer Gemma 3 with the T5 tokenizer (the tiny defaults of the gemma3 shape).
CAUSAL = ["model.name=tiny-gemma3", "model.architecture=gemma3", "model.family=causal", "model.config={}"]
# The tiny preset's T5 is 32 wide; bitsandbytes' CPU 4-bit kernel needs layers of at least 64 inputs.
WIDE_T5 = ["model.config={d_model: 64, d_ff: 128, d_kv: 16, num_heads: 4, num_layers: 2, num_decoder_layers: 2}"]
# Two optimizer steps of two micro-batches, and few evaluation items, keep each method under seconds.
SHORT = ["training.max_steps=2", "training.batch_size=4", "training.gradient_accumulation_steps=2",
         "evaluation.max_items=4", "evaluation.bootstrap_samples=20", "evaluation.max_new_tokens=4"]


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
