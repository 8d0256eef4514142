"""Spec tests over the 16 read tools the discord connector had before the catalog was generated:
their behaviour did not change (every tool of both connectors is checked in test_catalog_all).

The reference names and parameters below are copied from the catalog reference
(discord-tools.md): they are an interface, so this file hardcodes them instead of reading them
from the YAML it checks.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tokenward.errors import BotTokenRequired, ToolNotFound, ValidationError
from tokenward.providers.discord.hooks import HOOKS
from tokenward.providers.loader import LoadedProvider
from tokenward.providers.models import ParamSpec, ToolSpec
from tokenward.tools.catalog import Catalog, PreparedRequest
from tokenward.tools.schemas import input_schema, openai_tool
from tokenward.tools.validation import strip_nulls, validate_input


def semantic_type(param: ParamSpec) -> str:
    """The reference table's type label for a parameter of the v2 model."""
    if param.kind is not None:
        return param.kind
    if param.schema_.get("format") == "snowflake":
        return "snowflake"
    if "enum" in param.schema_:
        return "enum"
    return param.type or "?"


# name -> {parameter: (type, required)}, from the reference table.
REFERENCE: dict[str, dict[str, tuple[str, bool]]] = {
    "discord_get_current_user_application_entitlements": {
        "application_id": ("snowflake", True),
        "exclude_deleted": ("boolean", False),
        "exclude_ended": ("boolean", False),
        "limit": ("integer", False),
        # Added with the hosted catalog's parameters: Discord filters by SKUs and consumption,
        # the gateway by user, server and ID window.
        "sku_ids": ("string", False),
        "exclude_consumed": ("boolean", False),
        "user_id": ("snowflake", False),
        "guild_id": ("snowflake", False),
        "after": ("snowflake", False),
        "before": ("snowflake", False),
    },
    "discord_get_gateway": {},
    "discord_get_guild_template": {"template_code": ("template_code", True)},
    "discord_get_guild_widget": {"guild_id": ("snowflake", True)},
    "discord_get_guild_widget_png": {
        "guild_id": ("snowflake", True),
        "style": ("enum", False),
    },
    "discord_get_invite_deprecated": {
        "invite_code": ("invite_code", True),
        "with_counts": ("boolean", False),
        "with_expiration": ("boolean", False),
        "guild_scheduled_event_id": ("snowflake", False),  # the hosted catalog has it too
    },
    "discord_get_my_guild_member": {"guild_id": ("snowflake", True)},
    "discord_get_my_oauth2_authorization": {},
    "discord_get_my_user": {},
    "discord_get_openid_connect_userinfo": {},
    "discord_get_public_keys": {},
    "discord_get_user": {"user_id": ("user_ref", True)},
    "discord_list_my_guilds": {
        "after": ("snowflake", False),
        "before": ("snowflake", False),
        "limit": ("integer", False),
        "with_counts": ("boolean", False),
    },
    "discord_list_sticker_packs": {},
    "discord_resolve_invite": {
        "invite_code": ("invite_code", True),
        "with_counts": ("boolean", False),
        "with_expiration": ("boolean", False),
        "guild_scheduled_event_id": ("snowflake", False),
    },
    "discord_retrieve_user_connections": {},
}

# Ranges and enums the reference fixes.
REFERENCE_CONSTRAINTS = {
    ("discord_get_current_user_application_entitlements", "limit"): (1, 100, None),
    ("discord_list_my_guilds", "limit"): (1, 200, 200),
}
WIDGET_STYLES = ("shield", "banner1", "banner2", "banner3", "banner4")

GUILD = "613425648685547541"
APP = "1234567890123456789"
USER = "80351110224678912"
EVENT = "1100000000000000001"

