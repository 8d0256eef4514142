"""``client.actions.mcp.create_session``: the SDK's way to mint a session, used end to end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tokenward.errors import ConnectionNotFound, ValidationError
from tokenward.sdk import AsyncClient, Client
from tokenward.sdk.mcp import McpSession

from .env import ADA, GRACE, McpEnv, connect


async def test_async_create_session_gives_a_url_an_mcp_client_can_use(mcp_env: McpEnv) -> None:
    async with AsyncClient(mcp_env.url, mcp_env.client_id, mcp_env.client_secret) as client:
        session = await client.actions.mcp.create_session(
            connection_name="discord",
            identifier="ada",
            tools=["discord_get_my_user"],
            ttl_seconds=600,
        )
        with pytest.raises(ValidationError) as unknown:
            await client.actions.mcp.create_session(
                connection_name="discord", identifier="ada", tools=["nope"]
            )
        with pytest.raises(ConnectionNotFound):
            await client.actions.mcp.create_session(connection_name="elsewhere", identifier="ada")

    assert isinstance(session, McpSession)
    assert session.url.endswith(session.token)
    assert session.tools == ["discord_get_my_user"]
    now = datetime.now(UTC)
    assert now + timedelta(seconds=590) <= session.expires_at <= now + timedelta(seconds=601)
    assert session.token not in repr(session)
    assert session.token not in str(session)
    assert "tools" in unknown.value.fields
    async with connect(session.url) as mcp:
        result = await mcp.call_tool("discord_get_my_user", {})
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["id"] == ADA


def test_sync_create_session(mcp_env: McpEnv) -> None:
    with Client(mcp_env.url, mcp_env.client_id, mcp_env.client_secret) as client:
        session = client.actions.mcp.create_session(connection_name="discord", identifier="grace")
    assert len(session.tools) == 34  # the discord connector's tools

    async def whoami() -> object:
        async with connect(session.url) as mcp:
            result = await mcp.call_tool("discord_get_my_user", {})
        assert isinstance(result.structured_content, dict)
        return result.structured_content["id"]

    assert asyncio.run(whoami()) == GRACE


def test_the_sync_sdk_lists_and_revokes_sessions(mcp_env: McpEnv) -> None:
    with Client(mcp_env.url, mcp_env.client_id, mcp_env.client_secret) as client:
        session = client.actions.mcp.create_session(
            connection_name="discord", identifier="sdk-user", read_only=True
        )
        assert session.id is not None
        listed = client.actions.mcp.list_sessions(connection_name="discord", identifier="sdk-user")
        assert [s.id for s in listed] == [session.id]
        assert listed[0].read_only is True
        assert listed[0].revoked_at is None
        revoked = client.actions.mcp.revoke_session(session.id)
        assert revoked.revoked_at is not None
        assert client.actions.mcp.list_sessions(identifier="sdk-user") == []
        every = client.actions.mcp.list_sessions(identifier="sdk-user", include_inactive=True)
        assert [s.id for s in every] == [session.id]
