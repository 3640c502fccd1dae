"""Train the same config in 1 process and in N processes with each engine, and compare the results.

Usage (from the repository root, with the data and tokenizer folders set as for the tests):

    python benchmarks/ddp_compare.py --preset tiny --work /tmp/ddp-compare --processes 2 \
        --engines data-parallel,fsdp,deepspeed --set training.epochs=1 --out benchmarks/results/engines-tiny.json

All runs are made deterministic (fp32, dropout 0, one torch thread per process), so the per-step
losses and the final adapters can be compared. The wall times are those of the whole `physlora train`
command, model set-up and validation included. `train_time_s` is the time spent in optimizer steps,
from summary.json (process 0's clock in a multi-process run). `peak_memory_bytes` is process 0's
high-water mark from summary.json (resident set size on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

DETERMINISTIC = ["training.precision=fp32", "training.num_threads=1", "model.config.dropout_rate=0.0",
                 "lora.dropout=0.0"]


def _load_average() -> str:
    return Path("/proc/loadavg").read_text(encoding="utf-8").strip()


def _train(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "physlora.cli", "train", *args], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - started


def _steps(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["type"] == "step"]


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def _compare(single: Path, other: Path, wall_s: float) -> dict:
    """Differences of run `other` from the 1-process run `single`, and its costs."""
    single_steps, other_steps = _steps(single), _steps(other)
    left = load_file(str(single / "adapter" / "adapter_model.safetensors"))
    right = load_file(str(other / "adapter" / "adapter_model.safetensors"))
    summary = _summary(other)
    return {
        "step_records_equal_count": len(single_steps) == len(other_steps),
        "max_step_loss_difference": max(abs(a["loss"] - b["loss"]) for a, b in zip(single_steps, other_steps)),
        "max_grad_norm_difference": max(abs(a["grad_norm"] - b["grad_norm"]) for a, b in zip(single_steps, other_steps)),
        "max_adapter_difference": max((left[name] - right[name]).abs().max().item() for name in left),
        "wall_s": round(wall_s, 1),
        "train_time_s": summary["throughput"]["train_time_s"],
        "peak_memory_bytes": summary["peak_memory_bytes"],
        "distributed": summary.get("distributed"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--work", type=Path, required=True, help="Folder for the data and the run folders.")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--engines", default="data-parallel",
                        help="Comma-separated engines for the multi-process runs: data-parallel, fsdp, deepspeed.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="Config override (repeatable).")
    parser.add_argument("--out", type=Path, required=True, help="JSON result file.")
    options = parser.parse_args()

    data = options.work / "data"
    common = ["--preset", options.preset]
    for override in [*options.overrides, *DETERMINISTIC, f"output.data_dir={data}"]:
        common += ["--set", override]
    if not (data / "train.jsonl").is_file():
        subprocess.run([sys.executable, "-m", "physlora.cli", "data", "build", *common, "--out", str(data)], check=True)

    load_before = _load_average()
    single = options.work / "one-process"
    single_s = _train([*common, "--set", f"output.dir={single}", "--overwrite"])
    left = load_file(str(single / "adapter" / "adapter_model.safetensors"))
    result = {
        "preset": options.preset,
        "overrides": options.overrides,
        "processes": options.processes,
        "steps": len(_steps(single)),
        "max_adapter_value": max(tensor.abs().max().item() for tensor in left.values()),
        "one_process": {"wall_s": round(single_s, 1), "train_time_s": _summary(single)["throughput"]["train_time_s"],
                        "peak_memory_bytes": _summary(single)["peak_memory_bytes"]},
        "engines": {},
    }
    for engine in options.engines.split(","):
        run_dir = options.work / f"{options.processes}-processes-{engine}"
        wall_s = _train([*common, "--set", f"output.dir={run_dir}", "--overwrite",
                         "--num-processes", str(options.processes), "--engine", engine])
        result["engines"][engine] = _compare(single, run_dir, wall_s)
    result.update({"loadavg_before": load_before, "loadavg_after": _load_average(), "cpu_count": os.cpu_count()})
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
