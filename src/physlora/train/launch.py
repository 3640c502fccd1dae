"""Start `physlora train` in several data-parallel processes through accelerate's launcher.

The launcher runs the same command with WORLD_SIZE, RANK and MASTER_ADDR set, and each process then
joins the process group in `physlora.train.distributed`. The processes talk over the loopback address
on a port the operating system chooses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

from physlora.errors import ConfigError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def accelerate_config(name: str) -> Path:
    """Path of a shipped accelerate config file: ddp, fsdp or deepspeed."""
    return Path(str(resources.files("physlora.config") / "accelerate" / f"{name}.yaml"))


def free_port() -> int:
    """Return a TCP port on the loopback address that is free now (the OS chooses it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


# `physlora train --engine` names and the shipped accelerate config file of each.
ENGINE_CONFIGS = {"data-parallel": "ddp", "fsdp": "fsdp", "deepspeed": "deepspeed"}


def check_engine(engine: str) -> None:
    """Raise ConfigError for an unknown --engine name, or for DeepSpeed when it is not installed."""
    if engine not in ENGINE_CONFIGS:
        raise ConfigError(f"--engine {engine!r} is not one of {', '.join(ENGINE_CONFIGS)}")
    if engine == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError("--engine deepspeed needs the deepspeed package: pip install -e '.[deepspeed]'")


def check_engine_settings(engine: str, precision: str, method: str) -> None:
    """Raise ConfigError for training settings that FSDP and DeepSpeed do not run with."""
    if engine == "data-parallel":
        return
    if precision == "fp16":
        raise ConfigError(f"training.precision=fp16 is not supported with {engine}; use bf16 or fp32")
    if method == "qlora":
        raise ConfigError(f"lora.method=qlora is not supported with {engine}: its 4-bit weights cannot be sharded; "
                          "use lora, or launch qlora without the fsdp/deepspeed config")


def resume_command(run_dir, processes: int, engine: str) -> str:
    """Build the `physlora train --resume` command line that continues `run_dir` with the same processes and engine."""
    launch = f"--num-processes {processes} " if processes > 1 else ""
    if engine != "data-parallel":
        launch += f"--engine {engine} "
    return f"physlora train {launch}--resume {run_dir}"


def launch_command(num_processes: int, train_args: list[str], port: int, engine: str = "data-parallel") -> list[str]:
    """Build the `accelerate launch` command that runs `physlora train` with `train_args` in each process."""
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(accelerate_config(ENGINE_CONFIGS[engine])),
        "--num_processes", str(num_processes),
        "--main_process_ip", LOOPBACK,
        "--main_process_port", str(port),
        "--quiet",
        "-m", "physlora.cli", *train_args,
    ]


def train_arguments(*, config, preset, overrides, resume, max_steps, overwrite, debug, verbose) -> list[str]:
    """Rebuild the `physlora train` arguments that each launched process receives."""
    args = [*(["--debug"] if debug else []), *(["--verbose"] if verbose else []), "train"]
    if config is not None:
        args += ["--config", str(config)]
    if preset is not None:
        args += ["--preset", preset]
    for override in overrides:
        args += ["--set", override]
    if resume is not None:
        args += ["--resume", str(resume)]
    if max_steps is not None:
        args += ["--max-steps", str(max_steps)]
    if overwrite:
        args.append("--overwrite")
    return args


def launch_training(num_processes: int, engine: str = "data-parallel", **options) -> int:
    """Run `physlora train` in `num_processes` processes, wait for them, and return the exit code.

    The launcher reports a failed process with exit code 1, whatever that process's own exit code was.
    """
    command = launch_command(num_processes, train_arguments(**options), free_port(), engine)
    environment = dict(os.environ)
    if sys.platform == "linux":
        # All processes run on this machine, so gloo's connections stay on the loopback interface
        # instead of the interface that the host name resolves to.
        environment.setdefault("GLOO_SOCKET_IFNAME", "lo")
    if engine == "deepspeed":
        import torch

        # Without this, DeepSpeed warns in every process that it fell back to the CPU accelerator.
        if not torch.cuda.is_available():
            environment.setdefault("DS_ACCELERATOR", "cpu")
        # accelerate's DeepSpeed launch leaves the thread count to torchrun, which sets 1 and prints a banner
        # saying so. training.num_threads still applies inside each process.
        environment.setdefault("OMP_NUM_THREADS", "1")
    logger.info("starting %d training processes: %s", num_processes, " ".join(command))
    # The launcher and its workers get a process group of their own, and this process passes SIGINT and
    # SIGTERM on to the whole group. Ctrl-C in a terminal then reaches every process once. A signal sent
    # to this process alone (for example by `timeout`) stops the workers too instead of leaving them behind.
    launcher = subprocess.Popen(command, env=environment, start_new_session=True)

    def forward(signal_number, _frame) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal_number)

    previous = {number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return launcher.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
