"""`physlora bench train` on the tiny preset: every runner trains and reports every field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from physlora.bench.results import RUNNER_FIELDS
from physlora.bench.runners import PACKED_MICRO_BATCH_TOKENS, RUNNERS
from physlora.cli import app

STEPS = 2


@pytest.fixture(scope="module")
def train_result(bench_source_dir: Path, t5_tokenizer_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-train") / "train.json"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("PHYSLORA_DATA_DIR", str(bench_source_dir))
        outcome = CliRunner().invoke(app, ["bench", "train", "--preset", "tiny", "--steps", str(STEPS), "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    assert "physlora / seed_like" in outcome.output
    return json.loads(out.read_text(encoding="utf-8"))


def test_train_bench_header_fields(train_result):
    assert train_result["benchmark"] == "train"
    assert train_result["command"]
    assert train_result["date"]
    for field in ("cpu_model", "cpu_cores", "torch_threads"):
        assert train_result["machine"][field], field
    assert train_result["machine"]["versions"]["torch"]
    assert len(train_result["load_average_start"]) == 3
    assert len(train_result["load_average_end"]) == 3


def test_train_bench_every_runner_field(train_result):
    assert set(train_result["runners"]) == set(RUNNERS)
    for name, runner in train_result["runners"].items():
        missing = [field for field in RUNNER_FIELDS if runner.get(field) is None]
        assert missing == [], f"{name} lacks {missing}"
        assert runner["steps"] == STEPS, name
        assert math.isfinite(runner["heldout_loss"]), name
        assert runner["train_time_s"] > 0, name
        assert runner["peak_memory_bytes"] > 0, name
        assert len(runner["step_times_s"]) == STEPS, name


def test_train_bench_runners_share_data(train_result):
    runners = train_result["runners"].values()
    # tiny preset: batch 4, accumulation 2, so 8 examples per step.
    assert {runner["examples"] for runner in runners} == {STEPS * 8}
    assert len({runner["supervised_tokens"] for runner in runners}) == 1
    assert len({runner["input_tokens"] for runner in runners}) == 1
    assert train_result["runners"]["seed_like"]["precision"] == "fp32"


@pytest.mark.parametrize("candidate", ["physlora", "physlora_packed"])
def test_train_bench_ratios_match_runners(train_result, candidate):
    physlora = train_result["runners"][candidate]
    for baseline in ("seed_like", "hf_best_practice"):
        ratios = train_result["ratios"][f"{candidate}_vs_{baseline}"]
        other = train_result["runners"][baseline]
        assert ratios["examples_per_s"] == pytest.approx(physlora["examples_per_s"] / other["examples_per_s"])
        assert ratios["peak_memory_bytes"] == pytest.approx(physlora["peak_memory_bytes"] / other["peak_memory_bytes"])
        assert ratios["heldout_loss"] == pytest.approx(physlora["heldout_loss"] / other["heldout_loss"])


def test_train_bench_flops_and_targets(train_result):
    physlora = train_result["runners"]["physlora"]
    assert physlora["flops_per_s"] == pytest.approx(physlora["estimated_flops"] / physlora["train_time_s"])
    peak = train_result["matmul_peak"]["bf16_flops_per_s"]
    assert physlora["mfu_bf16"] == pytest.approx(physlora["flops_per_s"] / peak)
    names = [target["name"] for target in train_result["targets"]]
    assert len(names) == 8  # 4 per physlora runner; no full fine-tuning runner, so no memory target
    assert "physlora_packed MFU, fraction of the measured bf16 matmul peak" in names


def test_train_bench_packed_runner_fills_micro_batches(train_result):
    default, packed = train_result["runners"]["physlora"], train_result["runners"]["physlora_packed"]
    assert default["micro_batch_tokens"] is None
    assert packed["micro_batch_tokens"] == PACKED_MICRO_BATCH_TOKENS
    # Same examples and tokens. The losses differ by dropout masks only, which tests/train/test_accumulation.py
    # switches off to show the packed step equals the unpacked one.
    assert packed["supervised_tokens"] == default["supervised_tokens"]
    assert packed["input_tokens"] == default["input_tokens"]
    assert math.isfinite(train_result["heldout_loss_initial"])
