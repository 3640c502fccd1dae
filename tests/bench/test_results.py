"""Rates, ratios and target checks on hand-made numbers, and argument checks of the training harness."""

from __future__ import annotations

import pytest

from physlora.bench import results
from physlora.bench.train import _lora_vs_full, run_train_benchmark
from physlora.config import load_config
from physlora.errors import ConfigError


def test_ratio_and_missing_values():
    assert results.ratio(30.0, 2.5) == 12.0
    assert results.ratio(None, 2.0) is None
    assert results.ratio(1.0, None) is None
    assert results.ratio(1.0, 0) is None


def test_relative_difference():
    assert results.relative_difference(10.2, 10.0) == pytest.approx(0.02)
    assert results.relative_difference(9.8, 10.0) == pytest.approx(0.02)
    assert results.relative_difference(1.0, 0.0) is None


def test_add_rates():
    runner = results.add_rates({"examples": 64, "supervised_tokens": 400, "input_tokens": 2000, "train_time_s": 8.0})
    assert runner["examples_per_s"] == 8.0
    assert runner["supervised_tokens_per_s"] == 50.0
    assert runner["input_tokens_per_s"] == 250.0
    assert results.add_rates({"examples": 64, "train_time_s": 0.0})["examples_per_s"] is None


def test_add_rates_median_step():
    runner = results.add_rates({"examples": 24, "steps": 3, "train_time_s": 9.0, "step_times_s": [1.0, 6.0, 2.0]})
    assert runner["median_step_time_s"] == 2.0
    assert runner["examples_per_s_median_step"] == 4.0  # 8 examples per step in 2 s
    assert runner["examples_per_s"] == pytest.approx(24 / 9)
    assert results.add_rates({"examples": 24, "steps": 3, "train_time_s": 9.0})["median_step_time_s"] is None


def test_compare_physlora_with_baseline():
    physlora = {"examples_per_s": 24.0, "examples_per_s_median_step": 30.0, "supervised_tokens_per_s": 300.0,
                "train_time_s": 2.0, "wall_time_s": 10.0, "peak_memory_bytes": 1_000, "last_step_loss": 2.0,
                "heldout_loss": 3.03}
    baseline = {"examples_per_s": 2.0, "examples_per_s_median_step": 2.0, "supervised_tokens_per_s": 25.0,
                "train_time_s": 24.0, "wall_time_s": 40.0, "peak_memory_bytes": 4_000, "last_step_loss": 8.0,
                "heldout_loss": 3.0}
    ratios = results.compare(physlora, baseline)
    assert ratios["examples_per_s"] == 12.0
    assert ratios["examples_per_s_median_step"] == 15.0
    assert ratios["supervised_tokens_per_s"] == 12.0
    assert ratios["train_time_s"] == pytest.approx(1 / 12)
    assert ratios["wall_time_s"] == 0.25
    assert ratios["peak_memory_bytes"] == 0.25
    assert ratios["last_step_loss"] == 0.25
    assert ratios["heldout_loss"] == pytest.approx(1.01)
    assert ratios["heldout_loss_relative_difference"] == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("target", "value", "met"),
    [
        (results.SEED_LIKE_SPEEDUP, 12.0, True),
        (results.SEED_LIKE_SPEEDUP, 11.9, False),
        (results.SEED_LIKE_LOSS, 0.02, True),
        (results.SEED_LIKE_LOSS, 0.021, False),
        (results.LORA_MEMORY, 0.39, True),
        (results.BATCHED_SPEEDUP, None, None),
    ],
)
def test_target_check(target, value, met):
    checked = target.check(value)
    assert checked["met"] is met
    assert checked["value"] == value
    assert checked["target"] == target.goal


def test_train_targets_follow_runners():
    result = {
        "ratios": {
            "physlora_vs_seed_like": {"examples_per_s": 13.0, "heldout_loss_relative_difference": 0.001},
            "physlora_packed_vs_hf_best_practice": {"examples_per_s": 1.4},
        },
        "runners": {"physlora": {"mfu_bf16": 0.25}, "physlora_packed": {"mfu_bf16": 0.55}},
        "lora_vs_full": {"peak_memory_ratio": 0.3, "physlora_peak_memory_ratio": 0.45},
    }
    checked = {(target["name"], target.get("runner")): target["met"] for target in results.train_targets(result)}
    assert checked == {
        ("examples/s, physlora / seed-like baseline", "physlora"): True,
        ("held-out loss, relative difference of physlora from seed-like", "physlora"): True,
        ("physlora MFU, fraction of the measured bf16 matmul peak", "physlora"): False,
        ("examples/s, physlora_packed / HF best-practice baseline", "physlora_packed"): False,
        ("physlora_packed MFU, fraction of the measured bf16 matmul peak", "physlora_packed"): True,
        ("peak memory, LoRA / full fine-tuning (hf_best_practice runners, same model and batch)",
         "hf_best_practice"): True,
        ("peak memory, LoRA / full fine-tuning (physlora runners, same model and batch)", "physlora"): False,
    }


def test_targets_of_other_models_not_judged():
    result = {
        "settings": {"model": "tiny-t5"},
        "ratios": {"physlora_vs_seed_like": {"examples_per_s": 13.0, "heldout_loss_relative_difference": 0.5},
                   "physlora_vs_hf_best_practice": {"examples_per_s": 1.1}},
        "runners": {"physlora": {"mfu_bf16": 0.25}},
    }
    met = {target["name"]: target["met"] for target in results.train_targets(result)}
    assert met["examples/s, physlora / seed-like baseline"] is None
    assert met["examples/s, physlora / HF best-practice baseline"] is None
    assert met["physlora MFU, fraction of the measured bf16 matmul peak"] is False  # set for any model
    result["settings"]["model"] = "google/flan-t5-base"
    met = {target["name"]: target["met"] for target in results.train_targets(result)}
    assert met["examples/s, physlora / seed-like baseline"] is True
    assert met["held-out loss, relative difference of physlora from seed-like"] is False


def test_lora_vs_full_memory_ratio():
    measured = {
        "physlora": {"peak_memory_bytes": 600},
        "physlora_full": {"peak_memory_bytes": 2_400},
        "hf_best_practice": {"peak_memory_bytes": 800},
        "hf_best_practice_full": {"peak_memory_bytes": 2_000},
    }
    summary = _lora_vs_full(measured)
    assert summary["peak_memory_ratio"] == 0.4
    assert summary["physlora_peak_memory_ratio"] == 0.25
    assert summary["full_peak_memory_bytes"] == 2_000
    assert summary["physlora_full_peak_memory_bytes"] == 2_400


def test_lora_vs_full_without_lora_runner():
    summary = _lora_vs_full({"hf_best_practice_full": {"peak_memory_bytes": 2_000}})
    assert summary["peak_memory_ratio"] is None
    assert summary["physlora_peak_memory_ratio"] is None


def test_train_bench_rejects_used_work_dir(tmp_path):
    (tmp_path / "leftover.txt").write_text("from an earlier run", encoding="utf-8")
    with pytest.raises(ConfigError, match="not empty"):
        run_train_benchmark(load_config(preset="tiny"), tmp_path / "out.json", ["test"], work_dir=tmp_path)
