"""Per-item rows of predictions.jsonl: both models' answers, scores, picks and correctness flags."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from physlora.data.records import Record
from physlora.eval.answers import exact_match, pick_choices, rouge_l, token_f1
from physlora.eval.generation import Generated
from physlora.eval.likelihood import PairScores
from physlora.io import atomic_path


@dataclass(frozen=True)
class ModelOutputs:
    """Everything one model (base or adapted) produced for the evaluated items.

    `choices` contains the scores of every (item, choice) pair flattened in item order, then choice order.
    """

    targets: PairScores
    choices: PairScores
    answers: list[Generated]


def answer_index_of(record: Record) -> int | None:
    """Index of the correct choice, from answer_index or by matching the answer text; None if unknown."""
    if not record.choices:
        return None
    if record.answer_index is not None and 0 <= record.answer_index < len(record.choices):
        return record.answer_index
    return record.choices.index(record.answer) if record.answer in record.choices else None


def loss_target(record: Record) -> str:
    """The text whose likelihood gives the loss: the training target, or the answer when it is empty."""
    return record.target or record.answer


def _model_fields(record: Record, outputs: ModelOutputs, item: int, choice_offset: int) -> dict:
    answer = outputs.answers[item]
    fields = {
        "answer": answer.text,
        "n_generated_tokens": answer.n_tokens,
        "stopped_at_eos": answer.stopped_at_eos,
        "exact_match": exact_match(answer.text, record.answer),
        "token_f1": token_f1(answer.text, record.answer),
        "rouge_l": rouge_l(answer.text, record.answer),
        "target_sum_logprob": outputs.targets.sum_logprob[item],
    }
    count = len(record.choices)
    sums = outputs.choices.sum_logprob[choice_offset : choice_offset + count]
    tokens = outputs.choices.n_tokens[choice_offset : choice_offset + count]
    correct_index = answer_index_of(record)
    if count:
        picks = pick_choices(sums, tokens)
        fields.update(
            choice_sum_logprob=sums,
            choice_mean_logprob=[total / n if n else None for total, n in zip(sums, tokens)],
            pick_sum=picks["sum"],
            pick_mean=picks["mean"],
        )
    else:
        fields.update(choice_sum_logprob=[], choice_mean_logprob=[], pick_sum=None, pick_mean=None)
    has_key = count > 0 and correct_index is not None
    fields["correct_sum"] = float(fields["pick_sum"] == correct_index) if has_key else None
    fields["correct_mean"] = float(fields["pick_mean"] == correct_index) if has_key else None
    return fields


def build_rows(records: list[Record], outputs: dict[str, ModelOutputs]) -> list[dict]:
    """Build one predictions.jsonl row per record; `outputs` maps model names ("base", "adapted") to their outputs."""
    rows = []
    choice_offset = 0
    for item, record in enumerate(records):
        any_outputs = next(iter(outputs.values()))
        row = {
            "id": record.id,
            "source": record.source,
            "topic": record.topic,
            "question": record.question,
            "reference": record.answer,
            "choices": list(record.choices),
            "answer_index": answer_index_of(record),
            "target": loss_target(record),
            "target_tokens": any_outputs.targets.n_tokens[item],
            "choice_tokens": any_outputs.choices.n_tokens[choice_offset : choice_offset + len(record.choices)],
        }
        for name, model_outputs in outputs.items():
            row[name] = _model_fields(record, model_outputs, item, choice_offset)
        rows.append(row)
        choice_offset += len(record.choices)
    return rows


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def write_predictions(path: Path, rows: list[dict]) -> None:
    """Write rows atomically as UTF-8 JSONL, one object per line.

    Non-finite floats (a log-probability of -inf) are written as null, as in eval.json, so that any
    JSON reader accepts the file.
    """
    with atomic_path(path) as temp_path, open(temp_path, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(_finite(row), ensure_ascii=False, allow_nan=False) + "\n")
