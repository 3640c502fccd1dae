"""The OpenAI-compatible API in-process (httpx.ASGITransport): shapes, routing, errors, back-pressure, batching."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from serve_helpers import MECHANICS_QUESTION, run_with_client
from typer.testing import CliRunner

from physlora.cli import app as cli_app
from physlora.serve.app import ServerOptions, create_app, registry_batch_runner


def _chat(model: str, content: str = "What is the SI unit of force?", **extra) -> dict:
    return {"model": model, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}],
            **extra}


def _direct_answer(registry, model: str, question: str, max_new_tokens: int) -> str:
    settings = registry.settings(model)
    prompt = registry.prompt_for(model, question)
    return registry.generate(model, [prompt], max_new_tokens, settings.max_seq_length)[0].text


def test_models_lists_base_adapters_and_auto(registry):
    async def scenario(client):
        return await client.get("/v1/models")

    response = run_with_client(create_app(registry), scenario)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [entry["id"] for entry in body["data"]] == ["base", "mechanics", "general", "auto"]
    assert all(entry["object"] == "model" for entry in body["data"])


def test_health(registry):
    async def scenario(client):
        return await client.get("/health")

    body = run_with_client(create_app(registry), scenario).json()
    assert body["status"] == "ok"
    assert body["queued"] == 0


def test_chat_completion_shape_and_answer(registry):
    async def scenario(client):
        return await client.post("/v1/chat/completions", json=_chat("mechanics", max_tokens=6))

    response = run_with_client(create_app(registry), scenario)
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "mechanics"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == _direct_answer(registry, "mechanics", "What is the SI unit of force?", 6)
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert 1 <= usage["completion_tokens"] <= 6
    assert usage["prompt_tokens"] == registry.prompt_tokens(registry.prompt_for("mechanics", "What is the SI unit of force?"))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_completion_shape_sends_prompt_unchanged(registry):
    prompt = "Question: what is a newton?\nAnswer:"

    async def scenario(client):
        return await client.post("/v1/completions", json={"model": "base", "prompt": prompt, "max_tokens": 5})

    response = run_with_client(create_app(registry), scenario)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "text_completion"
    assert body["model"] == "base"
    [choice] = body["choices"]
    assert choice["index"] == 0
    settings = registry.settings("base")
    assert choice["text"] == registry.generate("base", [prompt], 5, settings.max_seq_length)[0].text
    assert choice["finish_reason"] in ("stop", "length")
    assert body["usage"]["prompt_tokens"] == registry.prompt_tokens(prompt)


def test_auto_answers_with_routed_adapter(registry):
    async def scenario(client):
        return await client.post("/v1/chat/completions", json=_chat("auto", MECHANICS_QUESTION, max_tokens=6))

    body = run_with_client(create_app(registry), scenario).json()
    assert body["model"] == "mechanics"
    assert body["choices"][0]["message"]["content"] == _direct_answer(registry, "mechanics", MECHANICS_QUESTION, 6)


def test_unknown_model_is_404_listing_models(registry):
    async def scenario(client):
        return await client.post("/v1/chat/completions", json=_chat("thermo"))

    response = run_with_client(create_app(registry), scenario)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    for name in ("base", "mechanics", "general", "auto"):
        assert name in error["message"]


BAD_REQUESTS = [
    ("empty question", "/v1/chat/completions", _chat("base", "   "), "messages"),
    ("no user message", "/v1/chat/completions", {"model": "base", "messages": [{"role": "system", "content": "x"}]},
     "messages"),
    ("empty prompt", "/v1/completions", {"model": "base", "prompt": ""}, "prompt"),
    ("over-long prompt", "/v1/completions", {"model": "base", "prompt": "force " * 400}, "prompt"),
    ("max_tokens zero", "/v1/chat/completions", _chat("base", max_tokens=0), "max_tokens"),
    ("max_tokens too large", "/v1/completions", {"model": "base", "prompt": "x", "max_tokens": 100_000}, "max_tokens"),
    ("max_tokens string", "/v1/completions", {"model": "base", "prompt": "x", "max_tokens": "5"}, "max_tokens"),
    ("max_completion_tokens", "/v1/chat/completions", _chat("base", max_completion_tokens=-1), "max_completion_tokens"),
    ("two choices", "/v1/chat/completions", _chat("base", n=2), "n"),
    ("streaming", "/v1/chat/completions", _chat("base", stream=True), "stream"),
    ("missing messages", "/v1/chat/completions", {"model": "base"}, "messages"),
]


@pytest.mark.parametrize("path, body, param", [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
def test_invalid_request_is_400(registry, path, body, param):
    async def scenario(client):
        return await client.post(path, json=body)

    response = run_with_client(create_app(registry), scenario)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


@pytest.mark.parametrize("content", [b'{"model": "base", "messages": [', b"not json", b""])
def test_malformed_json_is_400(registry, content):
    async def scenario(client):
        return await client.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})

    response = run_with_client(create_app(registry), scenario)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_adapter_name_with_slash_rejected_at_startup(serve_runs):
    result = CliRunner().invoke(cli_app, ["serve", "--adapter", f"team/mechanics={serve_runs['mechanics']}", "--port", "0"])
    assert result.exit_code == 2
    assert "invalid adapter name 'team/mechanics'" in result.output


class BlockingRunner:
    """Wraps the registry's batch runner, holding the first batch until `release` is set; records batches."""

    def __init__(self, registry) -> None:
        self.inner = registry_batch_runner(registry)
        self.started = threading.Event()
        self.release = threading.Event()
        self.batches: list[tuple] = []

    def __call__(self, key, prompts):
        self.batches.append((key[0], len(prompts)))
        self.started.set()
        self.release.wait(timeout=30)
        return self.inner(key, prompts)


