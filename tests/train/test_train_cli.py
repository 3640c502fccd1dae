"""`physlora train` and `physlora models` run in-process through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from physlora.cli import app

runner = CliRunner()


def test_train_then_resume_finished_run(tmp_path, data_dir, t5_tokenizer_path):
    run_dir = tmp_path / "cli-run"
    result = runner.invoke(app, [
        "train", "--preset", "tiny", "--set", f"output.dir={run_dir}", "--set", f"output.data_dir={data_dir}",
        "--set", "training.epochs=1",
    ])
    assert result.exit_code == 0, result.output
    assert "finished: 5 steps" in result.output
    assert json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["status"] == "finished"

    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "already finished" in result.output
    assert "nothing to resume" in result.output


def test_train_max_steps_option(tmp_path, data_dir, t5_tokenizer_path):
    run_dir = tmp_path / "cli-max-steps"
    result = runner.invoke(app, [
        "train", "--preset", "tiny", "--set", f"output.dir={run_dir}", "--set", f"output.data_dir={data_dir}",
        "--max-steps", "2",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert (summary["status"], summary["steps"]) == ("max_steps", 2)
    assert "max_steps: 2" in (run_dir / "config.yaml").read_text(encoding="utf-8")


def test_resume_of_non_run_folder_exits_2(tmp_path):
    (tmp_path / "not-a-run").mkdir()
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "not-a-run")])
    assert result.exit_code == 2
    assert "not a run folder" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_resume_with_preset_rejected(tmp_path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path), "--preset", "tiny"])
    assert result.exit_code == 2
    assert "without --config or --preset" in result.output


def test_models_list_shows_cached_and_pullable(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSLORA_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "gemma-3-270m\tnot pulled" in result.output

    folder = tmp_path / "cache" / "models" / "gemma-3-270m"
    folder.mkdir(parents=True)
    marker = {"alias": "gemma-3-270m", "dtype": "float32", "built_at": "2025-01-01T00:00:00Z"}
    (folder / "physlora-pull.json").write_text(json.dumps(marker), encoding="utf-8")
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "gemma-3-270m\tfloat32" in result.output
    assert str(folder) in result.output
    assert "not pulled" not in result.output


def test_models_pull_unknown_alias_exits_2(tmp_path):
    result = runner.invoke(app, ["models", "pull", "gpt-9", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown model alias 'gpt-9'" in result.output
    assert not Path(tmp_path, "models").exists()
