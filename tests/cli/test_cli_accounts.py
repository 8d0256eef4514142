"""``tokenward link`` and ``tokenward accounts list|show|delete`` run as subprocesses."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from tokenward.sandbox.browser import walk_consent

from .conftest import ADA, GRACE, Workspace, me_status, sandbox_access_token

pytestmark = pytest.mark.slow  # one `tokenward` process per command

REVOKE = "/api/oauth2/token/revoke"


def test_link_prints_a_link_and_refuses_an_unknown_connection(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")

    doc = ws.cli.json("link", "--connection", "discord", "--identifier", "user_1")
    assert set(doc) == {"link", "expires_at"}
    assert doc["link"].startswith(f"{ws.public_url}/connect/")
    expires = datetime.fromisoformat(doc["expires_at"]).timestamp()
    assert expires == pytest.approx(time.time() + 600, abs=60)

    # For people (and shell pipes): the link alone on stdout, the note on stderr.
    shown = ws.cli.ok("link", "--connection", "discord", "--identifier", "user_1")
    assert shown.stdout.startswith(f"{ws.public_url}/connect/")
    assert shown.stdout.count("\n") == 1
    assert shown.stdout.strip() != doc["link"]
    assert "valid until" in shown.stderr

    line = ws.cli.error_line("link", "--connection", "nope", "--identifier", "user_1")
    assert "'nope'" in line
    assert "does not exist" in line
    refused = ws.cli.json_error("link", "--connection", "nope", "--identifier", "user_1")
    assert "'nope'" in refused["error"]["message"]


def test_accounts_list_and_show_select_by_id_or_by_identifier(workspace: Workspace) -> None:
    ws = workspace
    connection = ws.connect("discord")
    result = ws.consent("user_1", user_id=GRACE)
    assert "Discord connected" in result.text
    ws.link("user_2")  # never completed

    accounts = ws.cli.json("accounts", "list")["connected_accounts"]
    by_identifier = {a["identifier"]: a for a in accounts}
    assert set(by_identifier) == {"user_1", "user_2"}
    active, pending = by_identifier["user_1"], by_identifier["user_2"]
    assert active["status"] == "ACTIVE"
    assert active["provider_user_id"] == GRACE
    assert active["connection_id"] == connection["id"]
    assert active["connection_name"] == "discord"
    assert active["token_expires_at"] is not None
    assert pending["status"] == "PENDING_AUTH"
    assert pending["token_expires_at"] is None
    assert not {"access_token", "refresh_token"} & set(active)
    only_active = ws.cli.json("accounts", "list", "--connection", "discord", "--status", "ACTIVE")
    assert [a["identifier"] for a in only_active["connected_accounts"]] == ["user_1"]
    table = ws.cli.ok("accounts", "list").stdout
    for account in accounts:
        assert account["id"] in table
    assert GRACE in table

    by_id = ws.cli.json("accounts", "show", "--id", active["id"])
    assert by_id == ws.show("user_1")
    assert by_id["id"] == active["id"]
    assert by_id["status"] == "ACTIVE"
    text = ws.cli.ok("accounts", "show", "--id", active["id"]).stdout
    assert "status: ACTIVE" in text
    assert f"provider_user_id: {GRACE}" in text
    assert "granted_scopes: identify email guilds" in text
    assert "None" not in text

    for selector in ([], ["--connection", "discord"]):
        line = ws.cli.error_line("accounts", "show", *selector)
        assert "--id" in line
        assert "--connection and --identifier" in line
    line = ws.cli.error_line("accounts", "show", "--connection", "discord", "--identifier", "bob")
    assert "'bob'" in line
    assert ws.cli.json_error("accounts", "show", "--id", "01NOSUCHACCOUNT")["error"]["code"]


def test_delete_revokes_the_grant_at_discord(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")
    ws.consent("user_1", user_id=GRACE)
    client_id = ws.apps["discord"]["client_id"]
    token = sandbox_access_token(ws.sandbox_url, client_id, GRACE)
    assert me_status(ws.sandbox_url, token) == 200
    account_id = ws.show("user_1")["id"]

    ws.cli.error_line("accounts", "delete")
    deleted = ws.cli.json("accounts", "delete", "--connection", "discord", "--identifier", "user_1")

    assert deleted == {
        "deleted": True,
        "id": account_id,
        "revoked": True,
        "revoke_error": None,
        "siblings_disconnected": [],
    }
    assert me_status(ws.sandbox_url, token) == 401
    tokens = httpx.get(f"{ws.sandbox_url}/_sandbox/tokens").json()["details"]
    assert not any(t["valid"] for t in tokens["refresh_tokens"] if t["client_id"] == client_id)
    assert ws.cli.json("accounts", "list") == {"connected_accounts": [], "next_page_token": None}


def test_delete_reports_a_failed_revocation_and_keeps_the_account(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")
    ws.consent("user_1", user_id=GRACE)
    token = sandbox_access_token(ws.sandbox_url, ws.apps["discord"]["client_id"], GRACE)
    account_id = ws.show("user_1")["id"]
    httpx.post(
        f"{ws.sandbox_url}/_sandbox/faults", json={"route": REVOKE, "status": 503}
    ).raise_for_status()

    line = ws.cli.error_line("accounts", "delete", "--id", account_id)
    assert "503" in line
    assert "not deleted" in line
    refused = ws.cli.json_error("accounts", "delete", "--id", account_id)
    assert refused["error"]["code"] == "REVOKE_FAILED"

    assert ws.show("user_1")["status"] == "ACTIVE"
    assert me_status(ws.sandbox_url, token) == 200

    # Once Discord answers again, the same command finishes the job.
    httpx.delete(f"{ws.sandbox_url}/_sandbox/faults").raise_for_status()
    deleted = ws.cli.ok("accounts", "delete", "--id", account_id)
    assert deleted.stdout == (f"Deleted account {account_id}.\nThe grant was revoked at Discord.\n")
    assert me_status(ws.sandbox_url, token) == 401


def stored_access_token(ws: Workspace, identifier: str) -> str:
    """The access token the vault holds for ``identifier`` (read as a second replica would)."""

    async def read(container: Any) -> str:
        account = await container.oauth.find_account("discord", identifier)
        return str(account.access_token.get_secret_value())

    return str(ws.run_async(read))


def test_delete_asks_before_ending_the_grant_of_other_identifiers(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")
    ws.consent("user_a", user_id=GRACE)
    ws.consent("user_b", user_id=GRACE)  # the same Discord user: one grant at Discord
    ws.consent("user_c", user_id=ADA)
    sibling_id = ws.show("user_b")["id"]
    token = stored_access_token(ws, "user_b")
    select = ("accounts", "delete", "--connection", "discord", "--identifier", "user_a")

    for answer in ("n\n", ""):
        refused = ws.cli.fails(*select, input=answer)
        assert "'user_b' on 'discord'" in refused.stderr
        assert "become DISCONNECTED" in refused.stderr
        assert "Revoke anyway?" in refused.stderr
        assert "error: nothing was changed" in refused.stderr
    as_json = ws.cli.json_error(*select)
    assert as_json["error"]["code"] == "SIBLINGS_AFFECTED"
    assert [s["id"] for s in as_json["error"]["details"]["siblings"]] == [sibling_id]
    assert ws.show("user_a")["status"] == "ACTIVE"
    assert me_status(ws.sandbox_url, token) == 200

    done = ws.cli.ok(*select, input="y\n")

    assert "The grant was revoked at Discord." in done.stdout
    assert f"Disconnected 'user_b' ({sibling_id}): same Discord grant." in done.stdout
    assert me_status(ws.sandbox_url, token) == 401
    shown = ws.show("user_b")
    assert shown["status"] == "DISCONNECTED"
    assert "user_a" in shown["status_reason"]
    assert ws.show("user_c")["status"] == "ACTIVE"


def test_delete_flags_for_scripts_yes_and_no_revoke(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")
    for identifier in ("user_a", "user_b", "user_c"):
        ws.consent(identifier, user_id=GRACE)
    token = stored_access_token(ws, "user_c")

    kept = ws.cli.json(
        "accounts", "delete", "--connection", "discord", "--identifier", "user_a", "--no-revoke"
    )
    assert (kept["revoked"], kept["siblings_disconnected"]) == (False, [])
    assert me_status(ws.sandbox_url, token) == 200
    text = ws.cli.ok(
        "accounts", "delete", "--connection", "discord", "--identifier", "user_b", "--no-revoke"
    )
    assert "Not revoked at Discord (--no-revoke)" in text.stdout

    ws.consent("user_d", user_id=GRACE)
    both = ws.cli.json(
        "accounts", "delete", "--connection", "discord", "--identifier", "user_c", "--yes"
    )
    assert both["revoked"] is True
    assert [s["identifier"] for s in both["siblings_disconnected"]] == ["user_d"]
    assert ws.show("user_d")["status"] == "DISCONNECTED"


def test_link_may_allow_changing_the_discord_user(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")
    ws.consent("user_1", user_id=GRACE)

    refused = walk_consent(ws.link("user_1"), user_id=ADA)
    assert refused.status_code == 409
    assert ws.show("user_1")["provider_user_id"] == GRACE

    doc = ws.cli.json(
        "link", "--connection", "discord", "--identifier", "user_1", "--allow-user-change"
    )
    assert walk_consent(doc["link"], user_id=ADA).status_code == 200
    assert ws.show("user_1")["provider_user_id"] == ADA
