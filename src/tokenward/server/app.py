"""``create_app()``: the tokenward ASGI application (FastAPI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tokenward import __version__
from tokenward.config import Settings
from tokenward.errors import NotFoundError
from tokenward.server import pages
from tokenward.server.container import Container


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    container = container or Container(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        try:
            yield
        finally:
            await container.close()

    app = FastAPI(
        title="tokenward",
        version=__version__,
        summary="Self-hosted agent-auth gateway for Discord.",
        lifespan=lifespan,
    )
    app.state.container = container

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/connect/{auth_request_id}", include_in_schema=False)
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

    @app.get("/sso/v1/oauth/{connection_id}/callback", include_in_schema=False)
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

    return app
