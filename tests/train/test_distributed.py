"""Data-parallel training in 2 CPU processes (gloo over the loopback address) against 1 process.

The runs are deterministic so that they can be compared to 1e-5: fp32, one torch thread per process,
the same seed and data order, and dropout 0 in T5's own layers and in LoRA. With dropout on, each
process would draw its own masks, and the runs would differ by design.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from physlora.cli import app
from physlora.errors import ConfigError
from physlora.train import train_run
from physlora.train.distributed import Processes
from physlora.train.launch import LOOPBACK, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

# 40 examples in micro-batches of 4 give 10 micro-batches per epoch. Accumulation 4 makes windows of
# 4, 4 and 2 micro-batches, so each process gets 2, 2 and 1 of them. 3 steps per epoch, 6 in all.
DETERMINISTIC = (
    "training.epochs=2", "training.gradient_accumulation_steps=4", "training.checkpoint_every=2",
    "training.num_threads=1", "training.warmup_steps=1", "model.config.dropout_rate=0.0", "lora.dropout=0.0",
)


def _set_options(*overrides: str) -> list[str]:
    return [argument for override in overrides for argument in ("--set", override)]


def _environment() -> dict[str, str]:
    """Environment of the launched processes: this checkout's code, one thread, loopback only."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update({"OMP_NUM_THREADS": "1", "MASTER_ADDR": LOOPBACK, "GLOO_SOCKET_IFNAME": "lo"})
    return env


def _run(command: list[str], timeout: float = 600) -> None:
    result = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def _torchrun(*cli_args: str) -> None:
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", LOOPBACK,
          "--master-port", str(free_port()), "-m", "physlora.cli", *cli_args])


def _records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["type"] == kind]


def _max_adapter_difference(first: Path, second: Path) -> float:
    left = load_file(str(first / "adapter" / "adapter_model.safetensors"))
    right = load_file(str(second / "adapter" / "adapter_model.safetensors"))
    assert left.keys() == right.keys()
    return max((left[name] - right[name]).abs().max().item() for name in left)


@pytest.fixture
def single_process_run(make_config) -> Path:
    config = make_config(*DETERMINISTIC, run="one-process")
    assert train_run(config)["steps"] == 6
    return Path(config.output.dir)


@pytest.mark.slow
def test_two_processes_match_one_process(single_process_run, tmp_path, data_dir, t5_tokenizer_path):
    run_dir = tmp_path / "two-processes"
    _run([sys.executable, "-m", "physlora.cli", "train", "--num-processes", "2", "--preset", "tiny",
          *_set_options(f"output.dir={run_dir}", f"output.data_dir={data_dir}", *DETERMINISTIC)])

    single_steps, ddp_steps = _records(single_process_run, "step"), _records(run_dir, "step")
    # Only the first process writes, so every step is recorded once.
    assert [record["step"] for record in ddp_steps] == [1, 2, 3, 4, 5, 6]
    assert [record["tokens"] for record in ddp_steps] == [record["tokens"] for record in single_steps]
    for single, ddp in zip(single_steps, ddp_steps):
        assert abs(ddp["loss"] - single["loss"]) <= 1e-5, (single, ddp)
        assert abs(ddp["grad_norm"] - single["grad_norm"]) <= 1e-5, (single, ddp)
    assert _max_adapter_difference(run_dir, single_process_run) <= 1e-5

    single_epochs, ddp_epochs = _records(single_process_run, "epoch"), _records(run_dir, "epoch")
    assert [record["epoch"] for record in ddp_epochs] == [0, 1, 2]
    for single, ddp in zip(single_epochs, ddp_epochs):
        assert ddp["val_loss"] == pytest.approx(single["val_loss"], abs=1e-5)
        assert ddp.get("input_tokens") == single.get("input_tokens")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert (summary["status"], summary["steps"]) == ("finished", 6)
    assert (run_dir / "checkpoints" / "step-000006" / "rng_state-rank-1.pt").is_file()


@pytest.mark.slow
def test_torchrun_resume_matches_one_session(single_process_run, tmp_path, data_dir, t5_tokenizer_path):
    run_dir = tmp_path / "torchrun"
    options = _set_options(f"output.dir={run_dir}", f"output.data_dir={data_dir}", *DETERMINISTIC)
    _torchrun("train", "--preset", "tiny", *options)

    # A crash after step 4: the checkpoint of step 4 stays, everything written later is gone.
    crashed = tmp_path / "crashed"
    shutil.copytree(run_dir, crashed)
    for later in ("adapter", "summary.json", "checkpoints/step-000006"):
        path = crashed / later
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    _torchrun("train", "--resume", str(crashed))

    assert [record["step"] for record in _records(crashed, "step")] == [1, 2, 3, 4, 5, 6]
    for resumed, reference in zip(_records(crashed, "step"), _records(single_process_run, "step")):
        assert abs(resumed["loss"] - reference["loss"]) <= 1e-5, (resumed, reference)
    assert _max_adapter_difference(crashed, single_process_run) <= 1e-5
    assert _max_adapter_difference(crashed, run_dir) == 0.0


def test_share_gives_each_process_every_second_micro_batch():
    window = [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert Processes(count=2, rank=0).share(window) == [["a"], ["c"], ["e"]]
    assert Processes(count=2, rank=1).share(window) == [["b"], ["d"]]
    assert Processes().share(window) == window
    # A short last window can leave a process without micro-batches; its gradient then counts as zero.
    assert Processes(count=2, rank=1).share([["a"]]) == []


def test_accumulation_below_process_count_rejected():
    with pytest.raises(ConfigError, match="gradient_accumulation_steps=2 is smaller than the 4 processes"):
        Processes(count=4, rank=0).check_accumulation(2)


def test_single_process_reductions_are_identity():
    processes = Processes()
    assert processes.sum(1.5, 2.0) == [1.5, 2.0]
    parameter = torch.nn.Parameter(torch.ones(3))
    parameter.grad = torch.full((3,), 2.0)
    processes.reduce_gradients([parameter])
    assert parameter.grad.tolist() == [2.0, 2.0, 2.0]


def test_num_processes_above_accumulation_rejected(tmp_path, data_dir, t5_tokenizer_path):
    result = CliRunner().invoke(app, [
        "train", "--preset", "tiny", "--num-processes", "4",
        *_set_options(f"output.dir={tmp_path / 'run'}", f"output.data_dir={data_dir}"),
    ])
    assert result.exit_code == 2
    assert "gradient_accumulation_steps=2 is smaller than the 4 processes" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_two_processes_follow_main_early_stopping(tmp_path, data_dir):
    # Only the first process measures the validation loss. The others see no loss, which would count as
    # "no improvement" there; they must follow the first process, which keeps training while the loss falls.
    run_dir = tmp_path / "early-stopping"
    improving = ("training.learning_rate=1e-2", "training.early_stopping_patience=1")
    _run([sys.executable, "-m", "physlora.cli", "train", "--num-processes", "2", "--preset", "tiny",
          *_set_options(f"output.dir={run_dir}", f"output.data_dir={data_dir}", *DETERMINISTIC, *improving)],
         timeout=240)

    epochs = _records(run_dir, "epoch")
    assert epochs[2]["val_loss"] < epochs[1]["val_loss"] < epochs[0]["val_loss"]
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "finished"
    assert summary["best_epoch"] == 2