# name -> (example input, expected request). Expected: method, path, query, auth, scopes,
# response kind, result hook, major parameters.
EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "discord_get_current_user_application_entitlements": (
        {"application_id": APP, "exclude_deleted": True, "exclude_ended": False, "limit": 5},
        {
            "path": f"/api/v10/users/@me/applications/{APP}/entitlements",
            "auth": "user",
            "result_hook": "filter_entitlements",
        },
    ),
    "discord_get_gateway": ({}, {"path": "/api/v10/gateway", "auth": "none"}),
    "discord_get_guild_template": (
        {"template_code": "https://discord.new/hgM48av5Q69A"},
        {"path": "/api/v10/guilds/templates/hgM48av5Q69A", "auth": "none"},
    ),
    "discord_get_guild_widget": (
        {"guild_id": GUILD},
        {
            "path": f"/api/v10/guilds/{GUILD}/widget.json",
            "auth": "none",
            "major": {"guild_id": GUILD},
        },
    ),
    "discord_get_guild_widget_png": (
        {"guild_id": GUILD, "style": "banner3"},
        {
            "path": f"/api/v10/guilds/{GUILD}/widget.png",
            "query": (("style", "banner3"),),
            "auth": "none",
            "response": "image",
            "media_type": "image/png",
            "major": {"guild_id": GUILD},
        },
    ),
    "discord_get_invite_deprecated": (
        {"invite_code": "discord.gg/hTKzmak?event=1", "with_counts": True, "with_expiration": True},
        {"path": "/api/v10/invites/hTKzmak", "query": (("with_counts", "true"),), "auth": "none"},
    ),
    "discord_get_my_guild_member": (
        {"guild_id": GUILD},
        {
            "path": f"/api/v10/users/@me/guilds/{GUILD}/member",
            "auth": "user",
            "scopes": ("guilds.members.read",),
            "major": {"guild_id": GUILD},
        },
    ),
    "discord_get_my_oauth2_authorization": ({}, {"path": "/api/v10/oauth2/@me", "auth": "user"}),
    "discord_get_my_user": (
        {},
        {"path": "/api/v10/users/@me", "auth": "user", "scopes": ("identify",)},
    ),
    "discord_get_openid_connect_userinfo": (
        {},
        {"path": "/api/v10/oauth2/userinfo", "auth": "user", "scopes": ("openid",)},
    ),
    "discord_get_public_keys": ({}, {"path": "/api/v10/oauth2/keys", "auth": "none"}),
    "discord_get_user": ({"user_id": USER}, {"path": f"/api/v10/users/{USER}", "auth": "bot"}),
    "discord_list_my_guilds": (
        {"after": "0", "before": GUILD, "limit": 50, "with_counts": False},
        {
            "path": "/api/v10/users/@me/guilds",
            "query": (
                ("before", GUILD),
                ("after", "0"),
                ("limit", "50"),
                ("with_counts", "false"),
            ),
            "auth": "user",
            "scopes": ("guilds",),
        },
    ),
    "discord_list_sticker_packs": ({}, {"path": "/api/v10/sticker-packs", "auth": "none"}),
    "discord_resolve_invite": (
        {
            "invite_code": "https://discord.com/invite/hTKzmak",
            "with_counts": False,
            "with_expiration": True,
            "guild_scheduled_event_id": EVENT,
        },
        {
            "path": "/api/v10/invites/hTKzmak",
            "query": (("with_counts", "false"), ("guild_scheduled_event_id", EVENT)),
            "auth": "none",
        },
    ),
    "discord_retrieve_user_connections": (
        {},
        {"path": "/api/v10/users/@me/connections", "auth": "user", "scopes": ("connections",)},
    ),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def all_tools() -> list[ToolSpec]:
    return [t for t in Catalog.load().tools() if t.name in REFERENCE]


def test_the_reference_tools_are_all_still_there(catalog: Catalog) -> None:
    assert set(REFERENCE) <= set(catalog.names())
    assert len(all_tools()) == 16
    assert len(catalog.names()) == 34


