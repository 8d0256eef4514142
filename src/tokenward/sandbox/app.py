"""Composition of the sandbox ASGI app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from tokenward.clock import Clock
from tokenward.sandbox import api, control, oauth, outgoing_routes, rest
from tokenward.sandbox.settings import SandboxSettings
from tokenward.sandbox.state import SandboxState


def create_sandbox_app(
    settings: SandboxSettings | None = None, clock: Clock | None = None
) -> Starlette:
    state = SandboxState(settings, clock)
    table = rest.build_table()
    routes: list[BaseRoute] = [
        *oauth.routes(state),
        *control.routes(state),
        *outgoing_routes.routes(state),
        *api.routes(state),
        *rest.routes(state, table),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = state
    return api.wrap(app, state, table)
