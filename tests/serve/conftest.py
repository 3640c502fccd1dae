"""Tiny run folders and a registry shared by the serving tests.

Two runs share one randomly initialised T5 base and contain different LoRA adapters (their B matrices are
drawn from different seeds), so every adapter, and the base model, gives its own answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from physlora.serve.registry import AdapterRegistry, AdapterSpec
from physlora.serve.tinyrun import build_tiny_run


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory, t5_tokenizer_path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-runs")
    return {
        "mechanics": build_tiny_run(root / "mechanics", adapter_seed=1),
        "general": build_tiny_run(root / "general", adapter_seed=2),
    }


@pytest.fixture(scope="session")
def registry(serve_runs) -> AdapterRegistry:
    """Both adapters loaded into one base model: models base, mechanics, general and auto."""
    return AdapterRegistry.load([AdapterSpec(name, run_dir) for name, run_dir in serve_runs.items()])
