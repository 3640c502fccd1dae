"""State of a training run: the resumable position and totals, and the events sent to a progress callback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from physlora.train import summary as summaries


@dataclass
class ProgressEvent:
    """Event passed to the `progress` callback of `train_run`. `kind` is start, step or end."""

    kind: str
    step: int
    total_steps: int
    epoch: int
    loss: float | None = None
    input_tokens_per_s: float | None = None
    supervised_tokens_per_s: float | None = None


@dataclass
class TrainerState:
    """Position and running totals, saved as trainer_state.json in every checkpoint.

    `epoch` counts from 1, `micro_batch` is how many micro-batches of that epoch are done, and the
    `epoch_*` fields accumulate the unfinished epoch. Times are seconds summed over all sessions.
    """

    step: int = 0
    epoch: int = 1
    micro_batch: int = 0
    epochs_done: int = 0
    epoch_nll: float = 0.0
    epoch_tokens: int = 0
    epoch_input_tokens: int = 0
    epoch_steps: int = 0
    epoch_time_s: float = 0.0
    tokens: int = 0
    input_tokens: int = 0
    train_time_s: float = 0.0
    elapsed_s: float = 0.0
    peak_memory_bytes: int = 0


def finished_summary(run_dir: Path, max_steps: int | None) -> dict | None:
    """Return the summary of a run that has nothing left to do under `max_steps`, else None."""
    summary = summaries.read_summary(run_dir)
    if summary is None:
        return None
    if summary["status"] in (summaries.FINISHED, summaries.EARLY_STOPPED):
        return summary
    if summary["status"] == summaries.MAX_STEPS and max_steps is not None and summary["steps"] >= max_steps:
        return summary
    return None
