"""``/docs`` and ``/static``: the API reference and the dashboard's assets, served by tokenward.

Swagger UI comes from npm's ``swagger-ui-dist`` (Apache-2.0, its ``LICENSE`` and ``NOTICE``
beside the files in ``static/swagger-ui``; ``scripts/vendor_swagger_ui.py`` refreshes it), so the
page renders on a machine with no network. The page carries no inline script and a
Content-Security-Policy that allows only this origin, so a page that tried to load anything from
elsewhere would be stopped by the browser and noticed by the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "docs_router", "static_mount"]

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
DOCS_POLICY: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — API reference</title>
<link rel="icon" type="image/png" href="/static/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
</head>
<body data-openapi="{openapi_url}">
<main id="swagger-ui"></main>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


def static_mount() -> Mount:
    """``/static/...``: files under the package's ``server/static`` (nothing else)."""
    return Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static")


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    router = APIRouter(include_in_schema=False)
    page = _PAGE.format(title=title, openapi_url=openapi_url)

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_POLICY})

    return router