async def _wait_for_waiting(app, count: int) -> None:
    for _ in range(1000):
        if app.state.queue.waiting == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"the queue never held {count} waiting requests")


def test_full_queue_is_503_with_retry_after(registry):
    runner = BlockingRunner(registry)
    app = create_app(registry, ServerOptions(max_queue=1, max_batch=4, retry_after_s=2), run_batch=runner)

    async def scenario(client):
        first = asyncio.create_task(client.post("/v1/chat/completions", json=_chat("base", max_tokens=3)))
        await asyncio.to_thread(runner.started.wait, 30)
        second = asyncio.create_task(client.post("/v1/chat/completions", json=_chat("base", max_tokens=3)))
        await _wait_for_waiting(app, 1)
        rejected = await client.post("/v1/chat/completions", json=_chat("base", max_tokens=3))
        runner.release.set()
        return rejected, await first, await second

    rejected, first, second = run_with_client(app, scenario)
    assert rejected.status_code == 503
    assert rejected.headers["retry-after"] == "2"
    assert rejected.json()["error"]["code"] == "queue_full"
    assert first.status_code == 200
    assert second.status_code == 200


def test_simultaneous_requests_are_batched(registry):
    runner = BlockingRunner(registry)
    app = create_app(registry, ServerOptions(max_queue=16, max_batch=8), run_batch=runner)
    questions = ["What is a joule?", "What is a watt?", "What is a volt?"]

    async def scenario(client):
        first = asyncio.create_task(client.post("/v1/chat/completions", json=_chat("mechanics", max_tokens=4)))
        await asyncio.to_thread(runner.started.wait, 30)
        together = [asyncio.create_task(client.post("/v1/chat/completions", json=_chat("general", question, max_tokens=4)))
                    for question in questions]
        other_model = asyncio.create_task(client.post("/v1/chat/completions", json=_chat("base", max_tokens=4)))
        await _wait_for_waiting(app, 4)
        runner.release.set()
        return await first, await asyncio.gather(*together), await other_model

    first, together, other_model = run_with_client(app, scenario)
    assert runner.batches == [("mechanics", 1), ("general", 3), ("base", 1)]
    assert app.state.queue.batches_run == 3
    assert first.status_code == 200
    assert other_model.status_code == 200
    for question, response in zip(questions, together):
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == _direct_answer(registry, "general", question, 4)


def test_shutdown_answers_queued_requests(registry):
    runner = BlockingRunner(registry)
    app = create_app(registry, ServerOptions(max_queue=8, max_batch=2), run_batch=runner)

    async def scenario():
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as client:
            def send(question):
                return asyncio.create_task(client.post("/v1/chat/completions", json=_chat("base", question, max_tokens=3)))

            queued = [send("What is a joule?")]
            await asyncio.to_thread(runner.started.wait, 30)
            queued += [send("What is a watt?"), send("What is a volt?")]
            await _wait_for_waiting(app, 2)
            shutdown = asyncio.create_task(lifespan.__aexit__(None, None, None))
            await asyncio.sleep(0)
            late = await client.post("/v1/chat/completions", json=_chat("base", max_tokens=3))
            runner.release.set()
            await shutdown
            return late, await asyncio.gather(*queued)

    late, queued = asyncio.run(scenario())
    assert late.status_code == 503
    assert late.json()["error"]["code"] == "shutting_down"
    assert [response.status_code for response in queued] == [200, 200, 200]
    assert runner.batches == [("base", 1), ("base", 2)]
