"""Config overrides and a small data folder (train, validation, multiple-choice test) for the comparison tests."""

from __future__ import annotations

from pathlib import Path

from physlora.data.records import Record, write_jsonl

# A randomly initialised two-layer Gemma 3 with the T5 tokenizer (the tiny defaults of the gemma3 shape).
CAUSAL = ["model.name=tiny-gemma3", "model.architecture=gemma3", "model.family=causal", "model.config={}"]
# The tiny preset's T5 is 32 wide; bitsandbytes' CPU 4-bit kernel needs layers of at least 64 inputs.
WIDE_T5 = ["model.config={d_model: 64, d_ff: 128, d_kv: 16, num_heads: 4, num_layers: 2, num_decoder_layers: 2}"]
# Two optimizer steps of two micro-batches, and few evaluation items, keep each method under seconds.
SHORT = ["training.max_steps=2", "training.batch_size=4", "training.gradient_accumulation_steps=2",
         "evaluation.max_items=4", "evaluation.bootstrap_samples=20", "evaluation.max_new_tokens=4"]

UNITS = [("force", "newton"), ("energy", "joule"), ("power", "watt"), ("charge", "coulomb"),
         ("current", "ampere"), ("resistance", "ohm"), ("frequency", "hertz"), ("pressure", "pascal")]


def unit_records(count: int, prefix: str, with_choices: bool) -> list[Record]:
    records = []
    for index in range(count):
        quantity, unit = UNITS[index % len(UNITS)]
        choices = [unit, "volt", "tesla"] if with_choices else []
        records.append(Record(
            id=f"{prefix}-{index}", source="test", question=f"What is the SI unit of {quantity}? ({index})",
            answer=unit, choices=choices, answer_index=0 if with_choices else None, topic="mechanics",
            original_split=prefix, target=unit,
        ))
    return records


def write_compare_data(folder: Path) -> Path:
    """Write 16 train, 4 validation and 6 test records (the test ones multiple choice) into `folder`."""
    write_jsonl(unit_records(16, "train", with_choices=False), folder / "train.jsonl")
    write_jsonl(unit_records(4, "validation", with_choices=False), folder / "validation.jsonl")
    write_jsonl(unit_records(6, "test", with_choices=True), folder / "test.jsonl")
    return folder
