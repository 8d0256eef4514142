"""MCP sessions are on record: listed per user, revoked through the API, and a revoked
session's URL is refused on the next request, on this gateway and on every replica sharing
Redis."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tokenward._serving import BackgroundServer, free_port

from .env import McpEnv, build_app, connect

SESSIONS = "/api/v1/mcp/sessions"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def _post_mcp(env: McpEnv, base: str, token: str) -> httpx.Response:
    return env.http.post(f"{base}/mcp/s/{token}", json=INITIALIZE, headers=MCP_HEADERS)


def test_sessions_are_listed_by_user_and_revoked(mcp_env: McpEnv) -> None:
    first = mcp_env.mint("grace", tools=["discord_get_my_user"], read_only=True)
    second = mcp_env.mint("grace")
    mcp_env.mint("ada")
    listed = mcp_env.api(
        "GET", SESSIONS, params={"connection_name": "discord", "identifier": "grace"}
    )
    assert listed.status_code == 200, listed.text
    sessions = listed.json()["sessions"]
    assert {s["identifier"] for s in sessions} == {"grace"}
    ids = [s["id"] for s in sessions]
    assert len(ids) >= 2
    by_tools = [s for s in sessions if s["tools"] == ["discord_get_my_user"]]
    assert by_tools
    assert by_tools[0]["read_only"] is True
    assert first["token"] not in listed.text
    assert second["token"] not in listed.text

    assert _post_mcp(mcp_env, mcp_env.url, first["token"]).status_code == 200
    target = by_tools[0]["id"]
    revoked = mcp_env.api("DELETE", f"{SESSIONS}/{target}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["session"]["revoked_at"] is not None

    refused = _post_mcp(mcp_env, mcp_env.url, first["token"])
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["data"]["details"]["reason"] == "revoked"
    assert "revoked" in error["message"]
    # The other session of the same user still works.
    assert _post_mcp(mcp_env, mcp_env.url, second["token"]).status_code == 200

    live = mcp_env.api("GET", SESSIONS, params={"identifier": "grace"}).json()["sessions"]
    assert target not in [s["id"] for s in live]
    every = mcp_env.api("GET", SESSIONS, params={"identifier": "grace", "include_inactive": True})
    assert target in [s["id"] for s in every.json()["sessions"]]
    assert mcp_env.api("DELETE", f"{SESSIONS}/{target}").status_code == 200  # again: no change
    missing = mcp_env.api("DELETE", f"{SESSIONS}/nosuchsession")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "MCP_SESSION_NOT_FOUND"


async def test_the_official_client_is_refused_after_revocation(mcp_env: McpEnv) -> None:
    session = mcp_env.mint("ada", tools=["discord_get_my_user"])
    url = f"{mcp_env.url}/mcp/s/{session['token']}"
    async with connect(url) as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["discord_get_my_user"]
    session_id = mcp_env.api("GET", SESSIONS, params={"identifier": "ada"}).json()["sessions"][0]
    assert session_id["tools"] == ["discord_get_my_user"]
    assert mcp_env.api("DELETE", f"{SESSIONS}/{session_id['id']}").status_code == 200
    with pytest.raises(ExceptionGroup) as failed:
        async with connect(url):
            pass
    refusal = failed.value.subgroup(MCPError)
    assert refusal is not None
    assert "the MCP session was revoked" in repr(refusal)


def test_every_replica_sharing_redis_refuses_a_revoked_session_at_once(
    mcp_env: McpEnv, redis_server_url: str
) -> None:
    prefix = f"tokenward-test-{secrets.token_hex(4)}:"
    replicas = []
    for _ in range(2):
        port = free_port()
        settings = mcp_env.settings.model_copy(
            update={
                "port": port,
                "public_url": f"http://127.0.0.1:{port}",
                "redis_url": redis_server_url,
                "redis_prefix": prefix,
                # Long enough that only the announcement can explain an immediate refusal.
                "mcp_revocation_cache_seconds": 300.0,
            }
        )
        replicas.append(BackgroundServer(build_app(settings), port=port).start())
    try:
        first, second = replicas
        session = mcp_env.mint("ada")
        # The second replica has seen the session live (and would trust that for 300 s).
        assert _post_mcp(mcp_env, second.url, session["token"]).status_code == 200
        listed = mcp_env.http.get(
            f"{first.url}{SESSIONS}",
            params={"identifier": "ada"},
            headers={"Authorization": f"Bearer {mcp_env.api_token}"},
        )
        session_id = listed.json()["sessions"][0]["id"]
        revoked = mcp_env.http.delete(
            f"{first.url}{SESSIONS}/{session_id}",
            headers={"Authorization": f"Bearer {mcp_env.api_token}"},
        )
        assert revoked.status_code == 200, revoked.text
        # The announcement travels through Redis: give it a moment, far below the cache's 300 s.
        for _ in range(50):
            answer = _post_mcp(mcp_env, second.url, session["token"])
            if answer.status_code == 401:
                break
            time.sleep(0.1)
        assert answer.status_code == 401
        assert answer.json()["error"]["data"]["details"]["reason"] == "revoked"
    finally:
        for replica in replicas:
            replica.stop()


def test_the_cli_lists_and_revokes_a_session(mcp_env: McpEnv) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")},
        "TOKENWARD_DATA_DIR": str(mcp_env.settings.data_dir),
        "TOKENWARD_ENCRYPTION_KEYS": mcp_env.settings.encryption_keys or "",
        "TOKENWARD_PUBLIC_URL": mcp_env.settings.public_url,
    }
    session = mcp_env.mint("cli-user", tools=["discord_get_my_user"])

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from tokenward.cli import main; main()", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = cli("mcp-sessions", "list", "--identifier", "cli-user", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["sessions"]
    assert row["tools"] == ["discord_get_my_user"]
    assert session["token"] not in listed.stdout
    revoked = cli("mcp-sessions", "revoke", row["id"], "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["session"]["revoked_at"] is not None
    # The gateway had not seen this session live, so it asks the database and refuses it.
    refused = _post_mcp(mcp_env, mcp_env.url, session["token"])
    assert refused.status_code == 401
    assert refused.json()["error"]["data"]["details"]["reason"] == "revoked"
    unknown = cli("mcp-sessions", "revoke", "nosuchsession")
    assert unknown.returncode != 0
    assert "does not exist" in unknown.stderr


def test_a_session_is_not_let_through_when_revocation_cannot_be_checked(
    mcp_env: McpEnv,
) -> None:
    session = mcp_env.mint("ada")
    port = free_port()
    settings = mcp_env.settings.model_copy(
        update={
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            # Nothing listens there: the database does not answer.
            "database_url": f"postgresql://tokenward@127.0.0.1:{free_port()}/tokenward",
        }
    )
    replica = BackgroundServer(build_app(settings), port=port).start()
    try:
        answer = _post_mcp(mcp_env, replica.url, session["token"])
    finally:
        replica.stop()
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["data"]["code"] == "DATABASE_UNAVAILABLE"
