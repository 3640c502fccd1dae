"""Token length statistics of prompts and targets, measured with the tokenizer the caller hands in.

The prompt is `model.prompt_template` with `{question}` replaced by the question, as the config defines it.
A trainer that also puts the choices into the prompt produces longer prompts than the ones measured here.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from physlora.data.records import Record

logger = logging.getLogger(__name__)

_BATCH = 256
_UNKNOWN_EXAMPLES = 10


def load_tokenizer(name_or_path: str | None, must_be_local: bool = False) -> Any | None:
    """Load a tokenizer with transformers.AutoTokenizer, or return None (with a warning) when that fails.

    Environment variables in the name are expanded. With `must_be_local`, anything but an existing folder
    returns None without a download attempt.
    """
    if not name_or_path:
        return None
    expanded = os.path.expanduser(os.path.expandvars(name_or_path))
    if must_be_local and not Path(expanded).is_dir():
        logger.info("token statistics skipped: tokenizer %s is not a local folder", expanded)
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(expanded)
    except Exception as error:  # transformers raises OSError, ValueError and hub errors for unusable names
        logger.warning("token statistics skipped: tokenizer %s could not be loaded (%s)", expanded, error)
        return None


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def length_summary(lengths: list[int]) -> dict[str, float | int]:
    if not lengths:
        return {"count": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0}
    ordered = sorted(lengths)
    return {
        "count": len(ordered),
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": percentile(ordered, 0.5),
        "p95": percentile(ordered, 0.95),
        "max": ordered[-1],
    }


def _encode(tokenizer: Any, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
    ids: list[list[int]] = []
    for start in range(0, len(texts), _BATCH):
        batch = texts[start : start + _BATCH]
        ids.extend(tokenizer(batch, add_special_tokens=add_special_tokens)["input_ids"])
    return ids


def _unknown_characters(tokenizer: Any, texts: Iterable[str], unknown_id: int) -> dict[str, int]:
    """Characters that the tokenizer maps to its unknown token on their own, with how many texts contain them."""
    counts: Counter = Counter()
    verdicts: dict[str, bool] = {}
    for text in texts:
        for char in set(text):
            if char not in verdicts:
                ids = tokenizer(char, add_special_tokens=False)["input_ids"]
                verdicts[char] = not char.isspace() and unknown_id in ids
            if verdicts[char]:
                counts[char] += 1
    return dict(counts.most_common(_UNKNOWN_EXAMPLES))


def token_statistics(
    splits: dict[str, list[Record]],
    tokenizer: Any,
    prompt_template: str,
    max_source_length: int,
    max_target_length: int,
) -> dict[str, Any]:
    """Measure prompt and target lengths in tokens (special tokens included) over all splits.

    Counts the prompts longer than `max_source_length`, targets longer than `max_target_length`, prompt plus
    target longer than `max_source_length` (the input of a decoder-only model), and texts containing a token the
    tokenizer maps to its unknown token.
    """
    records = [record for name in splits for record in splits[name]]
    prompts = [prompt_template.replace("{question}", record.question) for record in records]
    targets = [record.target for record in records]
    prompt_ids = _encode(tokenizer, prompts, add_special_tokens=True)
    target_ids = _encode(tokenizer, targets, add_special_tokens=True)
    prompt_lengths = [len(ids) for ids in prompt_ids]
    target_lengths = [len(ids) for ids in target_ids]

    unknown_id = getattr(tokenizer, "unk_token_id", None)
    if unknown_id is None:
        unknown = {"measured": False, "reason": "the tokenizer has no unknown token"}
    else:
        unknown_targets = [text for text, ids in zip(targets, target_ids) if unknown_id in ids]
        unknown = {
            "measured": True,
            "token": tokenizer.unk_token,
            "targets_with_unknown": len(unknown_targets),
            "prompts_with_unknown": sum(unknown_id in ids for ids in prompt_ids),
            "target_characters": _unknown_characters(tokenizer, unknown_targets, unknown_id),
        }

    truncated = {"prompt": {}, "target": {}, "prompt_plus_target": {}}
    offset = 0
    for name in splits:
        size = len(splits[name])
        window = range(offset, offset + size)
        truncated["prompt"][name] = sum(prompt_lengths[i] > max_source_length for i in window)
        truncated["target"][name] = sum(target_lengths[i] > max_target_length for i in window)
        combined = (prompt_lengths[i] + target_lengths[i] for i in window)
        truncated["prompt_plus_target"][name] = sum(length > max_source_length for length in combined)
        offset += size
    return {
        "measured": True,
        "tokenizer": getattr(tokenizer, "name_or_path", type(tokenizer).__name__),
        "prompt_template": prompt_template,
        "max_source_length": max_source_length,
        "max_target_length": max_target_length,
        "prompt_tokens": length_summary(prompt_lengths),
        "target_tokens": length_summary(target_lengths),
        "truncated": truncated,
        "unknown_tokens": unknown,
    }


def tokenizer_for_build(explicit: str | None, model_tokenizer: str | None, model_name: str) -> Any | None:
    """Load the tokenizer for the audit: `explicit` when given (a folder or hub id), else the model's
    tokenizer or name, but only when that is a local folder, so a data build never downloads a model."""
    if explicit:
        return load_tokenizer(explicit)
    return load_tokenizer(model_tokenizer or model_name, must_be_local=True)
