"""Resuming an interrupted or crashed run gives the same adapter, steps and learning rates as one session."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from physlora.errors import RunFolderError
from physlora.train import train_run
from physlora.train.setup import build_adapted_model

# Dropout on, so a resumed run matches only when the RNG state is restored too.
SETTINGS = ("training.epochs=2", "training.checkpoint_every=2", "lora.dropout=0.2", "training.learning_rate=5e-3")


def _adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def _steps(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["type"] == "step"]


def _assert_same_run(resumed: Path, reference: Path) -> None:
    resumed_adapter, reference_adapter = _adapter(resumed), _adapter(reference)
    assert resumed_adapter.keys() == reference_adapter.keys()
    for name, tensor in reference_adapter.items():
        torch.testing.assert_close(resumed_adapter[name], tensor, atol=1e-6, rtol=0, msg=name)
    resumed_steps, reference_steps = _steps(resumed), _steps(reference)
    assert [record["step"] for record in resumed_steps] == [record["step"] for record in reference_steps]
    assert [record["lr"] for record in resumed_steps] == [record["lr"] for record in reference_steps]
    assert [record["loss"] for record in resumed_steps] == pytest.approx([r["loss"] for r in reference_steps], abs=1e-6)


@pytest.fixture
def reference_run(make_config) -> Path:
    config = make_config(*SETTINGS, run="reference")
    summary = train_run(config)
    assert summary["steps"] == 10
    return Path(config.output.dir)


def test_resume_after_sigint_matches_one_session(make_config, reference_run):
    config = make_config(*SETTINGS, run="interrupted")
    run_dir = Path(config.output.dir)

    def send_sigint_at_step_3(event):
        if event.kind == "step" and event.step == 3:
            signal.raise_signal(signal.SIGINT)

    # A job started in the background inherits an ignored SIGINT, so compare with what was installed.
    handler_before = signal.getsignal(signal.SIGINT)
    summary = train_run(config, progress=send_sigint_at_step_3)
    assert summary["status"] == "interrupted"
    assert summary["steps"] == 3
    assert (run_dir / "checkpoints" / "step-000003").is_dir()
    assert not (run_dir / "adapter").exists()
    assert signal.getsignal(signal.SIGINT) is handler_before

    summary = train_run(config, resume=True)
    assert summary["status"] == "finished"
    assert summary["steps"] == 10
    _assert_same_run(run_dir, reference_run)


def test_resume_after_crash_drops_repeated_steps(make_config, reference_run):
    config = make_config(*SETTINGS, run="crashed")
    run_dir = Path(config.output.dir)

    def crash_at_step_7(event):
        if event.kind == "step" and event.step == 7:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run(config, progress=crash_at_step_7)
    assert [record["step"] for record in _steps(run_dir)][-1] == 7

    summary = train_run(config, resume=True)
    assert summary["steps"] == 10
    _assert_same_run(run_dir, reference_run)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    resume_events = [record for record in records if record.get("event") == "resume"]
    assert resume_events == [resume_events[0]]
    assert resume_events[0]["checkpoint"] == "step-000006"
    assert [record["epoch"] for record in records if record["type"] == "epoch"] == [0, 1, 2]
    assert [record["epoch"] for record in summary["epochs"]] == [0, 1, 2]


def test_resume_of_finished_run_returns_its_summary(make_config):
    config = make_config("training.epochs=1")
    first = train_run(config)
    again = train_run(config, resume=True)
    assert again == json.loads((Path(config.output.dir) / "summary.json").read_text(encoding="utf-8"))
    assert again["total_time_s"] == first["total_time_s"]


def test_resume_of_non_run_folder_rejected(make_config, tmp_path):
    config = make_config(f"output.dir={tmp_path / 'empty'}")
    with pytest.raises(RunFolderError, match="not a run folder"):
        train_run(config, resume=True)


def test_same_seed_gives_identical_initial_adapters(make_config):
    first = build_adapted_model(make_config(), "cpu").model
    second = build_adapted_model(make_config(), "cpu").model
    other_seed = build_adapted_model(make_config("training.seed=7"), "cpu").model

    lora = {name: parameter for name, parameter in first.named_parameters() if "lora_" in name}
    assert lora
    second_parameters = dict(second.named_parameters())
    other_parameters = dict(other_seed.named_parameters())
    for name, parameter in lora.items():
        assert torch.equal(parameter, second_parameters[name]), name
    assert any(not torch.equal(parameter, other_parameters[name]) for name, parameter in lora.items() if "lora_A" in name)
