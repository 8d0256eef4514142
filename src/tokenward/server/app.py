"""``create_app()``: the tokenward ASGI application (FastAPI).

Layers, outermost first: :class:`ObservabilityMiddleware` (request id, access log, metrics,
last-resort 500) → hand-written hot-path endpoints (``/proxy``) → FastAPI's router with the
error-envelope handlers. ``app.state`` holds ``container``, ``metrics`` and ``api_auth``.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tokenward import __version__
from tokenward.config import Settings
from tokenward.errors import NotFoundError
from tokenward.server import pages
from tokenward.server.api import accounts, connections, tokens
from tokenward.server.api.auth import ApiAuth, require_api_client
from tokenward.server.api.errors import install_error_handlers
from tokenward.server.api.observability import (
    CONTENT_TYPE_LATEST,
    Metrics,
    ObservabilityMiddleware,
    configure_logging,
)
from tokenward.server.container import Container
from tokenward.server.mcp_routes import install_mcp
from tokenward.server.proxy_endpoint import ProxyEndpoint
from tokenward.server.tools_routes import tools_router

DESCRIPTION = """\
Self-hosted agent-auth gateway for Discord.

Get an API token from `POST /oauth/token` (client credentials of an API client made with
`tokenward api-clients create`) and send it as `Authorization: Bearer <token>` on every
`/api/*` and `/proxy/*` call. Errors always look like
`{"error": {"code": "...", "message": "...", "details": {...}}}`.
"""


def _browser_routes(container: Container) -> APIRouter:
    """The pages a person's browser visits during authorization (HTML, not the envelope)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/connect/{auth_request_id}")
    async def connect(auth_request_id: str) -> Response:
        try:
            url = await container.oauth.begin(auth_request_id)
        except NotFoundError:
            html = pages.error_page(
                "This link cannot be used",
                "The authorization link is unknown, has expired, or was already used.",
                "Ask the application for a new authorization link.",
            )
            return HTMLResponse(html, status_code=404)
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    @router.get("/sso/v1/oauth/{connection_id}/callback")
    async def callback(connection_id: str, request: Request) -> Response:
        params = dict(request.query_params.items())
        outcome = await container.oauth.complete(connection_id, params)
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        if outcome.redirect_to:
            return RedirectResponse(outcome.redirect_to, status_code=302, headers=headers)
        if outcome.ok:
            html = pages.success_page(
                outcome.connection_name or "", outcome.username, outcome.pending_verification
            )
            return HTMLResponse(html, status_code=200, headers=headers)
        html = pages.error_page(outcome.title, outcome.message, outcome.action)
        return HTMLResponse(html, status_code=outcome.status_code, headers=headers)

    return router


def _operations_routes(metrics: Metrics) -> APIRouter:
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

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

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
    if setup_logging:
        configure_logging(settings.log_level, secrets=_configured_secrets(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await container.start(serving=True)  # a database not ready yet: up, but not /readyz
        # Everything loaded so far (catalog, models, modules) lives as long as the process:
        # move it out of the collector's view, so full collections stay short under load.
        gc.collect()
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
    )
    app.state.container = container
    app.state.metrics = metrics
    app.state.api_auth = api_auth
    install_error_handlers(app)

    authenticated = [Depends(require_api_client)]
    app.include_router(tokens.router)
    app.include_router(connections.router, dependencies=authenticated)
    app.include_router(accounts.router, dependencies=authenticated)
    app.include_router(tools_router(container), dependencies=authenticated)
    install_mcp(app, container, dependencies=authenticated)  # /api/v1/mcp/sessions, /mcp
    app.include_router(_operations_routes(metrics))
    app.include_router(_browser_routes(container))

    # Middleware: add_middleware() wraps what is already there, so the last one added is the
    # outermost. The /proxy fast path (a pure ASGI endpoint in front of the router) sits inside
    # ObservabilityMiddleware, so proxied calls get request ids, logs and metrics too.
    # /proxy is the hot path: GatewayApp hands it straight to this chain, skipping FastAPI's
    # routing and exception layers (same request ids, logs and metrics).
    app.proxy_chain = ObservabilityMiddleware(
        ProxyEndpoint(_not_found, container=container, authenticate=api_auth.authenticate),
        metrics=metrics,
    )
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app


def _configured_secrets(settings: Settings) -> list[str]:
    """Literal values the log filter must never let through (the encryption keys)."""
    values: list[str] = []
    if settings.encryption_keys:
        for entry in settings.encryption_keys.split(","):
            _kid, _sep, key = entry.partition(":")
            if key.strip():
                values.append(key.strip())
    return values
