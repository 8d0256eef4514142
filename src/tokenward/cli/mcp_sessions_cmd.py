"""``tokenward mcp-sessions list|revoke``: the MCP sessions minted for users, on the local vault.

A revoked session's URL is refused by running servers at once with ``TOKENWARD_REDIS_URL`` (they
are told through Redis), otherwise within ``MCP_REVOCATION_CACHE_SECONDS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from tokenward.cli.app import app
from tokenward.cli.output import JSON_OPTION, local_container, print_json, print_table, run_command
from tokenward.clock import isoformat

if TYPE_CHECKING:  # the vault (SQLAlchemy) loads when a command runs, not for --help
    from tokenward.vault.mcp_sessions import McpSessionRecord

mcp_sessions_app = typer.Typer(
    help="MCP sessions: list a user's session URLs and revoke one.",
    no_args_is_help=True,
)
app.add_typer(mcp_sessions_app, name="mcp-sessions")


def _doc(record: McpSessionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "connection_name": record.connection_name,
        "identifier": record.identifier,
        "tools": None if record.tools is None else list(record.tools),
        "read_only": record.read_only,
        "created_at": isoformat(record.created_at),
        "expires_at": isoformat(record.expires_at),
        "revoked_at": None if record.revoked_at is None else isoformat(record.revoked_at),
    }


@mcp_sessions_app.command("list")
@run_command
async def mcp_sessions_list(
    connection_name: str | None = typer.Option(None, "--connection", help="Only this connection."),
    identifier: str | None = typer.Option(None, "--identifier", help="Only this user."),
    include_inactive: bool = typer.Option(
        False, "--all", help="Also revoked and expired sessions."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List MCP sessions, newest first (never their tokens)."""
    async with local_container() as container:
        records = await container.mcp_sessions.list(
            connection_name=connection_name,
            identifier=identifier,
            include_inactive=include_inactive,
        )
    docs = [_doc(r) for r in records]
    if as_json:
        print_json({"sessions": docs})
        return
    print_table(
        "MCP sessions",
        ["id", "connection", "identifier", "tools", "expires", "revoked"],
        [
            [
                d["id"],
                d["connection_name"],
                d["identifier"],
                "every tool" if d["tools"] is None else ", ".join(d["tools"]),
                d["expires_at"],
                d["revoked_at"] or "",
            ]
            for d in docs
        ],
    )


@mcp_sessions_app.command("revoke")
@run_command
async def mcp_sessions_revoke(
    session_id: str = typer.Argument(..., help="The session's id (from `mcp-sessions list`)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke an MCP session: its URL is refused from the next request on."""
    async with local_container() as container:
        record = await container.mcp_sessions.revoke(session_id)
        container.announce("mcp_session", record.id)
    if as_json:
        print_json({"session": _doc(record)})
    else:
        typer.echo(f"Revoked MCP session {record.id} of {record.identifier!r}.")
