"""MCP sessions for bot accounts, read-only sessions and the connection's tool policy (issue 10),
with the official MCP client over real HTTP against a gateway and the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import mcp_types as types
import pytest

from tokenward._serving import BackgroundServer

from .env import McpEnv, connect, error_of, start_env

BOTS = "bots"
GUILD = "1200000000000000001"
ADA = "1100000000000000001"


@pytest.fixture(scope="module")
def bot_env(
    sandbox_server: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[McpEnv, dict[str, Any]]]:
    """The MCP gateway plus a discordbot connection whose account ``team_1`` holds a sandbox
    application's bot token."""
    env = start_env(sandbox_server.url, tmp_path_factory.mktemp("mcp-bots"))
    try:
        created = env.api(
            "POST", "/api/v1/connections", json={"name": BOTS, "provider": "discordbot"}
        )
        assert created.status_code == 201, created.text
        app = (
            httpx.post(
                f"{env.sandbox_url}/_sandbox/applications",
                json={"redirect_uris": ["http://127.0.0.1:9/x"]},
            )
            .raise_for_status()
            .json()
        )
        account = env.api(
            "POST",
            "/api/v1/connected-accounts",
            json={
                "connection_name": BOTS,
                "identifier": "team_1",
                "credentials": {"bot_token": app["bot_token"]},
            },
        )
        assert account.status_code == 201, account.text
        yield env, account.json()["connected_account"]
    finally:
        env.http.close()
        env.server.stop()


def mint(env: McpEnv, **body: Any) -> dict[str, Any]:
    response = env.api(
        "POST",
        "/api/v1/mcp/sessions",
        json={"connection_name": BOTS, "identifier": "team_1", **body},
    )
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def total(env: McpEnv) -> int:
    return int(env.stats()["requests"]["total"])


async def test_a_bot_session_offers_the_bot_tools_and_acts_as_the_bot(
    bot_env: tuple[McpEnv, dict[str, Any]],
) -> None:
    env, account = bot_env
    session = mint(env)
    assert session["tools"]
    assert all(t.startswith("discordbot_") for t in session["tools"])
    assert session["read_only"] is False
    async with connect(session["url"]) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("discordbot_get_current_user", {})
    assert listed == session["tools"]
    assert result.is_error is False
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["id"] == account["provider_user_id"]
    assert result.structured_content["bot"] is True


async def test_a_read_only_session_lists_and_runs_only_reads(
    bot_env: tuple[McpEnv, dict[str, Any]],
) -> None:
    env, _ = bot_env
    session = mint(env, read_only=True)
    assert session["read_only"] is True
    assert "discordbot_delete_message" not in session["tools"]
    assert "discordbot_get_current_user" in session["tools"]
    before = total(env)
    async with connect(session["url"]) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool(
            "discordbot_delete_message",
            {"channel_id": "1300000000000000010", "message_id": "1300000000000000011"},
        )
    assert listed == set(session["tools"])
    error = error_of(refused)
    assert error["code"] == "TOOL_NOT_ALLOWED"
    assert error["details"]["policy"] == "mcp_session.read_only"
    assert total(env) == before  # nothing reached Discord


async def test_the_connection_policy_hides_and_refuses_by_rule(
    bot_env: tuple[McpEnv, dict[str, Any]],
) -> None:
    env, _ = bot_env
    patched = env.api(
        "PATCH", f"/api/v1/connections/{BOTS}", json={"allowed_tools": ["*", "!*_ban*"]}
    )
    assert patched.status_code == 200, patched.text
    try:
        session = mint(env)  # minted before or after, the policy applies when the call is made
        before = total(env)
        async with connect(session["url"]) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            refused = await client.call_tool(
                "discordbot_create_guild_ban", {"guild_id": GUILD, "user_id": ADA}
            )
        assert "discordbot_create_guild_ban" not in listed
        assert "discordbot_delete_message" in listed
        error = error_of(refused)
        assert error["code"] == "TOOL_NOT_ALLOWED"
        assert error["details"]["rule"] == "!*_ban*"
        assert total(env) == before
    finally:
        env.api("PATCH", f"/api/v1/connections/{BOTS}", json={"allowed_tools": None})


async def test_an_identifier_without_a_bot_account_is_told_how_to_add_one(
    bot_env: tuple[McpEnv, dict[str, Any]],
) -> None:
    env, _ = bot_env
    response = env.api(
        "POST", "/api/v1/mcp/sessions", json={"connection_name": BOTS, "identifier": "nobody"}
    )
    async with connect(response.json()["url"]) as client:
        result = await client.call_tool("discordbot_get_current_user", {})
    error = error_of(result)
    assert error["code"] == "ACCOUNT_NOT_FOUND"
    assert "--bot-token-stdin" in error["details"]["hint"]
    assert "authorization_link" not in error["details"]


async def test_a_read_only_session_naming_a_write_tool_is_refused(
    bot_env: tuple[McpEnv, dict[str, Any]],
) -> None:
    env, _ = bot_env
    response = env.api(
        "POST",
        "/api/v1/mcp/sessions",
        json={
            "connection_name": BOTS,
            "identifier": "team_1",
            "read_only": True,
            "tools": ["discordbot_get_current_user", "discordbot_create_guild_ban"],
        },
    )
    assert response.status_code == 400
    assert "discordbot_create_guild_ban" in response.json()["error"]["details"]["fields"]["tools"]
    user_tool = env.api(
        "POST",
        "/api/v1/mcp/sessions",
        json={"connection_name": BOTS, "identifier": "team_1", "tools": ["discord_get_my_user"]},
    )
    assert user_tool.status_code == 400  # not a tool of the bot provider


async def test_a_text_tool_returns_its_text(bot_env: tuple[McpEnv, dict[str, Any]]) -> None:
    env, _ = bot_env
    session = mint(env)
    async with connect(session["url"]) as client:
        result = await client.call_tool(
            "discordbot_get_invite_target_users", {"invite_code": "Hb7xQp2K"}
        )
    assert result.is_error is False, result.content
    (text, *_) = result.content
    assert isinstance(text, types.TextContent)
    assert text.text.splitlines()[0] == "user_id"  # the CSV as Discord sent it, not JSON
