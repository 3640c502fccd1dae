"""`physlora eval` run in-process through typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from physlora.cli import app
from physlora.errors import RunFolderError


def test_cli_eval_writes_files_and_prints_paths(tiny_run):
    result = CliRunner().invoke(app, ["eval", str(tiny_run), "--max-items", "3", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert str(tiny_run / "eval.json") in result.output
    assert str(tiny_run / "predictions.jsonl") in result.output
    settings = json.loads((tiny_run / "eval.json").read_text(encoding="utf-8"))["settings"]
    assert settings["n_items"] == 3
    assert settings["batch_size"] == 2
    assert settings["split"] == "test"


def test_cli_eval_missing_run_folder(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "absent")])
    assert result.exit_code == RunFolderError.exit_code
    assert "error: run folder" in result.output
    assert "physlora train" in result.output


def test_cli_eval_split_option(tiny_run):
    result = CliRunner().invoke(app, ["eval", str(tiny_run), "--split", "validation"])
    assert result.exit_code == RunFolderError.exit_code
    assert "validation.jsonl not found" in result.output


def test_cli_eval_rejects_unknown_split(tiny_run):
    result = CliRunner().invoke(app, ["eval", str(tiny_run), "--split", "train"])
    assert result.exit_code == 2
    assert "evaluation options" in result.output
