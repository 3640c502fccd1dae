"""`physlora data build` run in-process through typer's CliRunner."""

from __future__ import annotations

import json

import yaml
from source_files import ALL_SOURCES
from typer.testing import CliRunner

from physlora.cli import app


def write_config(path, data_dir, sources=ALL_SOURCES):
    path.write_text(yaml.safe_dump({"data": {"data_dir": str(data_dir), "sources": sources}}), encoding="utf-8")
    return path


def test_data_build_on_fixtures(data_root, tmp_path):
    config = write_config(tmp_path / "run.yaml", data_root)
    out = tmp_path / "built"
    result = CliRunner().invoke(app, ["data", "build", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    audit = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    splits = audit["splits"]
    counts = f"train {splits['train']}, validation {splits['validation']}, test {splits['test']}"
    assert f"records: {counts}" in result.stdout
    assert f"audit: {out / 'audit.md'}" in result.stdout
    assert audit["tokens"]["measured"] is False


def test_data_build_preset_with_overrides(data_root, tmp_path):
    out = tmp_path / "built"
    args = [
        "data", "build", "--preset", "offline-demo",
        "--set", f"data.data_dir={data_root}",
        "--set", "data.sources=[{type: arc}, {type: jsonl, name: generated, path: generated, max_items: 20}]",
        "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    audit = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert sum(audit["splits"].values()) == 23
    assert audit["config"]["sources"][1]["max_items"] == 20


def test_data_build_default_out_dir(data_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path / "run.yaml", data_root, [{"type": "arc"}])
    result = CliRunner().invoke(app, ["data", "build", "-c", str(config), "--set", "output.dir=runs/first"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "first" / "data" / "train.jsonl").is_file()


def test_data_build_with_tokenizer(data_root, tmp_path, t5_tokenizer_path):
    config = write_config(tmp_path / "run.yaml", data_root)
    out = tmp_path / "built"
    args = ["data", "build", "-c", str(config), "--out", str(out), "--tokenizer", str(t5_tokenizer_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    audit = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert audit["tokens"]["measured"] is True


def test_missing_data_dir_exits_2_with_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("PHYSLORA_DATA_DIR", raising=False)
    config = write_config(tmp_path / "run.yaml", tmp_path / "no-data", [{"type": "sciq"}])
    result = CliRunner().invoke(app, ["data", "build", "-c", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: data not found: sciq at")
    assert "PHYSLORA_DATA_DIR" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
