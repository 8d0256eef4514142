"""``client.actions.mcp``: per-user MCP sessions an application hands to an MCP client.

::

    session = client.actions.mcp.create_session(connection_name="discord", identifier="user_123")
    session.url   # paste into any MCP client (Streamable HTTP); it acts as user_123 only

(The SDK never imports the MCP SDK: this is a plain HTTP call to ``POST /api/v1/mcp/sessions``.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tokenward.sdk.client import AsyncClient

__all__ = ["AsyncMcpActions", "McpActions", "McpSession"]


class McpSession(BaseModel):
    """An MCP session for one user: ``url`` alone is enough for an MCP client to connect."""

    model_config = ConfigDict(extra="allow", frozen=True)

    url: str
    """The Streamable HTTP URL (it carries the session token; treat it as a secret)."""
    token: str
    """The session token, for ``Authorization: Bearer`` on ``/mcp``."""
    expires_at: datetime
    connection_name: str | None = None
    identifier: str | None = None
    tools: list[str] = []
    read_only: bool = False
    """Only read-only tools run in this session."""

    def __repr__(self) -> str:  # the URL and token act as the user: keep them out of reprs
        return (
            f"McpSession(connection_name={self.connection_name!r}, "
            f"identifier={self.identifier!r}, expires_at={self.expires_at.isoformat()!r}, "
            f"tools={len(self.tools)})"
        )

    __str__ = __repr__


class AsyncMcpActions:
    """``client.actions.mcp`` (async)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create_session(
        self,
        *,
        connection_name: str,
        identifier: str,
        tools: Sequence[str] | None = None,
        ttl_seconds: int | None = None,
        read_only: bool = False,
    ) -> McpSession:
        """Mint an MCP session acting as ``identifier`` on ``connection_name``, offering
        ``tools`` (default: every tool of the connection's provider) for ``ttl_seconds``
        (default: one day); ``read_only=True`` runs only read-only tools (the others are refused
        with ``TOOL_NOT_ALLOWED``). The identifier need not be linked yet: until it is, its tools
        answer with an authorization link."""
        body: dict[str, Any] = {"connection_name": connection_name, "identifier": identifier}
        if tools is not None:
            body["tools"] = list(tools)
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        if read_only:
            body["read_only"] = True
        data = await self._c._call("POST", "/api/v1/mcp/sessions", json=body)
        return McpSession.model_validate(data)


class McpActions:
    """``client.actions.mcp`` (sync; see :class:`AsyncMcpActions`)."""

    def __init__(self, actions: AsyncMcpActions, run: Callable[[Awaitable[Any]], Any]) -> None:
        self._a = actions
        self._run = run

    def create_session(
        self,
        *,
        connection_name: str,
        identifier: str,
        tools: Sequence[str] | None = None,
        ttl_seconds: int | None = None,
        read_only: bool = False,
    ) -> McpSession:
        session: McpSession = self._run(
            self._a.create_session(
                connection_name=connection_name,
                identifier=identifier,
                tools=tools,
                ttl_seconds=ttl_seconds,
                read_only=read_only,
            )
        )
        return session
