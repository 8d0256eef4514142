"""Tool schemas: a JSON Schema per tool, and exports for OpenAI, Anthropic and MCP.

The input schema (JSON Schema 2020-12) is the tool's parameters' schemas as the catalog holds
them, with the shared schemas they refer to under ``$defs`` and ``additionalProperties:
false``; a Discord ID (``format: snowflake``) and the normalised kinds (invite and template
codes, ``@me``, emoji) carry the same ``pattern`` :mod:`tokenward.tools.validation` checks.
Anthropic tools and MCP tools use it as is. Each export then follows its vendor's rules:

- OpenAI function tools in strict mode (Structured Outputs "supported schemas"): every object
  lists all its properties in ``required`` and has ``additionalProperties: false``; optional
  values are nullable (``["string", "null"]``, or ``anyOf`` with ``null`` for enums and
  references) and null means "not given"; only the keywords strict mode supports (no
  ``default``, ``minLength``/``maxLength``, ``uniqueItems``, min/maxProperties, unknown
  ``format``: what they said moves into the description); a ``$ref`` never has sibling
  keywords (a described reference is inlined, as OpenAI's own SDK does). Two shapes strict mode
  cannot express get a stand-in, converted back by :func:`strip_nulls` before the call runs:

  - a map (an object with free keys, e.g. ``name_localizations``, lobby ``metadata``) is a list
    of ``{"key": ..., "value": ...}`` pairs;
  - a free-form object (no declared properties) is a string holding the object as JSON;
  - a value nesting deeper than strict mode's 10 levels (counting every object and array, e.g.
    the options of a command with subcommand groups) is a string holding the value as JSON.

- Anthropic tools: ``name``, ``description``, ``input_schema`` (an object schema).
- MCP tools: ``name``, ``title``, ``description``, ``inputSchema``, ``annotations`` (the spec's
  hints) and ``_meta`` (output kind; deprecation and replacement).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenward.providers.models import ParamSpec, ToolSpec, ref_name, schema_types
from tokenward.tools.catalog import Catalog, Catalogs, agent_description
from tokenward.tools.validation import (
    EMOJI_INPUT_PATTERN,
    INVITE_INPUT_PATTERN,
    SNOWFLAKE_PATTERN,
    TEMPLATE_INPUT_PATTERN,
    USER_REF_PATTERN,
    is_free_form,
    is_map,
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

_KIND_PATTERNS = {
    "user_ref": USER_REF_PATTERN,
    "invite_code": INVITE_INPUT_PATTERN,
    "template_code": TEMPLATE_INPUT_PATTERN,
    "emoji": EMOJI_INPUT_PATTERN,
    "base64_file": "^[A-Za-z0-9+/]+={0,2}$",
}

OPENAI_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_STRICT_DROPPED = (
    "title",
    "default",
    "minLength",
    "maxLength",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "contentEncoding",
    "examples",
    "deprecated",
)


def _title(tool: ToolSpec) -> str:
    return tool.title + (" (deprecated)" if tool.annotations.deprecated else "")


# --------------------------------------------------------------------------- plain schemas


def _plain(node: Any) -> Any:
    """A catalog schema as exported: ``format: snowflake`` carries its pattern."""
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _plain(v) for k, v in node.items()}
    if out.get("format") == "snowflake":
        del out["format"]
        out["pattern"] = SNOWFLAKE_PATTERN
    return out


def _is_snowflake(param: ParamSpec) -> bool:
    return param.kind == "user_ref" or param.schema_.get("format") == "snowflake"


def param_schema(param: ParamSpec) -> dict[str, Any]:
    """The JSON Schema of one parameter, with its description."""
    description = param.description
    if _is_snowflake(param) and "digits" not in description:
        description += " Discord IDs are strings of digits."
    schema: dict[str, Any] = {"description": description, **_plain(param.schema_)}
    if param.kind in _KIND_PATTERNS:
        schema["pattern"] = _KIND_PATTERNS[param.kind]
    return schema


def input_schema(tool: ToolSpec) -> dict[str, Any]:
    """The tool's input as a JSON Schema object (draft 2020-12)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: param_schema(p) for p in tool.params},
        "required": [p.name for p in tool.params if p.required],
        "additionalProperties": False,
    }
    if tool.defs:
        schema["$defs"] = {name: _plain(d) for name, d in tool.defs.items()}
    return schema


