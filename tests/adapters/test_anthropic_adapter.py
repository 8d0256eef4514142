"""The Anthropic adapter with the ``anthropic`` library's own types: tool definitions, tool_use
blocks it parses, and the tool_result blocks sent back, executed for real through the gateway."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
from anthropic.types import (
    ImageBlockParam,
    TextBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlock,
)
from pydantic import TypeAdapter

from mcp_server.env import ADA, HUB, McpEnv, png_size
from tokenward.sdk import AsyncClient, Client
from tokenward.tools.catalogs import Catalogs
from tokenward.tools.schemas import input_schema

from .vendor import ScriptedVendor, anthropic_message

CATALOG = Catalogs.load()  # every provider's tools: discord_* and discordbot_*


def _result(block: dict[str, Any]) -> list[dict[str, Any]]:
    """Check a tool_result block against the library's types; its content blocks."""
    TypeAdapter(ToolResultBlockParam).validate_python(block)
    content: list[dict[str, Any]] = list(block["content"])
    for item in content:
        kind = TextBlockParam if item["type"] == "text" else ImageBlockParam
        TypeAdapter(kind).validate_python(item)
    return content


def test_tools_for_anthropic_are_tool_params(client: Client) -> None:
    tools = client.actions.tools_for_anthropic()
    assert [t["name"] for t in tools] == CATALOG.names()
    for tool in tools:
        TypeAdapter(ToolParam).validate_python(tool)
        assert tool["input_schema"] == input_schema(CATALOG.get(tool["name"]))
    assert tools[0]["description"]


def test_a_tool_use_round_trip_returns_an_image_block(client: Client) -> None:
    tools = client.actions.tools_for_anthropic(["discord_get_guild_widget_png"])
    vendor = ScriptedVendor(
        [
            anthropic_message(
                [
                    {"type": "text", "text": "Fetching the banner."},
                    {
                        "type": "tool_use",
                        "id": "toolu_png",
                        "name": "discord_get_guild_widget_png",
                        "input": {"guild_id": HUB, "style": "banner4"},
                    },
                ]
            ),
            anthropic_message([{"type": "text", "text": "Here it is."}], "end_turn"),
        ]
    )
    model = anthropic.Anthropic(api_key="test", http_client=vendor.http_client(), max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Show the hub's banner."}]
    reply = model.messages.create(
        model="claude-test", max_tokens=100, messages=messages, tools=tools
    )
    uses = [b for b in reply.content if isinstance(b, ToolUseBlock)]
    assert len(uses) == 1
    results = [
        client.actions.execute_anthropic_tool_use(use, connection_name="discord", identifier="ada")
        for use in uses
    ]
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in reply.content]},
        {"role": "user", "content": results},
    ]
    model.messages.create(model="claude-test", max_tokens=100, messages=messages, tools=tools)

    assert vendor.requests[0]["tools"] == tools
    sent = vendor.requests[1]["messages"][-1]["content"][0]
    assert sent["type"] == "tool_result"
    assert sent["tool_use_id"] == "toolu_png"
    assert "is_error" not in sent
    (image,) = _result(sent)
    assert image["source"]["media_type"] == "image/png"
    assert png_size(base64.b64decode(image["source"]["data"])) == (320, 213)


async def test_json_results_and_errors(aclient: AsyncClient, gateway: McpEnv) -> None:
    use = ToolUseBlock(type="tool_use", id="toolu_me", name="discord_get_my_user", input={})
    ok = await aclient.actions.execute_anthropic_tool_use(
        use, connection_name="discord", identifier="ada"
    )
    (text,) = _result(ok)
    assert "is_error" not in ok
    assert json.loads(text["text"])["id"] == ADA

    failed = await aclient.actions.execute_anthropic_tool_use(
        use, connection_name="discord", identifier="anthropic-newcomer"
    )
    (text,) = _result(failed)
    assert failed["is_error"] is True
    assert failed["tool_use_id"] == "toolu_me"
    error = json.loads(text["text"])["error"]
    assert error["code"] == "ACCOUNT_NOT_ACTIVE"
    assert error["details"]["authorization_link"].startswith(f"{gateway.url}/connect/")
    assert error["details"]["hint"]

    as_dict = {"type": "tool_use", "id": "toolu_bad", "name": "discord_get_my_user", "input": {}}
    as_dict["input"] = {"unexpected": 1}
    refused = await aclient.actions.execute_anthropic_tool_use(
        as_dict, connection_name="discord", identifier="ada"
    )
    (text,) = _result(refused)
    assert refused["is_error"] is True
    assert json.loads(text["text"])["error"]["code"] == "VALIDATION_ERROR"
