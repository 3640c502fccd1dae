"""The load test script against a real server process, with a small request count."""

from __future__ import annotations

import json

from physlora.serve.loadtest import run_loadtest


def test_loadtest_writes_results(serve_runs, tmp_path):
    out = tmp_path / "loadtest.json"
    result = run_loadtest(out, requests=12, concurrency=6, run_dir=serve_runs["mechanics"], max_batch=4, max_tokens=4,
                          time_limit_s=120)
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert result["ok"] == 12
    assert result["errors"] == 0
    assert result["outcomes"] == {"200": 12}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p95"] <= result["latency_ms"]["max"]
    assert result["throughput_rps"] > 0
    assert result["server_health"]["requests_run"] == 12
    assert result["server_health"]["batches_run"] >= 3
    assert result["settings"]["concurrency"] == 6
