"""The MCP server: the tool catalog as MCP tools, executed by the tool runner for one user.

Every handler first resolves the :class:`~tokenward.mcp.sessions.McpSession` the message belongs
to: over HTTP from the verified session token of the request that carried it (see
:mod:`tokenward.mcp.http`), over stdio from the command line. The session alone names the
connection and the identifier a call runs as; tool arguments never can (the catalog's input
schemas have no such field, and unknown fields are refused by validation).

Results follow the MCP tool-result rules:

- JSON: ``structuredContent`` (the result object; anything else as ``{"result": value}``) and
  the same JSON as a text block;
- an image (the guild widget PNG): an image content block (base64, its media type);
- a tokenward error: ``isError: true`` with ``{"error": {code, message, details}}`` as
  structured content and text, so an agent sees the hint; an account that is not usable (never
  linked, pending, expired) carries a fresh ``authorization_link`` to hand to the user (a bot
  account, which has no link, says how to give it a token instead);
- notes on a call (``ToolResult.notes``) come as a second text block and in
  ``_meta["tokenward/notes"]``.

A session offers the tools of its connection's provider (a ``discordbot`` connection: the
``discordbot_*`` tools), less those the connection's ``allowed_tools`` refuse and, in a
read-only session, those that are not read-only. A call of a tool refused by policy answers
``TOOL_NOT_ALLOWED`` naming the rule.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from tokenward import __version__
from tokenward.connectors import ToolCatalog
from tokenward.errors import (
    AccountNotActive,
    AccountNotFound,
    ReauthorizationRequired,
    TokenwardError,
)
from tokenward.mcp.sessions import McpSession
from tokenward.proxy.accounts import bot_token_hint
from tokenward.tools import policy
from tokenward.tools.runner import ToolResult, ToolRunner
from tokenward.tools.schemas import MCP_META_PREFIX, mcp_tool, strip_nulls

__all__ = ["SessionResolver", "build_server", "error_result", "fixed_session", "tool_result"]

log = logging.getLogger("tokenward.mcp")

Context = ServerRequestContext[Any, Any]
SessionResolver = Callable[[Context], McpSession]
LinkFactory = Callable[[str, str], Awaitable[str]]

INSTRUCTIONS = (
    "Discord tools acting as one user, through tokenward. When a tool answers with an error "
    "whose details carry an authorization_link, give that link to the user: the tools work once "
    "they approve access on Discord."
)


def fixed_session(
    connection_name: str, identifier: str, tools: list[str] | None, *, read_only: bool = False
) -> McpSession:
    """A session that never expires, for a server bound to one user (stdio)."""
    return McpSession(
        connection_name=connection_name,
        identifier=identifier,
        tools=None if tools is None else tuple(tools),
        expires_at=math.inf,
        session_id="local",
        read_only=read_only,
    )


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def tool_result(result: ToolResult) -> types.CallToolResult:
    """A successful tool call as an MCP result."""
    meta: dict[str, Any] = {f"{MCP_META_PREFIX}execution_id": result.execution_id}
    notes: list[types.TextContent] = []
    if result.notes:
        meta[f"{MCP_META_PREFIX}notes"] = list(result.notes)
        notes.append(types.TextContent(text="Notes: " + " ".join(result.notes)))
    if result.image is not None:
        image = result.image.to_mcp_content()
        return types.CallToolResult(
            content=[types.ImageContent(data=image["data"], mime_type=image["mimeType"]), *notes],
            _meta=meta,
        )
    if result.text is not None:
        return types.CallToolResult(
            content=[types.TextContent(text=result.text.text), *notes], _meta=meta
        )
    structured = result.data if isinstance(result.data, dict) else {"result": result.data}
    return types.CallToolResult(
        content=[types.TextContent(text=_json_text(structured)), *notes],
        structured_content=structured,
        _meta=meta,
    )


def error_result(exc: TokenwardError) -> types.CallToolResult:
    """A tokenward error as a tool error the model can read (code, message, details, hint)."""
    body = exc.to_dict()
    return types.CallToolResult(
        content=[types.TextContent(text=_json_text(body))],
        structured_content=body,
        is_error=True,
    )


def build_server(
    *,
    catalog: ToolCatalog,
    runner: ToolRunner,
    resolve_session: SessionResolver,
    link_factory: LinkFactory | None = None,
    name: str = "tokenward",
) -> Server[Any]:
    """The low-level MCP server over ``catalog`` and ``runner``.

    ``resolve_session`` gives the session a message belongs to (it may raise ``MCPError``).
    ``link_factory(connection_name, identifier)`` makes an authorization link for an identifier
    that has never been linked (default: the runner's).
    """
    make_link = link_factory or runner.link_factory
    listed = {spec.name: types.Tool.model_validate(mcp_tool(spec)) for spec in catalog.tools()}
    schemas = {tool.name: tool.input_schema for tool in listed.values()}

    async def offered(session: McpSession) -> list[str]:
        """The tools this session offers now: its connection's provider's, less those its
        policy or a read-only session refuse."""
        try:
            connection = await runner.directory.connection(session.connection_name)
            provider = runner.connectors.provider(connection.provider)
        except TokenwardError:
            return []  # the connection is gone: nothing can run
        names = []
        for tool in provider.catalog.tools():
            if not session.allows(tool.name):
                continue
            if session.read_only and not tool.annotations.read_only:
                continue
            if not policy.decide(connection.allowed_tools, tool.name).allowed:
                continue
            names.append(tool.name)
        return names

    async def list_tools(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        session = resolve_session(ctx)
        return types.ListToolsResult(
            tools=[listed[name] for name in await offered(session) if name in listed]
        )

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        session = resolve_session(ctx)
        if params.name not in listed or not session.allows(params.name):
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown tool: {params.name[:128]} (this session offers only the tools "
                "that tools/list shows)",
            )
        spec = catalog.get(params.name)
        arguments = strip_nulls(spec, params.arguments or {})
        try:
            result = await runner.execute(
                params.name,
                arguments,
                connection_name=session.connection_name,
                identifier=session.identifier,
                read_only=session.read_only,
            )
        except AccountNotFound:
            return error_result(await _not_linked(runner, session, make_link))
        except (AccountNotActive, ReauthorizationRequired) as exc:
            # The agent hands the link to its user and tries again once they approve: let that
            # next call read the account afresh rather than a cached, not-yet-linked copy.
            await _forget_account(runner, session)
            return error_result(exc)
        except TokenwardError as exc:
            return error_result(exc)
        except Exception:
            log.exception("MCP tool %s failed unexpectedly", params.name)
            return error_result(
                TokenwardError("The tool failed with an unexpected error; it has been logged.")
            )
        return tool_result(result)

    return Server(
        name,
        version=__version__,
        title="tokenward: Discord tools",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def _forget_account(runner: ToolRunner, session: McpSession) -> None:
    try:
        connection = await runner.directory.connection(session.connection_name)
    except TokenwardError:
        return
    runner.directory.forget(connection.id, session.identifier)


async def _not_linked(
    runner: ToolRunner, session: McpSession, make_link: LinkFactory
) -> TokenwardError:
    """The error for an identifier that has never started linking: a fresh link to send (for a
    bot connection: how to create the account with its bot token)."""
    try:
        connection = await runner.directory.connection(session.connection_name)
        uses_oauth = runner.connectors.provider(connection.provider).uses_oauth
    except TokenwardError as exc:
        return exc
    if not uses_oauth:
        return AccountNotFound(
            f"There is no connected account {session.identifier!r} on the bot connection "
            f"{session.connection_name!r}.",
            details={
                "connection_name": session.connection_name,
                "identifier": session.identifier,
                "hint": bot_token_hint(session.connection_name, session.identifier),
            },
        )
    try:
        link = await make_link(session.connection_name, session.identifier)
    except TokenwardError as exc:
        return exc
    return AccountNotActive(
        "The user has not connected Discord yet; send them the authorization link.",
        details={
            "status": "NOT_LINKED",
            "connection_name": session.connection_name,
            "identifier": session.identifier,
            "authorization_link": link,
            "hint": "Send the user this authorization link; the tool works once they approve.",
        },
    )
