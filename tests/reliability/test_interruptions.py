"""Interrupted training never loses work: `physlora train` killed, signalled or stopped by a NaN loss,
then continued with `physlora train --resume RUN`, ends with the adapter of an uninterrupted run.

Every run is the real console entry in a subprocess, on the tiny random T5 of preset tiny, one CPU
thread and a checkpoint after every optimizer step.
"""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from console_runs import REPO_ROOT, ConsoleResult, console_command, run_subprocess, subprocess_env
from physics_records import write_data
from safetensors.torch import load_file

pytestmark = pytest.mark.usefixtures("t5_tokenizer_path")

TRAIN_RECORDS = 96
"""With batch size 4 and accumulation 2 (preset tiny): 12 optimizer steps per epoch, 24 in 2 epochs."""
TOTAL_STEPS = 24
KILL_SEED = 20_251_204
TOLERANCE = 1e-6

# Runs a training command, but SIGKILLs the process inside the checkpoint write of one step: after every
# file is in the hidden temporary folder and before the rename that makes the checkpoint visible.
# NOTE: the trainer has no test hook that pauses inside a checkpoint write, so this script replaces
# physlora.train.checkpoint._fsync_files in the child process.
KILL_IN_CHECKPOINT_SCRIPT = """
import os, signal, sys
from physlora.train import checkpoint
from physlora.cli import main

kill_step = int(sys.argv[1])
fsync_files = checkpoint._fsync_files

def fsync_then_kill(folder):
    fsync_files(folder)
    if folder.name.startswith("." + checkpoint.checkpoint_name(kill_step) + "."):
        os.kill(os.getpid(), signal.SIGKILL)

checkpoint._fsync_files = fsync_then_kill
sys.argv = ["physlora", *sys.argv[2:]]
main()
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("interrupt-data"), TRAIN_RECORDS, 8)


def train_args(run_dir: Path, data_dir: Path) -> list[str]:
    return [
        "train", "--preset", "tiny", "--set", f"output.dir={run_dir}", "--set", f"output.data_dir={data_dir}",
        "--set", "training.checkpoint_every=1", "--set", "training.num_threads=1",
    ]  # fmt: skip


def resume(run_dir: Path) -> ConsoleResult:
    result = run_subprocess(["train", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.stderr
    assert f"finished: {TOTAL_STEPS} steps" in result.stdout
    return result


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, data_dir, t5_tokenizer_path) -> Path:
    """One uninterrupted run, the standard every interrupted run must match."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    result = run_subprocess(train_args(run_dir, data_dir))
    assert result.exit_code == 0, result.stderr
    return run_dir


def step_records(run_dir: Path) -> list[dict]:
    records = []
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut off by SIGKILL
        if record.get("type") == "step":
            records.append(record)
    return records


def latest_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    return max((record["step"] for record in step_records(run_dir)), default=0)


def complete_checkpoint_steps(run_dir: Path) -> list[int]:
    folder = run_dir / "checkpoints"
    steps = [int(path.name.split("-")[1]) for path in folder.glob("step-*") if (path / "trainer_state.json").is_file()]
    return sorted(steps)


def start_training(args: list[str], log_dir: Path, env: dict | None = None) -> subprocess.Popen:
    """Start a command in the background; its stdout and stderr go to files, so no pipe can fill up."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout = open(log_dir / "stdout.txt", "w", encoding="utf-8")
    stderr = open(log_dir / "stderr.txt", "w", encoding="utf-8")
    process = subprocess.Popen(args, cwd=REPO_ROOT, env=subprocess_env(env), stdout=stdout, stderr=stderr)
    stdout.close()
    stderr.close()
    return process


def finished_output(process: subprocess.Popen, log_dir: Path, timeout: float = 300) -> ConsoleResult:
    process.wait(timeout=timeout)
    stdout = (log_dir / "stdout.txt").read_text(encoding="utf-8")
    stderr = (log_dir / "stderr.txt").read_text(encoding="utf-8")
    return ConsoleResult(process.returncode, stdout, stderr)


def wait_for_step(process: subprocess.Popen, run_dir: Path, step: int, log_dir: Path, timeout: float = 240) -> None:
    """Poll metrics.jsonl until it contains the record of optimizer step `step`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if latest_step(run_dir) >= step:
            return
        if process.poll() is not None:
            pytest.fail(f"training exited with {process.returncode} before step {step}:\n"
                        + (log_dir / "stderr.txt").read_text(encoding="utf-8"))
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no step {step} record in {run_dir / 'metrics.jsonl'} after {timeout} s")


