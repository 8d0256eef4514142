"""Tool adapters for agent frameworks: OpenAI, Anthropic and LangChain.

The tool definitions are built from the same catalog the gateway serves
(:mod:`tokenward.tools.schemas`), so they need no request. Executing a model's tool call goes
through ``actions.execute_tool`` (the gateway runs it as the given user) and always comes back as
a result message, never as an exception: a tokenward error becomes an error result whose JSON
carries the code, the message and the details (the hint, and for a user who has not linked
Discord, an ``authorization_link`` to give them), so the model can tell the user what to do.

::

    tools = client.actions.tools_for_openai()
    reply = openai.chat.completions.create(model=..., messages=messages, tools=tools)
    for call in reply.choices[0].message.tool_calls or []:
        messages.append(client.actions.execute_openai_tool_call(
            call, connection_name="discord", identifier="user_123"))
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from tokenward.errors import AccountNotActive, AccountNotFound, TokenwardError, ValidationError
from tokenward.providers.models import ToolSpec
from tokenward.tools.catalog import Catalog
from tokenward.tools.catalogs import Catalogs
from tokenward.tools.schemas import (
    anthropic_tool,
    input_schema,
    openai_tool,
    strip_nulls,
)

if TYPE_CHECKING:
    from langchain_core.tools import StructuredTool

    from tokenward.sdk.client import AsyncActions
    from tokenward.sdk.models import ToolExecution

__all__ = [
    "OpenAIApi",
    "ToolOutcome",
    "anthropic_result_block",
    "anthropic_tools",
    "langchain_tools",
    "openai_result_message",
    "openai_tools",
    "run_tool",
]

OpenAIApi = Literal["chat", "responses"]
LANGCHAIN_HINT = "the LangChain adapter needs langchain-core: pip install 'tokenward[langchain]'"


@lru_cache(maxsize=1)
def _catalog() -> Catalogs:
    return Catalogs.load()  # every provider's tools, as the server lists them


def _select(names: Sequence[str] | None, provider: str | None = None) -> list[ToolSpec]:
    """``names`` (default: every tool), of ``provider`` only when given (``"discordbot"``)."""
    catalog: Catalogs | Catalog = _catalog()
    if provider is not None:
        catalog = _catalog().provider(provider)
    if names is None:
        return catalog.tools()
    unknown = [n for n in dict.fromkeys(names) if n not in catalog.names()]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown)
        raise ValidationError(f"unknown tool name(s): {shown}", fields={"tools": shown})
    return [catalog.get(n) for n in dict.fromkeys(names)]


def openai_tools(
    names: Sequence[str] | None = None,
    *,
    api: OpenAIApi = "chat",
    provider: str | None = None,
) -> list[dict[str, Any]]:
    """OpenAI function tools in strict mode (``api="chat"``: Chat Completions; ``"responses"``:
    the Responses API's flat shape). Optional parameters are nullable; null means not given."""
    tools = [openai_tool(spec) for spec in _select(names, provider)]
    if api == "chat":
        return tools
    return [{"type": "function", **tool["function"]} for tool in tools]


def anthropic_tools(
    names: Sequence[str] | None = None, *, provider: str | None = None
) -> list[dict[str, Any]]:
    """Anthropic Messages API tool definitions."""
    return [anthropic_tool(spec) for spec in _select(names, provider)]


# -- executing a call ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call produced: ``data`` (JSON; an image as ``{type, media_type, data}``) or
    ``error`` (the error envelope ``{"error": {code, message, details}}``)."""

    data: Any = None
    error: dict[str, Any] | None = None
    execution_id: str | None = None

    @property
    def is_error(self) -> bool:
        return self.error is not None

    @property
    def image(self) -> tuple[str, str] | None:
        """``(media_type, base64 data)`` when the tool returned an image."""
        data = self.data
        if isinstance(data, dict) and data.get("type") == "image" and "data" in data:
            return str(data.get("media_type") or "image/png"), str(data["data"])
        return None

    def json_text(self) -> str:
        return json.dumps(self.error if self.error is not None else self.data, ensure_ascii=False)


Execute = Callable[..., Awaitable["ToolExecution"]]
MakeLink = Callable[..., Awaitable[Any]]


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _arguments(raw: Any) -> tuple[object, ValidationError | None]:
    """A model's arguments (a JSON string, or already an object) as an object."""
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, str):
        try:
            return json.loads(raw), None
        except json.JSONDecodeError as exc:
            reason = f"is not valid JSON ({exc.msg} at column {exc.colno})"
            return None, ValidationError(
                f"the tool arguments {reason}", fields={"arguments": reason}
            )
    return raw, None


async def run_tool(
    actions: AsyncActions,
    tool_name: str,
    arguments: object,
    *,
    connection_name: str,
    identifier: str,
) -> ToolOutcome:
    """Execute one tool call for the user; errors come back in the outcome, not raised."""
    if not isinstance(arguments, Mapping):
        reason = f"must be a JSON object, not {type(arguments).__name__}"
        return ToolOutcome(
            error=ValidationError(
                f"the tool arguments {reason}", fields={"arguments": reason}
            ).to_dict()
        )
    spec = _catalog().get(tool_name) if tool_name in _catalog().names() else None
    if spec is not None:
        arguments = strip_nulls(spec, arguments)
        assert isinstance(arguments, Mapping)
    try:
        execution = await actions.execute_tool(
            tool_name=tool_name,
            tool_input=arguments,
            connection_name=connection_name,
            identifier=identifier,
        )
    except AccountNotFound:
        return ToolOutcome(error=await _not_linked(actions, connection_name, identifier))
    except TokenwardError as exc:
        return ToolOutcome(error=exc.to_dict())
    return ToolOutcome(data=execution.data, execution_id=execution.execution_id)


