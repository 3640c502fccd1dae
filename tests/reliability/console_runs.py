"""Run the `physlora` console entry (physlora.cli:main) in a subprocess or in this process, with captured output."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from click.testing import CliRunner

from physlora.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]

# Nothing may reach the Hugging Face hub, and the data folder must come from each command's config.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
REMOVED_ENV = ("PHYSLORA_DATA_DIR",)


@dataclass
class ConsoleResult:
    exit_code: int
    stdout: str
    stderr: str


def subprocess_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of a `python -m physlora.cli` subprocess: offline, unbuffered, one CPU thread."""
    env = {key: value for key, value in os.environ.items() if key not in REMOVED_ENV}
    env.update(OFFLINE_ENV, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def console_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "physlora.cli", *args]


def run_subprocess(args: list[str], env: Mapping[str, str | None] | None = None, timeout: float = 300) -> ConsoleResult:
    """Run `physlora ARGS` as a new Python process and wait for it."""
    completed = subprocess.run(
        console_command(args), cwd=REPO_ROOT, env=subprocess_env(env), capture_output=True, text=True,
        timeout=timeout,
    )
    return ConsoleResult(completed.returncode, completed.stdout, completed.stderr)


class _CurrentStderrHandler(logging.Handler):
    """Write log records to whatever sys.stderr is at the time, as the CLI's own logging setup would.

    Under pytest the root logger already has handlers, so the CLI's logging.basicConfig adds none and
    warnings would otherwise never reach the captured stderr.
    """

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")


def run_in_process(args: list[str], env: Mapping[str, str | None] | None = None) -> ConsoleResult:
    """Call physlora.cli.main with `args` in this process; stdout, stderr, argv and the environment are isolated.

    An exception that escapes `main` is printed as the interpreter would print it and gives exit code 1.
    """
    handler = _CurrentStderrHandler(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    overrides = {key: None for key in REMOVED_ENV}
    overrides.update(OFFLINE_ENV)
    overrides.update(env or {})
    saved_argv = sys.argv
    root = logging.getLogger()
    with CliRunner().isolation(env=overrides) as (stdout, stderr, _):
        root.addHandler(handler)
        sys.argv = ["physlora", *args]
        try:
            main()
            exit_code = 0
        except SystemExit as exit:
            exit_code = _exit_status(exit.code)
        except Exception:  # noqa: BLE001 - reported like an uncaught exception, which the tests reject
            traceback.print_exc(file=sys.stderr)
            exit_code = 1
        finally:
            sys.argv = saved_argv
            root.removeHandler(handler)
            sys.stdout.flush()
            sys.stderr.flush()
        output, errors = stdout.getvalue(), stderr.getvalue()
    return ConsoleResult(exit_code, output.decode("utf-8", "replace"), errors.decode("utf-8", "replace"))


def _exit_status(code: object) -> int:
    """The process exit status Python gives for sys.exit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1
