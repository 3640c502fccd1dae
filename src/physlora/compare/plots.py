"""Comparison plots: validation loss per epoch, accuracy against trainable parameters, memory and time."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

# physlora.report.plots selects matplotlib's file-only Agg backend when imported.
from physlora.report.plots import PLOTS_DIR, save_figure


def _measured(rows: list[dict]) -> list[dict]:
    return [row for row in rows if "trainable_params" in row]


def validation_loss(rows: list[dict], folder: Path) -> str | None:
    measured = _measured(rows)
    if not measured:
        return None
    figure, axes = plt.subplots(figsize=(7, 4))
    for row in measured:
        points = [(epoch, loss) for epoch, loss in row["val_loss_by_epoch"] if loss is not None]
        axes.plot([epoch for epoch, _ in points], [loss for _, loss in points], marker="o", label=row["method"])
    axes.set_xlabel("epoch (0: before training)")
    axes.set_ylabel("validation loss (nats per token)")
    axes.legend()
    return save_figure(figure, folder, "validation_loss.png")


def accuracy_vs_parameters(rows: list[dict], folder: Path) -> str | None:
    measured = [row for row in _measured(rows) if (row.get("mc_accuracy") or {}).get("value") is not None]
    if not measured:
        return None
    figure, axes = plt.subplots(figsize=(7, 4))
    for row in measured:
        accuracy = row["mc_accuracy"]
        errors = [[accuracy["value"] - accuracy["low"]], [accuracy["high"] - accuracy["value"]]]
        axes.errorbar([row["trainable_params"]], [accuracy["value"]], yerr=errors, fmt="o", capsize=3,
                      label=row["method"])
    axes.set_xscale("log")
    axes.set_xlabel("trainable parameters (log scale)")
    axes.set_ylabel("test MC accuracy")
    axes.legend()
    return save_figure(figure, folder, "accuracy_vs_parameters.png")


def memory_and_time(rows: list[dict], folder: Path) -> str | None:
    measured = _measured(rows)
    if not measured:
        return None
    names = [row["method"] for row in measured]
    memory = [(row["peak_memory_bytes"] or 0) / 1e6 for row in measured]
    times = [row["epoch_time_s"] or 0 for row in measured]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.bar(names, memory)
    left.set_ylabel("peak memory (MB)")
    right.bar(names, times)
    right.set_ylabel("wall time per epoch (s)")
    for axes in (left, right):
        axes.tick_params(axis="x", rotation=45)
    return save_figure(figure, folder, "memory_and_time.png")


def write_plots(rows: list[dict], out_dir: Path) -> list[str]:
    """Write the comparison plots into out_dir/plots and return the names of those written."""
    folder = out_dir / PLOTS_DIR
    written = [plot(rows, folder) for plot in (validation_loss, accuracy_vs_parameters, memory_and_time)]
    return [name for name in written if name is not None]
