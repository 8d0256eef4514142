"""``tokenward connections create|list|delete`` run as subprocesses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from e2e.processes import register_application
from tokenward.sandbox.browser import walk_consent

from .conftest import ADA, GRACE, Workspace, me_status, sandbox_access_token

REVOKE = "/api/oauth2/token/revoke"

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

    # With accounts, it asks first: no answer (or --json without --force) deletes nothing.
    asked = ws.cli.fails("connections", "delete", "discord")
    assert "Delete connection 'discord' and its 1 connected account(s)?" in asked.stderr
    assert "none of them holds a Discord grant" in asked.stderr
    assert "nothing was deleted" in asked.stderr
    assert asked.stdout == ""
    refused = ws.cli.json_error("connections", "delete", "discord")
    assert refused["error"]["code"] == "CONFIRMATION_REQUIRED"
    assert len(ws.cli.json("connections", "list")["connections"]) == 2

    deleted = ws.cli.json("connections", "delete", "discord", "--force")
    assert deleted == {
        "deleted": True,
        "id": doc["id"],
        "name": "discord",
        "accounts_deleted": 1,
        "revoked": 0,
        "revoke_failed": [],
    }
    assert [c["name"] for c in ws.cli.json("connections", "list")["connections"]] == ["other"]
    accounts = ws.cli.json("accounts", "list")["connected_accounts"]
    assert [a["identifier"] for a in accounts] == ["user_9"]

    line = ws.cli.error_line("connections", "delete", "discord")
    assert "'discord'" in line
    assert "does not exist" in line
    answered = ws.cli.ok("connections", "delete", "other", input="y\n")
    assert answered.stdout == "Deleted connection 'other' and its 1 account(s).\n"
    assert ws.cli.json("connections", "list") == {"connections": []}
    ws.connect("empty")
    assert ws.cli.ok("connections", "delete", "empty").stdout == "Deleted connection 'empty'.\n"


def test_delete_revokes_every_grant_at_discord_and_reports_failures(
    workspace: Workspace,
) -> None:
    ws = workspace
    ws.connect("discord")
    ws.consent("user_1", user_id=GRACE)
    ws.consent("user_2", user_id=ADA)
    ws.link("user_3")  # never linked: nothing to revoke
    client_id = ws.apps["discord"]["client_id"]
    tokens = [sandbox_access_token(ws.sandbox_url, client_id, u) for u in (GRACE, ADA)]

    done = ws.cli.ok("connections", "delete", "discord", input="y\n")

    assert "its 3 connected account(s)?" in done.stderr
    assert "the 2 Discord grant(s) among them are revoked at Discord first" in done.stderr
    assert done.stdout == (
        "Revoked 2 of 2 grant(s) at Discord.\nDeleted connection 'discord' and its 3 account(s).\n"
    )
    assert [me_status(ws.sandbox_url, t) for t in tokens] == [401, 401]

    ws.connect("second")
    ws.consent("user_1", connection="second", user_id=GRACE)
    token = sandbox_access_token(ws.sandbox_url, ws.apps["second"]["client_id"], GRACE)
    httpx.post(
        f"{ws.sandbox_url}/_sandbox/faults", json={"route": REVOKE, "status": 503}
    ).raise_for_status()
    try:
        failed = ws.cli.ok("connections", "delete", "second", "--force")
    finally:
        httpx.delete(f"{ws.sandbox_url}/_sandbox/faults").raise_for_status()
    assert failed.stdout.startswith("Revoked 0 of 1 grant(s) at Discord; 1 failed:\n")
    assert "warning: 'user_1'" in failed.stderr
    assert "503" in failed.stderr
    assert "Deleted connection 'second' and its 1 account(s)." in failed.stdout
    assert me_status(ws.sandbox_url, token) == 200  # reported, not hidden: revoke it by hand

    ws.connect("third")
    ws.consent("user_1", connection="third", user_id=GRACE)
    token = sandbox_access_token(ws.sandbox_url, ws.apps["third"]["client_id"], GRACE)
    kept = ws.cli.json("connections", "delete", "third", "--force", "--no-revoke")
    assert (kept["accounts_deleted"], kept["revoked"]) == (1, 0)
    assert me_status(ws.sandbox_url, token) == 200


def test_require_user_verification_is_set_and_shown(workspace: Workspace) -> None:
    ws = workspace
    doc = ws.connect("discord", "--require-user-verification")
    assert doc["require_user_verification"] is True
    plain = ws.connect("plain")
    assert plain["require_user_verification"] is False
    listed = {c["name"]: c for c in ws.cli.json("connections", "list")["connections"]}
    assert listed["discord"]["require_user_verification"] is True
    table = ws.cli.ok("connections", "list").stdout
    assert "user verification" in table
    assert "required" in table

    line = ws.cli.error_line("link", "--connection", "discord", "--identifier", "user_1")
    assert "requires user verification" in line
    assert "user_verify_url" in line
    verify_url = f"{ws.public_url}/healthz"
    link = ws.cli.json(
        "link", "--connection", "discord", "--identifier", "user_1", "--user-verify-url", verify_url
    )
    ws.start_gateway()
    result = walk_consent(link["link"], user_id=GRACE)
    assert result.visited[-1].startswith(verify_url)
    assert ws.show("user_1")["status"] == "PENDING_VERIFICATION"


def test_public_key_set_at_creation_changed_removed_and_bad_keys_refused(
    workspace: Workspace,
) -> None:
    ws = workspace
    app = register_application(ws.sandbox_url)
    key = app["verify_key"]
    bad = ws.cli.json_error(
        "connections",
        "create",
        "--name",
        "discord",
        "--client-id",
        app["client_id"],
        "--public-key",
        "xyz",
        input=app["client_secret"] + "\n",
        env={"TOKENWARD_CLIENT_SECRET": app["client_secret"]},
    )
    assert bad["error"]["code"] == "VALIDATION_ERROR"
    assert "64 hex characters" in bad["error"]["details"]["fields"]["public_key"]
    assert ws.cli.json("connections", "list") == {"connections": []}  # nothing written

    created = ws.cli.ok(
        "connections",
        "create",
        "--name",
        "discord",
        "--client-id",
        app["client_id"],
        "--public-key",
        key.upper(),
        env={"TOKENWARD_CLIENT_SECRET": app["client_secret"]},
    )
    [doc] = ws.cli.json("connections", "list")["connections"]
    base = f"{ws.public_url}/discord/{doc['id']}"
    assert doc["public_key"] == key
    assert doc["interactions_endpoint_url"] == f"{base}/interactions"
    assert doc["event_webhooks_url"] == f"{base}/events"
    # The people-facing output says where to paste both URLs.
    assert f"  {base}/interactions\n" in created.stdout
    assert f"  {base}/events\n" in created.stdout
    assert "Interactions Endpoint URL" in created.stdout

    line = ws.cli.error_line("connections", "update", "discord", "--public-key", key[:-1])
    assert "public_key" in line
    assert "not 63" in line
    assert ws.cli.json("connections", "list")["connections"][0]["public_key"] == key
    refused = ws.cli.error_line(
        "connections", "update", "discord", "--public-key", key, "--no-public-key"
    )
    assert "--public-key HEX or --no-public-key, not both" in refused
    nothing = ws.cli.error_line("connections", "update", "discord")
    assert "nothing to change" in nothing

    other = "0f" * 32
    changed = ws.cli.json("connections", "update", "discord", "--public-key", other)
    assert (changed["public_key"], changed["allowed_tools"]) == (other, None)
    removed = ws.cli.json("connections", "update", "discord", "--no-public-key")
    assert (removed["public_key"], removed["interactions_endpoint_url"]) == (None, None)
    assert removed["event_webhooks_url"] is None
    both = ws.cli.json(
        "connections", "update", "discord", "--public-key", key, "--allowed-tools", "discord_*"
    )
    assert (both["public_key"], both["allowed_tools"]) == (key, ["discord_*"])
