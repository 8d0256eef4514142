"""Sandbox routes: REST API (being written)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from tokenward.sandbox.state import SandboxState


def routes(state: SandboxState) -> list[BaseRoute]:
    return []


def wrap(app: Starlette, state: SandboxState) -> Starlette:
    return app
