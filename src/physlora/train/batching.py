"""Pre-tokenised training examples, the micro-batch order of each epoch, and padded batches.

Every example is tokenised once before training. Each epoch then draws a fresh order from a generator
seeded with `seed + epoch`, so the order depends only on the seed and the epoch number: a resumed run
rebuilds the same order and skips the micro-batches it has already done.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from physlora.data.records import Record
from physlora.models.architectures import Family
from physlora.models.encoding import Encoded, build_prompt, collate, encode_example

logger = logging.getLogger(__name__)

# With length grouping, examples are sorted by length inside chunks of this many batches: chunks keep
# the order random at large scale, sorting inside them keeps similar lengths in one batch.
BATCHES_PER_CHUNK = 50


@dataclass(frozen=True)
class MicroBatch:
    """One padded micro-batch and its token counts (padding excluded)."""

    tensors: dict[str, torch.Tensor]
    supervised_tokens: int
    input_tokens: int


def encode_records(
    records: list[Record],
    tokenizer,
    family: Family,
    prompt_template: str,
    max_seq_length: int,
    max_target_length: int,
) -> list[Encoded]:
    """Tokenise every record once. The target is `record.target`, or the answer when the target is empty."""
    examples = []
    for record in records:
        prompt = build_prompt(prompt_template, record.question)
        target = record.target or record.answer
        examples.append(encode_example(tokenizer, family, prompt, target, max_seq_length, max_target_length))
    prompts_cut = sum(example.prompt_truncated for example in examples)
    targets_cut = sum(example.target_truncated for example in examples)
    if prompts_cut or targets_cut:
        logger.info(
            "truncated %d of %d prompts (max_seq_length=%d) and %d targets (max_target_length=%d)",
            prompts_cut, len(examples), max_seq_length, targets_cut, max_target_length,
        )
    return examples


def example_length(example: Encoded) -> int:
    """Return the sort key for length grouping: input plus label tokens. For causal models this is twice
    the sequence length, which sorts the same. For seq2seq models it counts encoder and decoder tokens."""
    return len(example.input_ids) + len(example.labels)


def micro_batches_per_epoch(example_count: int, batch_size: int) -> int:
    return math.ceil(example_count / batch_size)


def epoch_batches(
    lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool
) -> list[list[int]]:
    """Split example indices into the micro-batches of one epoch, in training order.

    Without length grouping this is a seeded shuffle cut into batches. With it, the shuffled indices are
    cut into chunks of BATCHES_PER_CHUNK batches, each chunk is sorted by length (longest first) and cut
    into batches, and then the order of all batches is shuffled. Only the last batch can be smaller.
    """
    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if not group_by_length:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    chunk_size = batch_size * BATCHES_PER_CHUNK
    batches = []
    for chunk_start in range(0, len(order), chunk_size):
        chunk = sorted(order[chunk_start : chunk_start + chunk_size], key=lambda index: -lengths[index])
        batches.extend(chunk[start : start + batch_size] for start in range(0, len(chunk), batch_size))
    batch_order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[index] for index in batch_order]


def make_micro_batch(examples: list[Encoded], indices: list[int], pad_token_id: int) -> MicroBatch:
    """Pad the chosen examples to the longest one (dynamic padding), with labels padded with -100."""
    chosen = [examples[index] for index in indices]
    tensors = collate(chosen, pad_token_id)
    return MicroBatch(
        tensors=tensors,
        supervised_tokens=sum(example.supervised_tokens for example in chosen),
        input_tokens=sum(len(example.input_ids) for example in chosen),
    )


def accumulation_windows(micro_batch_count: int, accumulation: int, start: int = 0) -> list[range]:
    """Micro-batch index ranges of the optimizer steps of one epoch, from micro-batch `start` on.

    Windows are aligned to the start of the epoch, so only the last one can be shorter than
    `accumulation`. `start` must be a window boundary (checkpoints are only written at one).
    """
    if start % accumulation and start != micro_batch_count:
        raise ValueError(f"micro-batch {start} is not the start of an accumulation window of {accumulation}")
    return [
        range(first, min(first + accumulation, micro_batch_count))
        for first in range(start, micro_batch_count, accumulation)
    ]


def pack_window(window: list[list[int]], lengths: list[int], max_tokens: int | None) -> list[list[int]]:
    """Re-pack the micro-batches of one accumulation window to fill a padded-token budget.

    The window's examples are sorted by length (longest first, ties by index) and cut greedily into
    micro-batches whose count x longest `lengths` entry stays within `max_tokens`. An example longer than
    the budget forms a micro-batch of its own. The trainer weights the loss by the supervised tokens of the
    whole window, so the step's gradient does not depend on the packing (dropout masks aside). Fewer,
    larger micro-batches only make the matrix products bigger. `max_tokens=None` returns `window` as it is.
    """
    if max_tokens is None:
        return window
    indices = sorted((index for batch in window for index in batch), key=lambda index: (-lengths[index], index))
    packed: list[list[int]] = []
    for index in indices:
        # Sorted longest first, so the first example of a micro-batch sets its padded length.
        if packed and (len(packed[-1]) + 1) * lengths[packed[-1][0]] <= max_tokens:
            packed[-1].append(index)
        else:
            packed.append([index])
    return packed

