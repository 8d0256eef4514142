"""``POST /api/v1/mcp/sessions``: what it answers, what it refuses, and that the token it mints
works on every replica that shares the vault's keys."""

from __future__ import annotations

import time
from datetime import datetime

from tokenward._serving import BackgroundServer, free_port
from tokenward.tools.catalog import Catalog

from .env import ADA, McpEnv, build_app, connect

SESSIONS = "/api/v1/mcp/sessions"


def test_a_session_has_a_url_that_carries_its_token_and_an_expiry(mcp_env: McpEnv) -> None:
    started = time.time()
    response = mcp_env.api(
        "POST", SESSIONS, json={"connection_name": "discord", "identifier": "ada"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["url"] == f"{mcp_env.settings.public_base}/mcp/s/{body['token']}"
    assert body["connection_name"] == "discord"
    assert body["identifier"] == "ada"
    assert body["tools"] == Catalog.load().names()  # every tool by default
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert started + 86400 - 5 <= expires <= time.time() + 86400 + 1  # one day by default

    short = mcp_env.mint("ada", ttl_seconds=60, tools=["discord_get_my_user"] * 2)
    assert short["tools"] == ["discord_get_my_user"]
    assert datetime.fromisoformat(short["expires_at"]).timestamp() <= time.time() + 61


def test_unknown_tool_names_are_refused_by_name(mcp_env: McpEnv) -> None:
    response = mcp_env.api(
        "POST",
        SESSIONS,
        json={
            "connection_name": "discord",
            "identifier": "ada",
            "tools": ["discord_get_my_user", "discord_send_message", "nope"],
        },
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "'discord_send_message'" in error["message"]
    assert "'nope'" in error["message"]
    assert "discord_get_my_user'" not in error["message"]
    assert "discord_send_message" in error["details"]["fields"]["tools"]


def test_bad_requests_name_the_field(mcp_env: McpEnv) -> None:
    cases = [
        ({"tools": []}, "tools"),
        ({"ttl_seconds": 59}, "ttl_seconds"),
        ({"ttl_seconds": 30 * 86400 + 1}, "ttl_seconds"),
        ({"identifier": "   "}, "identifier"),
        ({"identifier": "a\nb"}, "identifier"),
        ({"extra": 1}, "extra"),
    ]
    for change, field in cases:
        body = {"connection_name": "discord", "identifier": "ada", **change}
        response = mcp_env.api("POST", SESSIONS, json=body)
        assert response.status_code == 400, (change, response.text)
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert field in error["details"]["fields"], (change, error)


def test_an_unknown_connection_is_404(mcp_env: McpEnv) -> None:
    response = mcp_env.api(
        "POST", SESSIONS, json={"connection_name": "nowhere", "identifier": "ada"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "CONNECTION_NOT_FOUND"


def test_minting_needs_an_api_token(mcp_env: McpEnv) -> None:
    body = {"connection_name": "discord", "identifier": "ada"}
    missing = mcp_env.http.post(f"{mcp_env.url}{SESSIONS}", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "UNAUTHENTICATED"
    session_token = mcp_env.mint("ada")["token"]
    # An MCP session token is not an API token.
    wrong = mcp_env.http.post(
        f"{mcp_env.url}{SESSIONS}",
        json=body,
        headers={"Authorization": f"Bearer {session_token}"},
    )
    assert wrong.status_code == 401


async def test_another_replica_sharing_the_keys_accepts_the_session(mcp_env: McpEnv) -> None:
    session = mcp_env.mint("ada", tools=["discord_get_my_user"])
    port = free_port()
    replica_settings = mcp_env.settings.model_copy(
        update={"port": port, "public_url": f"http://127.0.0.1:{port}"}
    )
    replica = BackgroundServer(build_app(replica_settings), port=port).start()
    try:
        async with connect(f"{replica.url}/mcp/s/{session['token']}") as client:
            listed = await client.list_tools()
            result = await client.call_tool("discord_get_my_user", {})
    finally:
        replica.stop()
    assert [t.name for t in listed.tools] == ["discord_get_my_user"]
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["id"] == ADA
