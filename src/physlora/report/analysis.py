"""Quantities the report derives from stored values: epoch changes, overfitting, gradient norms, LoRA sizes."""

from __future__ import annotations

import statistics

import numpy as np

# Overfitting rule: the final validation loss exceeds the final training loss by more than this
# fraction of the training loss, and the validation loss rose over the final epoch.
OVERFITTING_GAP = 0.10


def _change(current: float | None, reference: float | None) -> float | None:
    if current is None or reference is None:
        return None
    return current - reference


def epoch_rows(epochs: list[dict]) -> list[dict]:
    """Epoch records with the validation and training loss change versus the previous epoch and epoch 0."""
    rows = []
    first_val = epochs[0].get("val_loss") if epochs else None
    for index, record in enumerate(epochs):
        previous = epochs[index - 1] if index else {}
        rows.append({
            **record,
            "previous_val_loss": previous.get("val_loss"),
            "val_change_previous": _change(record.get("val_loss"), previous.get("val_loss")) if index else None,
            "val_change_first": _change(record.get("val_loss"), first_val) if index else None,
            "previous_train_loss": previous.get("train_loss"),
            "train_change_previous": _change(record.get("train_loss"), previous.get("train_loss")),
        })
    return rows


def overfitting(epochs: list[dict]) -> dict:
    """Apply the overfitting rule to the last epoch that has both losses.

    Returns {"verdict": "overfitting" | "not overfitting" | "unknown", "gap": val - train, "gap_fraction":
    gap / train, "rising": whether val loss rose over that epoch, "epoch"}.
    """
    trained = [index for index, record in enumerate(epochs)
               if record.get("train_loss") is not None and record.get("val_loss") is not None]
    if not trained:
        return {"verdict": "unknown", "gap": None, "gap_fraction": None, "rising": None, "epoch": None}
    index = trained[-1]
    last = epochs[index]
    gap = last["val_loss"] - last["train_loss"]
    gap_fraction = gap / last["train_loss"] if last["train_loss"] else None
    previous_val = epochs[index - 1].get("val_loss") if index else None
    rising = previous_val is not None and last["val_loss"] > previous_val
    large = gap_fraction is not None and gap_fraction > OVERFITTING_GAP
    return {
        "verdict": "overfitting" if large and rising else "not overfitting",
        "gap": gap,
        "gap_fraction": gap_fraction,
        "rising": rising,
        "epoch": last.get("epoch"),
        "previous_val_loss": previous_val,
    }


def grad_norm_stats(steps: list[dict]) -> dict | None:
    """Mean, median, 95th percentile (linear interpolation) and max of logged gradient norms, and the
    fraction of logged steps whose norm was clipped. None without any finite norm."""
    norms = [record["grad_norm"] for record in steps if isinstance(record.get("grad_norm"), (int, float))]
    if not norms:
        return None
    flagged = [record for record in steps if "clipped" in record]
    clipped = sum(1 for record in flagged if record["clipped"])
    return {
        "n": len(norms),
        "mean": statistics.fmean(norms),
        "median": statistics.median(norms),
        "p95": float(np.percentile(norms, 95)),
        "max": max(norms),
        "clipped": clipped,
        "n_flagged": len(flagged),
        "clip_rate": clipped / len(flagged) if flagged else None,
        "non_finite": sum(1 for record in steps if "grad_norm" in record and record["grad_norm"] is None),
    }


# Share of clipped steps from which the report explains what clipping did to training.
CLIPPING_NOTE_RATE = 0.5


def clipping_note(stats: dict, threshold: float | None) -> str | None:
    """Return a sentence on clipping when it rescaled at least CLIPPING_NOTE_RATE of the logged steps, else None."""
    rate = stats.get("clip_rate")
    if rate is None or rate < CLIPPING_NOTE_RATE or not threshold:
        return None
    return (
        f"Clipping rescaled {stats['clipped']} of {stats['n_flagged']} logged steps ({100 * rate:.0f}%); the mean "
        f"norm before clipping was {stats['mean'] / threshold:.1f} times the threshold {threshold}. Each clipped "
        "step entered AdamW with norm equal to the threshold, so the clipped steps weighed alike in its moment "
        "estimates whatever their raw size. To see whether this limited training, compare the validation loss "
        "with a run at a higher training.max_grad_norm."
    )


def lora_groups(modules: list[dict]) -> list[dict]:
    """LoRA modules grouped by shape: each group {"in", "out", "r", "count", "params"}.

    A LoRA pair on a d_in -> d_out layer adds A (r x d_in) and B (d_out x r): r * (d_in + d_out) weights.
    """
    counts: dict[tuple[int, int, int], int] = {}
    for module in modules:
        key = (module["in_features"], module["out_features"], module["r"])
        counts[key] = counts.get(key, 0) + 1
    return [
        {"in": d_in, "out": d_out, "r": rank, "count": count, "params": count * rank * (d_in + d_out)}
        for (d_in, d_out, rank), count in sorted(counts.items())
    ]


def significant(difference: dict | None) -> bool | None:
    """Return True when a difference interval excludes 0, False when it includes 0, None without an interval."""
    if not difference:
        return None
    return difference["low"] > 0 or difference["high"] < 0


def step_epoch_ends(steps: list[dict]) -> list[int]:
    """Last logged step of each epoch, in epoch order (the epoch markers of the loss plot)."""
    ends: dict[int, int] = {}
    for record in steps:
        ends[record["epoch"]] = max(ends.get(record["epoch"], 0), record["step"])
    return [ends[epoch] for epoch in sorted(ends)]
