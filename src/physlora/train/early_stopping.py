"""Early stopping on the validation loss, the best adapter it keeps, and why a run stopped.

The best epoch is the one with the lowest validation loss among those that improved on the previous
best by more than `training.early_stopping_min_delta` (epoch 0, measured before training, counts too).
With `training.early_stopping_patience` set, training stops once that many epochs in a row bring no
such improvement. The adapter of each new best epoch is saved to RUN/adapter-best. When training ends,
the final weights go to RUN/adapter-last and RUN/adapter becomes a copy of the best adapter, so eval,
ask, serve and merge, which all read RUN/adapter, use the best one.

The state is rebuilt from the epoch records in metrics.jsonl, so a resumed run continues counting
where its checkpoint left off without extra checkpoint fields.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from physlora.config.schema import TrainingConfig
from physlora.data.records import Record
from physlora.errors import ConfigError
from physlora.io import write_json_atomic
from physlora.train import checkpoint as checkpoints
from physlora.train import summary as summaries

logger = logging.getLogger(__name__)

BEST_ADAPTER_DIR = "adapter-best"
LAST_ADAPTER_DIR = "adapter-last"
BEST_MARKER = "best_epoch.json"
"""File in RUN/adapter-best (and the RUN/adapter copied from it): epoch, step and validation loss of the weights."""


@dataclass
class EarlyStopping:
    """Best validation loss so far and the count of epochs since it last improved by more than `min_delta`."""

    patience: int | None
    min_delta: float
    best_epoch: int | None = None
    best_val_loss: float | None = None
    epochs_without_improvement: int = 0
    last_epoch: int | None = None

    @classmethod
    def from_records(cls, training: TrainingConfig, epoch_records: list[dict]) -> EarlyStopping:
        """Return the state after the given epoch records (none for a fresh run)."""
        tracker = cls(training.early_stopping_patience, training.early_stopping_min_delta)
        for record in sorted(epoch_records, key=lambda record: record["epoch"]):
            tracker.update(record)
        return tracker

    @property
    def enabled(self) -> bool:
        return self.patience is not None

    @property
    def should_stop(self) -> bool:
        return self.enabled and self.epochs_without_improvement >= self.patience

    def update(self, record: dict) -> bool:
        """Count one epoch record and return True when it is the new best. A null loss never improves."""
        val_loss = record.get("val_loss")
        self.last_epoch = record["epoch"]
        if val_loss is not None and (self.best_val_loss is None or val_loss < self.best_val_loss - self.min_delta):
            self.best_epoch, self.best_val_loss = record["epoch"], val_loss
            self.epochs_without_improvement = 0
            return True
        self.epochs_without_improvement += 1
        return False

    def stop_reason(self, status: str, max_steps: int | None) -> str:
        """Return one sentence on why training ended, for summary.json and the report."""
        if status == summaries.EARLY_STOPPED:
            epochs = "epoch" if self.patience == 1 else "epochs"
            return (f"early stopping: the validation loss did not improve by more than {self.min_delta:g} "
                    f"for {self.patience} {epochs} after the best epoch {self.best_epoch}")
        reasons = {
            summaries.FINISHED: "completed: every planned epoch was trained",
            summaries.MAX_STEPS: f"max_steps: stopped at the limit of {max_steps} optimizer steps",
            summaries.INTERRUPTED: "interrupted by SIGINT or SIGTERM; resume with `physlora train --resume RUN`",
            summaries.STOPPED_NAN: "stopped because the loss or the gradient norm was not finite",
        }
        return reasons.get(status, status)

    def summary_fields(self, status: str, max_steps: int | None) -> dict:
        """Return the fields added to summary.json: best epoch, stop reason, and which epoch RUN/adapter contains."""
        restores_best = self.enabled and status not in (summaries.INTERRUPTED, summaries.STOPPED_NAN)
        return {
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stop_reason": self.stop_reason(status, max_steps),
            "early_stopping": {"patience": self.patience, "min_delta": self.min_delta},
            "adapter_epoch": self.best_epoch if restores_best else self.last_epoch,
            "best_adapter": BEST_ADAPTER_DIR if self.enabled else None,
        }


def check_validation_records(training: TrainingConfig, validation_records: list[Record]) -> None:
    """Raise ConfigError when early stopping is on but there is no validation loss to watch."""
    if training.early_stopping_patience is not None and not validation_records:
        raise ConfigError(
            "training.early_stopping_patience is set but validation.jsonl contains no records, so there is no "
            "validation loss to watch; rebuild the data with a validation fraction above 0 in data.split_fractions "
            "or unset training.early_stopping_patience"
        )


def save_best_adapter(model, folder: Path, state_dict: dict | None, *, record: dict, step: int) -> None:
    """Save the adapter of the new best epoch into `folder` (RUN/adapter-best) with its marker file.
    `state_dict` contains the weights when the model's own are sharded (see checkpoint.save_adapter)."""
    # NOTE: this is written before the epoch-end checkpoint. A crash between the two leaves a best adapter
    # from an epoch that the resumed run trains again. CPU training is deterministic, so it writes the same
    # weights again there, but on a GPU the repeated epoch may differ and not replace them.
    checkpoints.save_adapter(model, folder, state_dict)
    write_json_atomic(folder / BEST_MARKER, {"epoch": record["epoch"], "step": step, "val_loss": record["val_loss"]})
    logger.info("epoch %d is the best so far (validation loss %.4f); saved %s", record["epoch"], record["val_loss"],
                folder)


def publish_best_adapter(final: Path) -> None:
    """Move the final adapter `final` (RUN/adapter) to RUN/adapter-last and copy RUN/adapter-best into its place."""
    best, last = final.parent / BEST_ADAPTER_DIR, final.parent / LAST_ADAPTER_DIR
    if last.exists():
        shutil.rmtree(last)
    final.rename(last)
    # Copied into a temporary folder first, so RUN/adapter is either absent or complete.
    temp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        shutil.copytree(best, temp, dirs_exist_ok=True)
        temp.rename(final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    marker = json.loads((best / BEST_MARKER).read_text(encoding="utf-8"))
    logger.info("%s contains the best adapter (epoch %d); the final one is in %s", final, marker["epoch"], last)
