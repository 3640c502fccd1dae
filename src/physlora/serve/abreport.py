"""Summarise blind A/B judgements: win, tie and loss rates of the adapted model against the base model.

Intervals are Wilson score intervals for a binomial proportion, which treat every judgement as
independent. Several judgements of one item, or many of one rater, are correlated, so with few items
or raters the intervals are too narrow.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from statistics import NormalDist

from physlora.errors import DataError, RunFolderError
from physlora.io import atomic_path, write_json_atomic
from physlora.serve.abstore import RATING_COLUMNS, AbStore

FORMAT_VERSION = 1
AB_REPORT_FILE = "ab.json"


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> dict[str, float]:
    """Return the proportion successes/total with its Wilson score interval: {"value", "low", "high"}."""
    if total <= 0:
        raise ValueError("a proportion needs at least one trial")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / total
    denominator = 1 + z * z / total
    center = (p + z * z / (2 * total)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return {"value": p, "low": max(0.0, center - half_width), "high": min(1.0, center + half_width)}


def summarize_ratings(ratings: list[dict], confidence: float = 0.95) -> dict:
    """Count the adapted model's wins, ties and losses and their rates; raise DataError without ratings."""
    if not ratings:
        raise DataError("the A/B database contains no ratings yet; rate some items on the /ab page first")
    counts = Counter(row["preferred"] for row in ratings)
    wins, ties, losses = counts["adapted"], counts["tie"], counts["base"]
    total = len(ratings)
    decisive = wins + losses
    per_rater = {}
    for rater in sorted({row["rater"] for row in ratings}):
        rater_counts = Counter(row["preferred"] for row in ratings if row["rater"] == rater)
        per_rater[rater] = {"win": rater_counts["adapted"], "tie": rater_counts["tie"], "loss": rater_counts["base"]}
    return {
        "n_judgements": total,
        "n_items": len({row["item_id"] for row in ratings}),
        "n_raters": len(per_rater),
        "counts": {"win": wins, "tie": ties, "loss": losses},
        "rates": {
            "win": wilson_interval(wins, total, confidence),
            "tie": wilson_interval(ties, total, confidence),
            "loss": wilson_interval(losses, total, confidence),
        },
        # Share of the non-tied judgements that prefer the adapted model; None when every judgement is a tie.
        "win_rate_without_ties": wilson_interval(wins, decisive, confidence) if decisive else None,
        "interval": {"method": "wilson", "confidence": confidence},
        "per_rater": per_rater,
    }


def write_ab_report(db_path: Path, run_dir: Path | None = None, confidence: float = 0.95) -> tuple[Path, dict]:
    """Write RUN/ab.json from the ratings in `db_path`; return its path and content.

    `run_dir` defaults to the run folder the server recorded in the database.
    """
    store = AbStore.open_existing(db_path)
    meta = store.meta()
    if run_dir is None:
        if "run_dir" not in meta:
            raise RunFolderError(f"{db_path} does not record its run folder; pass --run RUN")
        run_dir = Path(meta["run_dir"])
    if not Path(run_dir).is_dir():
        raise RunFolderError(f"run folder {run_dir} not found; pass an existing folder with --run")
    report = {
        "format_version": FORMAT_VERSION,
        "db": str(Path(db_path).resolve()),
        "adapter": meta.get("adapter"),
        "compared": "adapted (win) against base (loss)",
        **summarize_ratings(store.ratings(), confidence),
    }
    path = Path(run_dir) / AB_REPORT_FILE
    write_json_atomic(path, report)
    return path, report


def export_ratings_csv(db_path: Path, out: Path) -> int:
    """Write every rating as one CSV row (header first); return the number of rows."""
    ratings = AbStore.open_existing(db_path).ratings()
    with atomic_path(out) as temp_path, open(temp_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RATING_COLUMNS)
        writer.writeheader()
        writer.writerows(ratings)
    return len(ratings)
