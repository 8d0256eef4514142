"""``create_app()``: the tokenward ASGI application (FastAPI).

Layers, outermost first: :class:`ObservabilityMiddleware` (request id, access log, metrics,
last-resort 500) → hand-written hot-path endpoints (``/proxy``) → FastAPI's router with the
error-envelope handlers. ``app.state`` holds ``container``, ``metrics`` and ``api_auth``.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tokenward import __version__
from tokenward.config import Settings
from tokenward.errors import AuthenticationError, NotFoundError
from tokenward.server.api import accounts, connections, tokens, webhooks
from tokenward.server.api.auth import ApiAuth, ApiPrincipal, require_api_client
from tokenward.server.api.errors import install_error_handlers
from tokenward.server.api.observability import (
    CONTENT_TYPE_LATEST,
    Metrics,
    ObservabilityMiddleware,
    configure_logging,
)
from tokenward.server.api.openapi import install_openapi
from tokenward.server.browser import browser_routes
from tokenward.server.container import Container
from tokenward.server.dashboard import dashboard_router
from tokenward.server.discord_routes import discord_router
from tokenward.server.docs import docs_router, static_mount
from tokenward.server.mcp_routes import install_mcp
from tokenward.server.proxy_endpoint import ProxyEndpoint
from tokenward.server.tools_routes import tools_router
from tokenward.shared import RESYNC

DESCRIPTION = """\
Self-hosted agent-auth gateway for Discord.

Get an API token from `POST /oauth/token` (client credentials of an API client made with
`tokenward api-clients create`) and send it as `Authorization: Bearer <token>` on every
`/api/*` and `/proxy/*` call. Each operation names the scope it needs (`admin` allows
everything). Errors always look like
`{"error": {"code": "...", "message": "...", "details": {...}}}`.
"""


def _check_metrics_token(expected: str, authorization: str | None) -> None:
    """``/metrics`` with ``TOKENWARD_METRICS_TOKEN`` set: ``Bearer <it>`` or a 401."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    if not authorization:
        raise AuthenticationError(
            "/metrics needs 'Authorization: Bearer <TOKENWARD_METRICS_TOKEN>'",
            code="UNAUTHENTICATED",
        )
    # Constant time, and digests of equal length whatever was sent (no length leak either).
    sent = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape")).digest()
    wanted = hashlib.sha256(expected.encode("utf-8")).digest()
    if not hmac.compare_digest(sent, wanted) or scheme.lower() != "bearer":
        raise AuthenticationError("the metrics token is wrong", code="INVALID_TOKEN")


def _operations_routes(metrics: Metrics, metrics_token: str | None) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    @router.get(
        "/readyz",
        summary="Readiness",
        responses={503: {"description": "Not ready: `checks` names what is wrong."}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """200 once the database answers at the schema revision this version needs and the
        encryption keys can open what it holds; otherwise 503 with each failing check's
        `error` (database unreachable, not migrated, key material not loaded)."""
        report = await request.app.state.container.readiness.report()
        body = {**report.as_dict(), "version": __version__}
        return JSONResponse(body, status_code=200 if report.ready else 503)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics(request: Request) -> Response:
        """The Prometheus text format. With `TOKENWARD_METRICS_TOKEN` set, send
        `Authorization: Bearer <it>`."""
        if metrics_token:
            _check_metrics_token(metrics_token, request.headers.get("authorization"))
        return Response(
            metrics.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
        )

    return router


class GatewayApp(FastAPI):
    """FastAPI, with ``/proxy/...`` dispatched to a lean pure-ASGI chain before any routing."""

    proxy_chain: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.proxy_chain is not None and scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/proxy/") or path == "/proxy":
                await self.proxy_chain(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    raise NotFoundError("no such endpoint")


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    *,
    metrics: Metrics | None = None,
    setup_logging: bool = True,
) -> FastAPI:
    container = container or Container(settings or Settings())
    settings = container.settings
    metrics = metrics or container.metrics
    api_auth = ApiAuth(container.vault, settings, container.clock)

    def invalidated(kind: str, value: str) -> None:
        if kind == "api_client":
            api_auth.forget_client(value)
        elif kind == RESYNC:
            api_auth.clients.expire()  # a deletion may have been missed while disconnected

    container.on_invalidation(invalidated)
    if setup_logging:
        configure_logging(settings.log_level, secrets=_configured_secrets(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Accounts whose refresh a dead process left in flight are re-checked once the database
        # is ready, then periodically (tokenward.oauth.refresh).
        async def recover_refreshes() -> None:
            container.tokens.start_recovery()

        container.readiness.on_ready(recover_refreshes)
        await container.start(serving=True)  # a database not ready yet: up, but not /readyz
        # Everything loaded so far (models, modules) lives as long as the process: move it out
        # of the collector's view, so full collections stay short under load. No collection
        # first: it finds a few dozen unreachable objects here and costs about 60 ms of
        # start-up. (The tool catalog is loaded on first use, after this; it adds few objects
        # the collector tracks.)
        gc.freeze()
        try:
            yield
        finally:
            await container.close()

    app = GatewayApp(
        title="tokenward",
        version=__version__,
        summary="Self-hosted agent-auth gateway for Discord.",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by tokenward.server.docs, with no CDN
        redoc_url=None,
    )
    app.state.container = container
    app.state.metrics = metrics
    app.state.api_auth = api_auth
    install_error_handlers(app)
    install_openapi(app, metrics_token=bool(settings.metrics_token))
    metrics.known_tools = container.connectors  # its tool names, read on first use

    authenticated = [Depends(require_api_client)]
    app.include_router(tokens.router)
    app.include_router(connections.router, dependencies=authenticated)
    app.include_router(accounts.router, dependencies=authenticated)
    app.include_router(webhooks.router, dependencies=authenticated)
    app.include_router(tools_router(container), dependencies=authenticated)
    install_mcp(app, container, dependencies=authenticated)  # /api/v1/mcp/sessions, /mcp
    app.include_router(_operations_routes(metrics, settings.metrics_token))
    app.include_router(browser_routes(container))
    app.include_router(docs_router(app.title))
    app.include_router(dashboard_router(container))
    app.router.routes.append(static_mount())
    app.include_router(discord_router(container))  # Discord signs these; no API token

    # Middleware: add_middleware() wraps what is already there, so the last one added is the
    # outermost. The /proxy fast path (a pure ASGI endpoint in front of the router) sits inside
    # ObservabilityMiddleware, so proxied calls get request ids, logs and metrics too.
    # /proxy is the hot path: GatewayApp hands it straight to this chain, skipping FastAPI's
    # routing and exception layers (same request ids, logs and metrics).
    async def authenticate_proxy(authorization: str | None) -> ApiPrincipal:
        principal = await api_auth.authenticate(authorization)
        principal.require("proxy", action="/proxy/{path}")
        return principal

    app.proxy_chain = ObservabilityMiddleware(
        ProxyEndpoint(_not_found, container=container, authenticate=authenticate_proxy),
        metrics=metrics,
        access_log_enabled=container.settings.proxy_access_log,
    )
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app


def _configured_secrets(settings: Settings) -> list[str]:
    """Literal values the log filter must never let through (the encryption keys, the metrics
    token)."""
    values: list[str] = [settings.metrics_token] if settings.metrics_token else []
    if settings.encryption_keys:
        for entry in settings.encryption_keys.split(","):
            _kid, _sep, key = entry.partition(":")
            if key.strip():
                values.append(key.strip())
    return values
