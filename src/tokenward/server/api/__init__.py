"""The HTTP API: routers, API-token auth, the error envelope, observability.

What other parts use:

- :func:`~tokenward.server.api.auth.require_api_client`: the FastAPI dependency behind every
  ``/api/*`` route; ``ApiAuth.authenticate(authorization_header)`` for hand-written ASGI
  endpoints (``/proxy``);
- :class:`~tokenward.server.api.observability.Metrics` on ``app.state.metrics``;
- :func:`~tokenward.server.api.errors.tokenward_error_response` for the error envelope.
"""

from __future__ import annotations

from tokenward.server.api.auth import ApiAuth, ApiPrincipal, require_api_client
from tokenward.server.api.observability import Metrics, current_request_id

__all__ = ["ApiAuth", "ApiPrincipal", "Metrics", "current_request_id", "require_api_client"]
