"""PNG plots of a run: loss per step, validation loss per epoch, gradient norm, accuracy per topic.

Each function returns the written file's name under plots/, or None when the data it needs is missing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # Files only: no display is needed or wanted.
import matplotlib.pyplot as plt  # noqa: E402

from physlora.io import atomic_path  # noqa: E402
from physlora.report.analysis import step_epoch_ends  # noqa: E402
from physlora.report.runfolder import RunFiles  # noqa: E402

PLOTS_DIR = "plots"
PLOT_FILES = ("loss_per_step.png", "validation_loss.png", "gradient_norm.png", "accuracy_by_topic.png")


def remove_old_plots(folder: Path) -> None:
    """Delete plots of an earlier report, so that a plot whose data is now missing does not linger."""
    for name in PLOT_FILES:
        (folder / name).unlink(missing_ok=True)


def save_figure(figure, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    with atomic_path(folder / name) as temp_path:
        figure.savefig(temp_path, dpi=100, format="png")
    plt.close(figure)
    return f"{PLOTS_DIR}/{name}"


def loss_per_step(files: RunFiles, folder: Path) -> str | None:
    steps = [record for record in files.step_records if record.get("loss") is not None]
    if not steps:
        return None
    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.plot([record["step"] for record in steps], [record["loss"] for record in steps], lw=1, label="train loss")
    for index, end in enumerate(step_epoch_ends(steps)):
        axes.axvline(end, color="grey", ls="--", lw=0.8, label="end of epoch" if index == 0 else None)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (nats per token)")
    axes.legend()
    return save_figure(figure, folder, "loss_per_step.png")


def validation_loss(files: RunFiles, folder: Path) -> str | None:
    epochs = [record for record in files.epochs if record.get("val_loss") is not None]
    if not epochs:
        return None
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot([record["epoch"] for record in epochs], [record["val_loss"] for record in epochs], "o-",
              label="validation loss")
    trained = [record for record in files.epochs if record.get("train_loss") is not None]
    if trained:
        axes.plot([record["epoch"] for record in trained], [record["train_loss"] for record in trained], "s--",
                  label="train loss (epoch mean)")
    axes.set_xlabel("epoch (0 = before training)")
    axes.set_ylabel("loss (nats per token)")
    axes.legend()
    return save_figure(figure, folder, "validation_loss.png")


def gradient_norm(files: RunFiles, folder: Path, max_norm: float | None) -> str | None:
    steps = [record for record in files.step_records if isinstance(record.get("grad_norm"), (int, float))]
    if not steps:
        return None
    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.plot([record["step"] for record in steps], [record["grad_norm"] for record in steps], lw=1,
              label="norm before clipping")
    if max_norm is not None:
        axes.axhline(max_norm, color="red", ls=":", lw=1, label="clipping threshold")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("global gradient norm")
    axes.legend()
    return save_figure(figure, folder, "gradient_norm.png")


def accuracy_by_topic(files: RunFiles, folder: Path, metric: str, label: str) -> str | None:
    """Grouped bars of base and adapted `metric` per topic, with bootstrap interval error bars."""
    topics = {name: group[metric] for name, group in (files.eval or {}).get("metrics", {}).get("by_topic", {}).items()
              if (group.get(metric) or {}).get("n")}
    if not topics:
        return None
    names = sorted(topics)
    figure, axes = plt.subplots(figsize=(max(6, 1.1 * len(names) + 2), 3.8))
    width = 0.38
    for offset, model in ((-width / 2, "base"), (width / 2, "adapted")):
        values = [100 * topics[name][model]["value"] for name in names]
        below = [100 * (topics[name][model]["value"] - topics[name][model]["low"]) for name in names]
        above = [100 * (topics[name][model]["high"] - topics[name][model]["value"]) for name in names]
        positions = [index + offset for index in range(len(names))]
        axes.bar(positions, values, width, yerr=[below, above], capsize=3, label=model)
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_ylabel(f"{label} (%)")
    axes.set_ylim(0, 100)
    axes.legend()
    return save_figure(figure, folder, "accuracy_by_topic.png")
