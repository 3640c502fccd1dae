"""Derived report quantities on hand-made records: overfitting rule, gradient norms, LoRA sizes, wording."""

from __future__ import annotations

import pytest

from physlora.report import formatting as fmt
from physlora.report.analysis import clipping_note, epoch_rows, grad_norm_stats, lora_groups, overfitting, significant
from physlora.report.evaluation import verdict


def epochs(*pairs):
    """Epoch records from (train_loss, val_loss) pairs; the first pair is epoch 0 (train loss None)."""
    return [{"type": "epoch", "epoch": index, "train_loss": train, "val_loss": val}
            for index, (train, val) in enumerate(pairs)]


def test_overfitting_large_gap_and_rising():
    result = overfitting(epochs((None, 3.0), (2.0, 2.5), (1.5, 2.6)))
    assert result["verdict"] == "overfitting"
    assert result["gap_fraction"] == pytest.approx((2.6 - 1.5) / 1.5)
    assert result["rising"] is True


def test_overfitting_large_gap_but_falling():
    assert overfitting(epochs((None, 3.0), (2.0, 2.8), (1.5, 2.7)))["verdict"] == "not overfitting"


def test_overfitting_rising_but_small_gap():
    # Validation rose, but 2.05 is only 2.5% above 2.0.
    assert overfitting(epochs((None, 3.0), (2.1, 2.0), (2.0, 2.05)))["verdict"] == "not overfitting"


def test_overfitting_compares_single_epoch_with_epoch_zero():
    assert overfitting(epochs((None, 2.0), (1.0, 2.2)))["verdict"] == "overfitting"


def test_overfitting_unknown_without_train_loss():
    assert overfitting(epochs((None, 3.0)))["verdict"] == "unknown"
    assert overfitting([])["verdict"] == "unknown"


def test_epoch_rows_changes():
    rows = epoch_rows(epochs((None, 4.0), (3.0, 3.5), (2.5, 3.2)))
    assert rows[0]["val_change_previous"] is None
    assert rows[1]["val_change_previous"] == pytest.approx(-0.5)
    assert rows[2]["val_change_previous"] == pytest.approx(-0.3)
    assert rows[2]["val_change_first"] == pytest.approx(-0.8)
    assert rows[2]["train_change_previous"] == pytest.approx(-0.5)
    assert rows[1]["train_change_previous"] is None


def test_grad_norm_stats_hand_made():
    steps = [{"type": "step", "step": index + 1, "grad_norm": norm, "clipped": norm > 3}
             for index, norm in enumerate([1.0, 2.0, 3.0, 4.0, 100.0])]
    stats = grad_norm_stats(steps)
    assert stats["mean"] == pytest.approx(22.0)
    assert stats["median"] == 3.0
    # Linear interpolation: position 0.95 * 4 = 3.8 between 4 and 100.
    assert stats["p95"] == pytest.approx(4.0 + 0.8 * 96.0)
    assert stats["max"] == 100.0
    assert stats["clip_rate"] == pytest.approx(2 / 5)


def test_grad_norm_stats_skip_non_finite():
    steps = [{"step": 1, "grad_norm": None, "clipped": False}, {"step": 2, "grad_norm": 0.5, "clipped": False}]
    stats = grad_norm_stats(steps)
    assert stats["n"] == 1
    assert stats["non_finite"] == 1
    assert grad_norm_stats([]) is None


def test_lora_groups_arithmetic():
    modules = [{"name": f"q{index}", "in_features": 64, "out_features": 64, "r": 8} for index in range(4)]
    modules += [{"name": "down", "in_features": 128, "out_features": 64, "r": 8}]
    groups = lora_groups(modules)
    assert groups == [
        {"in": 64, "out": 64, "r": 8, "count": 4, "params": 4 * 8 * (64 + 64)},
        {"in": 128, "out": 64, "r": 8, "count": 1, "params": 8 * (128 + 64)},
    ]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(-0.1, 0.2, "not significant"), (0.0, 0.2, "not significant"), (0.05, 0.2, "significant"),
     (-0.3, -0.1, "significant"), (0.0, 0.0, "not significant")],
)
def test_difference_verdict(low, high, expected):
    assert verdict({"value": (low + high) / 2, "low": low, "high": high}) == expected


def test_verdict_without_interval():
    assert verdict(None) == "n/a"
    assert significant(None) is None


def test_formats():
    assert fmt.percent(0.4567) == "45.7%"
    assert fmt.points(-0.05) == "-5.0 pp"
    assert fmt.interval({"value": 0.5, "low": 0.25, "high": 0.75}) == "50.0% [25.0, 75.0]"
    assert fmt.relative_change(-0.5, 4.0) == "-12.5%"
    assert fmt.mebibytes(3 * 2**20) == "3.0 MiB"
    assert fmt.integer(1234567) == "1,234,567"
    assert fmt.loss(None) == "n/a"


def test_clipping_note_only_when_most_steps_clipped():
    steps = [{"step": index + 1, "grad_norm": norm, "clipped": norm > 1.0} for index, norm in enumerate([6.0, 5.0, 7.0, 0.5])]
    note = clipping_note(grad_norm_stats(steps), 1.0)
    # 3 of 4 clipped; mean norm (6 + 5 + 7 + 0.5) / 4 = 4.625 times the threshold.
    assert note.startswith("Clipping rescaled 3 of 4 logged steps (75%); the mean norm before clipping was 4.6 times")
    rare = [{"step": 1, "grad_norm": 2.0, "clipped": True}, {"step": 2, "grad_norm": 0.5, "clipped": False},
            {"step": 3, "grad_norm": 0.4, "clipped": False}]
    assert clipping_note(grad_norm_stats(rare), 1.0) is None
    assert clipping_note(grad_norm_stats(steps), None) is None

