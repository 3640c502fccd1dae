"""`physlora bench train --include-full`: both full fine-tuning runners, and the LoRA / full memory ratios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from physlora.cli import app


@pytest.mark.slow
def test_include_full_adds_both_full_runners(bench_source_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(bench_source_dir))
    out = tmp_path / "train.json"
    outcome = CliRunner().invoke(app, ["bench", "train", "--preset", "tiny", "--steps", "1", "--runners", "physlora",
                                       "--include-full", "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(out.read_text(encoding="utf-8"))

    runners = result["runners"]
    assert set(runners) == {"physlora", "physlora_full", "hf_best_practice_full"}
    assert runners["physlora_full"]["fine_tuning"] == "full"
    assert runners["physlora_full"]["params"]["trainable"] == runners["physlora_full"]["params"]["total"]
    assert runners["physlora"]["params"]["trainable"] < runners["physlora"]["params"]["total"]
    memory = result["lora_vs_full"]
    assert memory["physlora_peak_memory_ratio"] == pytest.approx(
        runners["physlora"]["peak_memory_bytes"] / runners["physlora_full"]["peak_memory_bytes"]
    )
    assert memory["peak_memory_ratio"] is None  # no hf_best_practice LoRA runner in this run
    memory_targets = [target for target in result["targets"] if target["name"].startswith("peak memory")]
    assert [target["runner"] for target in memory_targets] == ["physlora"]