@pytest.mark.parametrize("tool", all_tools(), ids=lambda t: t.name)
class TestEveryTool:
    def test_parameters_match_the_reference_exactly(self, tool: ToolSpec) -> None:
        declared = {p.name: (semantic_type(p), p.required) for p in tool.params}
        assert declared == REFERENCE[tool.name]

    def test_reference_ranges_and_enums(self, tool: ToolSpec) -> None:
        for param in tool.params:
            key = (tool.name, param.name)
            if key in REFERENCE_CONSTRAINTS:
                low, high, default = REFERENCE_CONSTRAINTS[key]
                schema = param.schema_
                assert (schema.get("minimum"), schema.get("maximum"), param.default) == (
                    low,
                    high,
                    default,
                )
            if "enum" in param.schema_:
                assert tuple(param.schema_["enum"]) == WIDGET_STYLES

    def test_name_and_path_params(self, tool: ToolSpec) -> None:
        assert re.fullmatch(r"discord_[a-z0-9_]+", tool.name)
        placeholders = set(re.findall(r"\{(\w+)\}", tool.endpoint.path))
        path_params = {p.wire_name for p in tool.params if p.location == "path"}
        assert placeholders == path_params
        assert all(p.required for p in tool.params if p.location == "path")

    def test_description_is_written_for_an_agent(self, tool: ToolSpec) -> None:
        text = tool.description
        assert 150 <= len(text) <= 1024
        assert text[0].isupper()
        assert text.rstrip().endswith(".")
        for scope in tool.scopes:
            assert scope in text, f"description should name the scope {scope}"
        if tool.auth == "none":
            assert "No user authorization" in text
        for param in tool.params:
            assert len(param.description) >= 20

    def test_input_schema_is_valid_draft_2020_12(self, tool: ToolSpec) -> None:
        Draft202012Validator.check_schema(input_schema(tool))
        Draft202012Validator.check_schema(openai_tool(tool)["function"]["parameters"])

    def test_prepare_example(self, tool: ToolSpec, catalog: Catalog) -> None:
        example, expected = EXAMPLES[tool.name]
        prepared = catalog.prepare(tool.name, example, bot_token_available=True)
        assert isinstance(prepared, PreparedRequest)
        assert prepared.tool == tool.name
        assert prepared.method == "GET"
        assert prepared.path == expected["path"]
        assert prepared.query == expected.get("query", ())
        assert prepared.auth == expected["auth"]
        assert prepared.scopes == expected.get("scopes", ())
        assert prepared.response == expected.get("response", "json")
        assert prepared.media_type == expected.get("media_type")
        assert prepared.result_hook == expected.get("result_hook")
        assert dict(prepared.major_parameters) == expected.get("major", {})
        assert prepared.route.startswith("/api/v10/")
        # The example satisfies the exported schemas too.
        assert Draft202012Validator(input_schema(tool)).is_valid(example)
        nulls = {p.name: None for p in tool.params if p.name not in example}
        assert Draft202012Validator(openai_tool(tool)["function"]["parameters"]).is_valid(
            {**example, **nulls}
        )

    def test_unknown_field_is_refused(self, tool: ToolSpec, catalog: Catalog) -> None:
        example, _ = EXAMPLES[tool.name]
        with pytest.raises(ValidationError) as info:
            catalog.prepare(tool.name, {**example, "surprise": 1}, bot_token_available=True)
        assert set(info.value.fields) == {"surprise"}
        assert not Draft202012Validator(input_schema(tool)).is_valid({**example, "surprise": 1})

    def test_missing_required_fields_are_all_named(self, tool: ToolSpec) -> None:
        required = {p.name for p in tool.params if p.required}
        if not required:
            assert validate_input(tool, {}) == {}
            return
        with pytest.raises(ValidationError) as info:
            validate_input(tool, {})
        assert info.value.fields == dict.fromkeys(required, "is required")

    def test_sent_query_keys_are_declared_query_params(
        self, tool: ToolSpec, catalog: Catalog
    ) -> None:
        example, _ = EXAMPLES[tool.name]
        prepared = catalog.prepare(tool.name, example, bot_token_available=True)
        query_params = {p.name for p in tool.params if p.location == "query"}
        assert {k for k, _ in prepared.query} <= query_params
        for _, value in prepared.query:
            assert value not in ("True", "False")


def test_with_expiration_is_accepted_and_never_sent(catalog: Catalog) -> None:
    for name in ("discord_get_invite_deprecated", "discord_resolve_invite"):
        prepared = catalog.prepare(
            name, {"invite_code": "abc", "with_expiration": True}, bot_token_available=False
        )
        assert "with_expiration" not in prepared.target
        assert prepared.query == ()


