"""``tokenward mcp``: the MCP server over stdio, acting as one user, on the local vault.

For MCP clients that start a command (desktop assistants). stdout is the protocol; logs and
errors go to stderr.
"""

from __future__ import annotations

import asyncio

import typer

from tokenward.cli.app import app
from tokenward.cli.output import fail_with
from tokenward.config import Settings
from tokenward.errors import TokenwardError


def _tool_names(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


@app.command("mcp")
def mcp_command(
    connection: str = typer.Option(..., "--connection", help="Connection name."),
    identifier: str = typer.Option(
        ..., "--identifier", help="Your application's user id; the tools act as this user."
    ),
    tools: str | None = typer.Option(
        None,
        "--tools",
        help="Comma-separated tool names to offer (default: every tool).",
    ),
) -> None:
    """Serve the Discord tools over MCP on stdin/stdout, acting as one connected account."""
    from tokenward.mcp.stdio import serve_stdio
    from tokenward.server.api.observability import configure_logging

    settings = Settings()
    secrets = [
        key.partition(":")[2].strip()
        for key in (settings.encryption_keys or "").split(",")
        if key.partition(":")[2].strip()
    ]
    configure_logging(settings.log_level, secrets=secrets)
    try:
        asyncio.run(
            serve_stdio(
                settings,
                connection_name=connection,
                identifier=identifier,
                tools=_tool_names(tools),
            )
        )
    except TokenwardError as exc:
        fields = exc.details.get("fields")
        extra = ""
        if isinstance(fields, dict) and fields:
            extra = " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
        fail_with(exc, line=f"{exc.message}{extra} [{exc.code}]")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