async def _not_linked(
    actions: AsyncActions, connection_name: str, identifier: str
) -> dict[str, Any]:
    """The error for a user who has never linked Discord, with a fresh link to hand them."""
    try:
        link = await actions.get_authorization_link(
            connection_name=connection_name, identifier=identifier
        )
    except TokenwardError as exc:
        return exc.to_dict()
    return AccountNotActive(
        "The user has not connected Discord yet; send them the authorization link.",
        details={
            "status": "NOT_LINKED",
            "authorization_link": link.link,
            "hint": "Send the user this authorization link; the tool works once they approve.",
        },
    ).to_dict()


def parse_openai_tool_call(tool_call: Any) -> tuple[str, str, Any, bool]:
    """``(call id, tool name, raw arguments, is_responses_api)`` of an OpenAI tool call: a Chat
    Completions ``ChatCompletionMessageToolCall`` (or its dict), or a Responses API
    ``ResponseFunctionToolCall`` (or its dict)."""
    function = _field(tool_call, "function")
    if function is not None:
        return (
            str(_field(tool_call, "id")),
            str(_field(function, "name")),
            _field(function, "arguments"),
            False,
        )
    call_id = _field(tool_call, "call_id")
    name = _field(tool_call, "name")
    if call_id is None or name is None:
        raise ValidationError(
            "not an OpenAI function tool call (expected .function or .call_id and .name)",
            fields={"tool_call": "not a function tool call"},
        )
    return str(call_id), str(name), _field(tool_call, "arguments"), True


def openai_result_message(tool_call: Any, outcome: ToolOutcome) -> dict[str, Any]:
    """The message to append after a tool call: ``{"role": "tool", "tool_call_id", "content"}``
    (Chat Completions), or ``{"type": "function_call_output", "call_id", "output"}`` (Responses
    API; an image goes as an ``input_image``)."""
    call_id, _name, _raw, responses = parse_openai_tool_call(tool_call)
    if not responses:
        return {"role": "tool", "tool_call_id": call_id, "content": outcome.json_text()}
    image = outcome.image
    output: Any = outcome.json_text()
    if image is not None:
        media_type, data = image
        output = [{"type": "input_image", "image_url": f"data:{media_type};base64,{data}"}]
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def anthropic_result_block(block: Any, outcome: ToolOutcome) -> dict[str, Any]:
    """The ``tool_result`` block answering a ``tool_use`` block (an image as an image block)."""
    content: list[dict[str, Any]]
    image = outcome.image
    if image is not None:
        media_type, data = image
        content = [
            {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        ]
    else:
        content = [{"type": "text", "text": outcome.json_text()}]
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": str(_field(block, "id")),
        "content": content,
    }
    if outcome.is_error:
        result["is_error"] = True
    return result


async def execute_openai_tool_call(
    actions: AsyncActions, tool_call: Any, *, connection_name: str, identifier: str
) -> dict[str, Any]:
    _call_id, name, raw, _responses = parse_openai_tool_call(tool_call)
    arguments, bad = _arguments(raw)
    if bad is not None:
        return openai_result_message(tool_call, ToolOutcome(error=bad.to_dict()))
    outcome = await run_tool(
        actions, name, arguments, connection_name=connection_name, identifier=identifier
    )
    return openai_result_message(tool_call, outcome)


async def execute_anthropic_tool_use(
    actions: AsyncActions, block: Any, *, connection_name: str, identifier: str
) -> dict[str, Any]:
    if _field(block, "type") not in (None, "tool_use"):
        raise ValidationError(
            "not an Anthropic tool_use block", fields={"block": "type must be tool_use"}
        )
    arguments, bad = _arguments(_field(block, "input"))
    if bad is not None:
        return anthropic_result_block(block, ToolOutcome(error=bad.to_dict()))
    outcome = await run_tool(
        actions,
        str(_field(block, "name")),
        arguments,
        connection_name=connection_name,
        identifier=identifier,
    )
    return anthropic_result_block(block, outcome)


# -- LangChain -----------------------------------------------------------------------------------


def _langchain_content(outcome: ToolOutcome) -> Any:
    image = outcome.image
    if image is None:
        return outcome.json_text()
    media_type, data = image
    return [{"type": "image", "base64": data, "mime_type": media_type}]


def langchain_tools(
    names: Sequence[str] | None,
    *,
    run: Callable[[str, dict[str, Any]], Awaitable[ToolOutcome]] | None = None,
    run_sync: Callable[[str, dict[str, Any]], ToolOutcome] | None = None,
    provider: str | None = None,
) -> list[StructuredTool]:
    """LangChain ``StructuredTool``s over the catalog, each calling ``run`` (async) and/or
    ``run_sync`` with its name and arguments. Needs the ``tokenward[langchain]`` extra."""
    try:
        from langchain_core.tools import StructuredTool
    except ImportError as exc:
        raise ImportError(LANGCHAIN_HINT) from exc

    def make(spec: ToolSpec) -> StructuredTool:
        name = spec.name

        async def arun(**arguments: Any) -> Any:
            assert run is not None
            return _langchain_content(await run(name, arguments))

        def srun(**arguments: Any) -> Any:
            assert run_sync is not None
            return _langchain_content(run_sync(name, arguments))

        return StructuredTool(
            name=name,
            description=_catalog().description(name),
            args_schema=input_schema(spec),
            func=srun if run_sync is not None else None,
            coroutine=arun if run is not None else None,
        )

    return [make(spec) for spec in _select(names, provider)]
