"""`physlora bench infer` and `physlora bench data` on tiny inputs, and the source scaling behind the latter."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from physlora.bench.data import run_data_benchmark, scale_arc, scale_mmlu, scale_sciq, scaled_config
from physlora.bench.infer import MODE_FIELDS
from physlora.cli import app
from physlora.errors import ConfigError


def test_infer_bench_reports_every_field(bench_source_dir, t5_tokenizer_path, tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(bench_source_dir))
    out = tmp_path / "infer.json"
    outcome = CliRunner().invoke(app, [
        "bench", "infer", "--preset", "tiny", "--items", "4", "--max-new-tokens", "3", "--batch-size", "4",
        "--out", str(out),
    ])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["machine"]["cpu_model"]
    assert len(result["load_average_start"]) == 3
    for name, mode in result["modes"].items():
        missing = [field for field in MODE_FIELDS if mode.get(field) is None]
        assert missing == [], f"{name} lacks {missing}"
        assert mode["items"] == 4, name
    assert result["modes"]["one_by_one"]["batch_size"] == 1
    assert result["modes"]["batched"]["batch_size"] == 4
    expected = result["modes"]["batched"]["answers_per_s"] / result["modes"]["one_by_one"]["answers_per_s"]
    assert result["ratios"]["answers_per_s"] == pytest.approx(expected)
    assert 0 <= result["identical_answers"] <= 4
    assert result["targets"][0]["value"] == result["ratios"]["answers_per_s"]


def test_scale_writers_repeat_with_new_questions(bench_source_dir, tmp_path):
    for scaler, name in ((scale_sciq, "sciq"), (scale_arc, "arc"), (scale_mmlu, "mmlu")):
        once, three = tmp_path / f"{name}-1", tmp_path / f"{name}-3"
        once.mkdir()
        three.mkdir()
        assert scaler(bench_source_dir / name, three, 3) == 3 * scaler(bench_source_dir / name, once, 1), name

    sciq = json.loads((tmp_path / "sciq-3" / "train.json").read_text(encoding="utf-8"))
    assert len({row["question"] for row in sciq}) == len(sciq)
    arc = [json.loads(line) for line in (tmp_path / "arc-3" / "ARC-Easy-Train.jsonl").read_text().splitlines()]
    assert len({row["id"] for row in arc}) == len(arc)
    assert len({row["question"]["stem"] for row in arc}) == len(arc)
    with open(tmp_path / "mmlu-3" / "test" / "high_school_physics_test.csv", newline="", encoding="utf-8") as handle:
        mmlu = list(csv.reader(handle))
    assert len({row[0] for row in mmlu}) == len(mmlu)


def test_data_bench_grows_records(tiny_config, tmp_path):
    result = run_data_benchmark(tiny_config(), tmp_path / "data.json", ["test"], scales=(1, 2))
    first, second = result["scales"]
    assert second["input_rows"] == 2 * first["input_rows"]
    assert sum(second["records"].values()) > sum(first["records"].values())
    for entry in result["scales"]:
        for field in ("time_s", "rows_per_s", "time_vs_first", "rows_vs_first", "load_average_after"):
            assert entry[field] is not None, field
    assert second["rows_vs_first"] == 2
    assert json.loads((tmp_path / "data.json").read_text(encoding="utf-8"))["scales"] == result["scales"]


def test_data_bench_rejects_unscalable_source(tiny_config, tmp_path):
    config = tiny_config("data.sources=[{type: jsonl, path: extra.jsonl}]")
    with pytest.raises(ConfigError, match="jsonl"):
        scaled_config(config, tmp_path / "scaled", 2)


def test_data_bench_skips_missing_optional_source(tiny_config, tmp_path):
    config = tiny_config("data.sources=[{type: sciq, path: sciq}, {type: scienceqa, path: absent, optional: true}]")
    scaled, rows = scaled_config(config, tmp_path / "scaled", 2)
    assert [source.type for source in scaled.data.sources] == ["sciq"]
    assert rows == 2 * 8


def test_data_bench_rejects_bad_scales(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="scales"):
        run_data_benchmark(tiny_config(), tmp_path / "data.json", ["test"], scales=(0, 2))
