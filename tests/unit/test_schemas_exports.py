"""Each export checked against its vendor's documented rules, written here as code.

- OpenAI function calling, strict mode (Structured Outputs "Supported schemas"): root is an
  object and not ``anyOf``; every object has ``additionalProperties: false`` and lists every
  property in ``required``; optional values are expressed as a union with ``null``; only the
  supported types and keywords (string: pattern, format; number: multipleOf, (exclusive)
  minimum/maximum; array: minItems, maxItems; plus anyOf, enum, const, description, $defs/$ref);
  at most 5000 properties and 10 levels of nesting (we hold ourselves to the older 100 / 5);
  at most 1000 enum values; total length of property names, enum values and consts at most
  120,000 characters (older: 15,000); function names ``^[a-zA-Z0-9_-]{1,64}$``.
- Anthropic tools: ``name`` matching ``^[a-zA-Z0-9_-]{1,64}$``, a ``description``, and an
  ``input_schema`` that is a JSON Schema with ``type: object``.
- MCP (2025-11-25 schema): ``Tool`` has ``name`` (1-128 of ``[A-Za-z0-9_.-]``), optional
  ``title``, ``description``, ``inputSchema`` (``type: object``), ``annotations`` (a
  ``ToolAnnotations``: title, readOnlyHint, destructiveHint, idempotentHint, openWorldHint) and
  ``_meta`` whose keys follow the spec's prefix/name format, with ``modelcontextprotocol`` and
  ``mcp`` prefixes reserved.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tokenward.providers.models import ToolSpec
from tokenward.tools.catalog import Catalog
from tokenward.tools.schemas import (
    anthropic_tool,
    anthropic_tools,
    input_schema,
    mcp_tool,
    mcp_tools,
    openai_tool,
    openai_tools,
)

CATALOG = Catalog.load()
TOOLS = CATALOG.tools()

# --------------------------------------------------------------------------- OpenAI strict

OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
OPENAI_TYPES = {"string", "number", "boolean", "integer", "object", "array", "null"}
OPENAI_FORMATS = {
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
}
OPENAI_KEYWORDS = {
    "type", "description", "title", "properties", "required", "additionalProperties",
    "enum", "const", "anyOf", "$defs", "$ref", "items",
    "pattern", "format",
    "multipleOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minItems", "maxItems",
}  # fmt: skip
MAX_PROPERTIES = 100
MAX_DEPTH = 5
MAX_ENUM_VALUES = 1000
MAX_STRING_BUDGET = 15_000
# Regex features the strict-mode grammar does not take (lookaround, backreferences).
UNSUPPORTED_REGEX = re.compile(r"\(\?[=!<]|\\[1-9]|\(\?P")


class StrictWalk:
    def __init__(self) -> None:
        self.properties = 0
        self.budget = 0
        self.max_depth = 0

    def walk(self, schema: dict[str, Any], depth: int, where: str) -> None:
        assert isinstance(schema, dict), where
        unknown = set(schema) - OPENAI_KEYWORDS
        assert not unknown, f"{where}: keywords strict mode does not support: {unknown}"
        types = schema.get("type")
        if types is not None:
            as_list = types if isinstance(types, list) else [types]
            assert as_list, where
            assert set(as_list) <= OPENAI_TYPES, where
        if "format" in schema:
            assert schema["format"] in OPENAI_FORMATS, where
        if "pattern" in schema:
            re.compile(schema["pattern"])
            assert not UNSUPPORTED_REGEX.search(schema["pattern"]), where
        if "enum" in schema:
            assert 0 < len(schema["enum"]) <= MAX_ENUM_VALUES, where
            self.budget += sum(len(str(v)) for v in schema["enum"] if v is not None)
        if "const" in schema:
            self.budget += len(str(schema["const"]))
        if "anyOf" in schema:
            assert isinstance(schema["anyOf"], list)
            assert schema["anyOf"], where
            for i, branch in enumerate(schema["anyOf"]):
                self.walk(branch, depth, f"{where}.anyOf[{i}]")
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if is_object or "properties" in schema:
            self.max_depth = max(self.max_depth, depth)
            assert depth <= MAX_DEPTH, f"{where}: nested deeper than {MAX_DEPTH}"
            assert schema.get("additionalProperties") is False, (
                f"{where}: additionalProperties must be false"
            )
            props: dict[str, Any] = schema.get("properties", {})
            assert sorted(schema.get("required", [])) == sorted(props), (
                f"{where}: every property must be required"
            )
            self.properties += len(props)
            for name, sub in props.items():
                self.budget += len(name)
                self.walk(sub, depth + 1, f"{where}.{name}")
        if "items" in schema:
            self.walk(schema["items"], depth + 1, f"{where}[]")


def accepts_null(schema: dict[str, Any]) -> bool:
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return "enum" not in schema or None in schema["enum"]
    return any(accepts_null(b) for b in schema.get("anyOf", []))


@pytest.mark.parametrize("spec", TOOLS, ids=lambda t: t.name)
def test_openai_strict_rules(spec: ToolSpec) -> None:
    exported = openai_tool(spec)
    assert set(exported) == {"type", "function"}
    assert exported["type"] == "function"
    fn = exported["function"]
    assert set(fn) == {"name", "description", "parameters", "strict"}
    assert fn["strict"] is True
    assert OPENAI_NAME.fullmatch(fn["name"])
    assert isinstance(fn["description"], str)
    assert 0 < len(fn["description"]) <= 1024
    params = fn["parameters"]
    assert params["type"] == "object"
    assert "anyOf" not in params
    walker = StrictWalk()
    walker.walk(params, 1, fn["name"])
    assert walker.properties <= MAX_PROPERTIES
    assert walker.budget <= MAX_STRING_BUDGET
    Draft202012Validator.check_schema(params)
    # Optional parameters are the nullable ones; required ones never accept null.
    for p in spec.params:
        assert accepts_null(params["properties"][p.name]) == (not p.required), p.name


def test_openai_optional_forms() -> None:
    png = openai_tool(CATALOG.get("discord_get_guild_widget_png"))["function"]["parameters"]
    style = png["properties"]["style"]
    assert style["anyOf"] == [
        {"type": "string", "enum": ["shield", "banner1", "banner2", "banner3", "banner4"]},
        {"type": "null"},
    ]
    assert "the default" in style["description"]
    assert png["properties"]["guild_id"]["type"] == "string"
    guilds = openai_tool(CATALOG.get("discord_list_my_guilds"))["function"]["parameters"]
    assert guilds["properties"]["limit"]["type"] == ["integer", "null"]
    assert (guilds["properties"]["limit"]["minimum"], guilds["properties"]["limit"]["maximum"]) == (
        1,
        200,
    )
    assert "default" not in json.dumps(guilds).replace("default 200", "")
    assert guilds["required"] == ["after", "before", "limit", "with_counts"]


def test_openai_walker_catches_violations() -> None:
    """The rules above can fail: each broken schema is refused."""
    good = openai_tool(CATALOG.get("discord_list_my_guilds"))["function"]["parameters"]
    broken_cases = []
    no_additional = json.loads(json.dumps(good))
    del no_additional["additionalProperties"]
    broken_cases.append(no_additional)
    not_all_required = json.loads(json.dumps(good))
    not_all_required["required"] = ["after"]
    broken_cases.append(not_all_required)
    with_default = json.loads(json.dumps(good))
    with_default["properties"]["limit"]["default"] = 200
    broken_cases.append(with_default)
    with_min_length = json.loads(json.dumps(good))
    with_min_length["properties"]["after"]["minLength"] = 1
    broken_cases.append(with_min_length)
    lookahead = json.loads(json.dumps(good))
    lookahead["properties"]["after"]["pattern"] = "^(?=1)[0-9]+$"
    broken_cases.append(lookahead)
    for broken in broken_cases:
        with pytest.raises(AssertionError):
            StrictWalk().walk(broken, 1, "broken")


def test_openai_tools_lists_every_tool() -> None:
    names = [t["function"]["name"] for t in openai_tools(CATALOG)]
    assert names == CATALOG.names()
    assert len(set(names)) == len(names)


# --------------------------------------------------------------------------- Anthropic

ANTHROPIC_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.mark.parametrize("spec", TOOLS, ids=lambda t: t.name)
def test_anthropic_rules(spec: ToolSpec) -> None:
    exported = anthropic_tool(spec)
    assert set(exported) == {"name", "description", "input_schema"}
    assert ANTHROPIC_NAME.fullmatch(exported["name"])
    assert isinstance(exported["description"], str)
    assert exported["description"].strip()
    schema = exported["input_schema"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    Draft202012Validator.check_schema(schema)
    assert schema == input_schema(spec)
    json.dumps(exported)  # plain JSON all the way down


def test_anthropic_tools_lists_every_tool() -> None:
    assert [t["name"] for t in anthropic_tools(CATALOG)] == CATALOG.names()


# --------------------------------------------------------------------------- MCP

MCP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MCP_TOOL_KEYS = {
    "name", "title", "description", "inputSchema", "outputSchema", "annotations", "_meta",
    "icons", "execution",
}  # fmt: skip
MCP_ANNOTATION_KEYS = {
    "title",
    "readOnlyHint",
    "destructiveHint",
    "idempotentHint",
    "openWorldHint",
}
_LABEL = r"[a-zA-Z](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
MCP_META_KEY = re.compile(
    rf"^(?:(?P<prefix>{_LABEL}(?:\.{_LABEL})*)/)?[a-zA-Z0-9](?:[a-zA-Z0-9._-]*[a-zA-Z0-9])?$"
)


def _meta_key_ok(key: str) -> bool:
    match = MCP_META_KEY.fullmatch(key)
    if not match:
        return False
    labels = (match.group("prefix") or "").split(".")
    return len(labels) < 2 or labels[1] not in {"modelcontextprotocol", "mcp"}


@pytest.mark.parametrize("spec", TOOLS, ids=lambda t: t.name)
def test_mcp_rules(spec: ToolSpec) -> None:
    exported = mcp_tool(spec)
    assert set(exported) <= MCP_TOOL_KEYS
    assert MCP_NAME.fullmatch(exported["name"])
    assert isinstance(exported["title"], str)
    assert exported["title"]
    assert isinstance(exported["description"], str)
    assert exported["inputSchema"]["type"] == "object"
    Draft202012Validator.check_schema(exported["inputSchema"])
    annotations = exported["annotations"]
    assert set(annotations) <= MCP_ANNOTATION_KEYS
    for key in MCP_ANNOTATION_KEYS - {"title"}:
        assert isinstance(annotations[key], bool)
    assert annotations["readOnlyHint"] is True
    assert annotations["destructiveHint"] is False
    assert annotations["idempotentHint"] is True
    assert annotations["openWorldHint"] is True
    for key in exported["_meta"]:
        assert _meta_key_ok(key), key
    assert exported["_meta"]["tokenward/output"] == spec.output
    json.dumps(exported)


def test_mcp_meta_key_rule_can_fail() -> None:
    assert not _meta_key_ok("io.modelcontextprotocol/x")
    assert not _meta_key_ok("-bad/x")
    assert not _meta_key_ok("tokenward/")
    assert _meta_key_ok("tokenward/deprecated")


def test_mcp_marks_the_deprecated_tool() -> None:
    tools = {t["name"]: t for t in mcp_tools(CATALOG)}
    old = tools["discord_get_invite_deprecated"]
    assert old["description"].startswith("DEPRECATED: use discord_resolve_invite instead.")
    assert old["title"].endswith("(deprecated)")
    assert old["annotations"]["title"] == old["title"]
    assert old["_meta"]["tokenward/deprecated"] is True
    assert old["_meta"]["tokenward/replaced_by"] == "discord_resolve_invite"
    assert "discord_resolve_invite" in tools
    for name, tool in tools.items():
        if name != "discord_get_invite_deprecated":
            assert "tokenward/deprecated" not in tool["_meta"]
            assert not tool["description"].startswith("DEPRECATED")


def test_mcp_marks_the_image_tool() -> None:
    png = mcp_tool(CATALOG.get("discord_get_guild_widget_png"))
    assert png["_meta"]["tokenward/output"] == "image"
    assert png["_meta"]["tokenward/media_type"] == "image/png"


def test_default_catalog_is_used_when_none_is_given() -> None:
    assert [t["name"] for t in mcp_tools()] == CATALOG.names()
    assert len(openai_tools()) == len(anthropic_tools()) == 16


def test_default_moves_into_the_openai_description() -> None:
    """Strict mode has no ``default`` keyword: the value is stated in the description instead."""
    base = CATALOG.get("discord_list_my_guilds")
    limit = base.params[2].model_copy(update={"description": "Maximum number of servers."})
    spec = base.model_copy(update={"params": (limit,)})
    prop = openai_tool(spec)["function"]["parameters"]["properties"]["limit"]
    assert "default" not in prop
    assert prop["description"] == "Maximum number of servers. Default: 200."
    assert input_schema(spec)["properties"]["limit"]["default"] == 200
