"""AdamW over the trainable parameters, the warmup-then-linear-decay schedule, and step counts."""

from __future__ import annotations

import logging
import math

import torch
from transformers import get_linear_schedule_with_warmup

from physlora.config.schema import TrainingConfig

logger = logging.getLogger(__name__)


def steps_per_epoch(micro_batch_count: int, accumulation: int) -> int:
    """Count the optimizer steps in one epoch. A short last accumulation window still makes a step."""
    return math.ceil(micro_batch_count / accumulation)


def total_steps(micro_batch_count: int, training: TrainingConfig) -> int:
    """Count the optimizer steps of the whole run: `training.max_steps` when set, else steps per epoch × epochs."""
    if training.max_steps is not None:
        return training.max_steps
    return steps_per_epoch(micro_batch_count, training.gradient_accumulation_steps) * training.epochs


def build_optimizer(model: torch.nn.Module, training: TrainingConfig) -> torch.optim.AdamW:
    """AdamW with decoupled weight decay on trainable matrices only.

    Parameters with fewer than two dimensions (biases, norm scales) get no decay: shrinking them towards
    zero does not regularise anything and shifts activations.
    """
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": training.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=training.learning_rate)


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, steps: int):
    """Linear warmup over `warmup_steps` optimizer steps, then linear decay reaching 0 after step `steps`.

    The scheduler is stepped once per optimizer step. As in transformers'
    get_linear_schedule_with_warmup, step k (counting from 1) uses the factor of k - 1, so the first
    step runs at learning rate 0 when there is warmup.
    """
    if warmup_steps >= steps > 0:
        logger.warning(
            "training.warmup_steps=%d is not smaller than the %d optimizer steps of this run, "
            "so the learning rate never reaches training.learning_rate%s", warmup_steps, steps,
            "; the only step runs at learning rate 0 (warmup starts from 0), so the weights do not change"
            if steps == 1 else "",
        )
    return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps, num_training_steps=steps)
