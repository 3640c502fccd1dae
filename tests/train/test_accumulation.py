"""Gradient accumulation weights every supervised token equally, whatever the micro-batch split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from physlora.data.records import Record, write_jsonl
from physlora.train import train_run

# Two examples whose answers differ in length, so a per-micro-batch mean would weight tokens unequally.
RECORDS = [
    Record(id="short", source="test", question="What is the SI unit of force?", answer="newton", target="newton"),
    Record(id="long", source="test", question="What is g?", answer="about 9.8 metres per second squared",
           target="about 9.8 metres per second squared"),
]


def _first_step(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return next(record for record in map(json.loads, lines) if record["type"] == "step")


@pytest.mark.parametrize("causal", [False, True], ids=["t5", "gemma3"])
def test_accumulated_micro_batches_match_one_batch(make_config, tmp_path, causal):
    data = tmp_path / "two"
    write_jsonl(RECORDS, data / "train.jsonl")
    write_jsonl(RECORDS, data / "validation.jsonl")
    common = [f"output.data_dir={data}", "training.warmup_steps=0", "training.group_by_length=false"]
    if not causal:
        # T5 applies dropout (rate 0.1 by default) in its own layers, which would make the two runs differ.
        common.append("model.config.dropout_rate=0.0")
    one_batch = make_config(*common, "training.batch_size=2", "training.gradient_accumulation_steps=1",
                            run="one-batch", causal=causal)
    accumulated = make_config(*common, "training.batch_size=1", "training.gradient_accumulation_steps=2",
                              run="accumulated", causal=causal)
    # The same two micro-batches of one, re-packed into one micro-batch by the padded-token budget.
    packed = make_config(*common, "training.batch_size=1", "training.gradient_accumulation_steps=2",
                         "training.micro_batch_tokens=4096", run="packed", causal=causal)
    for config in (one_batch, accumulated, packed):
        train_run(config, max_steps=1)

    expected = _first_step(Path(one_batch.output.dir))
    for config in (accumulated, packed):
        actual = _first_step(Path(config.output.dir))
        assert actual["tokens"] == expected["tokens"]
        assert actual["loss"] == pytest.approx(expected["loss"], rel=1e-6)
        assert actual["grad_norm"] == pytest.approx(expected["grad_norm"], rel=1e-5)
