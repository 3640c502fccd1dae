"""Continual adaptation: --init-from starts from the parent adapter, replay adds its data, forgetting is measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from physics_records import physics_records
from safetensors.torch import load_file
from typer.testing import CliRunner

from physlora.cli import app
from physlora.data.records import write_jsonl
from physlora.errors import ConfigError, RunFolderError
from physlora.eval.forgetting import evaluate_forgetting
from physlora.eval.runner import evaluate_run
from physlora.report.build import write_report
from physlora.train import train_run

runner = CliRunner()


def _weights(run_dir: Path, folder: str = "adapter") -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / folder / "adapter_model.safetensors"))


def _write_new_topic(folder: Path, train_count: int = 20) -> Path:
    """Train, validation and test records whose questions differ from the parent's data."""
    splits = {"train": physics_records(train_count, prefix="n"), "validation": physics_records(6, prefix="nv"),
              "test": physics_records(8, prefix="nt")}
    for name, records in splits.items():
        renamed = [record.with_changes(question=f"In the new topic: {record.question}", topic="electromagnetism")
                   for record in records]
        write_jsonl(renamed, folder / f"{name}.jsonl")
    return folder


@pytest.fixture
def parent_run(make_config, data_dir) -> Path:
    """A one-epoch run on the 40-record training folder, with a test split for the forgetting measurement."""
    write_jsonl(physics_records(8, prefix="t"), data_dir / "test.jsonl")
    config = make_config("training.epochs=1", "training.learning_rate=1e-2", run="parent")
    train_run(config)
    return Path(config.output.dir)


def test_init_from_starts_from_parent_weights(make_config, parent_run):
    config = make_config(f"training.init_from={parent_run}", run="child")
    summary = train_run(config, max_steps=0)
    child = Path(config.output.dir)

    parent_weights, child_weights = _weights(parent_run), _weights(child)
    assert parent_weights.keys() == child_weights.keys()
    for name, tensor in parent_weights.items():
        torch.testing.assert_close(child_weights[name], tensor, atol=0, rtol=0, msg=name)
    # Same validation data: the child's loss before training is the parent's loss after its last epoch.
    parent_summary = json.loads((parent_run / "summary.json").read_text(encoding="utf-8"))
    assert summary["epochs"][0]["val_loss"] == pytest.approx(parent_summary["epochs"][-1]["val_loss"], abs=1e-6)
    assert summary["continual"]["parent_run"] == str(parent_run)
    assert f"init_from: {parent_run}" in (child / "config.yaml").read_text(encoding="utf-8")


def test_replay_fraction_counts(make_config, parent_run, tmp_path):
    new_data = _write_new_topic(tmp_path / "new-data")
    config = make_config(f"training.init_from={parent_run}", "training.replay_fraction=0.25",
                         f"output.data_dir={new_data}", "training.epochs=1", run="replay")
    summary = train_run(config)

    replay = summary["continual"]
    assert (replay["parent_train_records"], replay["sampled"], replay["replayed"]) == (40, 10, 10)
    assert (replay["new_train_records"], replay["train_records"], replay["excluded_overlap"]) == (20, 30, 0)
    # 30 examples in micro-batches of 4 make 8 micro-batches, and accumulation 2 makes 4 optimizer steps.
    assert summary["steps"] == 4


def test_replay_leaves_out_overlapping_records(make_config, parent_run):
    # The same data folder as the parent: every sampled record is already in the new training split.
    config = make_config(f"training.init_from={parent_run}", "training.replay_fraction=0.5", "training.epochs=1",
                         run="overlap")
    replay = train_run(config)["continual"]
    assert (replay["sampled"], replay["excluded_overlap"], replay["replayed"]) == (20, 20, 0)


