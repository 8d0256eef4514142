"""``client.actions.mcp``: per-user MCP sessions an application hands to an MCP client.

::

    session = client.actions.mcp.create_session(connection_name="discord", identifier="user_123")
    session.url   # paste into any MCP client (Streamable HTTP); it acts as user_123 only
    client.actions.mcp.list_sessions(connection_name="discord", identifier="user_123")
    client.actions.mcp.revoke_session(session.id)   # the URL is refused from the next request on

(The SDK never imports the MCP SDK: these are plain HTTP calls to ``/api/v1/mcp/sessions``.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tokenward.sdk.client import AsyncClient

__all__ = ["AsyncMcpActions", "McpActions", "McpSession", "McpSessionInfo"]


class McpSession(BaseModel):
    """An MCP session for one user: ``url`` alone is enough for an MCP client to connect."""

    model_config = ConfigDict(extra="allow", frozen=True)

    url: str
    """The Streamable HTTP URL (it carries the session token; treat it as a secret)."""
    token: str
    """The session token, for ``Authorization: Bearer`` on ``/mcp``."""
    id: str | None = None
    """The session's id, for :meth:`AsyncMcpActions.revoke_session`."""
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


class McpSessionInfo(BaseModel):
    """A session on record (never its URL or token)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    connection_name: str
    identifier: str
    tools: list[str] | None = None
    """The allowed tools; ``None``: every tool."""
    read_only: bool = False
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


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

    async def list_sessions(
        self,
        *,
        connection_name: str | None = None,
        identifier: str | None = None,
        include_inactive: bool = False,
    ) -> list[McpSessionInfo]:
        """Sessions minted for a user (or everyone), newest first; only usable ones unless
        ``include_inactive``."""
        params: dict[str, Any] = {}
        if connection_name is not None:
            params["connection_name"] = connection_name
        if identifier is not None:
            params["identifier"] = identifier
        if include_inactive:
            params["include_inactive"] = "true"
        data = await self._c._call("GET", "/api/v1/mcp/sessions", params=params)
        return [McpSessionInfo.model_validate(item) for item in data["sessions"]]

    async def revoke_session(self, session_id: str) -> McpSessionInfo:
        """Revoke a session: its URL is refused from the next request on (again: no change)."""
        data = await self._c._call("DELETE", f"/api/v1/mcp/sessions/{quote(session_id, safe='')}")
        return McpSessionInfo.model_validate(data["session"])


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

    def list_sessions(
        self,
        *,
        connection_name: str | None = None,
        identifier: str | None = None,
        include_inactive: bool = False,
    ) -> list[McpSessionInfo]:
        sessions: list[McpSessionInfo] = self._run(
            self._a.list_sessions(
                connection_name=connection_name,
                identifier=identifier,
                include_inactive=include_inactive,
            )
        )
        return sessions

    def revoke_session(self, session_id: str) -> McpSessionInfo:
        revoked: McpSessionInfo = self._run(self._a.revoke_session(session_id))
        return revoked
