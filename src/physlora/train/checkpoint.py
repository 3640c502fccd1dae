"""Resumable checkpoints: `checkpoints/step-NNNNNN/` in the run folder.

A checkpoint folder contains the adapter (PEFT format, safetensors), the optimizer, scheduler and loss
scaler states, the python, numpy and torch RNG states (`rng_state.pt`, plus `rng_state-rank-N.pt` for
each further process of a multi-process run), and `trainer_state.json` with the step and data
position. It is written into a hidden temporary folder and renamed into place, so a folder named
`step-*` is always complete and a crash while writing leaves only a hidden folder that loading ignores.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file

from physlora.errors import RunFolderError
from physlora.io import staging_folder, write_json_atomic
from physlora.models.methods import FULL_MODEL_FILE, load_full_weights
from physlora.train.launch import resume_command

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
# The engine and process count that wrote a checkpoint. Sharded state resumes only with both unchanged.
# A checkpoint without the file was written by data-parallel training.
ENGINE_FILE = "engine.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [path for path in folder.glob("step-*") if (path / STATE_FILE).is_file()]
    return sorted(found, key=lambda path: int(path.name.split("-", 1)[1]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    _remove_partial_writes(run_dir / CHECKPOINTS)
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def _remove_partial_writes(folder: Path) -> None:
    """Delete temporary checkpoint folders that a killed process left behind before their rename."""
    if not folder.is_dir():
        return
    for leftover in folder.glob(".step-*"):
        logger.info("removing the partial checkpoint %s left by an interrupted write", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def capture_rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def rng_state_file(rank: int) -> str:
    return "rng_state.pt" if rank == 0 else f"rng_state-rank-{rank}.pt"


def save_checkpoint(
    run_dir: Path, engine, scheduler, scaler, trainer_state: dict, processes, keep: int = 2,
    rng_states: list[dict] | None = None,
) -> Path:
    """Write the checkpoint of `trainer_state["step"]`, then delete all but the newest `keep` checkpoints.

    Every process calls this: `engine.save_state` writes the model and optimizer state (on the first
    process only for data-parallel training, one file per process for FSDP and DeepSpeed), and the
    first process writes the rest and renames the folder into place. `rng_states` contains the RNG
    states of every process in rank order. None saves this process's states.
    """
    started = time.perf_counter()
    target = run_dir / CHECKPOINTS / checkpoint_name(trainer_state["step"])
    temp = staging_folder(target) if processes.is_main else None
    temp = Path(processes.gather_objects(str(temp))[0])  # the first process's folder, on every process
    try:
        engine.save_state(temp)
        processes.wait()
        if not processes.is_main:
            return target
        torch.save(scheduler.state_dict(), temp / "scheduler.pt")
        if scaler is not None:
            torch.save(scaler.state_dict(), temp / "scaler.pt")
        for rank, states in enumerate(rng_states or [capture_rng_states()]):
            torch.save(states, temp / rng_state_file(rank))
        write_json_atomic(temp / ENGINE_FILE, {"engine": engine.name, "processes": processes.count})
        write_json_atomic(temp / STATE_FILE, trainer_state)
        _fsync_files(temp)
        _replace_folder(temp, target)
    finally:
        if processes.is_main:
            shutil.rmtree(temp, ignore_errors=True)

    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("wrote checkpoint %s (%.1f s)", target, time.perf_counter() - started)
    return target


def load_checkpoint(folder: Path, engine, scheduler, scaler, processes) -> dict:
    """Restore a checkpoint into the engine's model and optimizer and into the other given objects, RNG
    states included, and return its trainer state. Every process calls this.

    Process `rank` restores its own RNG file. When the checkpoint was written by fewer processes, it
    restores the first process's states and logs a warning, because its dropout masks then differ from
    those of an uninterrupted run.
    """
    check_engine(folder, engine.name, processes)
    engine.load_state(folder)
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    if scaler is not None and (folder / "scaler.pt").is_file():
        scaler.load_state_dict(torch.load(folder / "scaler.pt", weights_only=True))
    # The RNG file contains python and numpy state objects, which weights_only loading rejects. This
    # module wrote the file into the run folder itself.
    rng_file = folder / rng_state_file(processes.rank)
    if not rng_file.is_file():
        logger.warning("%s has no RNG state of process %d, so it continues from the RNG state of process 0",
                       folder, processes.rank)
        rng_file = folder / rng_state_file(0)
    restore_rng_states(torch.load(rng_file, weights_only=False))
    return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))


def check_engine(folder: Path, engine: str, processes) -> None:
    """Raise RunFolderError when the checkpoint's state was written by another engine, or by FSDP or
    DeepSpeed with another process count."""
    path = folder / ENGINE_FILE
    written = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"engine": "data-parallel"}
    sharded = written["engine"] != "data-parallel"
    if written["engine"] != engine or (sharded and written["processes"] != processes.count):
        command = resume_command(folder.parent.parent, written.get("processes", processes.count), written["engine"])
        raise RunFolderError(
            f"{folder} was written by {written['engine']} training in {written.get('processes', 'any number of')} "
            f"processes, and this run uses {engine} in {processes.count}; resume with `{command}`"
        )


def load_model_weights(folder: Path, model) -> None:
    """Load the adapter (or, for full fine-tuning, the whole model) that a data-parallel checkpoint contains."""
    if isinstance(model, PeftModel):
        _load_adapter_weights(folder, model)
    else:
        # Full fine-tuning: the checkpoint contains the whole model, checked tensor by tensor.
        load_full_weights(model, folder / FULL_MODEL_FILE)


def _load_adapter_weights(folder: Path, model) -> None:
    weights = folder / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise RunFolderError(f"checkpoint {folder} has no {ADAPTER_WEIGHTS}; delete the folder to resume from an older one")
    result = set_peft_model_state_dict(model, load_file(str(weights)))
    # NOTE: only LoRA tensor names are checked for being missing; IA3 and prefix checkpoints rely on
    # the unexpected-key check alone.
    missing = [key for key in result.missing_keys if "lora_" in key]
    if missing or result.unexpected_keys:
        raise RunFolderError(
            f"checkpoint {folder} does not match the model: missing {missing[:3]}, "
            f"unexpected {list(result.unexpected_keys)[:3]}; was the config changed since the run started?"
        )


def save_adapter(model, folder: Path, state_dict: dict | None = None) -> None:
    """Write the adapter in the standard PEFT format (the whole model for full fine-tuning), replacing
    `folder` atomically. `state_dict` contains the weights to write when the model's own are sharded."""
    temp = staging_folder(folder)
    try:
        model.save_pretrained(temp, safe_serialization=True, **({"state_dict": state_dict} if state_dict else {}))
        _fsync_files(temp)
        _replace_folder(temp, folder)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _replace_folder(source: Path, target: Path) -> None:
    """Rename `source` onto `target`. An existing `target` is moved aside first and then deleted."""
    if target.exists():
        aside = target.with_name(f".{target.name}.old")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(target, aside)
        os.replace(source, target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(source, target)


def _fsync_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
