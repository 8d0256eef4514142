"""``tokenward connections create|list|delete`` run as subprocesses."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.processes import register_application

from .conftest import Workspace

pytestmark = pytest.mark.slow  # one `tokenward` process per command

DEFAULT_SCOPES = ["identify", "email", "guilds", "guilds.members.read", "connections", "openid"]


def test_create_prints_the_redirect_uri_and_list_shows_every_connection(
    workspace: Workspace,
) -> None:
    ws = workspace
    first_app = register_application(ws.sandbox_url)
    first = ws.cli.json(
        "connections",
        "create",
        "--name",
        "discord",
        "--client-id",
        first_app["client_id"],
        "--client-secret-stdin",
        input=first_app["client_secret"] + "\n",
    )
    assert first["name"] == "discord"
    assert first["client_id"] == first_app["client_id"]
    assert first["scopes"] == DEFAULT_SCOPES
    assert first["has_bot_token"] is False
    assert first["redirect_uri"] == f"{ws.public_url}/sso/v1/oauth/{first['id']}/callback"

    # The secret from the environment, a bot token from its variable, people-facing output.
    second_app = register_application(ws.sandbox_url)
    created = ws.cli.ok(
        "connections",
        "create",
        "--name",
        "support-bot",
        "--client-id",
        second_app["client_id"],
        "--scopes",
        "identify, guilds",
        env={
            "TOKENWARD_CLIENT_SECRET": second_app["client_secret"],
            "TOKENWARD_BOT_TOKEN": second_app["bot_token"],
        },
    )
    listed = ws.cli.json("connections", "list")
    by_name = {c["name"]: c for c in listed["connections"]}
    assert set(by_name) == {"discord", "support-bot"}
    second = by_name["support-bot"]
    assert second["scopes"] == ["identify", "guilds"]
    assert second["has_bot_token"] is True
    assert second["redirect_uri"] == f"{ws.public_url}/sso/v1/oauth/{second['id']}/callback"
    assert by_name["discord"] == first
    assert f"  {second['redirect_uri']}\n" in created.stdout
    assert "Developer Portal" in created.stdout

    # The table, piped, shows ids and redirect URIs whole (they are meant to be copied).
    table = ws.cli.ok("connections", "list").stdout
    for doc in (first, second):
        assert doc["id"] in table
        assert doc["redirect_uri"] in table
        assert doc["name"] in table
    assert "…" not in table

    # What the vault stored is what was piped in and exported.
    async def stored(container: Any) -> dict[str, tuple[str, str | None]]:
        out: dict[str, tuple[str, str | None]] = {}
        for c in await container.vault.list_connections():
            bot = c.bot_token.get_secret_value() if c.bot_token else None
            out[c.name] = (c.client_secret.get_secret_value(), bot)
        return out

    assert ws.run_async(stored) == {
        "discord": (first_app["client_secret"], None),
        "support-bot": (second_app["client_secret"], second_app["bot_token"]),
    }


def test_create_refuses_a_missing_secret_and_a_duplicate_name(workspace: Workspace) -> None:
    ws = workspace
    app = register_application(ws.sandbox_url)
    create = ("connections", "create", "--name", "discord", "--client-id", app["client_id"])

    line = ws.cli.error_line(*create)
    assert "no client secret" in line
    assert "--client-secret-stdin" in line
    assert "TOKENWARD_CLIENT_SECRET" in line
    line = ws.cli.error_line(*create, "--client-secret-stdin", input="")
    assert "--client-secret-stdin" in line
    assert "standard input was empty" in line
    assert ws.cli.json_error(*create)["error"]["code"] == "VALIDATION_ERROR"
    assert ws.cli.json("connections", "list") == {"connections": []}

    ws.cli.json(*create, "--client-secret-stdin", input=app["client_secret"])
    line = ws.cli.error_line(*create, "--client-secret-stdin", input=app["client_secret"])
    assert line == "error: a connection named 'discord' already exists"
    duplicate = ws.cli.json_error(*create, "--client-secret-stdin", input=app["client_secret"])
    assert duplicate["error"]["code"] == "CONFLICT"
    assert "'discord'" in duplicate["error"]["message"]
    assert len(ws.cli.json("connections", "list")["connections"]) == 1


def test_delete_removes_the_connection_and_its_accounts(workspace: Workspace) -> None:
    ws = workspace
    doc = ws.connect("discord")
    ws.connect("other")
    ws.link("user_1")  # a pending account under "discord"
    ws.link("user_9", connection="other")

    deleted = ws.cli.json("connections", "delete", "discord")
    assert deleted == {"deleted": True, "id": doc["id"], "name": "discord"}
    assert [c["name"] for c in ws.cli.json("connections", "list")["connections"]] == ["other"]
    accounts = ws.cli.json("accounts", "list")["connected_accounts"]
    assert [a["identifier"] for a in accounts] == ["user_9"]

    line = ws.cli.error_line("connections", "delete", "discord")
    assert "'discord'" in line
    assert "does not exist" in line
    assert ws.cli.ok("connections", "delete", "other").stdout == "Deleted connection 'other'.\n"
    assert ws.cli.json("connections", "list") == {"connections": []}
