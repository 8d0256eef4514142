"""The MCP server over stdio, bound to one (connection, identifier) on the local vault.

For local MCP clients (desktop assistants) that start a command. stdout carries the protocol
only: the SDK's ``stdio_server`` points fd 1 at stderr while it serves, and every log line goes
to stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp.server.stdio import stdio_server

from tokenward.config import Settings
from tokenward.mcp.server import build_server, fixed_session
from tokenward.mcp.sessions import check_tool_names
from tokenward.server.container import Container

__all__ = ["serve_stdio"]


async def serve_stdio(
    settings: Settings,
    *,
    connection_name: str,
    identifier: str,
    tools: Sequence[str] | None = None,
    container: Container | None = None,
    stdin: Any = None,
    read_only: bool = False,
) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin.

    ``stdin``: an async iterator of lines to read instead of the SDK's own reader (``tokenward
    mcp`` passes one that a Ctrl-C can interrupt). Raises ConnectionNotFound or ValidationError
    (unknown tool names) before serving.
    """
    own = container is None
    container = container or Container(settings)
    await container.start()
    try:
        connection = await container.vault.get_connection_by_name(connection_name)
        provider = container.connector(connection)
        allowed = check_tool_names(provider.catalog.names(), tools)
        session = fixed_session(connection_name, identifier, allowed, read_only=read_only)
        server = build_server(
            catalog=container.catalog,
            runner=container.runner,
            resolve_session=lambda _ctx: session,
            link_factory=container.link_for,
        )
        async with stdio_server(stdin=stdin) as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        if own:
            await container.close()
