"""The FastAPI application: OpenAI-compatible endpoints over an AdapterRegistry, and the A/B page.

Every request gets an id (response header X-Request-Id) and one log line with its method, path,
status, model, token counts and latency. Generation goes through one BatchQueue, started and drained by
the application's lifespan, so a graceful server shutdown completes every request already queued.
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from physlora.serve import openai_api
from physlora.serve.abroutes import router as ab_router
from physlora.serve.abtest import AbService
from physlora.serve.batching import BatchQueue, BatchRunner, QueueClosedError, QueueFullError
from physlora.serve.openai_api import ApiError, ChatCompletionRequest, CompletionRequest
from physlora.serve.registry import AUTO, AdapterRegistry

logger = logging.getLogger("physlora.serve.requests")

# Requests larger than this are rejected before parsing; far above any prompt max_seq_length allows.
# NOTE: only the Content-Length header is checked, so a chunked body without it is not limited here.
MAX_BODY_BYTES = 1_000_000
MAX_PROMPT_CHARS = 100_000


@dataclass(frozen=True)
class ServerOptions:
    """Limits of the HTTP server."""

    max_queue: int = 64
    """Requests that may wait for generation; one more gets a 503 response with Retry-After."""
    max_batch: int = 8
    """Requests of the same model generated together in one batch."""
    max_tokens_limit: int = 256
    """Largest max_tokens a request may ask for."""
    retry_after_s: int = 1
    """Retry-After value, in seconds, of a 503 response."""


def registry_batch_runner(registry: AdapterRegistry) -> BatchRunner:
    """Run a batch whose key is (model, max_new_tokens, max_seq_length) on the registry."""

    def run(key, prompts: list[str]):
        model, max_new_tokens, max_seq_length = key
        return registry.generate(model, prompts, max_new_tokens, max_seq_length)

    return run


def create_app(
    registry: AdapterRegistry,
    options: ServerOptions | None = None,
    ab: AbService | None = None,
    run_batch: BatchRunner | None = None,
) -> FastAPI:
    """Build the application. `run_batch` replaces generation on the registry (tests use it to block)."""
    options = options or ServerOptions()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        queue = BatchQueue(run_batch or registry_batch_runner(registry), options.max_queue, options.max_batch)
        queue.start()
        app.state.queue = queue
        logger.info("serving models %s (max_queue=%d, max_batch=%d)", registry.model_names, options.max_queue,
                    options.max_batch)
        try:
            yield
        finally:
            logger.info("shutting down: finishing %d queued request(s)", queue.waiting)
            await queue.close()

    app = FastAPI(title="physlora", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.registry = registry
    app.state.options = options
    app.state.ab = ab
    app.state.started = int(time.time())
    _add_error_handlers(app)
    _add_request_log(app)
    _add_openai_routes(app)
    app.include_router(ab_router)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        request.state.log_fields["error"] = error.message
        return error.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        message = f"{request.method} {request.url.path}: {error.detail}"
        request.state.log_fields["error"] = message
        return ApiError(error.status_code, message, headers=error.headers).response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        message, param = openai_api.validation_message(list(error.errors()))
        request.state.log_fields["error"] = message
        return ApiError(400, message, param=param).response()


def _add_request_log(app: FastAPI) -> None:
    @app.middleware("http")
    async def log_request(request: Request, call_next):
        request_id = uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        request.state.log_fields = {}
        started = time.perf_counter()
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            request.state.log_fields["error"] = "body too large"
            response = ApiError(413, f"the request body has {length} bytes; the maximum is {MAX_BODY_BYTES}").response()
        else:
            try:
                response = await call_next(request)
            except Exception:
                logger.exception("request %s %s %s failed", request_id, request.method, request.url.path)
                raise
        response.headers["X-Request-Id"] = request_id
        fields = " ".join(f"{key}={value!r}" if key == "error" else f"{key}={value}"
                          for key, value in request.state.log_fields.items())
        logger.info("request %s %s %s status=%d latency_ms=%.1f %s", request_id, request.method, request.url.path,
                    response.status_code, 1000 * (time.perf_counter() - started), fields)
        return response


def _add_openai_routes(app: FastAPI) -> None:
    @app.get("/health")
    async def health(request: Request):
        queue = request.app.state.queue
        return {
            "status": "ok",
            "models": request.app.state.registry.model_names,
            "queued": queue.waiting,
            "batches_run": queue.batches_run,
            "requests_run": queue.requests_run,
        }

    @app.get("/v1/models")
    async def list_models(request: Request):
        return openai_api.models_response(request.app.state.registry.model_names, request.app.state.started)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request, body: ChatCompletionRequest):
        _check_common(body.n, body.stream)
        question = openai_api.last_user_text(body.messages)
        max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
        param = "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"
        model, answer, prompt_tokens = await _complete(request, body.model, question, True, max_tokens, param)
        return openai_api.chat_response(request.state.request_id, model, answer, prompt_tokens)

    @app.post("/v1/completions")
    async def completions(request: Request, body: CompletionRequest):
        _check_common(body.n, body.stream)
        model, answer, prompt_tokens = await _complete(request, body.model, body.prompt, False, body.max_tokens,
                                                       "max_tokens")
        return openai_api.completion_response(request.state.request_id, model, answer, prompt_tokens)


def _check_common(n: int, stream: bool) -> None:
    if n != 1:
        raise ApiError(400, f"n={n} is not supported; this server returns exactly one choice (n=1)", param="n")
    if stream:
        raise ApiError(400, "stream=true is not supported; send stream=false", param="stream")


async def _complete(request: Request, requested: str, text: str, is_question: bool, max_tokens: int | None,
                    max_tokens_param: str):
    """Validate, route, queue and wait for one generation; returns (model used, answer, prompt tokens).

    Chat messages are questions and get the run's prompt template; a completions `prompt` is sent to the
    model as it is.
    """
    registry: AdapterRegistry = request.app.state.registry
    options: ServerOptions = request.app.state.options
    fields = request.state.log_fields
    fields["model"] = requested
    if requested not in registry.model_names:
        raise ApiError(404, f"model {requested!r} not found; available models: {', '.join(registry.model_names)}",
                       param="model", code="model_not_found")
    param = "messages" if is_question else "prompt"
    if not text.strip():
        raise ApiError(400, f"the {'question' if is_question else 'prompt'} is empty", param=param)
    if len(text) > MAX_PROMPT_CHARS:
        raise ApiError(400, f"the text has {len(text)} characters; the maximum is {MAX_PROMPT_CHARS}", param=param)

    model = requested
    if requested == AUTO:
        route = registry.route(text)
        model = route.model
        fields.update(routed=model, topic=route.topic, rule=route.rule)
    settings = registry.settings(model)
    prompt = registry.prompt_for(model, text) if is_question else text
    prompt_tokens = registry.prompt_tokens(prompt)
    if prompt_tokens > settings.max_seq_length:
        raise ApiError(400, f"the prompt has {prompt_tokens} tokens; the maximum is {settings.max_seq_length}",
                       param=param, code="context_length_exceeded")
    limit = options.max_tokens_limit
    if max_tokens is not None and not 1 <= max_tokens <= limit:
        raise ApiError(400, f"{max_tokens_param}={max_tokens} is out of range; use 1 to {limit}", param=max_tokens_param)
    max_new_tokens = max_tokens if max_tokens is not None else min(settings.default_max_new_tokens, limit)

    try:
        answer = await request.app.state.queue.submit((model, max_new_tokens, settings.max_seq_length), prompt)
    except QueueFullError as error:
        raise ApiError(503, f"the server is busy ({error}); retry later", code="queue_full",
                       headers={"Retry-After": str(options.retry_after_s)}) from None
    except QueueClosedError:
        raise ApiError(503, "the server is shutting down; retry on another instance", code="shutting_down") from None
    except Exception as error:
        raise ApiError(500, f"generation failed: {type(error).__name__}: {error}", code="generation_failed") from error
    fields.update(prompt_tokens=prompt_tokens, completion_tokens=answer.n_tokens)
    return model, answer, prompt_tokens
