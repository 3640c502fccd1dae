"""Load test of `physlora serve`: N chat requests from C concurrent clients against a real server process.

The server runs as a child process on 127.0.0.1 with an OS-chosen port, serving a given run or a tiny
run built for the test. Every request is bounded by `time_limit_s`, and the server is stopped at the
end, so the test ends by itself. The result file contains latency percentiles of the successful requests,
throughput, and the count of each error. `server_exit_code` is -15 after a clean shutdown, because
uvicorn (0.55) re-raises the SIGTERM it handled once the server has stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from physlora.io import write_json_atomic
from physlora.serve.process import start_server_process, stop_server_process
from physlora.serve.tinyrun import QUESTIONS, build_tiny_run

logger = logging.getLogger(__name__)

ADAPTER_NAME = "physics"


def run_loadtest(
    out: Path,
    requests: int = 200,
    concurrency: int = 200,
    run_dir: Path | None = None,
    max_batch: int = 16,
    max_queue: int | None = None,
    max_tokens: int = 16,
    time_limit_s: float = 300.0,
) -> dict:
    """Start a server, send the requests, stop the server, and write the result JSON to `out`.

    `max_queue` defaults to `requests`, so every request can wait its turn and errors mean failures,
    not back-pressure. Without `run_dir` a tiny run (tinyrun.build_tiny_run) is built in a temporary folder.
    """
    if requests < 1 or concurrency < 1:
        raise ValueError(f"requests={requests} and concurrency={concurrency} must be at least 1")
    max_queue = max_queue or requests
    with tempfile.TemporaryDirectory(prefix="physlora-loadtest-") as work:
        work_dir = Path(work)
        if run_dir is None:
            run_dir = build_tiny_run(work_dir / "run")
        serve_args = ["--adapter", f"{ADAPTER_NAME}={run_dir}", "--no-ab",
                      "--max-batch", str(max_batch), "--max-queue", str(max_queue)]
        server = start_server_process(serve_args, work_dir / "server")
        try:
            result = asyncio.run(_send_requests(server.url, requests, concurrency, max_tokens, time_limit_s))
            result["server_health"] = httpx.get(f"{server.url}/health", timeout=10).json()
        finally:
            exit_code = stop_server_process(server)
    result.update(
        settings={"requests": requests, "concurrency": concurrency, "max_batch": max_batch, "max_queue": max_queue,
                  "max_tokens": max_tokens, "time_limit_s": time_limit_s, "run_dir": str(run_dir)},
        server_exit_code=exit_code,
        machine={"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                 "python": platform.python_version()},
    )
    write_json_atomic(out, result)
    logger.info("load test: %d ok, %d errors, p50 %.0f ms, p95 %.0f ms, %.1f requests/s", result["ok"],
                result["errors"], result["latency_ms"]["p50"] or 0, result["latency_ms"]["p95"] or 0,
                result["throughput_rps"])
    return result


async def _send_requests(url: str, requests: int, concurrency: int, max_tokens: int, time_limit_s: float) -> dict:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=time_limit_s) as client:

        async def send(index: int) -> None:
            question = QUESTIONS[index % len(QUESTIONS)][0]
            body = {"model": ADAPTER_NAME, "messages": [{"role": "user", "content": question}],
                    "max_tokens": max_tokens}
            async with semaphore:
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/chat/completions", json=body)
                except httpx.HTTPError as error:
                    outcomes[type(error).__name__] += 1
                    return
                outcomes[str(response.status_code)] += 1
                if response.status_code == 200:
                    latencies.append(1000 * (time.perf_counter() - started))

        started = time.perf_counter()
        tasks = [asyncio.create_task(send(index)) for index in range(requests)]
        _, pending = await asyncio.wait(tasks, timeout=time_limit_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            outcomes["not_finished"] = len(pending)
        wall_s = time.perf_counter() - started

    ok = outcomes.get("200", 0)
    return {
        "ok": ok,
        "errors": requests - ok,
        "outcomes": dict(outcomes),
        "latency_ms": _latency_summary(latencies),
        "throughput_rps": ok / wall_s if wall_s > 0 else 0.0,
        "wall_s": wall_s,
    }


def _latency_summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    values = np.asarray(latencies)
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "max": float(values.max()), "mean": float(values.mean())}
