"""Run the HTTP server: load the adapters, build the application, and serve it with uvicorn.

The listening socket is bound before uvicorn starts, so `port=0` lets the operating system choose a
free port. The chosen port is logged and, with `port_file`, written to a file for scripts and tests.
On SIGINT or SIGTERM uvicorn stops accepting connections, waits up to `graceful_timeout_s` for open
requests, and then the application's lifespan completes every request still queued.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from physlora.errors import ConfigError
from physlora.io import write_text_atomic
from physlora.models.encoding import build_prompt
from physlora.serve.abstore import AbStore
from physlora.serve.abtest import AB_DB_FILE, AbService, AnswerFunction, load_ab_items
from physlora.serve.app import ServerOptions, create_app
from physlora.serve.registry import BASE, AdapterRegistry, AdapterSpec

logger = logging.getLogger(__name__)


@dataclass
class ServeSettings:
    """Everything `physlora serve` needs: adapters, address, limits and the A/B page."""

    adapters: list[AdapterSpec]
    host: str = "127.0.0.1"
    port: int = 8000
    options: ServerOptions = field(default_factory=ServerOptions)
    general: str | None = "general"
    """Adapter that `auto` uses when no topic adapter fits."""
    ab_enabled: bool = True
    ab_adapter: str | None = None
    """Adapter rated against the base model on /ab; defaults to the first adapter."""
    ab_db: Path | None = None
    """SQLite file of the ratings; defaults to RUN/ab.sqlite of the rated adapter's run."""
    port_file: Path | None = None
    graceful_timeout_s: float = 30.0


def queued_answer_function(app: FastAPI, registry: AdapterRegistry, adapter: str) -> AnswerFunction:
    """Generate A/B answers through the server's batch queue, with the rated run's prompt and limits.

    Both sides use the adapter's run settings, so base and adapted see the same prompt.
    """
    settings = registry.settings(adapter)

    async def answer(side: str, question: str) -> str:
        model = BASE if side == "base" else adapter
        limit = min(settings.default_max_new_tokens, app.state.options.max_tokens_limit)
        prompt = build_prompt(settings.prompt_template, question)
        generated = await app.state.queue.submit((model, limit, settings.max_seq_length), prompt)
        return generated.text

    return answer


def attach_ab_page(app: FastAPI, registry: AdapterRegistry, adapter: str | None = None,
                   db_path: Path | None = None) -> AbService:
    """Enable /ab on `app` for `adapter` (default: the first one) against the base model."""
    adapter = adapter or registry.primary
    if adapter not in registry.adapter_names:
        raise ConfigError(f"--ab-adapter {adapter!r} is not a served adapter; choose one of {registry.adapter_names}")
    run_dir = registry.run_dirs[adapter]
    items = load_ab_items(run_dir, registry.configs[adapter])
    if not items:
        logger.warning("A/B page: %s has no data/test.jsonl and no predictions.jsonl; /ab has nothing to rate", run_dir)
    store = AbStore(db_path or run_dir / AB_DB_FILE)
    service = AbService(items, store, adapter, run_dir, queued_answer_function(app, registry, adapter))
    app.state.ab = service
    logger.info("A/B page: %d items of %s, ratings in %s", len(items), run_dir, store.path)
    return service


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a TCP socket to host:port (port 0: chosen by the operating system) and start listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}; choose another --host or --port") from error
    sock.listen(2048)
    return sock


def build_app(settings: ServeSettings) -> FastAPI:
    """Load the adapters and build the application with the A/B page when enabled."""
    registry = AdapterRegistry.load(settings.adapters, settings.general)
    app = create_app(registry, settings.options)
    if settings.ab_enabled:
        attach_ab_page(app, registry, settings.ab_adapter, settings.ab_db)
    return app


def serve(settings: ServeSettings) -> None:
    """Serve until SIGINT or SIGTERM."""
    import uvicorn

    app = build_app(settings)
    sock = bind_socket(settings.host, settings.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on",
        timeout_graceful_shutdown=settings.graceful_timeout_s,
    )
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    logger.info("listening on http://%s:%d (models: %s)", host, port, ", ".join(app.state.registry.model_names))
    if settings.port_file is not None:
        write_text_atomic(settings.port_file, f"{port}\n")
    uvicorn.Server(config).run(sockets=[sock])
