"""The compatibility listener: REST and gRPC on one port, under hypercorn.

``serve --compat-port P`` runs it beside the main port, in the same process and event loop, over
the same application object: the main port keeps uvicorn (and its speed), while this port needs
what uvicorn lacks, HTTP/2 with trailers, h2c with prior knowledge (the Node SDK on ``http://``)
and TLS with ALPN ``h2`` (the Python SDK always uses TLS for gRPC). hypercorn offers all three on
one socket, and HTTP/1.1 beside them for ``/oauth/token`` and ``/proxy``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from fastapi import FastAPI

from tokenward.compat.grpc_asgi import CODE_NAMES, GrpcRouter
from tokenward.compat.services import CompatServices
from tokenward.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

    from tokenward.config import Settings

log = logging.getLogger("tokenward.compat")

# The Python SDK pings every 60 s and drops an idle channel after 240 s; execute_tool is never
# retried on UNAVAILABLE, so the server must not be the one closing a quiet connection first.
KEEP_ALIVE_SECONDS = 330.0


def compat_app(app: FastAPI) -> GrpcRouter:
    """The compatibility port's ASGI application over the main ``app`` (same container, same API
    clients, same routes)."""
    services = CompatServices(app.state.container, app.state.api_auth)
    metrics = app.state.metrics
    table = services.table()

    def on_call(path: str, code: int, seconds: float) -> None:
        # Labelled by the method the server implements (a client cannot mint label values).
        status = CODE_NAMES.get(code, str(code))
        metrics.record_grpc_call(table.canonical(path) or "unimplemented", status, seconds)
        # One line per call, like the main port's access log (never a message or metadata).
        log.info(
            "gRPC %s %s",
            path,
            status,
            extra={
                "tw_fields": {
                    "event": "grpc_call",
                    "method": path,
                    "grpc_status": status,
                    "duration_ms": round(seconds * 1000, 3),
                }
            },
        )

    return GrpcRouter(table, app, on_call=on_call)


def check_settings(settings: Settings) -> None:
    """What can never work, refused before anything listens: the main port reused, half a TLS
    pair, files that do not load."""
    if settings.compat_port and settings.compat_port == settings.port:
        raise ConfigError(
            f"the compatibility port must differ from the main port ({settings.port}): "
            "choose another --compat-port (TOKENWARD_COMPAT_PORT)",
            details={"field": "compat_port"},
        )
    check_tls_files(settings.tls_cert, settings.tls_key)


def check_tls_files(cert: Path | None, key: Path | None) -> None:
    """Both or neither, readable, and a pair that loads: a clear error before anything listens."""
    if (cert is None) != (key is None):
        missing = "--tls-key (TOKENWARD_TLS_KEY)" if key is None else "--tls-cert"
        raise ConfigError(
            f"TLS needs both a certificate and its key: {missing} is missing",
            details={"field": "tls_key" if key is None else "tls_cert"},
        )
    if cert is None or key is None:
        return
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"TLS file not found: {exc.filename}", details={"field": "tls_cert"}
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"cannot load the TLS certificate {cert} with key {key}: {exc}",
            details={"field": "tls_cert"},
        ) from None


async def serve_compat(
    app: FastAPI,
    sock: socket.socket,
    *,
    tls_cert: Path | None,
    tls_key: Path | None,
    shutdown: Callable[[], Awaitable[None]],
    log_level: str = "INFO",
) -> None:
    """Serve the compatibility app on the bound, listening ``sock`` until ``shutdown`` returns."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    # hypercorn takes its own copy of the descriptor; ``sock`` stays the caller's to close.
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    if tls_cert is not None and tls_key is not None:
        config.certfile = str(tls_cert)
        config.keyfile = str(tls_key)
    config.keep_alive_timeout = KEEP_ALIVE_SECONDS
    config.graceful_timeout = 10.0
    config.accesslog = None
    config.errorlog = logging.getLogger("tokenward.compat.server")
    config.loglevel = log_level.upper()
    await serve(compat_app(app), config, shutdown_trigger=shutdown)  # type: ignore[arg-type]


def until(flag: Callable[[], bool], interval: float = 0.1) -> Callable[[], Awaitable[None]]:
    """A shutdown trigger that returns once ``flag()`` is true."""

    async def wait() -> None:
        # uvicorn exposes its stop request as a flag (should_exit), not an event.
        while not flag():  # noqa: ASYNC110
            await asyncio.sleep(interval)

    return wait


async def serve_with_compat(
    server: uvicorn.Server,
    sock: socket.socket,
    compat_sock: socket.socket,
    settings: Settings,
) -> None:
    """uvicorn on ``sock`` (the main port, unchanged) and, once it has started (the application's
    lifespan ran), the compatibility app on ``compat_sock``; both stop when uvicorn is told to
    (SIGTERM, SIGINT)."""
    main = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if main.done():
            await main
            return
        await asyncio.sleep(0.02)
    app = cast(FastAPI, server.config.app)
    compat = asyncio.create_task(
        serve_compat(
            app,
            compat_sock,
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
            shutdown=until(lambda: server.should_exit),
            log_level=settings.log_level,
        )
    )

    def stop_main(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            server.should_exit = True  # the compatibility port failed: stop, do not half-serve

    compat.add_done_callback(stop_main)
    try:
        await main
    finally:
        server.should_exit = True
        await compat


def run_with_compat(
    server: uvicorn.Server,
    sock: socket.socket,
    compat_sock: socket.socket,
    settings: Settings,
) -> None:
    """:func:`serve_with_compat` on the event loop uvicorn would pick (uvloop where installed),
    so the main port runs as fast as without the compatibility port."""
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(serve_with_compat(server, sock, compat_sock, settings))
