"""Percentile bootstrap confidence intervals for per-item means and paired differences.

Items are resampled with replacement. A paired difference uses the same resampled indices for both
models, so the interval reflects the per-item correlation between base and adapted scores.
"""

from __future__ import annotations

import numpy as np

# Resamples drawn per numpy call, which bounds memory at about _CHUNK × n_items indices.
_CHUNK = 256


def bootstrap_means(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Means of `samples` resamples of `values` along axis 0.

    `values` has shape (n,) or (n, k); the result has shape (samples,) or (samples, k). Resample i
    uses the same item indices for every column, which is what makes paired differences paired.
    """
    values = np.asarray(values, dtype=np.float64)
    count = values.shape[0]
    if count == 0:
        raise ValueError("cannot bootstrap an empty set of items")
    generator = np.random.default_rng(seed)
    means = []
    for start in range(0, samples, _CHUNK):
        size = min(_CHUNK, samples - start)
        indices = generator.integers(0, count, size=(size, count))  # (size, n)
        means.append(values[indices].mean(axis=1))
    return np.concatenate(means, axis=0)


def _estimate(value: float, resampled: np.ndarray, confidence: float) -> dict[str, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [tail, 1.0 - tail])
    return {"value": float(value), "low": float(low), "high": float(high)}


def mean_interval(values, samples: int, confidence: float, seed: int) -> dict[str, float]:
    """Mean of `values` with its percentile bootstrap interval: {"value", "low", "high"}."""
    values = np.asarray(values, dtype=np.float64)
    return _estimate(values.mean(), bootstrap_means(values, samples, seed), confidence)


def paired_intervals(base, adapted, samples: int, confidence: float, seed: int) -> dict[str, dict[str, float]]:
    """Intervals for the base mean, the adapted mean and their difference (adapted minus base).

    All three come from one set of resampled item indices. Returns {"base", "adapted", "difference"},
    each {"value", "low", "high"}.
    """
    base = np.asarray(base, dtype=np.float64)
    adapted = np.asarray(adapted, dtype=np.float64)
    if base.shape != adapted.shape:
        raise ValueError(f"paired scores need equal shapes, got {base.shape} and {adapted.shape}")
    resampled = bootstrap_means(np.stack([base, adapted], axis=1), samples, seed)  # (samples, 2)
    return {
        "base": _estimate(base.mean(), resampled[:, 0], confidence),
        "adapted": _estimate(adapted.mean(), resampled[:, 1], confidence),
        "difference": _estimate(adapted.mean() - base.mean(), resampled[:, 1] - resampled[:, 0], confidence),
    }
