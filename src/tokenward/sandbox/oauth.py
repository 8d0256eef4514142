"""Sandbox routes: oauth (being written)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from tokenward.sandbox.state import SandboxState


def routes(state: SandboxState) -> list[BaseRoute]:
    return []
