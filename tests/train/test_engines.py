"""FSDP 2 and DeepSpeed ZeRO-2 in 2 CPU processes (gloo over the loopback address) against 1 process.

The runs are deterministic (fp32, one thread per process, dropout 0), as in test_distributed.py.
Accumulation 3 over 10 micro-batches per epoch makes windows of 3, 3, 3 and 1 micro-batches. In every
window one process runs fewer micro-batches than the other, and in the last one it runs none at all.
That process must still run a forward pass, with zero weight, for the engine's collective calls.
Early stopping is on with a patience the runs never reach, so the best-adapter save (a collective
call under FSDP) runs at every improving epoch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_distributed import _environment, _records, _run, _set_options
from typer.testing import CliRunner

from physlora.cli import app
from physlora.errors import ConfigError
from physlora.train import train_run
from physlora.train.distributed import Processes
from physlora.train.engines import DATA_PARALLEL, build_engine, engine_from_environment

DETERMINISTIC = (
    "training.epochs=2", "training.gradient_accumulation_steps=3", "training.checkpoint_every=2",
    "training.num_threads=1", "training.warmup_steps=1", "lora.dropout=0.0",
    "training.early_stopping_patience=5",
)
T5_ONLY = ("model.config.dropout_rate=0.0",)
CAUSAL = ("model.name=tiny-gemma3", "model.architecture=gemma3", "model.family=causal", "model.config={}")
STEPS = [1, 2, 3, 4, 5, 6, 7, 8]


def _adapter_difference(first: Path, second: Path, folder: str = "adapter") -> float:
    left = load_file(str(first / folder / "adapter_model.safetensors"))
    right = load_file(str(second / folder / "adapter_model.safetensors"))
    assert left.keys() == right.keys()
    return max((left[name] - right[name]).abs().max().item() for name in left)


def _launch(engine: str, run_dir: Path, data_dir: Path, *overrides: str, extra: tuple[str, ...] = ()) -> None:
    _run([sys.executable, "-m", "physlora.cli", "train", "--num-processes", "2", "--engine", engine,
          "--preset", "tiny", *extra,
          *_set_options(f"output.dir={run_dir}", f"output.data_dir={data_dir}", *DETERMINISTIC, *overrides)],
         timeout=300)


def _assert_same_run(run_dir: Path, reference: Path) -> None:
    steps, reference_steps = _records(run_dir, "step"), _records(reference, "step")
    assert [record["step"] for record in steps] == STEPS
    assert [record["tokens"] for record in steps] == [record["tokens"] for record in reference_steps]
    for record, expected in zip(steps, reference_steps):
        assert abs(record["loss"] - expected["loss"]) <= 1e-5, (record, expected)
        assert abs(record["grad_norm"] - expected["grad_norm"]) <= 1e-5, (record, expected)
    epochs, reference_epochs = _records(run_dir, "epoch"), _records(reference, "epoch")
    assert [record["epoch"] for record in epochs] == [0, 1, 2]
    for record, expected in zip(epochs, reference_epochs):
        assert record["val_loss"] == pytest.approx(expected["val_loss"], abs=1e-5)
    for folder in ("adapter", "adapter-best", "adapter-last"):
        assert _adapter_difference(run_dir, reference, folder) <= 1e-5, folder


@pytest.fixture
def reference_run(make_config):
    def train(*overrides: str) -> Path:
        config = make_config(*DETERMINISTIC, *overrides, run="one-process")
        assert train_run(config)["steps"] == len(STEPS)
        return Path(config.output.dir)

    return train


@pytest.mark.slow
@pytest.mark.parametrize("engine, model", [("fsdp", T5_ONLY), ("fsdp", CAUSAL), ("deepspeed", T5_ONLY)],
                         ids=["fsdp-t5", "fsdp-gemma3", "deepspeed-t5"])
def test_engine_matches_one_process(engine, model, reference_run, tmp_path, data_dir, t5_tokenizer_path):
    reference = reference_run(*model)
    run_dir = tmp_path / engine
    _launch(engine, run_dir, data_dir, *model)

    _assert_same_run(run_dir, reference)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["distributed"] == {"engine": engine, "processes": 2}
    sharded = run_dir / "checkpoints" / "step-000008" / "sharded"
    if engine == "fsdp":  # torch.distributed.checkpoint: one file per process and the metadata
        assert sorted(path.name for path in sharded.iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    else:  # DeepSpeed: trainable weights once, the partitioned optimizer state once per process
        assert (sharded / "state" / "zero_pp_rank_1_mp_rank_00_optim_states.pt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["fsdp", "deepspeed"])
def test_full_fine_tuning_matches_one_process(engine, reference_run, tmp_path, data_dir, t5_tokenizer_path):
    # The tiny T5 ties its input and output embeddings, which the gathered FSDP weights no longer show.
    reference = reference_run(*T5_ONLY, "lora.method=full")
    run_dir = tmp_path / engine
    _launch(engine, run_dir, data_dir, *T5_ONLY, "lora.method=full")

    expected = load_file(str(reference / "adapter" / "model.safetensors"))
    saved = load_file(str(run_dir / "adapter" / "model.safetensors"))
    assert saved.keys() == expected.keys()
    assert max((saved[name] - expected[name]).abs().max().item() for name in expected) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["fsdp", "deepspeed"])
def test_engine_resumes_from_sharded_checkpoint(engine, reference_run, tmp_path, data_dir, t5_tokenizer_path):
    reference = reference_run(*T5_ONLY)
    run_dir = tmp_path / engine
    _launch(engine, run_dir, data_dir, *T5_ONLY)

    # A crash after step 6: the checkpoint of step 6 stays, everything written later is gone.
    crashed = tmp_path / "crashed"
    shutil.copytree(run_dir, crashed)
    for later in ("adapter", "adapter-last", "summary.json", "checkpoints/step-000008"):
        path = crashed / later
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    wrong_engine = CliRunner().invoke(app, ["train", "--resume", str(crashed)])
    assert wrong_engine.exit_code == 2, wrong_engine.output
    assert f"resume with `physlora train --num-processes 2 --engine {engine} --resume {crashed}`" in wrong_engine.output
    # The same mistake in a multi-process launch is caught before any process starts.
    wrong_launch = CliRunner().invoke(app, ["train", "--num-processes", "2", "--resume", str(crashed)])
    assert wrong_launch.exit_code == 2, wrong_launch.output
    assert "this run uses data-parallel in 2" in wrong_launch.output
    _run([sys.executable, "-m", "physlora.cli", "train", "--num-processes", "2", "--engine", engine,
          "--resume", str(crashed)], timeout=300)

    _assert_same_run(crashed, reference)
    assert _adapter_difference(crashed, run_dir) <= 1e-6


def test_engine_follows_accelerate_environment(monkeypatch):
    assert engine_from_environment() == DATA_PARALLEL
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert engine_from_environment() == "fsdp"
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert engine_from_environment() == "deepspeed"


@pytest.mark.parametrize("variable", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_sharded_engine_needs_two_processes(monkeypatch, make_config, variable, caplog):
    monkeypatch.setenv(variable, "true")
    engine = build_engine(torch.nn.Linear(2, 2), "seq2seq", Processes(), make_config().training, "fp32", "lora")
    assert engine.name == DATA_PARALLEL
    assert "only 1 process was launched" in caplog.text


@pytest.mark.parametrize("variable", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
@pytest.mark.parametrize("precision, method, message", [
    ("fp16", "lora", "training.precision=fp16 is not supported"),
    ("fp32", "qlora", "lora.method=qlora is not supported"),
])
def test_engine_rejects_unsupported_settings(monkeypatch, make_config, variable, precision, method, message):
    monkeypatch.setenv(variable, "true")
    config = make_config()
    with pytest.raises(ConfigError, match=message):
        build_engine(torch.nn.Linear(2, 2), "seq2seq", Processes(count=2), config.training, precision, method)


@pytest.mark.parametrize("variable, setting, value, message", [
    ("ACCELERATE_USE_FSDP", "FSDP_VERSION", "1", "fsdp_version 1; physlora runs FSDP 2 only"),
    ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_ZERO_STAGE", "3", "zero_stage 3; physlora runs ZeRO stages 0 to 2"),
])
def test_unsupported_engine_option_rejected(monkeypatch, make_config, variable, setting, value, message):
    monkeypatch.setenv(variable, "true")
    monkeypatch.setenv(setting, value)
    engine = build_engine(torch.nn.Linear(2, 2), "seq2seq", Processes(count=2), make_config().training, "fp32", "lora")
    with pytest.raises(ConfigError, match=message):
        engine.prepare(lambda model: None)


@pytest.mark.parametrize("arguments, message", [
    (["--engine", "fsdp"], "--engine fsdp needs --num-processes N"),
    (["--engine", "zero"], "--engine 'zero' is not one of data-parallel, fsdp, deepspeed"),
    (["--engine", "zero", "--num-processes", "2"], "--engine 'zero' is not one of data-parallel, fsdp, deepspeed"),
    (["--engine", "fsdp", "--num-processes", "2", "--set", "training.precision=fp16"],
     "training.precision=fp16 is not supported with fsdp"),
    (["--engine", "deepspeed", "--num-processes", "2", "--set", "lora.method=qlora"],
     "lora.method=qlora is not supported with deepspeed"),
])
def test_engine_option_errors(arguments, message, tmp_path, data_dir, t5_tokenizer_path):
    result = CliRunner().invoke(app, [
        "train", "--preset", "tiny", *arguments,
        *_set_options(f"output.dir={tmp_path / 'run'}", f"output.data_dir={data_dir}"),
    ])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "run").exists()


def _processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in command:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find leftover processes")
def test_sigint_to_launcher_stops_workers(tmp_path, data_dir, t5_tokenizer_path):
    # `timeout -s INT` and job control signal the `physlora train` process alone, not its workers.
    run_dir = tmp_path / "interrupted"
    command = [sys.executable, "-m", "physlora.cli", "train", "--num-processes", "2", "--engine", "fsdp",
               "--preset", "tiny", *_set_options(f"output.dir={run_dir}", f"output.data_dir={data_dir}",
                                                 "training.epochs=200", "training.num_threads=1")]
    parent = subprocess.Popen(command, env=_environment(), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "metrics.jsonl").is_file() or not _records(run_dir, "step"):
            assert parent.poll() is None, "training exited before its first step"
            assert time.monotonic() < deadline, "training did not reach its first step in 120 s"
            time.sleep(0.5)
        parent.send_signal(signal.SIGINT)
        parent.wait(timeout=120)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)

    time.sleep(2)  # the workers exit after the launcher has reported
    assert _processes_mentioning(str(run_dir)) == []
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "interrupted"
    assert list((run_dir / "checkpoints").glob("step-*"))
