"""`physlora compare`: rows for every method, ratios against full fine-tuning, and the written files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from compare_records import SHORT, WIDE_T5
from typer.testing import CliRunner

from physlora.cli import app
from physlora.compare.runner import parse_methods, run_comparison
from physlora.compare.tables import RATIOS, _ratio_phrase, add_ratios
from physlora.errors import ConfigError

ROW_FIELDS = {
    "method", "status", "reason", "run_dir", "steps", "learning_rate", "trainable_params", "total_params",
    "trainable_pct", "artifact_bytes", "epoch_time_s", "train_time_s", "input_tokens_per_s",
    "supervised_tokens_per_s", "peak_memory_bytes", "peak_memory_kind", "val_loss_by_epoch", "final_val_loss",
    "eval_items", "mc_accuracy", "exact_match", "ratios_vs_full",
}


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, t5_tokenizer_path, compare_data) -> tuple[dict, Path]:
    from physlora.config import load_config

    out = tmp_path_factory.mktemp("comparison")
    config = load_config(preset="tiny", overrides=[f"output.data_dir={compare_data}", *SHORT, *WIDE_T5,
                                                   "lora.ia3_target_modules=[nonexistent]"])
    methods = ["lora", "full", "dora", "ia3", "prefix", "adapter"]
    return run_comparison(config, methods, out, max_steps=2, isolate=False), out


def test_comparison_rows_have_every_field(comparison):
    document, _ = comparison
    rows = {row["method"]: row for row in document["methods"]}

    assert list(rows) == ["lora", "full", "dora", "ia3", "prefix", "adapter"]
    for method in ("lora", "full", "dora", "prefix"):
        assert rows[method]["status"] == "ok", rows[method]["reason"]
        assert ROW_FIELDS <= set(rows[method]), ROW_FIELDS - set(rows[method])
        assert rows[method]["steps"] == 2
        assert rows[method]["eval_items"] == 4
        assert rows[method]["mc_accuracy"]["n"] == 4
        assert rows[method]["mc_accuracy"]["low"] <= rows[method]["mc_accuracy"]["value"]
        assert rows[method]["artifact_bytes"] > 0
        assert rows[method]["val_loss_by_epoch"][0][0] == 0


def test_comparison_rows_say_why(comparison):
    document, _ = comparison
    rows = {row["method"]: row for row in document["methods"]}

    assert rows["adapter"]["status"] == "unavailable"
    assert "transformers" in rows["adapter"]["reason"]
    assert rows["ia3"]["status"] == "failed"
    assert "nonexistent" in rows["ia3"]["reason"]
    assert rows["ia3"]["reason"].startswith("train failed")


def test_comparison_ratios_computed(comparison):
    document, _ = comparison
    rows = {row["method"]: row for row in document["methods"]}
    full, lora = rows["full"], rows["lora"]

    assert full["trainable_params"] == full["total_params"]
    assert lora["ratios_vs_full"]["trainable_params"] == full["trainable_params"] / lora["trainable_params"]
    assert lora["ratios_vs_full"]["artifact_size"] == full["artifact_bytes"] / lora["artifact_bytes"]
    assert lora["ratios_vs_full"]["peak_memory"] == full["peak_memory_bytes"] / lora["peak_memory_bytes"]
    assert lora["ratios_vs_full"]["trainable_params"] > 10
    assert full["ratios_vs_full"]["trainable_params"] == 1.0
    assert rows["adapter"]["ratios_vs_full"] is None


def test_comparison_files_written(comparison):
    document, out = comparison
    stored = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    markdown = (out / "comparison.md").read_text(encoding="utf-8")

    assert stored["methods"] == document["methods"]
    assert stored["settings"]["max_steps"] == 2
    assert set(stored["plots"]) == {"plots/validation_loss.png", "plots/accuracy_vs_parameters.png",
                                    "plots/memory_and_time.png"}
    for name in stored["plots"]:
        assert (out / name).stat().st_size > 0
    for method in ("lora", "full", "dora", "ia3", "prefix", "adapter"):
        assert f"| {method} |" in markdown
    ratio = document["methods"][0]["ratios_vs_full"]["trainable_params"]
    assert f"lora: {ratio:.1f}x fewer trainable parameters" in markdown


def test_ratios_without_full():
    rows = [{"method": "lora", "trainable_params": 10, "artifact_bytes": 5, "peak_memory_bytes": 7, "epoch_time_s": 2.0}]

    assert add_ratios(rows) == "full fine-tuning was not run"
    assert rows[0]["ratios_vs_full"] is None


def test_ratios_against_full_values():
    full = {"method": "full", "trainable_params": 1000, "artifact_bytes": 400, "peak_memory_bytes": 900,
            "epoch_time_s": 3.0}
    lora = {"method": "lora", "trainable_params": 10, "artifact_bytes": 4, "peak_memory_bytes": 300,
            "epoch_time_s": None}

    assert add_ratios([full, lora]) is None
    assert lora["ratios_vs_full"] == {"trainable_params": 100.0, "artifact_size": 100.0, "peak_memory": 3.0,
                                      "epoch_time": None}
    assert set(RATIOS) == set(full["ratios_vs_full"])


def test_qlora_row_without_bitsandbytes(monkeypatch, tmp_path, method_config):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "bitsandbytes" else real_find_spec(name, *args))
    document = run_comparison(method_config("lora"), ["qlora"], tmp_path / "out", isolate=False)

    row = document["methods"][0]
    assert row["status"] == "unavailable"
    assert "bitsandbytes" in row["reason"]
    assert document["ratios_missing_reason"] == "full fine-tuning was not run"


@pytest.mark.parametrize("text", ["lora,bogus", "", "lora,lora"])
def test_parse_methods_rejects(text: str):
    with pytest.raises(ConfigError, match="--methods"):
        parse_methods(text)


def test_compare_cli_isolated(tmp_path, t5_tokenizer_path, compare_data):

    options = [f"--set={value}" for value in [f"output.data_dir={compare_data}", *SHORT, *WIDE_T5]]
    result = CliRunner().invoke(app, ["compare", "--preset", "tiny", *options, "--methods", "lora",
                                      "--max-steps", "1", "--max-items", "3", "--out", str(tmp_path / "cli")])

    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "cli" / "comparison.json").read_text(encoding="utf-8"))
    assert stored["settings"]["isolated_processes"] is True
    assert stored["methods"][0]["status"] == "ok", stored["methods"][0]["reason"]
    assert stored["methods"][0]["steps"] == 1
    assert stored["methods"][0]["eval_items"] == 3
    assert "| lora | ok |" in result.output


def test_ratio_phrase_never_reads_backwards():
    assert _ratio_phrase(2.0, "less peak memory", "more peak memory") == "2.0x less peak memory"
    assert _ratio_phrase(1 / 1.25, "less wall time per epoch", "more wall time per epoch") == (
        "1.2x more wall time per epoch"
    )
    assert _ratio_phrase(1.0, "smaller saved artifact", "larger saved artifact") == "1.0x smaller saved artifact"
