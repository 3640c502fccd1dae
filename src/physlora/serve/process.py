"""Start `physlora serve` as a child process on a loopback port chosen by the operating system, and stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

POLL_INTERVAL_S = 0.1


@dataclass
class ServerProcess:
    """A running server: its process, base URL and log file (stdout and stderr together)."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-characters:]


def start_server_process(serve_args: list[str], work_dir: Path, startup_timeout_s: float = 180.0) -> ServerProcess:
    """Run `physlora serve SERVE_ARGS` on 127.0.0.1 with port 0 and wait until /health returns 200.

    Raises RuntimeError with the end of the server log when it exits or is not ready in time.
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    port_file = work_dir / "server.port"
    port_file.unlink(missing_ok=True)
    log_path = work_dir / "server.log"
    command = [sys.executable, "-m", "physlora.cli", "serve", *serve_args,
               "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file)]
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    server = ServerProcess(process, "", log_path)
    deadline = time.monotonic() + startup_timeout_s
    try:
        port = _wait_for_port(server, port_file, deadline)
        server.url = f"http://127.0.0.1:{port}"
        _wait_for_health(server, deadline)
    except BaseException:
        stop_server_process(server)
        raise
    return server


def stop_server_process(server: ServerProcess, timeout_s: float = 60.0) -> int:
    """Send SIGTERM (graceful shutdown), wait up to `timeout_s`, then kill; return the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


def _wait_for_port(server: ServerProcess, port_file: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.process.returncode}:\n{server.log_tail()}")
        if port_file.is_file():
            text = port_file.read_text(encoding="utf-8").strip()
            if text.isdigit():
                return int(text)
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"the server wrote no port file within the startup time:\n{server.log_tail()}")


def _wait_for_health(server: ServerProcess, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not accepting connections yet
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"{server.url}/health did not return 200 within the startup time:\n{server.log_tail()}")
