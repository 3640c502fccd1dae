"""Description of the machine a benchmark ran on, its load average, the date, and its measured matmul peak."""

from __future__ import annotations

import datetime
import os
import platform
import time

import torch

from physlora.train.summary import hardware, versions

MATMUL_SIZE = 2048
MATMUL_REPEATS = 5


def load_average() -> list[float] | None:
    """Return the 1, 5 and 15 minute load averages, or None where the platform does not report them."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    """CPU model, usable cores, torch threads, GPU name, platform and package versions."""
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    return {**hardware(device_type), "platform": platform.platform(), "versions": versions()}


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def result_header(kind: str, command: list[str]) -> dict:
    """Fields every result file starts with: what ran, on which machine, when, and how busy the machine was."""
    return {
        "format_version": 1,
        "benchmark": kind,
        "command": command,
        "date": utc_now(),
        "machine": machine_info(),
        "load_average_start": load_average(),
    }


def matmul_peak(dtype: torch.dtype, size: int = MATMUL_SIZE, repeats: int = MATMUL_REPEATS) -> dict:
    """Measure the matrix-multiply rate of two size x size matrices in `dtype`, in FLOP/s.

    A square product takes 2 * size**3 floating-point operations. The best of `repeats` timed products
    (after one warm-up) is taken as the peak, because other processes on a shared machine can only
    slow a product down.
    """
    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = torch.Generator(device=device).manual_seed(0)
    left = torch.randn(size, size, generator=generator, device=device).to(dtype)
    right = torch.randn(size, size, generator=generator, device=device).to(dtype)
    torch.matmul(left, right)
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.matmul(left, right)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "size": size,
        "best_time_s": best,
        "flops_per_s": 2 * size**3 / best,
        "threads": torch.get_num_threads(),
    }


def matmul_peaks() -> dict:
    """bf16 and fp32 matmul peaks of this machine, keyed by precision name."""
    return {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}
