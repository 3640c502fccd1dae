"""Whole builds on the fixture folder: files, counts that reconcile, determinism, options and errors."""

from __future__ import annotations

import json

import pytest
from source_files import ALL_SOURCES

from physlora.data.build import build_dataset
from physlora.data.records import read_jsonl
from physlora.data.split import SPLITS
from physlora.errors import DataError

OUTPUT_FILES = ("train.jsonl", "validation.jsonl", "test.jsonl", "audit.json", "audit.md")


def test_build_writes_files_and_reconciles(data_root, make_config, tmp_path):
    sources = [*ALL_SOURCES, {"type": "jsonl", "name": "absent", "path": "nowhere", "optional": True}]
    audit = build_dataset(make_config(data_root, sources), tmp_path / "out")
    for name in OUTPUT_FILES:
        assert (tmp_path / "out" / name).is_file(), name
    assert audit == json.loads((tmp_path / "out" / "audit.json").read_text(encoding="utf-8"))
    assert audit["checks"]["counts_reconcile"] is True
    for name in SPLITS:
        assert audit["splits"][name] == len(read_jsonl(tmp_path / "out" / f"{name}.jsonl"))
    assert audit["skipped_sources"][0]["source"] == "absent"
    assert "nowhere not found" in audit["skipped_sources"][0]["reason"]


def test_build_counts_per_source(data_root, make_config, tmp_path):
    sources = build_dataset(make_config(data_root, ALL_SOURCES), tmp_path / "out")["sources"]
    expected = {
        # label: (read, filtered as not physics, duplicates removed, kept)
        "sciq": (7, 1, 1, 5),
        "arc": (4, 1, 0, 3),
        "mmlu": (4, 0, 0, 4),
        "scienceqa": (3, 1, 0, 2),
        "physics_scienceqa": (3, 0, 0, 3),
        "generated": (80, 0, 0, 80),
    }
    for label, (read, filtered, duplicates, kept) in expected.items():
        source = sources[label]
        assert (source["read"], source["filtered_non_physics"], source["duplicates_removed"], source["kept"]) == (
            read, filtered, duplicates, kept), label  # fmt: skip
        assert source["rejected"] == 0
    assert sources["sciq"]["filtered_examples"] == ["Which organelle carries out photosynthesis in plant cells?"]


def test_labelled_sources_are_tagged_not_filtered(data_root, make_config, tmp_path):
    build_dataset(make_config(data_root, [{"type": "mmlu"}]), tmp_path / "out")
    records = [record for name in SPLITS for record in read_jsonl(tmp_path / "out" / f"{name}.jsonl")]
    topics = {record.question[:20]: record.topic for record in records}
    assert topics["Which quantity is co"] == "momentum"
    assert topics["What is the unit of "] == "waves_optics"


def test_same_seed_gives_identical_files(data_root, make_config, tmp_path):
    config = make_config(data_root, ALL_SOURCES)
    first = build_dataset(config, tmp_path / "one")
    second = build_dataset(config, tmp_path / "two")
    for name in SPLITS:
        assert (tmp_path / "one" / f"{name}.jsonl").read_bytes() == (tmp_path / "two" / f"{name}.jsonl").read_bytes()
    first.pop("build_time_s")
    second.pop("build_time_s")
    assert first == second


def test_other_seed_changes_split(data_root, make_config, tmp_path):
    build_dataset(make_config(data_root, ALL_SOURCES, seed=1), tmp_path / "one")
    build_dataset(make_config(data_root, ALL_SOURCES, seed=2), tmp_path / "two")
    first = {record.id for record in read_jsonl(tmp_path / "one" / "test.jsonl")}
    second = {record.id for record in read_jsonl(tmp_path / "two" / "test.jsonl")}
    assert first != second


def test_targets_with_and_without_explanation(data_root, make_config, tmp_path):
    for include in (False, True):
        out = tmp_path / str(include)
        build_dataset(make_config(data_root, [{"type": "sciq"}], include_explanation=include), out)
        records = {record.answer: record for name in SPLITS for record in read_jsonl(out / f"{name}.jsonl")}
        explained = records["it decreases"]
        expected = "it decreases Wave speed equals frequency times wavelength." if include else "it decreases"
        assert explained.target == expected
        assert records["friction"].target == "friction"


def test_max_items_counts_subsampled(data_root, make_config, tmp_path):
    sources = [{"type": "jsonl", "name": "generated", "path": "generated", "max_items": 30}]
    audit = build_dataset(make_config(data_root, sources), tmp_path / "out")
    assert audit["sources"]["generated"]["subsampled_away"] == 50
    assert audit["sources"]["generated"]["kept"] == 30
    assert sum(audit["splits"].values()) == 30


def test_physics_only_off_keeps_unlabelled(data_root, make_config, tmp_path):
    audit = build_dataset(make_config(data_root, ALL_SOURCES, physics_only=False), tmp_path / "out")
    assert audit["sources"]["sciq"]["filtered_non_physics"] == 0
    assert audit["sources"]["arc"]["filtered_non_physics"] == 0
    # ScienceQA labels its own subjects, so its biology problem is still left out.
    assert audit["sources"]["scienceqa"]["filtered_non_physics"] == 1


def test_missing_source_names_path_and_settings(tmp_path, make_config, monkeypatch):
    monkeypatch.delenv("PHYSLORA_DATA_DIR", raising=False)
    config = make_config(tmp_path / "empty", [{"type": "sciq"}])
    with pytest.raises(DataError) as raised:
        build_dataset(config, tmp_path / "out")
    message = str(raised.value)
    assert str(tmp_path / "empty" / "sciq") in message
    assert "PHYSLORA_DATA_DIR" in message
    assert "data.data_dir" in message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


def test_environment_variable_overrides_data_dir(data_root, make_config, tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(data_root))
    audit = build_dataset(make_config(tmp_path / "elsewhere", [{"type": "arc"}]), tmp_path / "out")
    assert audit["data_dir"] == str(data_root)
    assert audit["data_dir_origin"] == "environment variable PHYSLORA_DATA_DIR"


def test_absolute_source_path_used_as_is(data_root, make_config, tmp_path):
    sources = [{"type": "arc", "path": str(data_root / "arc" / "ARC-Challenge-Train.jsonl")}]
    audit = build_dataset(make_config(tmp_path / "unused", sources), tmp_path / "out")
    assert audit["sources"]["arc"]["read"] == 4


def test_repeated_source_labels_are_rejected(data_root, make_config, tmp_path):
    from physlora.errors import ConfigError

    with pytest.raises(ConfigError, match="several data sources are labelled arc"):
        build_dataset(make_config(data_root, [{"type": "arc"}, {"type": "arc"}]), tmp_path / "out")


def test_audit_markdown_lists_sources_and_topics(data_root, make_config, tmp_path):
    build_dataset(make_config(data_root, ALL_SOURCES), tmp_path / "out")
    text = (tmp_path / "out" / "audit.md").read_text(encoding="utf-8")
    assert "Counts reconcile: **yes**" in text
    assert "| sciq | 7 | 0 | 1 | 1 | 0 | 0 | 5 |" in text
    assert "| momentum |" in text
    assert "Not measured: no tokenizer was given." in text
