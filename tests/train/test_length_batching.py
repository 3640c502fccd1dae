"""Micro-batch order, length grouping, padding and accumulation windows."""

from __future__ import annotations

import pytest

from physlora.models.encoding import IGNORE_INDEX, Encoded
from physlora.train.batching import accumulation_windows, epoch_batches, make_micro_batch, pack_window
from physlora.train.optim import steps_per_epoch


def _padding(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in batch) * len(batch) - sum(lengths[i] for i in batch) for batch in batches)


def test_epoch_batches_cover_each_index_once():
    lengths = [(index * 7) % 23 + 1 for index in range(103)]
    for group in (False, True):
        batches = epoch_batches(lengths, batch_size=4, seed=1, epoch=1, group_by_length=group)
        flat = sorted(index for batch in batches for index in batch)
        assert flat == list(range(103))
        assert len(batches) == 26
        assert sorted(len(batch) for batch in batches)[0] == 3


def test_epoch_batches_depend_on_seed_and_epoch_only():
    lengths = [(index * 5) % 17 + 1 for index in range(60)]
    first = epoch_batches(lengths, 4, seed=3, epoch=2, group_by_length=True)
    assert epoch_batches(lengths, 4, seed=3, epoch=2, group_by_length=True) == first
    assert epoch_batches(lengths, 4, seed=3, epoch=3, group_by_length=True) != first
    assert epoch_batches(lengths, 4, seed=4, epoch=2, group_by_length=True) != first


def test_length_grouping_reduces_padding():
    lengths = [(index * 37) % 97 + 3 for index in range(400)]
    grouped = epoch_batches(lengths, 8, seed=0, epoch=1, group_by_length=True)
    shuffled = epoch_batches(lengths, 8, seed=0, epoch=1, group_by_length=False)
    assert _padding(grouped, lengths) < _padding(shuffled, lengths) / 4


def test_micro_batch_pads_labels_with_ignore_index():
    examples = [Encoded([5, 6, 7], [8, 1], False, False), Encoded([5, 1], [9, 10, 11, 1], False, False)]
    micro_batch = make_micro_batch(examples, [0, 1], pad_token_id=0)
    assert micro_batch.tensors["input_ids"].tolist() == [[5, 6, 7], [5, 1, 0]]
    assert micro_batch.tensors["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert micro_batch.tensors["labels"].tolist() == [[8, 1, IGNORE_INDEX, IGNORE_INDEX], [9, 10, 11, 1]]
    assert micro_batch.supervised_tokens == 6
    assert micro_batch.input_tokens == 5


def test_accumulation_windows_keep_short_last_window():
    windows = accumulation_windows(10, 4)
    assert [list(window) for window in windows] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(windows) == steps_per_epoch(10, 4)
    assert [list(window) for window in accumulation_windows(10, 4, start=8)] == [[8, 9]]
    assert accumulation_windows(10, 4, start=10) == []


def test_accumulation_windows_reject_unaligned_start():
    with pytest.raises(ValueError, match="not the start"):
        accumulation_windows(10, 4, start=5)


def test_steps_per_epoch_counts_optimizer_steps():
    assert steps_per_epoch(160, 10) == 16
    assert steps_per_epoch(161, 10) == 17


def test_pack_window_fills_the_token_budget():
    lengths = [10, 30, 20, 30, 5, 12]
    window = [[0, 1], [2, 3], [4, 5]]
    packed = pack_window(window, lengths, max_tokens=60)
    # Longest first: 30 and 30 use the 60-token budget; then 20, 12, 10 (3 x 20 = 60); then 5 alone.
    assert packed == [[1, 3], [2, 5, 0], [4]]
    assert sorted(index for batch in packed for index in batch) == list(range(6))
    assert all(len(batch) * max(lengths[index] for index in batch) <= 60 for batch in packed)


def test_pack_window_keeps_overlong_examples_and_default():
    lengths = [100, 3, 3]
    assert pack_window([[0], [1, 2]], lengths, max_tokens=8) == [[0], [1, 2]]
    assert pack_window([[2, 0], [1]], lengths, max_tokens=None) == [[2, 0], [1]]

