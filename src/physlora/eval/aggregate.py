"""Per-item prediction rows into eval.json metrics: overall, per topic, per source, with intervals.

Every number here is computed from the rows that go into predictions.jsonl, so each one can be
recomputed from that file alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from physlora.eval.bootstrap import paired_intervals

MODELS = ("base", "adapted")

# Metric name -> (per-item field inside row["base"] / row["adapted"], True if only multiple-choice items count).
MEASURES: dict[str, tuple[str, bool]] = {
    "mc_accuracy_sum": ("correct_sum", True),
    "mc_accuracy_mean": ("correct_mean", True),
    "exact_match": ("exact_match", False),
    "token_f1": ("token_f1", False),
    "rouge_l": ("rouge_l", False),
}


@dataclass(frozen=True)
class BootstrapSettings:
    samples: int
    confidence: float
    seed: int


def is_choice_item(row: dict) -> bool:
    return bool(row["choices"]) and row["answer_index"] is not None


def measure(rows: list[dict], name: str, settings: BootstrapSettings) -> dict:
    """Measure one metric for base and adapted on the same items, with the paired difference.

    Returns {"n", "base", "adapted", "difference"}, where each of the last three is {"value", "low",
    "high"} as fractions (0..1 for accuracies), or None when no item qualifies.
    """
    field, choice_only = MEASURES[name]
    used = [row for row in rows if is_choice_item(row)] if choice_only else rows
    if not used:
        return {"n": 0, "base": None, "adapted": None, "difference": None}
    base = [float(row["base"][field]) for row in used]
    adapted = [float(row["adapted"][field]) for row in used]
    intervals = paired_intervals(base, adapted, settings.samples, settings.confidence, settings.seed)
    return {"n": len(used), **intervals}


def group_loss(rows: list[dict]) -> dict:
    """Token-weighted mean loss of base and adapted over the rows' loss targets, in nats per token."""
    n_tokens = sum(row["target_tokens"] for row in rows)
    result: dict = {"n_tokens": n_tokens}
    for model in MODELS:
        total = sum(row[model]["target_sum_logprob"] for row in rows)
        result[model] = -total / n_tokens if n_tokens else None
    if n_tokens:
        result["difference"] = result["adapted"] - result["base"]
    else:
        result["difference"] = None
    return result


def group_metrics(rows: list[dict], settings: BootstrapSettings) -> dict:
    metrics = {name: measure(rows, name, settings) for name in MEASURES}
    return {
        "n_items": len(rows),
        "n_choice_items": sum(1 for row in rows if is_choice_item(row)),
        "loss": group_loss(rows),
        **metrics,
    }


def metrics_by(rows: list[dict], key: str, settings: BootstrapSettings) -> dict[str, dict]:
    """Group metrics per distinct value of row[key], keys sorted."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return {value: group_metrics(groups[value], settings) for value in sorted(groups)}


def summarize(rows: list[dict], settings: BootstrapSettings) -> dict:
    return {
        "overall": group_metrics(rows, settings),
        "by_topic": metrics_by(rows, "topic", settings),
        "by_source": metrics_by(rows, "source", settings),
    }
