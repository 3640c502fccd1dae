"""Subprocess entry of the physlora training runner: `python -m physlora.bench.physlora_runner SPEC OUT`.

SPEC is a JSON file with the resolved run config ("config") and the optimizer steps ("steps"). The
runner trains with `train_run`, the same path as `physlora train`, and writes its measurements to OUT
in the format of benchmarks/baselines/hf_common.py.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

from physlora.bench.memory import peak_memory_bytes, reset_peak_memory
from physlora.config.schema import RunConfig
from physlora.train.metrics import METRICS_FILE, read_metrics
from physlora.train.trainer import ProgressEvent, train_run


class _StepProbe:
    """Progress callback: resets the memory peak when training starts, then after every step reads the
    peak and records the seconds since the previous event (the step's time, progress reporting included)."""

    def __init__(self) -> None:
        self.kind = "rss_process"
        self.peak = 0
        self.step_times: list[float] = []
        self._last_event = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        now = time.perf_counter()
        if event.kind == "start":
            self.kind = reset_peak_memory()
        elif event.kind == "step":
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                now = time.perf_counter()
            self.step_times.append(now - self._last_event)
            self.peak = max(self.peak, peak_memory_bytes(self.kind))
        self._last_event = now


def run(spec: dict) -> dict:
    """Train with the config and step count of `spec`; return the measurements."""
    config = RunConfig.model_validate(spec["config"])
    steps = int(spec["steps"])
    probe = _StepProbe()
    summary = train_run(config, max_steps=steps, progress=probe)

    run_dir = Path(config.output.dir)
    losses = [record["loss"] for record in read_metrics(run_dir / METRICS_FILE) if record.get("type") == "step"]
    training = config.training
    full = config.lora.method == "full"
    return {
        "runner": spec.get("runner", "physlora"),
        "micro_batch_tokens": training.micro_batch_tokens,
        "steps": summary["steps"],
        # The harness gives physlora exactly steps x batch x accumulation training records (one epoch),
        # so every window is full and each record is used once.
        "examples": summary["steps"] * training.batch_size * training.gradient_accumulation_steps,
        "input_tokens": summary["tokens"]["input"],
        "supervised_tokens": summary["tokens"]["supervised"],
        "train_time_s": summary["throughput"]["train_time_s"],
        "step_times_s": probe.step_times,
        "peak_memory_bytes": probe.peak,
        "peak_memory_kind": probe.kind,
        "step_losses": losses,
        "last_step_loss": losses[-1] if losses else None,
        "precision": summary["precision"],
        "fine_tuning": "full" if full else "lora",
        "params": {"total": summary["params"]["total"], "trainable": summary["params"]["trainable"]},
        # The harness scores LoRA adapters on the held-out records; a fully fine-tuned model is not scored.
        "adapter_dir": None if full else str(run_dir / "adapter"),
        "threads": torch.get_num_threads(),
        "pid": os.getpid(),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m physlora.bench.physlora_runner SPEC.json OUT.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = run(spec)
    Path(argv[1]).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
