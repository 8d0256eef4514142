"""The LangChain adapter: ``StructuredTool``s that act as one user, invoked the way LangChain
invokes them (plain arguments and tool calls), sync and async."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from mcp_server.env import ADA, GRACE, HUB, McpEnv, png_size
from tokenward.sdk import AsyncClient, Client
from tokenward.tools.catalog import Catalog
from tokenward.tools.schemas import input_schema


def test_sync_tools_run_as_their_user(client: Client, gateway: McpEnv) -> None:
    tools = client.actions.tools_for_langchain(
        connection_name="discord", identifier="grace", provider="discord"
    )
    assert [t.name for t in tools] == Catalog.load().names()  # the discord provider's only
    by_name = {t.name: t for t in tools}
    me = by_name["discord_get_my_user"]
    assert isinstance(me, StructuredTool)
    assert me.args_schema == input_schema(Catalog.load().get("discord_get_my_user"))
    converted = convert_to_openai_tool(by_name["discord_list_my_guilds"])
    assert converted["function"]["name"] == "discord_list_my_guilds"
    assert "limit" in converted["function"]["parameters"]["properties"]

    assert json.loads(me.invoke({}))["id"] == GRACE
    message = me.invoke({"name": me.name, "args": {}, "id": "call_lc", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call_lc"
    assert json.loads(str(message.content))["id"] == GRACE

    error = json.loads(by_name["discord_get_guild_widget_png"].invoke({"guild_id": "x"}))
    assert error["error"]["code"] == "VALIDATION_ERROR"

    restricted = client.actions.tools_for_langchain(
        connection_name="discord", identifier="langchain-newcomer", tools=["discord_get_my_user"]
    )
    assert [t.name for t in restricted] == ["discord_get_my_user"]
    not_linked = json.loads(restricted[0].invoke({}))["error"]
    assert not_linked["code"] == "ACCOUNT_NOT_ACTIVE"
    assert not_linked["details"]["authorization_link"].startswith(f"{gateway.url}/connect/")


async def test_async_tools_and_images(aclient: AsyncClient) -> None:
    tools = aclient.actions.tools_for_langchain(
        connection_name="discord",
        identifier="ada",
        tools=["discord_get_my_user", "discord_get_guild_widget_png"],
    )
    me, png = tools
    assert json.loads(await me.ainvoke({}))["id"] == ADA
    blocks = await png.ainvoke({"guild_id": HUB})
    (image,) = blocks
    assert image["type"] == "image"
    assert image["mime_type"] == "image/png"
    assert png_size(base64.b64decode(image["base64"])) == (118, 20)


def test_without_langchain_the_error_names_the_extra(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "langchain_core.tools", None)
    with pytest.raises(ImportError, match=r"tokenward\[langchain\]"):
        client.actions.tools_for_langchain(connection_name="discord", identifier="ada")
