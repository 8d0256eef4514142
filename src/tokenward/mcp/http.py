"""``/mcp``: the Streamable HTTP MCP endpoint, authenticated by MCP session tokens.

Every HTTP request carries a session token, in one of three places: the URL path
(``/mcp/s/<token>``, the form ``POST /api/v1/mcp/sessions`` hands out, so the URL alone is enough
for any MCP client), the query (``/mcp?token=<token>``) or ``Authorization: Bearer <token>``. When
more than one is given they must be the same token. The token is verified before anything else
runs, then its session is checked against the revoked ones; a missing, malformed, forged,
expired or revoked token is answered ``401`` (a JSON-RPC error whose
``message`` says what is wrong and whose ``data`` holds the stable ``code`` and ``details``), and
nothing reaches the MCP server, the vault or Discord.

The verified :class:`~tokenward.mcp.sessions.McpSession` is put on the ASGI scope, and the MCP
server's handlers read it from the request that carried each message. So each message runs as
the user its own request's token names; there is no state a second token could borrow.

The SDK's session manager runs in stateless JSON mode: no ``Mcp-Session-Id``, no server-held
streams, one JSON answer per POST. Any replica can serve any request, which is what a load
balancer in front of several ``tokenward serve`` processes needs, and a client can never resume
a transport session opened under another token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from tokenward.mcp.sessions import McpSession, SessionTokenError, SessionTokens
from tokenward.tasks import cancel_and_wait

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from tokenward.connectors import ToolCatalog
    from tokenward.mcp.server import Context, LinkFactory
    from tokenward.tools.runner import ToolRunner

__all__ = ["SCOPE_SESSION", "McpHttpEndpoint"]

log = logging.getLogger("tokenward.mcp")

SCOPE_SESSION: Final = "tokenward.mcp_session"
"""The ASGI scope key holding the request's verified :class:`McpSession`."""

INVALID_REQUEST: Final = -32600
"""JSON-RPC's "invalid request" error code."""


def _error(status: int, code: str, message: str, details: dict[str, Any]) -> JSONResponse:
    """A refusal as a JSON-RPC error (``id: null``), so MCP clients show its message; ``data``
    carries tokenward's stable ``code`` and ``details``, as the API's error envelope does."""
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tokenward-mcp", error="invalid_token"'
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": INVALID_REQUEST,
            "message": message,
            "data": {"code": code, "details": details},
        },
    }
    return JSONResponse(body, status_code=status, headers=headers)


class _RevocationUnknown(Exception):
    """The revocation store did not answer."""


def _session_of(ctx: Context) -> McpSession:
    request = ctx.request
    session = None if request is None else request.scope.get(SCOPE_SESSION)
    if not isinstance(session, McpSession):  # a message that did not come through the endpoint
        from mcp.shared.exceptions import MCPError

        raise MCPError(code=INVALID_REQUEST, message="no MCP session for this request")
    return session


class McpHttpEndpoint:
    """The ASGI app behind ``/mcp`` and ``/mcp/s/{token}``.

    Enter :meth:`lifespan` for as long as the app serves (it runs the SDK's session manager);
    a request with a valid token that arrives outside it gets ``503``.
    """

    def __init__(
        self,
        *,
        catalog: ToolCatalog,
        runner: Callable[[], ToolRunner],
        tokens: SessionTokens,
        link_factory: LinkFactory | None = None,
        revoked: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.tokens = tokens
        self._revoked = revoked
        self._catalog = catalog
        self._runner = runner
        self._link_factory = link_factory
        self._manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._serving = False

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Serve for as long as this is entered. The MCP stack (a second of imports) is loaded
        and its session manager started on the first ``/mcp`` request, not at start-up; leaving
        stops the manager (a fresh one each time: the SDK's can run only once)."""
        self._serving = True
        try:
            yield
        finally:
            self._serving = False
            task, self._task, self._manager = self._task, None, None
            await cancel_and_wait(task)

    async def _started(self) -> StreamableHTTPSessionManager:
        """The running session manager, started on first use (one at a time)."""
        async with self._start_lock:
            if self._manager is None:
                ready: asyncio.Future[StreamableHTTPSessionManager] = (
                    asyncio.get_running_loop().create_future()
                )
                # The manager's task group must be entered and left in one task, so it lives in
                # a task of its own until the lifespan ends.
                self._task = asyncio.create_task(self._run_manager(ready), name="mcp-manager")
                self._manager = await ready
            return self._manager

    async def _run_manager(self, ready: asyncio.Future[StreamableHTTPSessionManager]) -> None:
        try:
            from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

            from tokenward.mcp.server import build_server

            server = build_server(
                catalog=self._catalog,
                runner=self._runner(),
                resolve_session=_session_of,
                link_factory=self._link_factory,
            )
            manager = StreamableHTTPSessionManager(app=server, json_response=True, stateless=True)
            async with manager.run():
                ready.set_result(manager)
                await asyncio.Event().wait()  # until the lifespan cancels this task
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def _check_revoked(self, session_id: str) -> bool:
        """Whether the session was revoked; :class:`_RevocationUnknown` when that cannot be
        known (a session is never let through unchecked)."""
        assert self._revoked is not None
        try:
            return await self._revoked(session_id)
        except Exception as exc:
            log.warning("MCP session revocation check failed: %s", type(exc).__name__)
            raise _RevocationUnknown from exc

    def _token(self, scope: Scope) -> str:
        """The one session token the request carries (path, query or bearer header)."""
        found: list[str] = []
        path_token = (scope.get("path_params") or {}).get("token")
        if isinstance(path_token, str) and path_token:
            found.append(path_token)
        query = scope.get("query_string", b"").decode("latin-1")
        found.extend(value for key, value in parse_qsl(query) if key == "token" and value)
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                scheme, _, credential = value.decode("latin-1").strip().partition(" ")
                if scheme.lower() != "bearer" or not credential.strip():
                    raise SessionTokenError(
                        "the Authorization header must be 'Bearer <MCP session token>'",
                        reason="malformed",
                    )
                found.append(credential.strip())
        if not found:
            raise SessionTokenError(
                "this endpoint needs an MCP session token: use the url from "
                "POST /api/v1/mcp/sessions, or send 'Authorization: Bearer <token>'",
                reason="missing",
                code="UNAUTHENTICATED",
            )
        if len(set(found)) > 1:
            raise SessionTokenError(
                "the request carries more than one different MCP session token (URL, query, "
                "Authorization header); send exactly one",
                reason="conflicting",
            )
        return found[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            session = self.tokens.verify(self._token(scope))
            if self._revoked is not None and await self._check_revoked(session.session_id):
                raise SessionTokenError(
                    "the MCP session was revoked by an operator; mint a new one with "
                    "POST /api/v1/mcp/sessions",
                    reason="revoked",
                )
        except SessionTokenError as exc:
            log.info("MCP request refused: %s session token", exc.reason)
            await _error(401, exc.code, exc.message, exc.details)(scope, receive, send)
            return
        except _RevocationUnknown:
            await _error(
                503,
                "DATABASE_UNAVAILABLE",
                "cannot check whether the MCP session was revoked (the database does not "
                "answer); try again shortly",
                {},
            )(scope, receive, send)
            return
        if not self._serving:
            await _error(
                503,
                "UNAVAILABLE",
                "the MCP endpoint is not running (the application's lifespan has not started)",
                {},
            )(scope, receive, send)
            return
        manager = await self._started()
        scope = dict(scope)
        scope[SCOPE_SESSION] = session
        await manager.handle_request(scope, receive, send)
