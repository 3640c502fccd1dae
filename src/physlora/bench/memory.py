"""Peak memory of one phase of a process: CUDA max allocated, or the peak resident set size.

The benchmark runners reset the high-water mark after the model is loaded, so the peak covers
training only. benchmarks/baselines/hf_common.py measures the baselines the same way.
"""

from __future__ import annotations

import resource
import sys

import torch

CUDA = "cuda_max_allocated"
RSS_TRAINING = "rss_training"
RSS_PROCESS = "rss_process"


def reset_peak_memory() -> str:
    """Start a new high-water mark and return its kind.

    On Linux, writing 5 to /proc/self/clear_refs resets the process's peak RSS (VmHWM). Where that
    fails the peak covers the whole process, including model loading, and the returned kind records that.
    """
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return CUDA
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return RSS_TRAINING
    except OSError:
        return RSS_PROCESS


def peak_memory_bytes(kind: str) -> int:
    """Read the high-water mark of the given kind, in bytes."""
    if kind == CUDA:
        return int(torch.cuda.max_memory_allocated())
    if kind == RSS_TRAINING:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports ru_maxrss in kibibytes, macOS in bytes.
    return max_rss if sys.platform == "darwin" else max_rss * 1024
