"""LoRA training: batching, the training loop, checkpoints and resume, metrics and summary.

`physlora.train.trainer.train_run` is the entry point. The token-weighted validation loss lives in
`physlora.models.scoring.mean_loss`, so evaluation can use it without importing training code.
"""

from physlora.train.trainer import ProgressEvent, train_run

__all__ = ["ProgressEvent", "train_run"]
