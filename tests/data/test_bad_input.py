"""Bad rows are rejected with a message naming file and line, counted by reason, and never crash the build."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from source_files import SCIQ_TRAIN, generated_physics_rows, write_bytes, write_json, write_jsonl_lines

from physlora.config.schema import SourceConfig
from physlora.data.build import build_dataset
from physlora.data.sources import SourceData, SourcePlan, read_source
from physlora.errors import DataError


def read(path: Path, **source: object) -> SourceData:
    return read_source(SourcePlan(0, SourceConfig(**source), path), seed=42)


def only_example(data: SourceData, reason: str) -> str:
    assert data.stats.rejected[reason] == 1, dict(data.stats.rejected)
    return data.stats.rejected_examples[reason][0]


def test_malformed_json_line(tmp_path):
    path = write_jsonl_lines(tmp_path / "train.jsonl", generated_physics_rows(2))
    path.write_text(path.read_text() + '{"question": "broken",\n', encoding="utf-8")
    data = read(path, type="jsonl")
    assert len(data.items) == 2
    assert f"{path}:3: invalid JSON" in only_example(data, "invalid JSON")


def test_missing_field_in_json_array(tmp_path):
    rows = [dict(SCIQ_TRAIN[0]), {key: value for key, value in SCIQ_TRAIN[1].items() if key != "question"}]
    path = write_json(tmp_path / "train.json", rows)
    data = read(path, type="sciq")
    # The second object starts on line 10 of the indented file: "[" + 8 lines of the first object.
    assert f"{path}:10: missing field 'question'" in only_example(data, "missing field 'question'")
    assert data.stats.read == 2


def test_empty_question_and_answer(tmp_path):
    rows = [
        {"question": " \u200b\x01 ", "answer": "joule"},
        {"question": "What is the unit of power?", "answer": "   "},
        {"question": "What is the unit of force?", "answer": "newton"},
    ]
    path = write_jsonl_lines(tmp_path / "train.jsonl", rows)
    data = read(path, type="jsonl")
    assert f"{path}:1: empty question" in only_example(data, "empty question")
    assert f"{path}:2: empty answer" in only_example(data, "empty answer")
    assert len(data.items) == 1


def test_answer_key_matching_no_choice(tmp_path):
    row = {"id": "X1", "question": {"stem": "Which is a unit of force?", "choices": [
        {"text": "newton", "label": "A"}, {"text": "joule", "label": "B"}]}, "answerKey": "C"}  # fmt: skip
    path = write_jsonl_lines(tmp_path / "ARC-Easy-Dev.jsonl", [row])
    data = read(path, type="arc")
    message = only_example(data, "answer key matches no choice")
    assert f"{path}:1:" in message
    assert "answerKey 'C'" in message
    with pytest.raises(DataError, match="1 answer key matches no choice"):
        _build_single(tmp_path, path, "arc")


def _build_single(tmp_path: Path, path: Path, source_type: str) -> None:
    from physlora.config.loading import validate

    config = validate({"data": {"sources": [{"type": source_type, "path": str(path)}]}})
    build_dataset(config, tmp_path / "out")


def test_csv_row_with_wrong_column_count(tmp_path):
    rows = b"What is the unit of power?,watt,joule,newton,volt,A\nWhat is the unit of energy?,joule,watt,B\n"
    path = write_bytes(tmp_path / "mmlu" / "test" / "college_physics_test.csv", rows)
    data = read(tmp_path / "mmlu", type="mmlu")
    assert f"{path}:2: wrong column count (4 columns, expected 6)" in only_example(data, "wrong column count")
    assert len(data.items) == 1


def test_non_utf8_line_rejects_only_that_line(tmp_path):
    good = json.dumps({"question": "What is the unit of current?", "answer": "ampere"}).encode()
    bad = b'{"question": "What is the unit of resistance?", "answer": "\xff ohm"}'
    path = write_bytes(tmp_path / "train.jsonl", good + b"\n" + bad + b"\n" + good.replace(b"current", b"charge"))
    data = read(path, type="jsonl")
    assert f"{path}:2: not UTF-8 (invalid byte 0xFF)" in only_example(data, "not UTF-8")
    assert len(data.items) == 2


def test_non_utf8_item_in_json_document(tmp_path):
    text = json.dumps(SCIQ_TRAIN[:2], indent=1).encode("utf-8").replace(b"ampere", b"amp\xe8re")
    path = write_bytes(tmp_path / "train.json", text)
    data = read(path, type="sciq")
    assert f"{path}:2: not UTF-8 (invalid byte 0xE8)" in only_example(data, "not UTF-8")
    assert len(data.items) == 1


def test_empty_file_is_one_rejection(tmp_path):
    path = write_bytes(tmp_path / "train.jsonl", b"\n  \n")
    data = read(path, type="jsonl")
    assert f"{path}:1: empty file" in only_example(data, "empty file")
    assert data.stats.read == 1


def test_truncated_json_document_keeps_earlier_items(tmp_path):
    text = json.dumps(SCIQ_TRAIN[:2], indent=1)
    path = write_bytes(tmp_path / "train.json", text[:-30].encode())
    data = read(path, type="sciq")
    assert len(data.items) == 1
    assert data.stats.rejected["invalid JSON"] == 1


def test_source_with_nothing_usable_names_reasons(tmp_path):
    no_question = {key: value for key, value in SCIQ_TRAIN[0].items() if key != "question"}
    text = json.dumps([no_question, no_question])[:-1] + ", {"
    path = write_bytes(tmp_path / "sciq" / "train.json", text.encode())
    with pytest.raises(DataError) as raised:
        _build_single(tmp_path, tmp_path / "sciq", "sciq")
    message = str(raised.value)
    assert message.startswith(f"sciq: 0 usable rows from {tmp_path / 'sciq'}")
    assert "(3 rejected: 2 missing field 'question', 1 invalid JSON" in message
    assert path.exists()


def test_rejections_are_logged_with_rate_limit(tmp_path, caplog):
    lines = "\n".join(["not json"] * 12 + [json.dumps({"question": "What is the unit of force?", "answer": "newton"})])
    path = write_bytes(tmp_path / "train.jsonl", lines.encode())
    with caplog.at_level(logging.WARNING, logger="physlora.data"):
        data = read(path, type="jsonl")
    assert data.stats.rejected["invalid JSON"] == 12
    messages = [record.getMessage() for record in caplog.records]
    assert sum(message.startswith("jsonl: rejected row") for message in messages) == 5
    assert f"jsonl: rejected row {path}:1: invalid JSON" in messages[0]
    assert any(f"7 more rejected rows in {path}" in message for message in messages)


def test_audit_counts_rejections_by_reason(tmp_path, make_config):
    rows = generated_physics_rows(20)
    lines = [json.dumps(row) for row in rows] + ["{oops", json.dumps({"question": "Where is the answer?"})]
    path = write_bytes(tmp_path / "qa" / "train.jsonl", "\n".join(lines).encode())
    config = make_config(tmp_path, [{"type": "jsonl", "name": "qa", "path": "qa"}])
    audit = build_dataset(config, tmp_path / "out")
    source = audit["sources"]["qa"]
    assert source["read"] == 22
    assert source["rejected_by_reason"] == {"invalid JSON": 1, "missing field 'answer'": 1}
    assert source["rejected_examples"]["invalid JSON"][0].startswith(f"qa: {path}:21: invalid JSON")
    assert source["rejected_examples"]["missing field 'answer'"] == [f"qa: {path}:22: missing field 'answer'"]
    assert audit["checks"]["counts_reconcile"] is True
    assert "missing field 'answer': 1" in (tmp_path / "out" / "audit.md").read_text()
