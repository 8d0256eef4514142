"""The Discord Bot connector and tool policy through the SDK, against real ``tokenward serve``
and ``tokenward sandbox`` processes (issue 10)."""

from __future__ import annotations

import pytest

import tokenward
from e2e.processes import register_application
from tokenward.sdk import AsyncClient, Client

from .conftest import Stack

GUILD = "1200000000000000001"
ADA = "1100000000000000001"


async def test_a_bot_account_end_to_end(stack: Stack) -> None:
    app = register_application(stack.sandbox_url)
    async with AsyncClient(stack.gateway_url, stack.client_id, stack.client_secret) as client:
        actions = client.actions
        connection = await actions.create_connection(
            name="sdkbots", provider="discordbot", allowed_tools=["*", "!*_ban*"]
        )
        assert (connection.provider, connection.client_id, connection.redirect_uri) == (
            "discordbot",
            None,
            None,
        )
        assert connection.allowed_tools == ["*", "!*_ban*"]

        with pytest.raises(tokenward.ValidationError) as refused:
            await actions.create_connected_account(
                connection_name="sdkbots", identifier="team_1", bot_token="wrong-token-for-sure-x"
            )
        assert "credentials.bot_token" in refused.value.fields

        account = await actions.create_connected_account(
            connection_name="sdkbots", identifier="team_1", bot_token=app["bot_token"]
        )
        assert account.status == "ACTIVE"
        assert account.provider_user_id

        me = await actions.execute_tool(
            tool_name="discordbot_get_current_user",
            tool_input={},
            connection_name="sdkbots",
            identifier="team_1",
        )
        assert me.data["id"] == account.provider_user_id
        assert me.notes == []
        proxied = await actions.request(
            connection_name="sdkbots", identifier="team_1", path="/api/v10/users/@me"
        )
        assert proxied.json()["id"] == account.provider_user_id

        before = stack.stats()["requests"]["total"]  # type: ignore[index]
        with pytest.raises(tokenward.ToolNotAllowed) as banned:
            await actions.execute_tool(
                tool_name="discordbot_create_guild_ban",
                tool_input={"guild_id": GUILD, "user_id": ADA},
                connection_name="sdkbots",
                identifier="team_1",
            )
        assert banned.value.code == "TOOL_NOT_ALLOWED"
        assert banned.value.status == 403
        assert banned.value.details["rule"] == "!*_ban*"
        assert stack.stats()["requests"]["total"] == before  # type: ignore[index]

        opened = await actions.update_connection(name="sdkbots", allowed_tools=None)
        assert opened.allowed_tools is None
        session = await actions.mcp.create_session(
            connection_name="sdkbots", identifier="team_1", read_only=True
        )
        assert session.read_only is True
        assert "discordbot_create_guild_ban" not in session.tools


def test_the_sync_client_creates_bot_accounts(stack: Stack) -> None:
    app = register_application(stack.sandbox_url)
    with Client(stack.gateway_url, stack.client_id, stack.client_secret) as client:
        client.actions.create_connection(name="syncbots", provider="discordbot")
        account = client.actions.create_connected_account(
            connection_name="syncbots", identifier="team_2", bot_token=app["bot_token"]
        )
        assert client.actions.get_connection(name="syncbots").provider == "discordbot"
        assert account.identifier == "team_2"
        assert (
            client.actions.execute_tool(
                tool_name="discordbot_get_current_user",
                tool_input={},
                connection_name="syncbots",
                identifier="team_2",
            ).data["bot"]
            is True
        )
