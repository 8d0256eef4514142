"""MCP on the gateway: ``/api/v1/mcp/sessions`` (create, list, revoke) and the ``/mcp`` endpoint.

:func:`install_mcp` wires both into the app: the sessions route behind the API-token
dependency, ``/mcp`` and ``/mcp/s/{token}`` (authenticated by session tokens instead), and the
MCP session manager into the app's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from starlette.routing import Route

from tokenward.clock import utc_datetime
from tokenward.errors import ValidationError
from tokenward.mcp.http import McpHttpEndpoint
from tokenward.mcp.sessions import (
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    SessionTokens,
    check_tool_names,
)
from tokenward.server.api.auth import scoped
from tokenward.server.api.errors import error_responses
from tokenward.server.container import Container
from tokenward.vault.mcp_sessions import McpSessionRecord

__all__ = [
    "McpSessionList",
    "McpSessionRequest",
    "McpSessionResponse",
    "McpSessionView",
    "install_mcp",
    "router",
]

router = APIRouter(prefix="/api/v1/mcp", tags=["mcp"])


class McpSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection_name: str = Field(min_length=1, max_length=64, examples=["discord"])
    identifier: str = Field(
        min_length=1,
        max_length=255,
        description="Your application's key for the user. It need not be linked yet: until it "
        "is, the tools answer with an authorization link for the user.",
    )
    tools: list[str] | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="The tools the session offers (default: every tool).",
    )
    ttl_seconds: int = Field(
        DEFAULT_TTL_SECONDS,
        ge=MIN_TTL_SECONDS,
        le=MAX_TTL_SECONDS,
        description="How long the session works, in seconds (60 to 30 days; default 1 day).",
    )
    read_only: StrictBool = Field(
        False,
        description="Only tools annotated read-only run in this session (others are refused "
        "with TOOL_NOT_ALLOWED and not listed).",
    )

    @field_validator("identifier")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters")
        return value


class McpSessionResponse(BaseModel):
    url: str = Field(
        description="Give this to an MCP client (Streamable HTTP): it carries the session token, "
        "so nothing else is needed. Treat it as a secret: it acts as the user."
    )
    token: str = Field(description="The session token, for `Authorization: Bearer` on /mcp.")
    id: str = Field(
        description="The session's id: revoke it with DELETE /api/v1/mcp/sessions/{id}."
    )
    expires_at: datetime
    connection_name: str
    identifier: str
    tools: list[str]
    read_only: bool


class McpSessionView(BaseModel):
    id: str = Field(description="The session's id (the token's `jti` claim; not the token).")
    connection_name: str
    identifier: str
    tools: list[str] | None = Field(description="The allowed tools; null: every tool.")
    read_only: bool
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: McpSessionRecord) -> McpSessionView:
        return cls(
            id=record.id,
            connection_name=record.connection_name,
            identifier=record.identifier,
            tools=None if record.tools is None else list(record.tools),
            read_only=record.read_only,
            created_at=utc_datetime(record.created_at),
            expires_at=utc_datetime(record.expires_at),
            revoked_at=None if record.revoked_at is None else utc_datetime(record.revoked_at),
        )


class McpSessionList(BaseModel):
    sessions: list[McpSessionView] = Field(description="Newest first, at most 200.")


class McpSessionRevoked(BaseModel):
    session: McpSessionView


def _tokens(request: Request) -> SessionTokens:
    tokens: SessionTokens = request.app.state.mcp_tokens
    return tokens


@router.post(
    "/sessions",
    response_model=McpSessionResponse,
    summary="Create an MCP session for a user",
    responses=error_responses(400, 401, 404),
    # A session runs tools as the user, so it needs tools:execute too (never more than its
    # creator could do).
    dependencies=[scoped("mcp:sessions", "tools:execute")],
)
async def create_session(body: McpSessionRequest, request: Request) -> JSONResponse:
    """A URL an MCP client can connect to, offering `tools` (default: all) acting as
    `identifier` on `connection_name`, until `expires_at`."""
    container: Container = request.app.state.container
    connection = await container.vault.get_connection_by_name(body.connection_name)
    provider = container.connector(connection)
    allowed = check_tool_names(provider.catalog.names(), body.tools)
    if body.read_only and allowed is not None:
        writes = [name for name in allowed if not provider.catalog.get(name).annotations.read_only]
        if writes:
            shown = ", ".join(writes[:10])
            reason = f"not read-only, and the session is read_only: {shown}"
            raise ValidationError(f"tools: {reason}", fields={"tools": reason})
    token, session = _tokens(request).mint(
        connection_name=body.connection_name,
        identifier=body.identifier,
        tools=allowed,
        ttl_seconds=body.ttl_seconds,
        read_only=body.read_only,
    )
    await container.mcp_sessions.record(session)
    offered = list(session.tools) if session.tools is not None else provider.catalog.names()
    if session.read_only:
        offered = [n for n in offered if provider.catalog.get(n).annotations.read_only]
    response = McpSessionResponse(
        url=f"{container.settings.public_base}/mcp/s/{token}",
        token=token,
        id=session.session_id,
        expires_at=utc_datetime(session.expires_at),
        connection_name=session.connection_name,
        identifier=session.identifier,
        tools=offered,
        read_only=session.read_only,
    )
    return JSONResponse(
        response.model_dump(mode="json"),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get(
    "/sessions",
    response_model=McpSessionList,
    summary="List MCP sessions",
    responses=error_responses(400, 401),
    dependencies=[scoped("mcp:sessions", "tools:execute")],
)
async def list_sessions(
    request: Request,
    connection_name: str | None = Query(None, min_length=1, max_length=64),
    identifier: str | None = Query(None, min_length=1, max_length=255),
    include_inactive: bool = Query(False, description="Also list revoked and expired sessions."),
) -> McpSessionList:
    """The sessions minted for a user (or every user), newest first; by default only those
    still usable."""
    container: Container = request.app.state.container
    records = await container.mcp_sessions.list(
        connection_name=connection_name,
        identifier=identifier,
        include_inactive=include_inactive,
    )
    return McpSessionList(sessions=[McpSessionView.of(r) for r in records])


@router.delete(
    "/sessions/{session_id}",
    response_model=McpSessionRevoked,
    summary="Revoke an MCP session",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("mcp:sessions", "tools:execute")],
)
async def revoke_session(
    request: Request, session_id: str = Path(min_length=1, max_length=32)
) -> McpSessionRevoked:
    """The session's URL and token stop working at once on every replica sharing Redis (within
    `MCP_REVOCATION_CACHE_SECONDS` on the others). Revoking it again changes nothing."""
    container: Container = request.app.state.container
    record = await container.mcp_sessions.revoke(session_id)
    container.announce("mcp_session", record.id)
    return McpSessionRevoked(session=McpSessionView.of(record))


def install_mcp(app: FastAPI, container: Container, *, dependencies: Sequence[Depends]) -> None:
    """Add ``/api/v1/mcp/sessions`` (behind ``dependencies``, the API-token check),
    ``/mcp`` and ``/mcp/s/{token}``, and run the MCP session manager within the app's lifespan."""
    tokens = SessionTokens(container.settings, container.vault.keyring, container.clock)
    app.state.mcp_tokens = tokens
    app.include_router(router, dependencies=list(dependencies))
    endpoint = McpHttpEndpoint(
        catalog=container.catalog,
        runner=lambda: container.runner,
        tokens=tokens,
        link_factory=container.link_for,
        revoked=container.mcp_revocations.revoked,
    )
    # Plain Starlette routes whose endpoint is an ASGI app: every method reaches it as is.
    app.router.routes.append(Route("/mcp", endpoint, include_in_schema=False))
    app.router.routes.append(Route("/mcp/s/{token}", endpoint, include_in_schema=False))

    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(the_app: Any) -> AsyncIterator[Any]:
        async with outer(the_app) as state, endpoint.lifespan():
            yield state

    app.router.lifespan_context = lifespan
