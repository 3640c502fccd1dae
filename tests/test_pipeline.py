"""The main job: every stage once, then only the stages whose settings changed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from physlora.cli import app
from physlora.config import load_config
from physlora.errors import DataError
from physlora.pipeline import run_pipeline

SMALL_RUN = [
    "data.sources=[{type: sciq, path: sciq, max_items: 16}, {type: mmlu, path: mmlu, max_items: 16}]",
    "training.epochs=1",
    "evaluation.max_items=4",
    "evaluation.bootstrap_samples=50",
]


def small_config(run_dir, *extra):
    return load_config(preset="tiny", overrides=[*SMALL_RUN, f"output.dir={run_dir}", *extra])


@pytest.fixture
def finished_run(tmp_path, shared_data_dir, t5_tokenizer_path, monkeypatch):
    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(shared_data_dir))
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--preset", "tiny", *sum((["--set", o] for o in SMALL_RUN), []),
                                      "--set", f"output.dir={run_dir}"])
    assert result.exit_code == 0, result.output
    assert f"report: {run_dir / 'report.md'}" in result.output
    return run_dir


def test_run_writes_every_stage(finished_run):
    for name in ("data/train.jsonl", "data/audit.json", "summary.json", "adapter/adapter_config.json",
                 "eval.json", "predictions.jsonl", "report.md", "report.html"):
        assert (finished_run / name).is_file(), name
    stages = json.loads((finished_run / "stages.json").read_text(encoding="utf-8"))
    assert sorted(stages) == ["data", "eval", "train"]


def test_rerun_skips_up_to_date_stages(finished_run):
    before = {name: (finished_run / name).stat().st_mtime_ns for name in ("data/audit.json", "summary.json", "eval.json")}
    run_pipeline(small_config(finished_run))
    after = {name: (finished_run / name).stat().st_mtime_ns for name in before}
    assert after == before


def test_changed_evaluation_reruns_only_eval(finished_run):
    summary_time = (finished_run / "summary.json").stat().st_mtime_ns
    eval_time = (finished_run / "eval.json").stat().st_mtime_ns
    run_pipeline(small_config(finished_run, "evaluation.max_items=3"))
    assert (finished_run / "summary.json").stat().st_mtime_ns == summary_time
    assert (finished_run / "eval.json").stat().st_mtime_ns != eval_time
    assert json.loads((finished_run / "eval.json").read_text(encoding="utf-8"))["settings"]["max_items"] == 3


def test_changed_training_retrains(finished_run):
    summary_time = (finished_run / "summary.json").stat().st_mtime_ns
    run_pipeline(small_config(finished_run, "training.learning_rate=2e-3"))
    assert (finished_run / "summary.json").stat().st_mtime_ns != summary_time
    summary = json.loads((finished_run / "summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["training"]["learning_rate"] == 2e-3


def test_missing_data_says_how_to_point_at_it(tmp_path, t5_tokenizer_path, monkeypatch):
    monkeypatch.setenv("PHYSLORA_DATA_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(DataError, match="set PHYSLORA_DATA_DIR or data.data_dir"):
        run_pipeline(small_config(tmp_path / "run"))


def test_continued_run_measures_forgetting(finished_run, tmp_path):
    child = tmp_path / "child"
    run_pipeline(small_config(child, f"training.init_from={finished_run}"))
    stages = json.loads((child / "stages.json").read_text(encoding="utf-8"))
    assert sorted(stages) == ["data", "eval", "forgetting", "train"]
    result = json.loads((child / "forgetting.json").read_text(encoding="utf-8"))
    assert result["parent_run"] == str(finished_run)
    parent_test_items = len((finished_run / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines())
    assert result["comparisons"]["previous"]["n_items"] == min(4, parent_test_items)
    assert "## Continual adaptation and forgetting" in (child / "report.md").read_text(encoding="utf-8")

    forgetting_time = (child / "forgetting.json").stat().st_mtime_ns
    run_pipeline(small_config(child, f"training.init_from={finished_run}"))
    assert (child / "forgetting.json").stat().st_mtime_ns == forgetting_time
