"""Tool schemas: a JSON Schema per tool, and exports for OpenAI, Anthropic and MCP.

The input schema (JSON Schema 2020-12) mirrors :mod:`tokenward.tools.validation`: the same
patterns, ranges and enums, ``additionalProperties: false``. Each export then follows its
vendor's rules:

- OpenAI function tools in strict mode: every property listed in ``required``; optional ones
  are nullable (``["string", "null"]``, or ``anyOf`` with ``null`` for enums) and null means
  "not given" (:func:`tokenward.tools.validation.strip_nulls` removes them before execution);
  ``additionalProperties: false`` on every object; only the keywords strict mode supports (no
  ``default``: it moves into the description).
- Anthropic tools: ``name``, ``description``, ``input_schema`` (an object schema).
- MCP tools: ``name``, ``title``, ``description``, ``inputSchema``, ``annotations`` (the spec's
  hints) and ``_meta`` (output kind; deprecation and replacement).
"""

from __future__ import annotations

from typing import Any

from tokenward.providers.models import ParamSpec, ToolSpec
from tokenward.tools.catalog import Catalog, agent_description
from tokenward.tools.validation import (
    INVITE_INPUT_PATTERN,
    SNOWFLAKE_PATTERN,
    TEMPLATE_INPUT_PATTERN,
    USER_REF_PATTERN,
    strip_nulls,
)

__all__ = [
    "MCP_META_PREFIX",
    "agent_description",
    "anthropic_tool",
    "anthropic_tools",
    "input_schema",
    "mcp_tool",
    "mcp_tools",
    "openai_tool",
    "openai_tools",
    "param_schema",
    "strip_nulls",
]

MCP_META_PREFIX = "tokenward/"

_PATTERNS = {
    "snowflake": SNOWFLAKE_PATTERN,
    "user_ref": USER_REF_PATTERN,
    "invite_code": INVITE_INPUT_PATTERN,
    "template_code": TEMPLATE_INPUT_PATTERN,
}


def _title(tool: ToolSpec) -> str:
    return tool.title + (" (deprecated)" if tool.annotations.deprecated else "")


def param_schema(param: ParamSpec) -> dict[str, Any]:
    """The JSON Schema of one parameter."""
    description = param.description
    if param.type in ("snowflake", "user_ref") and "digits" not in description:
        description += " Discord IDs are strings of digits."
    schema: dict[str, Any] = {"description": description}
    if param.type == "integer":
        schema["type"] = "integer"
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
    elif param.type == "boolean":
        schema["type"] = "boolean"
    elif param.type == "enum":
        schema["type"] = "string"
        schema["enum"] = list(param.enum or ())
    else:
        schema["type"] = "string"
        if param.type in _PATTERNS:
            schema["pattern"] = _PATTERNS[param.type]
    if param.default is not None:
        schema["default"] = param.default
    return schema


def input_schema(tool: ToolSpec) -> dict[str, Any]:
    """The tool's input as a JSON Schema object (draft 2020-12)."""
    return {
        "type": "object",
        "properties": {p.name: param_schema(p) for p in tool.params},
        "required": [p.name for p in tool.params if p.required],
        "additionalProperties": False,
    }


def _openai_property(param: ParamSpec) -> dict[str, Any]:
    schema = param_schema(param)
    default = schema.pop("default", None)
    if default is not None and "default" not in param.description.lower():
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        schema["description"] = f"{schema['description']} Default: {shown}."
    if param.required:
        return schema
    description = schema.pop("description")
    if "enum" in schema:
        return {"description": description, "anyOf": [schema, {"type": "null"}]}
    schema["type"] = [schema["type"], "null"]
    return {"description": description, **schema}


def openai_tool(tool: ToolSpec) -> dict[str, Any]:
    """An OpenAI function tool valid in strict mode. Optional parameters are nullable."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": agent_description(tool),
            "parameters": {
                "type": "object",
                "properties": {p.name: _openai_property(p) for p in tool.params},
                "required": [p.name for p in tool.params],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }


def anthropic_tool(tool: ToolSpec) -> dict[str, Any]:
    """An Anthropic Messages API tool definition."""
    return {
        "name": tool.name,
        "description": agent_description(tool),
        "input_schema": input_schema(tool),
    }


def mcp_tool(tool: ToolSpec) -> dict[str, Any]:
    """An MCP ``Tool`` (as listed by ``tools/list``)."""
    meta: dict[str, Any] = {f"{MCP_META_PREFIX}output": tool.output}
    if tool.media_type is not None:
        meta[f"{MCP_META_PREFIX}media_type"] = tool.media_type
    if tool.annotations.deprecated:
        meta[f"{MCP_META_PREFIX}deprecated"] = True
        meta[f"{MCP_META_PREFIX}replaced_by"] = tool.annotations.replaced_by
    return {
        "name": tool.name,
        "title": _title(tool),
        "description": agent_description(tool),
        "inputSchema": input_schema(tool),
        "annotations": {
            "title": _title(tool),
            "readOnlyHint": tool.annotations.read_only,
            "destructiveHint": tool.annotations.destructive,
            "idempotentHint": tool.annotations.idempotent,
            "openWorldHint": tool.annotations.open_world,
        },
        "_meta": meta,
    }


def _all(catalog: Catalog | None) -> list[ToolSpec]:
    return (catalog or Catalog.load()).tools()


def openai_tools(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    return [openai_tool(t) for t in _all(catalog)]


def anthropic_tools(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    return [anthropic_tool(t) for t in _all(catalog)]


def mcp_tools(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    return [mcp_tool(t) for t in _all(catalog)]