def test_entitlement_filters_are_not_sent(catalog: Catalog) -> None:
    prepared = catalog.prepare(
        "discord_get_current_user_application_entitlements",
        {
            "application_id": APP,
            "exclude_deleted": True,
            "exclude_ended": True,
            "limit": 3,
            "user_id": USER,
            "guild_id": GUILD,
            "after": "1",
            "before": "9",
            "sku_ids": "1,2",
            "exclude_consumed": False,
        },
        bot_token_available=False,
    )
    assert prepared.query == (("sku_ids", "1,2"), ("exclude_consumed", "false"))
    assert prepared.arguments["limit"] == 3
    assert prepared.arguments["user_id"] == USER


def test_get_user_at_me_uses_the_user_token_without_a_bot(catalog: Catalog) -> None:
    prepared = catalog.prepare("discord_get_user", {"user_id": "@me"}, bot_token_available=False)
    assert (prepared.path, prepared.auth, prepared.scopes) == (
        "/api/v10/users/@me",
        "user",
        ("identify",),
    )


def test_get_user_by_id_without_a_bot_token_says_how_to_add_one(catalog: Catalog) -> None:
    with pytest.raises(BotTokenRequired) as info:
        catalog.prepare("discord_get_user", {"user_id": USER}, bot_token_available=False)
    message = info.value.message
    assert "only to bot tokens" in message
    assert "--bot-token" in message
    assert "PATCH /api/v1/connections/" in message
    assert '"@me"' in message
    assert info.value.code == "BOT_TOKEN_REQUIRED"
    assert info.value.details["tool_name"] == "discord_get_user"


def test_deprecated_tool_points_to_its_replacement(catalog: Catalog) -> None:
    tool = catalog.get("discord_get_invite_deprecated")
    assert tool.annotations.deprecated
    assert tool.annotations.replaced_by == "discord_resolve_invite"
    assert catalog.description(tool.name).startswith(
        "DEPRECATED: use discord_resolve_invite instead."
    )
    deprecated = [t.name for t in catalog.tools() if t.annotations.deprecated]
    assert deprecated == ["discord_get_invite_deprecated"]


def test_only_the_widget_png_is_an_image(catalog: Catalog) -> None:
    images = [t.name for t in catalog.tools() if t.output == "image"]
    assert images == ["discord_get_guild_widget_png"]


def test_every_reference_tool_is_a_read() -> None:
    for tool in all_tools():
        assert tool.annotations.read_only
        assert tool.annotations.idempotent
        assert not tool.annotations.destructive


def test_path_values_are_url_encoded(catalog: Catalog) -> None:
    # Codes can only contain [A-Za-z0-9-], so encoding is a no-op for valid input; the seam
    # still encodes, which a hand-built spec with a free string shows.
    tool = catalog.get("discord_get_guild_template")
    custom = tool.model_copy(update={"params": (tool.params[0].model_copy(update={"kind": None}),)})
    cat = Catalog(LoadedProvider(spec=catalog.provider, tools={custom.name: custom}, hooks=HOOKS))
    prepared = cat.prepare(custom.name, {"template_code": "a/../b?c#d"}, bot_token_available=False)
    assert prepared.path == "/api/v10/guilds/templates/a%2F..%2Fb%3Fc%23d"


def test_unknown_tool(catalog: Catalog) -> None:
    with pytest.raises(ToolNotFound):
        catalog.prepare("discord_delete_everything", {}, bot_token_available=True)


def test_strict_mode_nulls_become_omissions(catalog: Catalog) -> None:
    tool = catalog.get("discord_list_my_guilds")
    openai_args = {"after": None, "before": None, "limit": 10, "with_counts": None}
    prepared = catalog.prepare(tool.name, strip_nulls(tool, openai_args), bot_token_available=False)
    assert prepared.query == (("limit", "10"),)


def test_target_and_missing_scopes(catalog: Catalog) -> None:
    prepared = catalog.prepare(
        "discord_list_my_guilds", {"limit": 2, "with_counts": True}, bot_token_available=False
    )
    assert prepared.target == "/api/v10/users/@me/guilds?limit=2&with_counts=true"
    assert prepared.missing_scopes(["identify", "email"]) == ("guilds",)
    assert prepared.missing_scopes(["guilds"]) == ()
    bare = catalog.prepare("discord_get_gateway", {}, bot_token_available=False)
    assert bare.target == "/api/v10/gateway"
    assert bare.missing_scopes([]) == ()
