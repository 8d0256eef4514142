"""Dashboard actions over a real socket do what the API does, with the operator in the audit
trail: links, refresh now, deleting a connection (revoked at the sandbox), webhooks."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tokenward.sandbox.browser import walk_consent

from .conftest import (
    ApiEnv,
    api_settings,
    create_api_client,
    sandbox_secrets,
    start_api,
)
from .dashboard_client import Browser, create_admin, events_of


def _sandbox_stats(api: ApiEnv) -> dict[str, int]:
    body = httpx.get(f"{api.sandbox_url}/_sandbox/stats", trust_env=False).json()
    return {"revocations": body["revocations"], "refreshes": body["grants"]["refresh_token"]}


def test_link_refresh_and_delete_a_connection_from_the_dashboard(
    api: ApiEnv, browser: Browser
) -> None:
    api.connect("discord")
    assert browser.sign_in("alice").status_code == 303
    csrf = browser.csrf("/dashboard/connections/discord")

    made = browser.client.post(
        "/dashboard/connections/discord/link", data={"csrf_token": csrf, "identifier": "user_9"}
    )
    assert made.status_code == 200
    link = re.search(r'id="authorization-link" type="text" readonly value="([^"]+)"', made.text)
    assert link is not None
    assert walk_consent(link.group(1)).status_code == 200
    account = api.get("/api/v1/connected-accounts?identifier=user_9").json()
    (row,) = account["connected_accounts"]
    assert row["status"] == "ACTIVE"
    assert events_of(api.settings, "auth_request.created")[-1]["actor"] == "operator:alice"

    before = _sandbox_stats(api)
    refreshed = browser.client.post(
        f"/dashboard/accounts/{row['id']}/refresh", data={"csrf_token": csrf}
    )
    assert refreshed.status_code == 303
    assert refreshed.headers["location"].endswith("?notice=refreshed")
    assert _sandbox_stats(api)["refreshes"] == before["refreshes"] + 1
    assert events_of(api.settings, "account.refreshed")[-1]["actor"] == "operator:alice"

    confirm = browser.client.get("/dashboard/connections/discord/delete")
    assert 'id="account-count">1<' in confirm.text
    assert "revokes each account" in confirm.text or "revoked" in confirm.text
    deleted = browser.client.post(
        "/dashboard/connections/discord/delete", data={"csrf_token": csrf}
    )
    assert deleted.status_code == 303
    assert _sandbox_stats(api)["revocations"] == before["revocations"] + 1
    assert api.get("/api/v1/connections").json()["connections"] == []
    assert events_of(api.settings, "connection.deleted")[-1]["actor"] == "operator:alice"
    # No page showed a token or a client secret.
    pages = [browser.client.get(p).text for p in ("/dashboard", "/dashboard/activity")]
    for secret in sandbox_secrets(api.sandbox_url):
        for text in (*pages, made.text, confirm.text):
            assert secret not in text


def test_webhook_endpoints_from_the_dashboard(api: ApiEnv, browser: Browser) -> None:
    assert browser.sign_in("alice").status_code == 303
    csrf = browser.csrf("/dashboard/webhooks")
    created = browser.client.post(
        "/dashboard/webhooks/new",
        data={
            "csrf_token": csrf,
            "url": "https://hooks.example.com/tokenward",
            "events": "connected_account.deleted",
        },
    )
    assert created.status_code == 200
    secret = re.search(r'value="(whsec_[^"]+)"', created.text)
    assert secret is not None
    (endpoint,) = api.get("/api/v1/webhooks").json()["webhooks"]
    assert endpoint["events"] == ["connected_account.deleted"]
    page = browser.client.get(f"/dashboard/webhooks/{endpoint['id']}")
    assert page.status_code == 200
    assert secret.group(1) not in page.text
    rotated = browser.client.post(
        f"/dashboard/webhooks/{endpoint['id']}/rotate", data={"csrf_token": csrf}
    )
    new_secret = re.search(r'value="(whsec_[^"]+)"', rotated.text)
    assert new_secret is not None
    assert new_secret.group(1) != secret.group(1)
    assert events_of(api.settings, "webhook_endpoint.secret_rotated")[-1]["actor"] == (
        "operator:alice"
    )
    gone = browser.client.post(
        f"/dashboard/webhooks/{endpoint['id']}/delete", data={"csrf_token": csrf}
    )
    assert gone.status_code == 303
    assert api.get("/api/v1/webhooks").json()["webhooks"] == []


def test_a_bot_token_connection_from_the_dashboard(api: ApiEnv, browser: Browser) -> None:
    assert browser.sign_in("alice").status_code == 303
    csrf = browser.csrf("/dashboard/connections/new")
    made = browser.client.post(
        "/dashboard/connections/new",
        data={"csrf_token": csrf, "name": "bots", "provider": "discordbot", "scopes": "identify"},
    )
    assert made.status_code == 303, made.text
    (connection,) = api.get("/api/v1/connections").json()["connections"]
    assert connection["provider"] == "discordbot"
    assert connection["redirect_uri"] is None
    page = browser.client.get("/dashboard/connections/bots")
    assert "Redirect URI" not in page.text
    # A client id on a bot-token connection is refused, naming the field.
    refused = browser.client.post(
        "/dashboard/connections/new",
        data={
            "csrf_token": csrf,
            "name": "bots2",
            "provider": "discordbot",
            "client_id": "123456789012345678",
        },
    )
    assert refused.status_code == 400
    assert 'id="client_id-error"' in refused.text
    unknown = browser.client.post(
        "/dashboard/connections/new",
        data={"csrf_token": csrf, "name": "x", "provider": "nope", "client_id": "1"},
    )
    assert unknown.status_code in (400, 404)
    assert "nope" in unknown.text
    assert len(api.get("/api/v1/connections").json()["connections"]) == 1


def test_public_key_from_the_connection_page(api: ApiEnv, browser: Browser) -> None:
    api.connect("discord")
    assert browser.sign_in("alice").status_code == 303
    csrf = browser.csrf("/dashboard/connections/discord")
    base = {"csrf_token": csrf, "scopes": ["identify", "guilds"]}
    bad = browser.client.post(
        "/dashboard/connections/discord", data={**base, "public_key": "not-hex"}
    )
    assert bad.status_code == 400
    assert 'id="public_key-error"' in bad.text
    assert api.get("/api/v1/connections/discord").json()["connection"]["public_key"] is None
    key = "ab" * 32
    saved = browser.client.post("/dashboard/connections/discord", data={**base, "public_key": key})
    assert saved.status_code == 303
    connection = api.get("/api/v1/connections/discord").json()["connection"]
    assert connection["public_key"] == key
    assert connection["scopes"] == ["identify", "guilds"]
    page = browser.client.get("/dashboard/connections/discord").text
    assert connection["interactions_endpoint_url"] in page
    assert connection["event_webhooks_url"] in page
    removed = browser.client.post("/dashboard/connections/discord", data={**base, "public_key": ""})
    assert removed.status_code == 303
    assert api.get("/api/v1/connections/discord").json()["connection"]["public_key"] is None


def test_tool_policy_and_user_verification_from_the_connection_form(
    api: ApiEnv, browser: Browser
) -> None:
    assert browser.sign_in("alice").status_code == 303
    csrf = browser.csrf("/dashboard/connections/new")
    new = {
        "csrf_token": csrf,
        "name": "guarded",
        "provider": "discord",
        "client_id": "1234567890",
        "client_secret": "sandbox-secret",
        "scopes": ["identify", "guilds"],
        "require_user_verification": "on",
    }
    bad = browser.client.post(
        "/dashboard/connections/new",
        data={**new, "allowed_tools": "discord_get_*\nno_such_tool_*\nbad pattern!"},
    )
    assert bad.status_code == 400
    assert 'id="allowed_tools-error"' in bad.text
    assert "no_such_tool_*" in bad.text
    assert "matches none of the provider" in bad.text
    assert "discord_get_*" in bad.text  # the form comes back as typed
    assert 'id="require_user_verification" name="require_user_verification" checked' in bad.text
    assert api.get("/api/v1/connections/guarded").status_code == 404  # nothing created

    made = browser.client.post(
        "/dashboard/connections/new",
        data={**new, "allowed_tools": "discord_*\n!discord_send_*"},
    )
    assert made.status_code == 303, made.text[:500]
    connection = api.get("/api/v1/connections/guarded").json()["connection"]
    assert connection["allowed_tools"] == ["discord_*", "!discord_send_*"]
    assert connection["require_user_verification"] is True
    assert events_of(api.settings, "connection.created")[-1]["actor"] == "operator:alice"

    page = browser.client.get("/dashboard/connections/guarded").text
    assert "discord_*\n!discord_send_*</textarea>" in page
    assert 'id="require_user_verification" name="require_user_verification" checked' in page
    edit = {"csrf_token": csrf, "scopes": ["identify", "guilds"]}
    refused = browser.client.post(
        "/dashboard/connections/guarded", data={**edit, "allowed_tools": "nothing_matches"}
    )
    assert refused.status_code == 400
    assert 'id="allowed_tools-error"' in refused.text
    unchanged = api.get("/api/v1/connections/guarded").json()["connection"]
    assert unchanged["allowed_tools"] == ["discord_*", "!discord_send_*"]
    assert unchanged["require_user_verification"] is True
    # Emptied patterns allow every tool; an unticked box turns verification off.
    saved = browser.client.post("/dashboard/connections/guarded", data=edit)
    assert saved.status_code == 303
    after = api.get("/api/v1/connections/guarded").json()["connection"]
    assert after["allowed_tools"] is None
    assert after["require_user_verification"] is False
    changed = events_of(api.settings, "connection.updated")[-1]
    assert changed["actor"] == "operator:alice"
    assert {"allowed_tools", "require_user_verification"} <= set(changed["fields"])


def test_an_operator_lists_and_revokes_an_mcp_session(api: ApiEnv, browser: Browser) -> None:
    api.connect("discord")
    minted = api.post(
        "/api/v1/mcp/sessions", json={"connection_name": "discord", "identifier": "user_m"}
    )
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    mcp = {"Accept": "application/json, text/event-stream"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"},
        },
    }
    before = httpx.post(f"{api.url}/mcp/s/{token}", json=initialize, headers=mcp)
    assert before.status_code == 200

    assert browser.sign_in("alice").status_code == 303
    page = browser.client.get("/dashboard/mcp-sessions?identifier=user_m")
    assert page.status_code == 200
    assert "user_m" in page.text
    assert token not in page.text
    (session_id,) = re.findall(r'action="/dashboard/mcp-sessions/([^/"]+)/revoke"', page.text)
    csrf = browser.csrf("/dashboard/mcp-sessions")

    unsigned = browser.client.post(f"/dashboard/mcp-sessions/{session_id}/revoke")
    assert unsigned.status_code == 403  # no CSRF token: nothing changes
    assert httpx.post(f"{api.url}/mcp/s/{token}", json=initialize, headers=mcp).status_code == 200

    revoked = browser.client.post(
        f"/dashboard/mcp-sessions/{session_id}/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 303
    assert "notice=session-revoked" in revoked.headers["location"]
    after = httpx.post(f"{api.url}/mcp/s/{token}", json=initialize, headers=mcp)
    assert after.status_code == 401
    assert after.json()["error"]["data"]["details"]["reason"] == "revoked"
    event = events_of(api.settings, "mcp_session.revoked")[-1]
    assert event["actor"] == "operator:alice"
    assert event["session_id"] == session_id
    listed = browser.client.get("/dashboard/mcp-sessions?identifier=user_m").text
    assert session_id not in listed  # only live sessions by default
    everything = browser.client.get("/dashboard/mcp-sessions?identifier=user_m&all=1").text
    assert session_id in everything
    assert "revoked" in everything


def _overview_numbers(browser: Browser) -> dict[str, int]:
    page = browser.client.get("/dashboard").text
    found = {}
    for name in ("discord-429s", "proxied-total", "proxied-success"):
        match = re.search(rf'id="{name}">(\d+)<', page)
        assert match is not None, name
        found[name] = int(match.group(1))
    return found


def test_the_overview_counts_proxied_requests_and_discords_429s(
    api: ApiEnv, browser: Browser
) -> None:
    api.connect("discord")
    assert browser.sign_in("alice").status_code == 303
    csrf = browser.csrf("/dashboard/connections/discord")
    made = browser.client.post(
        "/dashboard/connections/discord/link", data={"csrf_token": csrf, "identifier": "user_p"}
    )
    link = re.search(r'id="authorization-link" type="text" readonly value="([^"]+)"', made.text)
    assert link is not None
    assert walk_consent(link.group(1)).status_code == 200
    before = _overview_numbers(browser)
    who = {"connection_name": "discord", "identifier": "user_p"}
    for _ in range(2):
        assert api.get("/proxy/api/v10/users/@me", headers=who).status_code == 200
    fault = {"route": "/api/v10/users/@me", "status": 429, "count": 1}
    httpx.post(f"{api.sandbox_url}/_sandbox/faults", json=fault, trust_env=False)
    try:
        api.get("/proxy/api/v10/users/@me", headers=who)
    finally:
        httpx.delete(f"{api.sandbox_url}/_sandbox/faults", trust_env=False)
    after = _overview_numbers(browser)
    assert after["proxied-total"] == before["proxied-total"] + 3
    assert after["proxied-success"] >= before["proxied-success"] + 2
    assert after["discord-429s"] == before["discord-429s"] + 1


@pytest.fixture
def key_file_env(tmp_path: Path, sandbox_url: str) -> Iterator[tuple[ApiEnv, Browser]]:
    """A gateway whose keys live in the key file (as ``tokenward serve`` creates it)."""
    settings = api_settings(tmp_path, sandbox_url, encryption_keys=None)
    server, _container = start_api(settings, sandbox_url)
    browser = Browser(server.url)
    try:
        client_id, secret = create_api_client(settings)
        env = ApiEnv(settings, server, sandbox_url, client_id, secret)
        env.token = env.issue_token().json()["access_token"]
        create_admin(settings, "alice")
        yield env, browser
    finally:
        browser.client.close()
        server.stop()


def test_keys_rotate_from_the_dashboard_with_progress(
    key_file_env: tuple[ApiEnv, Browser],
) -> None:
    api, browser = key_file_env
    api.connect("discord")  # a client secret to re-encrypt
    assert browser.sign_in("alice").status_code == 303
    keys = browser.client.get("/dashboard/keys").text
    kids_before = re.findall(r'<th scope="row" class="mono">([^<]+)</th>', keys)
    assert len(kids_before) == 1
    csrf = browser.csrf("/dashboard/keys")

    refused = browser.client.post("/dashboard/keys/rotate", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert browser.client.get("/dashboard/keys/rotation").status_code == 303  # none started

    started = browser.client.post("/dashboard/keys/rotate", data={"csrf_token": csrf})
    assert started.status_code == 303
    assert started.headers["location"] == "/dashboard/keys/rotation"
    for _ in range(100):
        page = browser.client.get("/dashboard/keys/rotation")
        assert page.status_code == 200
        if 'http-equiv="refresh"' not in page.text:
            break
        time.sleep(0.1)
    assert 'id="rows-remaining">0<' in page.text, page.text[-1500:]
    assert re.search(r'id="rows-updated">[1-9]', page.text)
    assert 'value="100"' in page.text

    keys = browser.client.get("/dashboard/keys").text
    kids_after = re.findall(r'<th scope="row" class="mono">([^<]+)</th>', keys)
    assert len(kids_after) == 2
    assert kids_before[0] in kids_after
    assert 'id="stale-count">0<' in keys
    # The secrets still open: the connection's secret is used for a new link.
    link = browser.client.post(
        "/dashboard/connections/discord/link", data={"csrf_token": csrf, "identifier": "user_k"}
    )
    assert link.status_code == 200
    started_event = events_of(api.settings, "keys.rotation_started")[-1]
    assert started_event["actor"] == "operator:alice"
    assert started_event["key_added"] is True
    done = events_of(api.settings, "keys.rotated")[-1]
    assert done["actor"] == "operator:alice"
    assert done["remaining"] == 0
