"""Read one method's run folder into a comparison row: parameters, size, time, memory, loss, accuracy."""

from __future__ import annotations

import json
from pathlib import Path

from physlora.train.metrics import METRICS_FILE

# eval.json metric -> row field. MC accuracy scores each choice by its summed log-probability.
ACCURACY_FIELDS = {"mc_accuracy_sum": "mc_accuracy", "exact_match": "exact_match"}


def folder_bytes(folder: Path) -> int:
    """Total size of the files under `folder` in bytes."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def epoch_records(run_dir: Path) -> list[dict]:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [record for record in records if record.get("type") == "epoch"]


def training_measures(run_dir: Path) -> dict:
    """Measures of a finished training run from summary.json, metrics.jsonl and the adapter folder."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    params = summary["params"]
    epochs = epoch_records(run_dir)
    trained_epochs = [record for record in epochs if record["epoch"] >= 1]
    # Epoch time includes that epoch's validation pass. A partial epoch (a step budget that ends
    # mid-epoch) counts too, so the time is per epoch run and not per full pass over the data.
    epoch_times = [record["time_s"] for record in trained_epochs]
    final_val = next((record["val_loss"] for record in reversed(epochs) if record.get("val_loss") is not None), None)
    return {
        "steps": summary["steps"],
        "learning_rate": summary["config"]["training"]["learning_rate"],
        "trainable_params": params["trainable"],
        "total_params": params["total"],
        "trainable_pct": params["trainable_pct"],
        "artifact_bytes": folder_bytes(run_dir / "adapter"),
        "epoch_time_s": sum(epoch_times) / len(epoch_times) if epoch_times else None,
        "partial_epoch": any(record.get("partial") for record in trained_epochs),
        "train_time_s": summary["throughput"]["train_time_s"],
        "input_tokens_per_s": summary["throughput"]["input_tokens_per_s"],
        "supervised_tokens_per_s": summary["throughput"]["supervised_tokens_per_s"],
        "peak_memory_bytes": summary["peak_memory_bytes"],
        "peak_memory_kind": summary["peak_memory_kind"],
        "precision": summary["precision"],
        "val_loss_by_epoch": [[record["epoch"], record.get("val_loss")] for record in epochs],
        "final_val_loss": final_val,
    }


def evaluation_measures(run_dir: Path) -> dict:
    """Test MC accuracy and exact match of the adapted model, with intervals, from eval.json."""
    result = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    overall = result["metrics"]["overall"]
    measures = {"eval_items": result["settings"]["n_items"], "confidence": result["settings"]["confidence"]}
    for metric, field in ACCURACY_FIELDS.items():
        entry = overall.get(metric) or {}
        adapted = entry.get("adapted")
        measures[field] = None if adapted is None else {**adapted, "n": entry["n"]}
        measures[f"base_{field}"] = entry.get("base")
    return measures
