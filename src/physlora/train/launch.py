"""Start `physlora train` in several data-parallel processes through accelerate's launcher.

The launcher runs the same command with WORLD_SIZE, RANK and MASTER_ADDR set, and each process then
joins the process group in `physlora.train.distributed`. The processes talk over the loopback address
on a port the operating system chooses.
"""

from __future__ import annotations

import importlib.util
import logging
import os
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
    logger.info("starting %d training processes: %s", num_processes, " ".join(command))
    return subprocess.run(command, env=environment, check=False).returncode
