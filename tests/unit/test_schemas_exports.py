"""Each export checked against its vendor's documented rules, written here as code, for every
tool of both connectors (34 ``discord_*`` and 221 ``discordbot_*``).

- OpenAI function calling, strict mode (Structured Outputs "Supported schemas", current limits):
  root is an object and not ``anyOf``; every object has ``additionalProperties: false`` and lists
  every property in ``required``; optional values are expressed as a union with ``null``; only
  the supported types and keywords (string: pattern, format; number: multipleOf, (exclusive)
  minimum/maximum; array: minItems, maxItems; plus anyOf, enum, const, description, title,
  $defs/$ref, recursion allowed); a ``$ref`` has no sibling keywords; at most 5,000 object
  properties and 10 levels of nesting; at most 1,000 enum values, and an enum of more than 250
  values at most 15,000 characters; total length of property names, definition names, enum
  values and consts at most 120,000 characters; function names ``^[a-zA-Z0-9_-]{1,64}$``.
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
    strip_nulls,
)
from tokenward.tools.validation import validate_input

CATALOG = Catalog.load()
ALL = Catalog.load_all()
TOOLS = ALL.tools()

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
MAX_PROPERTIES = 5000
MAX_DEPTH = 10
MAX_ENUM_VALUES = 1000
MAX_STRING_BUDGET = 120_000
LARGE_ENUM = 250
LARGE_ENUM_BUDGET = 15_000
# Regex features the strict-mode grammar does not take (lookaround, backreferences).
UNSUPPORTED_REGEX = re.compile(r"\(\?[=!<]|\\[1-9]|\(\?P")


class StrictWalk:
    """Checks one strict-mode schema and counts what the limits count. Each definition is walked
    once; nesting depth follows references (a recursive one counts once)."""

    def __init__(self, defs: dict[str, Any] | None = None) -> None:
        self.defs = defs or {}
        self.properties = 0
        self.budget = sum(len(name) for name in self.defs)
        self.enum_values = 0
        self.max_depth = 0

    def check(self, root: dict[str, Any], where: str) -> None:
        self.walk(root, 1, where, frozenset())
        for name, schema in self.defs.items():
            self.walk(schema, 1, f"$defs.{name}", frozenset({name}), count_only=True)

    def walk(
        self,
        schema: dict[str, Any],
        depth: int,
        where: str,
        refs: frozenset[str],
        *,
        count_only: bool = False,
    ) -> None:
        assert isinstance(schema, dict), where
        unknown = set(schema) - OPENAI_KEYWORDS
        assert not unknown, f"{where}: keywords strict mode does not support: {unknown}"
        if "$ref" in schema:
            assert set(schema) == {"$ref"}, f"{where}: a $ref cannot have sibling keywords"
            name = schema["$ref"].removeprefix("#/$defs/")
            assert name in self.defs, f"{where}: unknown reference {schema['$ref']}"
            if name not in refs:  # follow for depth; recursion counts once
                self._depth_only(self.defs[name], depth, refs | {name})
            return
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
            values = schema["enum"]
            assert values, where
            self.enum_values += len(values)
            chars = sum(len(str(v)) for v in values if v is not None)
            if len(values) > LARGE_ENUM:
                assert chars <= LARGE_ENUM_BUDGET, where
            if not count_only:
                self.budget += chars
        if "const" in schema:
            self.budget += len(str(schema["const"]))
        if "anyOf" in schema:
            assert isinstance(schema["anyOf"], list)
            assert schema["anyOf"], where
            for i, branch in enumerate(schema["anyOf"]):
                self.walk(branch, depth, f"{where}.anyOf[{i}]", refs, count_only=count_only)
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
                self.walk(sub, depth + 1, f"{where}.{name}", refs, count_only=count_only)
        if "items" in schema:
            self.walk(schema["items"], depth + 1, f"{where}[]", refs, count_only=count_only)

    def _depth_only(self, schema: dict[str, Any], depth: int, refs: frozenset[str]) -> None:
        probe = StrictWalk(self.defs)
        probe.walk(schema, depth, "(depth)", refs, count_only=True)
        self.max_depth = max(self.max_depth, probe.max_depth)
        assert self.max_depth <= MAX_DEPTH


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
    walker = StrictWalk(params.get("$defs"))
    walker.check({k: v for k, v in params.items() if k != "$defs"}, fn["name"])
    assert walker.properties <= MAX_PROPERTIES
    assert walker.budget <= MAX_STRING_BUDGET
    assert walker.enum_values <= MAX_ENUM_VALUES
    Draft202012Validator.check_schema(params)
    # Optional parameters are the nullable ones; required ones never accept null.
    for p in spec.params:
        assert accepts_null(params["properties"][p.name]) == (not p.required), p.name
    json.dumps(exported)


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
    assert sorted(guilds["required"]) == ["after", "before", "limit", "with_counts"]


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
    ref_with_sibling = json.loads(json.dumps(good))
    ref_with_sibling["properties"]["after"] = {"$ref": "#/$defs/X", "description": "x"}
    broken_cases.append(ref_with_sibling)
    for broken in broken_cases:
        with pytest.raises(AssertionError):
            StrictWalk({"X": {"type": "string"}}).check(broken, "broken")
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_DEPTH + 1):
        deep = {
            "type": "object",
            "properties": {"x": deep},
            "required": ["x"],
            "additionalProperties": False,
        }
    with pytest.raises(AssertionError, match="nested deeper"):
        StrictWalk().check(deep, "deep")
    huge_enum = {"type": "string", "enum": ["v" * 70 + str(i) for i in range(LARGE_ENUM + 1)]}
    with pytest.raises(AssertionError):
        StrictWalk().check(huge_enum, "enum")


def test_openai_tools_lists_every_tool() -> None:
    names = [t["function"]["name"] for t in openai_tools(ALL)]
    assert names == ALL.names()
    assert len(set(names)) == len(names) == 255


def test_strict_stand_ins_for_maps_and_free_form_objects_convert_back() -> None:
    """Strict mode cannot say "any keys": a map is a list of {key, value} pairs and a free-form
    object a JSON string; strip_nulls turns both back before validation and sending."""
    lobby = ALL.get("discordbot_create_lobby")
    strict = openai_tool(lobby)["function"]["parameters"]
    metadata = strict["properties"]["metadata"]
    assert metadata["type"] == ["array", "null"]
    assert metadata["items"]["required"] == ["key", "value"]
    assert "list of {key, value} pairs" in metadata["description"]
    written = {
        "metadata": [{"key": "map", "value": "dust2"}, {"key": "mode", "value": "ranked"}],
        "members": None,
        "idle_timeout_seconds": None,
        "flags": None,
        "override_event_webhooks_url": None,
    }
    assert Draft202012Validator(strict).is_valid(written)
    back = strip_nulls(lobby, written)
    assert back == {"metadata": {"map": "dust2", "mode": "ranked"}}
    assert validate_input(lobby, back) == back
    github = ALL.get("discordbot_execute_github_compatible_webhook")
    repo = openai_tool(github)["function"]["parameters"]
    # Objects the spec describes stay objects, through $defs.
    assert "$defs" in repo
    assert "GithubRepository" in repo["$defs"]
    # Already-native values pass unchanged (Anthropic and MCP clients send those).
    native = {"metadata": {"map": "dust2"}}
    assert strip_nulls(lobby, native) == native


def test_strict_nulls_inside_objects_are_dropped() -> None:
    tool = ALL.get("discordbot_create_message")
    written = {
        "channel_id": "1",
        "content": None,
        "embeds": [{"title": "Hi", "description": None, "color": None, "fields": None}],
        "poll": None,
    }
    back = strip_nulls(tool, written)
    assert back == {"channel_id": "1", "embeds": [{"title": "Hi"}]}
    validate_input(tool, back)


def test_a_free_form_object_is_a_json_string_in_strict_mode() -> None:
    from tokenward.providers.models import ParamSpec

    base = ALL.get("discordbot_create_lobby")
    free = ParamSpec(
        name="extra",
        location="body",
        description="Anything at all, as an object.",
        schema={"type": "object"},
    )
    tool = base.model_copy(update={"params": (*base.params, free)})
    strict = openai_tool(tool)["function"]["parameters"]["properties"]["extra"]
    assert strict["type"] == ["string", "null"]
    assert "JSON string" in strict["description"]
    assert strip_nulls(tool, {"extra": '{"a": [1, 2]}'}) == {"extra": {"a": [1, 2]}}
    assert strip_nulls(tool, {"extra": "not json"}) == {"extra": "not json"}
    with pytest.raises(Exception, match="extra"):
        validate_input(tool, strip_nulls(tool, {"extra": "not json"}))


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
    assert [t["name"] for t in anthropic_tools(ALL)] == ALL.names()


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
    assert annotations["readOnlyHint"] is spec.annotations.read_only
    assert annotations["destructiveHint"] is spec.annotations.destructive
    assert annotations["idempotentHint"] is spec.annotations.idempotent
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
    tools = {t["name"]: t for t in mcp_tools(ALL)}
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
    assert len(openai_tools()) == len(anthropic_tools()) == 34


def test_default_moves_into_the_openai_description() -> None:
    """Strict mode has no ``default`` keyword: the value is stated in the description instead."""
    base = CATALOG.get("discord_list_my_guilds")
    limit = base.param("limit")
    assert limit is not None
    limit = limit.model_copy(update={"description": "Maximum number of servers."})
    spec = base.model_copy(update={"params": (limit,)})
    prop = openai_tool(spec)["function"]["parameters"]["properties"]["limit"]
    assert "default" not in prop
    assert prop["description"] == "Maximum number of servers. Default: 200."
    assert input_schema(spec)["properties"]["limit"]["default"] == 200


def test_values_nested_too_deeply_are_json_strings_in_strict_mode() -> None:
    """Command options (subcommand groups of subcommands of options with localized choices) nest
    deeper than strict mode's 10 levels: the strict form takes them as a JSON string, and
    strip_nulls parses it back into the value the tool sends."""
    tool = ALL.get("discordbot_create_global_application_command")
    strict = openai_tool(tool)["function"]["parameters"]
    options = strict["properties"]["options"]
    assert options["type"] == ["string", "null"]
    assert "JSON string" in options["description"]
    assert "ApplicationCommandSubcommandGroupOption" not in strict.get("$defs", {})
    value = [{"type": 3, "name": "city", "description": "Which city", "required": True}]
    written = {p.name: None for p in tool.params}
    written.update(application_id="1", name="weather", type=1, options=json.dumps(value))
    assert Draft202012Validator(strict).is_valid(written)
    back = strip_nulls(tool, written)
    assert back == {"application_id": "1", "name": "weather", "type": 1, "options": value}
    assert validate_input(tool, back)["options"] == value
    # Shallow values keep their structure: the message tools' embeds and components.
    message = openai_tool(ALL.get("discordbot_create_message"))["function"]["parameters"]
    assert message["properties"]["embeds"]["type"] == ["array", "null"]