def test_forgetting_numbers_and_report(make_config, parent_run, tmp_path):
    new_data = _write_new_topic(tmp_path / "new-data")
    config = make_config(f"training.init_from={parent_run}", f"output.data_dir={new_data}", "training.epochs=2",
                         "training.learning_rate=1e-2", run="forgetting")
    train_run(config)
    run_dir = Path(config.output.dir)

    result = evaluate_forgetting(run_dir, max_items=6)
    assert result == json.loads((run_dir / "forgetting.json").read_text(encoding="utf-8"))
    comparisons = result["comparisons"]
    previous, new, new_vs_previous = comparisons["previous"], comparisons["new"], comparisons["new_vs_previous"]
    assert (previous["n_items"], new["n_items"], new_vs_previous["n_items"]) == (6, 6, 6)
    assert (previous["before"], new["before"], new_vs_previous["before"]) == ("previous adapter", "base model",
                                                                               "previous adapter")
    assert [entry["split"] for entry in comparisons.values()] == ["previous", "new", "new"]
    # The new adapter on the new split is scored once and shared by both comparisons on that split.
    assert new["metrics"]["overall"]["loss"]["adapted"] == new_vs_previous["metrics"]["overall"]["loss"]["adapted"]

    # The parent adapter on its own test items gives the numbers `physlora eval` gives for the parent run.
    parent_eval = evaluate_run(parent_run, max_items=6)["metrics"]["overall"]
    before = previous["metrics"]["overall"]
    assert before["loss"]["base"] == pytest.approx(parent_eval["loss"]["adapted"], abs=1e-6)
    assert before["token_f1"]["base"]["value"] == pytest.approx(parent_eval["token_f1"]["adapted"]["value"])
    # Training on the new topic changed the adapter, so the loss on the previous items changed.
    assert before["loss"]["difference"] != 0
    assert before["loss"]["difference"] == pytest.approx(before["loss"]["adapted"] - before["loss"]["base"])

    rows = [json.loads(line) for line in (run_dir / "forgetting-new.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6
    mean_f1 = sum(row["adapted"]["token_f1"] for row in rows) / len(rows)
    assert new["metrics"]["overall"]["token_f1"]["adapted"]["value"] == pytest.approx(mean_f1)

    report = write_report(run_dir).read_text(encoding="utf-8")
    assert "## Continual adaptation and forgetting" in report
    assert f"previous adapter {before['loss']['base']:.4f}, new adapter {before['loss']['adapted']:.4f}" in report
    assert "| new test split | token F1 | 6 | previous adapter |" in report
    assert "| previous test split | token F1 | 6 | previous adapter |" in report
    assert f"Training started from the adapter of {parent_run}" in report


def test_missing_parent_run_rejected(make_config, tmp_path):
    config = make_config(f"training.init_from={tmp_path / 'nowhere'}")
    with pytest.raises(RunFolderError, match="training.init_from=.*nowhere: run folder not found"):
        train_run(config)


def test_parent_with_other_base_model_rejected(make_config, parent_run):
    config = make_config(f"training.init_from={parent_run}", "model.config.d_model=48")
    with pytest.raises(ConfigError, match="model.config is .* here but .* in .*config.yaml"):
        train_run(config)


def test_parent_with_other_lora_rank_rejected(make_config, parent_run):
    config = make_config(f"training.init_from={parent_run}", "lora.r=8")
    with pytest.raises(ConfigError, match="lora.r is 8 here but 4"):
        train_run(config)


def test_forgetting_needs_init_from(parent_run):
    with pytest.raises(ConfigError, match="training.init_from is not set"):
        evaluate_forgetting(parent_run)


def test_cli_init_from_and_forgetting(parent_run, data_dir, tmp_path):
    run_dir = tmp_path / "cli-child"
    result = runner.invoke(app, [
        "train", "--preset", "tiny", "--set", f"output.dir={run_dir}", "--set", f"output.data_dir={data_dir}",
        "--init-from", str(parent_run), "--max-steps", "1",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["continual"]["parent_run"] == str(parent_run)

    result = runner.invoke(app, ["forgetting", str(run_dir), "--max-items", "3"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "forgetting.json").is_file()

    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--init-from", str(parent_run)])
    assert result.exit_code == 2
    assert "cannot be combined with --resume" in result.output
