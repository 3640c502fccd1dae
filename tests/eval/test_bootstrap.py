"""Bootstrap intervals: determinism per seed, coverage of simple cases, pairing of differences."""

from __future__ import annotations

import numpy as np
import pytest

from physlora.eval.bootstrap import bootstrap_means, mean_interval, paired_intervals

VALUES = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]


def test_same_seed_same_interval():
    assert mean_interval(VALUES, 500, 0.95, seed=7) == mean_interval(VALUES, 500, 0.95, seed=7)


def test_other_seed_other_resamples():
    first = bootstrap_means(np.array(VALUES), 500, seed=7)
    second = bootstrap_means(np.array(VALUES), 500, seed=8)
    assert not np.array_equal(first, second)


def test_interval_brackets_mean():
    estimate = mean_interval(VALUES, 500, 0.95, seed=1)
    assert estimate["value"] == pytest.approx(np.mean(VALUES))
    assert estimate["low"] < estimate["value"] < estimate["high"]


def test_interval_width_matches_normal_approximation():
    # 100 items, half of them 1: standard error 0.05, so a 95% interval is about 0.5 +- 0.098.
    values = [0.0, 1.0] * 50
    estimate = mean_interval(values, 4000, 0.95, seed=3)
    assert 0.38 < estimate["low"] < 0.42
    assert 0.58 < estimate["high"] < 0.62


def test_higher_confidence_gives_wider_interval():
    narrow = mean_interval(VALUES, 1000, 0.80, seed=2)
    wide = mean_interval(VALUES, 1000, 0.99, seed=2)
    assert wide["high"] - wide["low"] > narrow["high"] - narrow["low"]


def test_constant_values_give_point_interval():
    assert mean_interval([0.25] * 9, 200, 0.95, seed=0) == {"value": 0.25, "low": 0.25, "high": 0.25}


def test_paired_difference_of_shifted_scores_is_exact():
    # adapted = base + 0.1 on every item: each resample's difference is exactly 0.1 only if both
    # models use the same resampled items.
    base = np.linspace(0.0, 0.8, 20)
    result = paired_intervals(base, base + 0.1, 500, 0.95, seed=4)
    assert result["difference"]["low"] == pytest.approx(0.1)
    assert result["difference"]["high"] == pytest.approx(0.1)
    assert result["base"]["high"] - result["base"]["low"] > 0.2


def test_paired_difference_with_one_sided_changes():
    # The adapted model fixes 6 of 20 items and breaks none, so the interval lies above 0.
    base = np.array([1.0] * 8 + [0.0] * 12)
    adapted = base.copy()
    adapted[8:14] = 1.0
    result = paired_intervals(base, adapted, 1000, 0.95, seed=5)
    assert result["difference"]["value"] == pytest.approx(0.3)
    assert result["difference"]["low"] > 0.0


def test_paired_intervals_deterministic_per_seed():
    base, adapted = VALUES, VALUES[::-1]
    assert paired_intervals(base, adapted, 300, 0.95, 11) == paired_intervals(base, adapted, 300, 0.95, 11)
    assert paired_intervals(base, adapted, 300, 0.95, 11) != paired_intervals(base, adapted, 300, 0.95, 12)


def test_paired_intervals_reject_unequal_lengths():
    with pytest.raises(ValueError, match="equal shapes"):
        paired_intervals([1.0, 0.0], [1.0], 100, 0.95, 0)


def test_bootstrap_rejects_empty_input():
    with pytest.raises(ValueError, match="empty"):
        bootstrap_means(np.array([]), 100, 0)


def test_bootstrap_shapes():
    assert bootstrap_means(np.array(VALUES), 300, 0).shape == (300,)
    assert bootstrap_means(np.ones((5, 2)), 300, 0).shape == (300, 2)
