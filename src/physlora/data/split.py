"""Deduplication, per-source subsampling, the stratified grouped split and the leakage check.

Everything here is deterministic for a given seed: random generators are seeded with strings built from the
seed and a fixed purpose, and inputs are sorted before they are shuffled, so Python's per-process hash
randomisation never reaches the output.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Iterable, Sequence

from physlora.data.clean import comparison_key
from physlora.data.records import Record

SPLITS = ("train", "validation", "test")


def remove_duplicates(records_by_source: dict[str, list[Record]]) -> tuple[dict[str, list[Record]], Counter]:
    """Drop records whose normalised question and answer were already seen, in source order.

    Returns the kept records per source and the number removed per source. The first occurrence is kept,
    so a later source loses the items an earlier one already has.
    """
    seen: set[tuple[str, str]] = set()
    kept: dict[str, list[Record]] = {}
    removed: Counter = Counter()
    for label, records in records_by_source.items():
        kept[label] = []
        for record in records:
            key = (comparison_key(record.question), comparison_key(record.answer))
            if key in seen:
                removed[label] += 1
                continue
            seen.add(key)
            kept[label].append(record)
    return kept, removed


def make_ids_unique(records: Iterable[Record]) -> tuple[list[Record], int]:
    """Give repeated ids a suffix -2, -3, ... in order of appearance; return the records and how many changed."""
    used: set[str] = set()
    counts: Counter = Counter()
    result, renamed = [], 0
    for record in records:
        new_id = record.id
        while new_id in used:
            counts[record.id] += 1
            new_id = f"{record.id}-{counts[record.id] + 1}"
        if new_id != record.id:
            renamed += 1
            record = record.with_changes(id=new_id)
        used.add(new_id)
        result.append(record)
    return result, renamed


def subsample(records: list[Record], max_items: int | None, seed: int, label: str) -> list[Record]:
    """Keep at most `max_items` records, chosen with a generator seeded by the seed and the source label."""
    if max_items is None or len(records) <= max_items:
        return records
    chosen = sorted(random.Random(f"{seed}:subsample:{label}").sample(range(len(records)), max_items))
    return [records[index] for index in chosen]


def allocate(total: int, fractions: Sequence[float]) -> list[int]:
    """Split `total` into integer parts by largest remainder; ties go to the earlier split."""
    exact = [total * fraction for fraction in fractions]
    counts = [int(value) for value in exact]
    order = sorted(range(len(fractions)), key=lambda index: (-(exact[index] - counts[index]), index))
    for index in order[: total - sum(counts)]:
        counts[index] += 1
    return counts


def stratified_split(records: list[Record], fractions: Sequence[float], seed: int) -> dict[str, list[Record]]:
    """Split each topic by `fractions`, keeping records with the same normalised question in one split.

    Groups of records sharing a question take the topic of their first record. Within a topic the groups are
    shuffled and each goes to the split furthest below its target, so with single-record groups every topic
    matches its largest-remainder targets exactly. Each split is then shuffled so that its first lines are a
    random sample rather than one source.
    """
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[comparison_key(record.question)].append(record)
    by_topic: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        by_topic[members[0].topic].append(key)

    splits: dict[str, list[Record]] = {name: [] for name in SPLITS}
    for topic in sorted(by_topic):
        keys = sorted(by_topic[topic])
        random.Random(f"{seed}:split:{topic}").shuffle(keys)
        targets = allocate(sum(len(groups[key]) for key in keys), fractions)
        filled = [0] * len(SPLITS)
        for key in keys:
            index = max(range(len(SPLITS)), key=lambda position: (targets[position] - filled[position], -position))
            filled[index] += len(groups[key])
            splits[SPLITS[index]].extend(groups[key])

    for name in SPLITS:
        ordered = sorted(splits[name], key=lambda record: record.id)
        random.Random(f"{seed}:order:{name}").shuffle(ordered)
        splits[name] = ordered
    return splits


def remove_leakage(splits: dict[str, list[Record]]) -> tuple[dict[str, list[Record]], list[Record]]:
    """Remove from train and validation every record whose normalised question is in a later split.

    Test questions must not appear in train or validation, and validation questions not in train.
    Returns the cleaned splits and the removed records.
    """
    test_keys = {comparison_key(record.question) for record in splits["test"]}
    validation = [record for record in splits["validation"] if comparison_key(record.question) not in test_keys]
    later_keys = test_keys | {comparison_key(record.question) for record in validation}
    train = [record for record in splits["train"] if comparison_key(record.question) not in later_keys]
    removed = [record for record in splits["validation"] if comparison_key(record.question) in test_keys]
    removed += [record for record in splits["train"] if comparison_key(record.question) in later_keys]
    return {"train": train, "validation": validation, "test": splits["test"]}, removed
