"""Token statistics with the real T5 tokenizer, which has no pieces for `{` and `}`."""

from __future__ import annotations

import logging

import pytest
from source_files import ALL_SOURCES

from physlora.data.build import build_dataset
from physlora.data.records import Record
from physlora.data.tokens import length_summary, load_tokenizer, percentile, token_statistics, tokenizer_for_build

TEMPLATE = "Question: {question}\nAnswer:"


@pytest.fixture(scope="module")
def t5_tokenizer(t5_tokenizer_path):
    tokenizer = load_tokenizer(str(t5_tokenizer_path))
    assert tokenizer is not None
    return tokenizer


def record(index: int, question: str, target: str) -> Record:
    return Record(id=f"t-{index}", source="t", question=question, answer=target, target=target)


def test_percentiles_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert length_summary([3, 1, 2]) == {"count": 3, "mean": 2.0, "p50": 2, "p95": 3, "max": 3}
    assert length_summary([])["count"] == 0


def test_counts_unknown_token_targets(t5_tokenizer):
    splits = {
        "train": [record(1, "What is the set notation for the empty set?", "{}"),
                  record(2, "What is the unit of force?", "newton")],
        "validation": [record(3, "Write the vector as a set.", "{x, y}")],
        "test": [record(4, "What is the unit of work?", "joule")],
    }  # fmt: skip
    stats = token_statistics(splits, t5_tokenizer, TEMPLATE, max_source_length=512, max_target_length=128)
    unknown = stats["unknown_tokens"]
    assert unknown["targets_with_unknown"] == 2
    assert unknown["prompts_with_unknown"] == 0
    assert set(unknown["target_characters"]) == {"{", "}"}
    assert unknown["target_characters"]["{"] == 2


def test_lengths_and_truncation(t5_tokenizer):
    long_question = "Why does " + "a very heavy ball " * 20 + "fall?"
    splits = {
        "train": [record(1, long_question, "gravity " * 10)],
        "validation": [],
        "test": [record(2, "Why?", "because")],
    }
    stats = token_statistics(splits, t5_tokenizer, TEMPLATE, max_source_length=32, max_target_length=5)
    # "Question: Why?\nAnswer:" plus the end-of-sequence token.
    expected_short = len(t5_tokenizer(TEMPLATE.replace("{question}", "Why?"))["input_ids"])
    assert stats["prompt_tokens"]["count"] == 2
    assert stats["prompt_tokens"]["p50"] == expected_short
    assert stats["prompt_tokens"]["max"] > 32
    assert stats["truncated"]["prompt"] == {"train": 1, "validation": 0, "test": 0}
    assert stats["truncated"]["target"] == {"train": 1, "validation": 0, "test": 0}
    assert stats["truncated"]["prompt_plus_target"]["train"] == 1


def test_build_records_token_stats(data_root, make_config, tmp_path, t5_tokenizer):
    config = make_config(data_root, ALL_SOURCES)
    audit = build_dataset(config, tmp_path / "out", tokenizer=t5_tokenizer, max_source_length=16, max_target_length=4)
    tokens = audit["tokens"]
    assert tokens["measured"] is True
    assert tokens["max_source_length"] == 16
    assert tokens["prompt_tokens"]["count"] == sum(audit["splits"].values())
    assert sum(tokens["truncated"]["prompt"].values()) > 0
    assert "Targets containing the unknown token `<unk>`" in (tmp_path / "out" / "audit.md").read_text()


def test_missing_tokenizer_folder_warns_and_returns_none(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="physlora.data"):
        assert load_tokenizer(str(tmp_path / "no-such-tokenizer")) is None
    assert "could not be loaded" in caplog.text


def test_model_name_used_only_when_local(tmp_path, t5_tokenizer_path, monkeypatch):
    assert tokenizer_for_build(None, None, "google/flan-t5-base") is None
    monkeypatch.setenv("T5_FOLDER", str(t5_tokenizer_path))
    assert tokenizer_for_build(None, "${T5_FOLDER}", "unused") is not None
    assert tokenizer_for_build(None, "$UNSET_TOKENIZER_FOLDER", "unused") is None
