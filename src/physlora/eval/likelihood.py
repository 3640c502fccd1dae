"""Batched log-likelihood of (prompt, target) pairs: per-item loss and multiple-choice scores.

Both use the same encoding as training (`encode_example`), so a target's score includes its EOS
token and follows the same truncation: prompts lose tokens from the left, targets are cut to
`max_target_length - 1` tokens before EOS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from physlora.models.architectures import Family
from physlora.models.encoding import collate, encode_example
from physlora.models.scoring import label_logprobs


@dataclass(frozen=True)
class Lengths:
    """Token budgets of the training run, reused so that evaluation encodes exactly what training encoded."""

    max_seq_length: int
    max_target_length: int


@dataclass(frozen=True)
class PairScores:
    """Summed label log-probability (natural log, nats) and supervised token count per pair."""

    sum_logprob: list[float]
    n_tokens: list[int]


def score_pairs(
    model: torch.nn.Module,
    tokenizer,
    family: Family,
    pairs: list[tuple[str, str]],
    lengths: Lengths,
    batch_size: int,
    on_batch: Callable[[], None] | None = None,
) -> PairScores:
    """Score every (prompt, target) pair in batches of `batch_size`, in the input order.

    Pairs are batched by encoded length to cut padding. The grouping does not change the scores,
    because padded positions are masked (attention) or ignored (labels).
    """
    encoded = [
        encode_example(tokenizer, family, prompt, target, lengths.max_seq_length, lengths.max_target_length)
        for prompt, target in pairs
    ]
    order = sorted(range(len(encoded)), key=lambda index: -len(encoded[index].input_ids) - len(encoded[index].labels))
    sums = [0.0] * len(encoded)
    counts = [0] * len(encoded)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = collate([encoded[index] for index in indices], tokenizer.pad_token_id)
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.inference_mode():
            batch_sums, batch_counts = label_logprobs(model, family, batch)
        for index, total, count in zip(indices, batch_sums.tolist(), batch_counts.tolist()):
            sums[index] = total
            counts[index] = count
        if on_batch is not None:
            on_batch()
    return PairScores(sums, counts)


def batch_count(n_items: int, batch_size: int) -> int:
    return -(-n_items // batch_size)
