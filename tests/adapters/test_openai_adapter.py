"""The OpenAI adapter with the ``openai`` library's own types: tool definitions it accepts, tool
calls it parses, and the results sent back, executed for real through the gateway."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest
from openai.types.chat import (
    ChatCompletionMessageToolCall,
    ChatCompletionToolMessageParam,
    ChatCompletionToolParam,
)
from openai.types.responses import FunctionToolParam, ResponseFunctionToolCall
from openai.types.responses.response_input_item_param import FunctionCallOutput
from pydantic import TypeAdapter

from mcp_server.env import ADA, GRACE, HUB, McpEnv, png_size
from tokenward.errors import ValidationError
from tokenward.sdk import AsyncClient, Client
from tokenward.tools.catalogs import Catalogs

from .vendor import ScriptedVendor, chat_completion

CATALOG = Catalogs.load()  # every provider's tools: discord_* and discordbot_*


def _strict(schema: dict[str, Any]) -> None:
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == sorted(schema["properties"])
    for prop in schema["properties"].values():
        assert "default" not in prop


def test_exports_can_be_narrowed_to_one_provider(client: Client) -> None:
    bot = client.actions.tools_for_openai(provider="discordbot")
    assert [t["function"]["name"] for t in bot] == CATALOG.provider("discordbot").names()
    assert all(t["function"]["name"].startswith("discordbot_") for t in bot)
    user = client.actions.tools_for_anthropic(provider="discord")
    assert [t["name"] for t in user] == CATALOG.provider("discord").names()
    with pytest.raises(ValidationError) as caught:
        client.actions.tools_for_openai(provider="slack")
    assert "provider" in caught.value.fields


def test_tools_for_openai_are_strict_function_tools_openai_accepts(client: Client) -> None:
    tools = client.actions.tools_for_openai()
    assert [t["function"]["name"] for t in tools] == CATALOG.names()
    adapter: TypeAdapter[Any] = TypeAdapter(ChatCompletionToolParam)
    for tool in tools:
        adapter.validate_python(tool)
        assert tool["function"]["strict"] is True
        _strict(tool["function"]["parameters"])
    deprecated = next(t for t in tools if t["function"]["name"] == "discord_get_invite_deprecated")
    assert deprecated["function"]["description"].startswith("DEPRECATED:")

    responses = client.actions.tools_for_openai(["discord_get_my_user"], api="responses")
    (flat,) = responses
    TypeAdapter(FunctionToolParam).validate_python(flat)
    assert flat["name"] == "discord_get_my_user"

    with pytest.raises(ValidationError) as bad:
        client.actions.tools_for_openai(["discord_get_my_user", "nope"])
    assert "'nope'" in bad.value.message


def test_a_model_tool_call_runs_as_the_user_and_its_result_goes_back(client: Client) -> None:
    tools = client.actions.tools_for_openai(["discord_get_my_user", "discord_list_my_guilds"])
    vendor = ScriptedVendor(
        [
            chat_completion(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_me",
                            "type": "function",
                            "function": {"name": "discord_get_my_user", "arguments": "{}"},
                        },
                        {
                            "id": "call_guilds",
                            "type": "function",
                            "function": {
                                "name": "discord_list_my_guilds",
                                # strict mode: every optional parameter present, null = not given
                                "arguments": json.dumps(
                                    {"after": None, "before": None, "limit": 1, "with_counts": None}
                                ),
                            },
                        },
                    ],
                }
            ),
            chat_completion({"role": "assistant", "content": "You are Ada."}, "stop"),
        ]
    )
    model = openai.OpenAI(api_key="test", http_client=vendor.http_client(), max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Who am I on Discord?"}]

    first = model.chat.completions.create(model="gpt-test", messages=messages, tools=tools)
    message = first.choices[0].message
    assert message.tool_calls is not None
    messages.append(message.model_dump(exclude_none=True))
    for call in message.tool_calls:
        assert isinstance(call, ChatCompletionMessageToolCall)
        result = client.actions.execute_openai_tool_call(
            call, connection_name="discord", identifier="grace"
        )
        TypeAdapter(ChatCompletionToolMessageParam).validate_python(result)
        messages.append(result)
    model.chat.completions.create(model="gpt-test", messages=messages, tools=tools)

    assert vendor.requests[0]["tools"] == tools
    sent = [m for m in vendor.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in sent] == ["call_me", "call_guilds"]
    me = json.loads(sent[0]["content"])
    assert me["id"] == GRACE
    guilds = json.loads(sent[1]["content"])
    assert isinstance(guilds, list)
    assert len(guilds) == 1


def test_errors_come_back_as_tool_messages_with_the_hint_and_link(
    client: Client, gateway: McpEnv
) -> None:
    def run(name: str, arguments: str, identifier: str = "ada") -> dict[str, Any]:
        call = ChatCompletionMessageToolCall.model_validate(
            {
                "id": "call_x",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
        message = client.actions.execute_openai_tool_call(
            call, connection_name="discord", identifier=identifier
        )
        assert message["role"] == "tool"
        assert message["tool_call_id"] == "call_x"
        error: dict[str, Any] = json.loads(message["content"])["error"]
        return error

    not_linked = run("discord_get_my_user", "{}", identifier="openai-newcomer")
    assert not_linked["code"] == "ACCOUNT_NOT_ACTIVE"
    assert not_linked["details"]["authorization_link"].startswith(f"{gateway.url}/connect/")
    assert "authorization link" in not_linked["details"]["hint"]
    # Once a link exists the account is PENDING_AUTH; the gateway's own error carries a link too.
    pending = run("discord_get_my_user", "{}", identifier="openai-newcomer")
    assert pending["code"] == "ACCOUNT_NOT_ACTIVE"
    assert pending["details"]["authorization_link"].startswith(f"{gateway.url}/connect/")

    bad_json = run("discord_get_my_user", "{not json")
    assert bad_json["code"] == "VALIDATION_ERROR"
    assert "arguments" in bad_json["details"]["fields"]
    not_object = run("discord_get_my_user", "[1]")
    assert not_object["code"] == "VALIDATION_ERROR"
    bad_field = run("discord_get_guild_widget_png", json.dumps({"guild_id": "x", "style": None}))
    assert bad_field["code"] == "VALIDATION_ERROR"
    assert "guild_id" in bad_field["details"]["fields"]
    unknown = run("discord_send_message", "{}")
    assert unknown["code"] == "TOOL_NOT_FOUND"


async def test_responses_api_calls_and_images(aclient: AsyncClient) -> None:
    me_call = ResponseFunctionToolCall(
        type="function_call", call_id="fc_1", name="discord_get_my_user", arguments="{}"
    )
    me = await aclient.actions.execute_openai_tool_call(
        me_call, connection_name="discord", identifier="ada"
    )
    TypeAdapter(FunctionCallOutput).validate_python(me)
    assert me["type"] == "function_call_output"
    assert me["call_id"] == "fc_1"
    assert json.loads(me["output"])["id"] == ADA

    png_call = ResponseFunctionToolCall(
        type="function_call",
        call_id="fc_2",
        name="discord_get_guild_widget_png",
        arguments=json.dumps({"guild_id": HUB, "style": None}),
    )
    png = await aclient.actions.execute_openai_tool_call(
        png_call, connection_name="discord", identifier="ada"
    )
    TypeAdapter(FunctionCallOutput).validate_python(png)
    (image,) = png["output"]
    assert image["type"] == "input_image"
    prefix = "data:image/png;base64,"
    assert image["image_url"].startswith(prefix)
    assert png_size(base64.b64decode(image["image_url"][len(prefix) :])) == (118, 20)