def assert_same_training(run_dir: Path, reference: Path) -> None:
    """The run ended where the reference ended: adapter tensors, steps, learning rates, losses, scheduler."""
    adapter = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    expected = load_file(reference / "adapter" / "adapter_model.safetensors")
    assert adapter.keys() == expected.keys()
    for name, tensor in expected.items():
        difference = (adapter[name] - tensor).abs().max().item()
        assert difference <= TOLERANCE, f"{name} differs by {difference}"

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    reference_summary = json.loads((reference / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished"
    assert summary["steps"] == reference_summary["steps"] == TOTAL_STEPS

    steps, reference_steps = step_records(run_dir), step_records(reference)
    assert [record["step"] for record in steps] == list(range(1, TOTAL_STEPS + 1))
    for record, expected_record in zip(steps, reference_steps):
        assert record["lr"] == pytest.approx(expected_record["lr"], abs=1e-12), record["step"]
        assert record["loss"] == pytest.approx(expected_record["loss"], rel=TOLERANCE), record["step"]

    for epoch, expected_epoch in zip(summary["epochs"], reference_summary["epochs"], strict=True):
        assert epoch["epoch"] == expected_epoch["epoch"]
        assert epoch.get("partial") is None
        for key in ("train_loss", "val_loss"):
            if expected_epoch.get(key) is not None:
                assert epoch[key] == pytest.approx(expected_epoch[key], rel=TOLERANCE), (epoch["epoch"], key)

    final = f"checkpoints/step-{TOTAL_STEPS:06d}/scheduler.pt"
    scheduler = torch.load(run_dir / final, weights_only=True)
    expected_scheduler = torch.load(reference / final, weights_only=True)
    assert scheduler["last_epoch"] == expected_scheduler["last_epoch"] == TOTAL_STEPS
    assert scheduler["_last_lr"] == pytest.approx(expected_scheduler["_last_lr"], abs=1e-12)


def test_sigkill_mid_epoch_then_resume(tmp_path, data_dir, reference_run):
    kill_step = random.Random(KILL_SEED).randint(3, TOTAL_STEPS - 6)
    run_dir = tmp_path / "run"
    process = start_training(console_command(train_args(run_dir, data_dir)), tmp_path / "killed")
    wait_for_step(process, run_dir, kill_step, tmp_path / "killed")
    process.send_signal(signal.SIGKILL)
    assert finished_output(process, tmp_path / "killed").exit_code == -signal.SIGKILL

    assert not (run_dir / "summary.json").exists()
    checkpoints = complete_checkpoint_steps(run_dir)
    assert checkpoints and checkpoints[-1] >= kill_step - 1
    resumed = resume(run_dir)
    assert f"from step-{checkpoints[-1]:06d}" in resumed.stderr
    assert_same_training(run_dir, reference_run)


def test_kill_during_checkpoint_write(tmp_path, data_dir, reference_run):
    kill_step = 7
    run_dir = tmp_path / "run"
    args = [sys.executable, "-c", KILL_IN_CHECKPOINT_SCRIPT, str(kill_step), *train_args(run_dir, data_dir)]
    process = start_training(args, tmp_path / "killed")
    assert finished_output(process, tmp_path / "killed").exit_code == -signal.SIGKILL

    # The kill left the checkpoint of step 7 as a hidden temporary folder, complete but never renamed.
    checkpoints = run_dir / "checkpoints"
    partial = list(checkpoints.glob(f".step-{kill_step:06d}.*"))
    assert len(partial) == 1
    assert (partial[0] / "trainer_state.json").is_file()
    assert complete_checkpoint_steps(run_dir)[-1] == kill_step - 1
    # A step folder without its completion marker, as a copy interrupted halfway would leave.
    unmarked = checkpoints / "step-000099"
    unmarked.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (unmarked / name).write_bytes((partial[0] / name).read_bytes())

    resumed = resume(run_dir)
    assert f"from step-{kill_step - 1:06d}" in resumed.stderr
    assert not partial[0].exists()
    assert_same_training(run_dir, reference_run)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_checkpoints_then_resume(tmp_path, data_dir, reference_run, signal_number):
    run_dir = tmp_path / "run"
    process = start_training(console_command(train_args(run_dir, data_dir)), tmp_path / "signalled")
    wait_for_step(process, run_dir, 5, tmp_path / "signalled")
    process.send_signal(signal_number)
    result = finished_output(process, tmp_path / "signalled")

    # The CLI documents exit code 130 for a run stopped by SIGINT or SIGTERM.
    assert result.exit_code == 130, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    stopped = summary["steps"]
    assert summary["status"] == "interrupted"
    assert 5 <= stopped < TOTAL_STEPS
    assert f"training interrupted after step {stopped}; continue with: physlora train --resume {run_dir}" in result.stdout
    name = signal.Signals(signal_number).name
    assert f"stopped by {name} after step {stopped}; continue with `physlora train --resume {run_dir}`" in result.stderr
    assert complete_checkpoint_steps(run_dir)[-1] == stopped

    resumed = resume(run_dir)
    assert f"from step-{stopped:06d}" in resumed.stderr
    assert_same_training(run_dir, reference_run)


def test_nan_loss_stops_and_resumes(tmp_path, data_dir, reference_run):
    nan_step = 5
    run_dir = tmp_path / "run"
    result = run_subprocess(train_args(run_dir, data_dir), env={"PHYSLORA_TEST_NAN_AT_STEP": str(nan_step)})

    assert result.exit_code == 3, result.stderr
    assert "Traceback" not in result.stderr
    last_good = run_dir / "checkpoints" / f"step-{nan_step - 1:06d}"
    assert (
        f"error: the loss is nan at optimizer step {nan_step} (epoch 1), so training stopped; "
        f"the last good checkpoint is {last_good}."
    ) in result.stderr
    assert f"then run `physlora train --resume {run_dir}`" in result.stderr
    assert complete_checkpoint_steps(run_dir)[-1] == nan_step - 1
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "stopped_nan"
    assert summary["steps"] == nan_step - 1
    assert all(math.isfinite(record["loss"]) for record in step_records(run_dir))

    resumed = resume(run_dir)
    assert f"from step-{nan_step - 1:06d}" in resumed.stderr
    assert_same_training(run_dir, reference_run)
