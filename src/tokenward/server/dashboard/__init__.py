"""The operator's dashboard (``/dashboard``): server-rendered pages over the same services as
the HTTP API. See :mod:`tokenward.server.dashboard.routes` and
:mod:`tokenward.server.dashboard.security`."""

from __future__ import annotations

from tokenward.server.dashboard.routes import dashboard_router

__all__ = ["dashboard_router"]
