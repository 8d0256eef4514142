"""The Discord Bot connector and tool policy from a shell (issue 10), as subprocesses; nothing
printed may contain a token (the workspace fixture checks every command's output)."""

from __future__ import annotations

import sqlite3

import pytest

from e2e.processes import register_application

from .conftest import ADA, Workspace

pytestmark = pytest.mark.slow  # one `tokenward` process per command

GUILD = "1200000000000000001"


def test_the_bot_flow_end_to_end(workspace: Workspace) -> None:
    ws = workspace
    connection = ws.cli.json(
        "connections", "create", "--name", "discordbot", "--provider", "discordbot"
    )
    assert connection["provider"] == "discordbot"
    assert (connection["client_id"], connection["redirect_uri"], connection["scopes"]) == (
        None,
        None,
        [],
    )
    text = ws.cli.ok("connections", "list", env={"COLUMNS": "250"}).stdout
    assert "discordbot" in text

    app = register_application(ws.sandbox_url)
    created = ws.cli.json(
        "accounts",
        "create",
        "--connection",
        "discordbot",
        "--identifier",
        "team_1",
        "--bot-token-stdin",
        input=app["bot_token"] + "\n",
    )
    assert created["created"] is True
    account = created["connected_account"]
    assert account["status"] == "ACTIVE"
    with sqlite3.connect(ws.data_dir / "tokenward.db") as db:
        stored = [row[0] for row in db.execute("SELECT access_token_enc FROM connected_accounts")]
    assert stored
    assert all(value.startswith("tw1.") for value in stored)
    assert app["bot_token"].encode() not in (ws.data_dir / "tokenward.db").read_bytes()

    me = ws.cli.json(
        "tools",
        "run",
        "discordbot_get_current_user",
        "--connection",
        "discordbot",
        "--identifier",
        "team_1",
    )
    assert me["data"]["id"] == account["provider_user_id"]


def test_a_refused_bot_token_is_one_line_and_stores_nothing(workspace: Workspace) -> None:
    ws = workspace
    ws.cli.json("connections", "create", "--name", "discordbot", "--provider", "discordbot")
    refused = ws.cli.fails(
        "accounts",
        "create",
        "--connection",
        "discordbot",
        "--identifier",
        "team_1",
        "--bot-token-stdin",
        input="MTIz.not-a-bot-token.anywhere\n",
    )
    assert "credentials.bot_token" in refused.stderr
    assert "refused it (401)" in refused.stderr
    assert "not-a-bot-token" not in refused.stderr
    empty = ws.cli.fails(
        "accounts",
        "create",
        "--connection",
        "discordbot",
        "--identifier",
        "team_1",
        "--bot-token-stdin",
        input="\n",
    )
    assert "standard input was empty" in empty.stderr
    listed = ws.cli.json("accounts", "list", "--connection", "discordbot")
    assert listed["connected_accounts"] == []
    wrong = ws.cli.fails(
        "connections",
        "create",
        "--name",
        "x",
        "--provider",
        "discordbot",
        "--client-id",
        "1",
        input="s\n",
    )
    assert "not used by provider discordbot" in wrong.stderr


def test_the_tool_policy_from_the_shell(workspace: Workspace) -> None:
    ws = workspace
    ws.cli.json(
        "connections",
        "create",
        "--name",
        "discordbot",
        "--provider",
        "discordbot",
        "--allowed-tools",
        "*,!*_ban*",
    )
    app = register_application(ws.sandbox_url)
    ws.cli.json(
        "accounts",
        "create",
        "--connection",
        "discordbot",
        "--identifier",
        "team_1",
        "--bot-token-stdin",
        input=app["bot_token"] + "\n",
    )
    ban = [
        "tools",
        "run",
        "discordbot_create_guild_ban",
        "--connection",
        "discordbot",
        "--identifier",
        "team_1",
    ]
    payload = f'{{"guild_id": "{GUILD}", "user_id": "{ADA}"}}'
    error = ws.cli.json_error(*ban, "--input", payload)
    assert error["error"]["code"] == "TOOL_NOT_ALLOWED"
    assert error["error"]["details"]["rule"] == "!*_ban*"
    line = ws.cli.fails(*ban, "--input", payload)
    assert "!*_ban*" in line.stderr

    typo = ws.cli.fails("connections", "update", "discordbot", "--allowed-tools", "*,!*_bann*")
    assert "matches none" in typo.stderr
    opened = ws.cli.json("connections", "update", "discordbot", "--all-tools")
    assert opened["allowed_tools"] is None
    narrowed = ws.cli.json(
        "connections", "update", "discordbot", "--allowed-tools", "discordbot_get_*"
    )
    assert narrowed["allowed_tools"] == ["discordbot_get_*"]
