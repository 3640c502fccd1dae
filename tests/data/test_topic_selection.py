"""data.topics keeps the records of the chosen topics and counts the rest in the audit."""

from __future__ import annotations

from collections import Counter

import pytest
from source_files import ALL_SOURCES

from physlora.data.build import build_dataset
from physlora.data.records import read_jsonl
from physlora.data.split import SPLITS
from physlora.errors import ConfigError, DataError


def test_topics_keep_only_chosen(data_root, make_config, tmp_path):
    everything = build_dataset(make_config(data_root, ALL_SOURCES), tmp_path / "all")
    chosen = max(everything["topics"], key=everything["topics"].get)
    audit = build_dataset(make_config(data_root, ALL_SOURCES, topics=[chosen]), tmp_path / "chosen")

    topics = Counter(record.topic for name in SPLITS for record in read_jsonl(tmp_path / "chosen" / f"{name}.jsonl"))
    assert set(topics) == {chosen}
    assert sum(audit["splits"].values()) == topics[chosen]
    assert audit["checks"]["counts_reconcile"] is True
    excluded = sum(source["excluded_by_topic"] for source in audit["sources"].values())
    assert excluded > 0
    assert "other topic" in (tmp_path / "chosen" / "audit.md").read_text(encoding="utf-8")


def test_topic_without_records_rejected(data_root, make_config, tmp_path):
    with pytest.raises(DataError, match=r"no record is tagged with a topic in data.topics=\['thermodynamics'\]"):
        config = make_config(data_root, [{"type": "sciq", "path": "sciq"}], topics=["thermodynamics"])
        build_dataset(config, tmp_path / "out")


def test_unknown_topic_rejected(make_config):
    with pytest.raises(ConfigError, match="data.topics.0: got 'mechanic'"):
        make_config(None, ALL_SOURCES, topics=["mechanic"])