# --------------------------------------------------------------------------- OpenAI strict


def _notes(node: Mapping[str, Any]) -> list[str]:
    notes: list[str] = []
    if "maxLength" in node and "minLength" in node:
        notes.append(f"{node['minLength']} to {node['maxLength']} characters.")
    elif "maxLength" in node:
        notes.append(f"At most {node['maxLength']} characters.")
    elif node.get("minLength", 0) > 0:
        notes.append(f"At least {node['minLength']} characters.")
    if "maxProperties" in node:
        notes.append(f"At most {node['maxProperties']} entries.")
    if "default" in node:
        default = node["default"]
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        notes.append(f"Default: {shown}.")
    return notes


def _describe(description: str | None, notes: list[str]) -> str | None:
    if description and "default" in description.lower():
        notes = [n for n in notes if not n.startswith("Default:")]
    text = " ".join(([description] if description else []) + notes)
    return text or None


class _Strict:
    """Turns catalog schemas into strict-mode schemas for one tool (see the module docstring)."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.strict_defs: dict[str, Any] = {}

    def node(self, node: Mapping[str, Any], *, nullable: bool) -> dict[str, Any]:
        description = node.get("description")
        notes = _notes(node)
        name = ref_name(node)
        if name is not None:
            return self._ref(name, description, notes, nullable=nullable)
        if is_map(node):
            return self._map(node, description, nullable=nullable)
        if is_free_form(node):
            text = _describe(description, ["A JSON object, written as a JSON string.", *notes])
            return self._finish({"type": "string"}, text, nullable=nullable)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _STRICT_DROPPED or key == "description":
                continue
            if key == "format":
                if value == "snowflake":
                    out["pattern"] = SNOWFLAKE_PATTERN
                elif value in OPENAI_FORMATS:
                    out["format"] = value
                continue
            if key == "properties":
                required = set(node.get("required", ()))
                out["properties"] = {
                    prop: self.node(sub, nullable=prop not in required)
                    for prop, sub in value.items()
                }
                out["required"] = list(value)
                out["additionalProperties"] = False
                continue
            if key in ("required", "additionalProperties"):
                continue
            if key == "items":
                out["items"] = self.node(value, nullable=False)
                continue
            if key in ("anyOf", "oneOf"):
                out["anyOf"] = [self.node(b, nullable=False) for b in value]
                continue
            out[key] = value
        if "object" in schema_types(node) and "properties" not in out:
            out["properties"] = {}
            out["required"] = []
            out["additionalProperties"] = False
        return self._finish(out, _describe(description, notes), nullable=nullable)

    def _finish(
        self, out: dict[str, Any], description: str | None, *, nullable: bool
    ) -> dict[str, Any]:
        if nullable and not _accepts_null(out):
            if "anyOf" in out:
                out["anyOf"] = [*out["anyOf"], {"type": "null"}]
            elif "enum" in out or "const" in out or "type" not in out:
                out = {"anyOf": [out, {"type": "null"}]}
            else:
                types = out["type"] if isinstance(out["type"], list) else [out["type"]]
                out["type"] = [*types, "null"]
        if description:
            out = {"description": description, **out}
        return out

    def _ref(
        self, name: str, description: str | None, notes: list[str], *, nullable: bool
    ) -> dict[str, Any]:
        target = self.defs.get(name, {})
        if is_map(target) or is_free_form(target) or description or notes:
            # A $ref cannot have siblings in strict mode, and stand-ins change the shape:
            # inline the (strict) definition here.
            inline = self.node(target, nullable=nullable)
            text = _describe(description, notes)
            if text:
                inline = {**inline, "description": text}
            return inline
        self.define(name)
        ref = {"$ref": f"#/$defs/{name}"}
        return {"anyOf": [ref, {"type": "null"}]} if nullable else ref

    def define(self, name: str) -> None:
        if name in self.strict_defs:
            return
        self.strict_defs[name] = {}  # placeholder: stops recursion
        self.strict_defs[name] = self.node(self.defs.get(name, {}), nullable=False)

    def _map(
        self, node: Mapping[str, Any], description: str | None, *, nullable: bool
    ) -> dict[str, Any]:
        value = self.node(node["additionalProperties"], nullable=False)
        pairs: dict[str, Any] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "value": value},
                "required": ["key", "value"],
                "additionalProperties": False,
            },
        }
        notes = ["Given as a list of {key, value} pairs.", *_notes(node)]
        return self._finish(pairs, _describe(description, notes), nullable=nullable)


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return "enum" not in schema or None in schema["enum"]
    return any(_accepts_null(b) for b in schema.get("anyOf", []))


def _openai_property(tool: ToolSpec, param: ParamSpec, strict: _Strict) -> dict[str, Any]:
    schema = param_schema(param)
    return strict.node(schema, nullable=not param.required)


STRICT_MAX_DEPTH = 10
"""OpenAI's limit on nesting. Counted conservatively: every object and every array is a level
(the root object is level 1), following references (a recursive one counts once)."""


def _depth(node: Any, defs: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> int:
    if not isinstance(node, Mapping):
        return 0
    name = ref_name(node)
    if name is not None:
        return 0 if name in seen else _depth(defs.get(name, {}), defs, seen | {name})
    deepest = max((_depth(b, defs, seen) for b in node.get("anyOf", [])), default=0)
    if "properties" in node:
        inner = max((_depth(v, defs, seen) for v in node["properties"].values()), default=0)
        deepest = max(deepest, 1 + inner)
    if "items" in node:
        deepest = max(deepest, 1 + _depth(node["items"], defs, seen))
    return deepest


def _used(node: Any, defs: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            name = ref_name(item)
            if name is not None and name not in found:
                found.add(name)
                pending.append(defs.get(name, {}))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def _as_json_string(param: ParamSpec) -> dict[str, Any]:
    """The stand-in for a value nested too deeply for strict mode: the value written as JSON."""
    text = param_schema(param)["description"] + (
        " Written as a JSON string (the value nests too deeply for strict mode); its shape is "
        "the one the tool's plain JSON Schema gives."
    )
    types = ["string"] if param.required else ["string", "null"]
    return {"description": text, "type": types[0] if len(types) == 1 else types}


def openai_tool(tool: ToolSpec) -> dict[str, Any]:
    """An OpenAI function tool valid in strict mode. Optional parameters are nullable; a value
    that would nest deeper than strict mode allows is taken as a JSON string."""
    strict = _Strict(tool.defs)
    properties = {p.name: _openai_property(tool, p, strict) for p in tool.params}
    for param in tool.params:
        if 1 + _depth(properties[param.name], strict.strict_defs) > STRICT_MAX_DEPTH:
            properties[param.name] = _as_json_string(param)
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [p.name for p in tool.params],
        "additionalProperties": False,
    }
    used = _used(properties, strict.strict_defs)
    if used:
        parameters["$defs"] = {k: v for k, v in sorted(strict.strict_defs.items()) if k in used}
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": agent_description(tool),
            "parameters": parameters,
            "strict": True,
        },
    }


# --------------------------------------------------------------------------- vendors


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


def _all(catalog: Catalog | Catalogs | None) -> list[ToolSpec]:
    return (catalog or Catalog.load()).tools()


def openai_tools(catalog: Catalog | Catalogs | None = None) -> list[dict[str, Any]]:
    return [openai_tool(t) for t in _all(catalog)]


def anthropic_tools(catalog: Catalog | Catalogs | None = None) -> list[dict[str, Any]]:
    return [anthropic_tool(t) for t in _all(catalog)]


def mcp_tools(catalog: Catalog | Catalogs | None = None) -> list[dict[str, Any]]:
    return [mcp_tool(t) for t in _all(catalog)]
