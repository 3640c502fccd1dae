"""summary.json of a run folder: what was trained, on what, for how long, and how it ended.

Fields are documented in docs/run-folder.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from pathlib import Path

from typing import TYPE_CHECKING

import torch

from physlora.io import write_json_atomic
from physlora.train.metrics import peak_memory

if TYPE_CHECKING:
    from physlora.train.state import TrainerState

SUMMARY_FILE = "summary.json"
FINISHED = "finished"
STOPPED_NAN = "stopped_nan"
INTERRUPTED = "interrupted"
MAX_STEPS = "max_steps"
EARLY_STOPPED = "early_stopped"


def versions() -> dict:
    found = {"python": platform.python_version(), "torch": torch.__version__}
    for package in ("transformers", "peft", "physlora"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what the platform module reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device_type: str) -> dict:
    usable_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "device": device_type,
        "cpu_model": cpu_model(),
        "cpu_cores": usable_cores,
        "torch_threads": torch.get_num_threads(),
        "gpu_name": torch.cuda.get_device_name() if device_type == "cuda" else None,
    }


def build_summary(
    *, status: str, state: TrainerState, total_steps: int, params: dict, epochs: list[dict], elapsed_s: float,
    precision: str, config: dict, device_type: str,
) -> dict:
    """Assemble summary.json from the trainer state. Token rates use the time spent in optimizer steps."""
    bytes_used, kind = peak_memory(device_type)
    train_time = state.train_time_s
    return {
        "status": status,
        "steps": state.step,
        "total_steps": total_steps,
        "params": params,
        "epochs": epochs,
        "total_time_s": round(elapsed_s, 3),
        "peak_memory_bytes": max(bytes_used, state.peak_memory_bytes),
        "peak_memory_kind": kind,
        "tokens": {"supervised": state.tokens, "input": state.input_tokens},
        "throughput": {
            "train_time_s": round(train_time, 3),
            "input_tokens_per_s": state.input_tokens / train_time if train_time else None,
            "supervised_tokens_per_s": state.tokens / train_time if train_time else None,
        },
        "precision": precision,
        "config": config,
        "versions": versions(),
        "hardware": hardware(device_type),
    }


def read_summary(run_dir: Path) -> dict | None:
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_summary(run_dir: Path, summary: dict) -> None:
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
