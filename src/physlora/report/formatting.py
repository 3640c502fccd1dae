"""Number formats of the report. Each function returns "n/a" for a missing value (None)."""

from __future__ import annotations

MISSING = "n/a"


def loss(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"


def signed(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:+.{digits}f}"


def percent(fraction: float | None) -> str:
    """Format a fraction (0.45) as a percentage with one decimal ("45.0%")."""
    return MISSING if fraction is None else f"{100 * fraction:.1f}%"


def relative_change(change: float | None, reference: float | None) -> str:
    """Format `change` relative to `reference` as a signed percentage ("-2.8%")."""
    if change is None or not reference:
        return MISSING
    return f"{100 * change / reference:+.1f}%"


def points(fraction: float | None) -> str:
    """Format a difference of two fractions in percentage points ("+5.0 pp")."""
    return MISSING if fraction is None else f"{100 * fraction:+.1f} pp"


def interval(estimate: dict | None, as_points: bool = False) -> str:
    """Format a bootstrap estimate {"value", "low", "high"} of a fraction as "45.0% [30.0, 60.0]"."""
    if not estimate:
        return MISSING
    value = points(estimate["value"]) if as_points else percent(estimate["value"])
    return f"{value} [{100 * estimate['low']:.1f}, {100 * estimate['high']:.1f}]"


def integer(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def mebibytes(value: float | None) -> str:
    return MISSING if value is None else f"{value / 2**20:.1f} MiB"


def seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f} s"


def plain(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"
