"""Bad tool inputs are refused before anything is sent: a VALIDATION_ERROR naming each bad field
with its reason, and the sandbox's request count does not move."""

from __future__ import annotations

from typing import Any

import pytest

from tokenward.errors import ValidationError
from tokenward.server.container import Container
from tokenward.tools.catalog import Catalog

from .env import WITH_BOT, ToolEnv

HUB = "1200000000000000001"
APP = "1300000000000000001"
TOO_BIG = str(2**64)  # one more than the largest snowflake
TOOLS = Catalog.load("discord").names()

# (tool, input, the fields the error must name)
CASES: list[tuple[str, Any, set[str]]] = [
    # 1
    ("discord_get_current_user_application_entitlements", {}, {"application_id"}),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": 123},
        {"application_id"},
    ),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": "abc"},
        {"application_id"},
    ),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": TOO_BIG},
        {"application_id"},
    ),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": None},
        {"application_id"},
    ),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": APP, "limit": 0},
        {"limit"},
    ),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": APP, "limit": 101},
        {"limit"},
    ),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": APP, "limit": "5"},
        {"limit"},
    ),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": APP, "exclude_deleted": "true"},
        {"exclude_deleted"},
    ),
    (
        "discord_get_current_user_application_entitlements",
        {"application_id": "x", "limit": 500, "exclude_ended": 1, "sku_ids": ["1"]},
        {"application_id", "limit", "exclude_ended", "sku_ids"},
    ),
    # 2
    ("discord_get_gateway", {"encoding": "json"}, {"encoding"}),
    # 3
    ("discord_get_guild_template", {}, {"template_code"}),
    ("discord_get_guild_template", {"template_code": "a"}, {"template_code"}),
    ("discord_get_guild_template", {"template_code": "x" * 33}, {"template_code"}),
    (
        "discord_get_guild_template",
        {"template_code": "https://evil.example/template/SbxHubTmpl26"},
        {"template_code"},
    ),
    ("discord_get_guild_template", {"template_code": "SbxHub/../../users/@me"}, {"template_code"}),
    (
        "discord_get_guild_template",
        {"template_code": "https://discord.gg/SbxHubTmpl26"},
        {"template_code"},
    ),
    ("discord_get_guild_template", {"template_code": 12345}, {"template_code"}),
    # 4
    ("discord_get_guild_widget", {}, {"guild_id"}),
    ("discord_get_guild_widget", {"guild_id": "-1"}, {"guild_id"}),
    ("discord_get_guild_widget", {"guild_id": ""}, {"guild_id"}),
    ("discord_get_guild_widget", {"guild_id": int(HUB)}, {"guild_id"}),
    ("discord_get_guild_widget", {"guild_id": "1200000000000000001/../../x"}, {"guild_id"}),
    ("discord_get_guild_widget", {"guild_id": HUB, "style": "shield"}, {"style"}),
    # 5
    ("discord_get_guild_widget_png", {"guild_id": HUB, "style": "banner5"}, {"style"}),
    ("discord_get_guild_widget_png", {"guild_id": HUB, "style": "Shield"}, {"style"}),
    ("discord_get_guild_widget_png", {"guild_id": HUB, "style": None}, {"style"}),
    ("discord_get_guild_widget_png", {"style": 3}, {"guild_id", "style"}),
    # 6
    ("discord_get_invite_deprecated", {}, {"invite_code"}),
    ("discord_get_invite_deprecated", {"invite_code": "discord.gg/"}, {"invite_code"}),
    ("discord_get_invite_deprecated", {"invite_code": "has space"}, {"invite_code"}),
    (
        "discord_get_invite_deprecated",
        {"invite_code": "https://discord.gg/abc/def"},
        {"invite_code"},
    ),
    (
        "discord_get_invite_deprecated",
        {"invite_code": "Hb7xQp2K", "with_counts": "yes"},
        {"with_counts"},
    ),
    (
        "discord_get_invite_deprecated",
        {"invite_code": "Hb7xQp2K", "with_expiration": 1},
        {"with_expiration"},
    ),
    # 7
    ("discord_get_my_guild_member", {}, {"guild_id"}),
    ("discord_get_my_guild_member", {"guild_id": "12ab"}, {"guild_id"}),
    ("discord_get_my_guild_member", {"guild_id": TOO_BIG}, {"guild_id"}),
    # 8-11
    ("discord_get_my_oauth2_authorization", {"scope": "identify"}, {"scope"}),
    ("discord_get_my_user", {"user_id": "@me"}, {"user_id"}),
    ("discord_get_openid_connect_userinfo", {"claims": ["email"]}, {"claims"}),
    ("discord_get_public_keys", {"kid": "x"}, {"kid"}),
    # 12
    ("discord_get_user", {}, {"user_id"}),
    ("discord_get_user", {"user_id": "me"}, {"user_id"}),
    ("discord_get_user", {"user_id": "@ME"}, {"user_id"}),
    ("discord_get_user", {"user_id": ""}, {"user_id"}),
    ("discord_get_user", {"user_id": 1100000000000000002}, {"user_id"}),
    ("discord_get_user", {"user_id": "@me/../../guilds"}, {"user_id"}),
    # 13
    ("discord_list_my_guilds", {"limit": 0}, {"limit"}),
    ("discord_list_my_guilds", {"limit": 201}, {"limit"}),
    ("discord_list_my_guilds", {"limit": 2.5}, {"limit"}),
    ("discord_list_my_guilds", {"limit": True}, {"limit"}),
    ("discord_list_my_guilds", {"after": "abc"}, {"after"}),
    ("discord_list_my_guilds", {"before": "1" * 21}, {"before"}),
    ("discord_list_my_guilds", {"with_counts": "1"}, {"with_counts"}),
    (
        "discord_list_my_guilds",
        {"after": 5, "before": [], "limit": -3, "page": 2},
        {"after", "before", "limit", "page"},
    ),
    # 14
    ("discord_list_sticker_packs", {"limit": 1}, {"limit"}),
    # 15
    ("discord_resolve_invite", {}, {"invite_code"}),
    ("discord_resolve_invite", {"invite_code": "x"}, {"invite_code"}),
    ("discord_resolve_invite", {"invite_code": "a" * 33}, {"invite_code"}),
    (
        "discord_resolve_invite",
        {"invite_code": "https://discord.com/invites/Hb7xQp2K"},
        {"invite_code"},
    ),
    ("discord_resolve_invite", {"invite_code": "javascript:alert(1)"}, {"invite_code"}),
    (
        "discord_resolve_invite",
        {"invite_code": "https://evil.example/invite/Hb7xQp2K"},
        {"invite_code"},
    ),
    (
        "discord_resolve_invite",
        {"invite_code": "Hb7xQp2K", "guild_scheduled_event_id": "x"},
        {"guild_scheduled_event_id"},
    ),
    ("discord_resolve_invite", {"invite_code": "Hb7xQp2K", "with_counts": None}, {"with_counts"}),
    # 16
    ("discord_retrieve_user_connections", {"type": "github"}, {"type"}),
]


def _case_id(case: tuple[str, Any, set[str]]) -> str:
    tool, _, fields = case
    return f"{tool.removeprefix('discord_')}:{'+'.join(sorted(fields))}"


def test_every_tool_has_bad_input_cases() -> None:
    """Every read tool the discord connector had before issue 10 (the catalog's own tests cover
    the bad inputs of every tool, tests/specs and tests/unit/test_validation.py)."""
    from .test_tools_against_sandbox import READS_BEFORE_ISSUE_10

    assert sorted({tool for tool, _, _ in CASES}) == sorted(READS_BEFORE_ISSUE_10)
    assert set(READS_BEFORE_ISSUE_10) <= set(TOOLS)


@pytest.mark.parametrize(("tool", "tool_input", "fields"), CASES, ids=[_case_id(c) for c in CASES])
async def test_bad_input_is_refused_and_sends_nothing(
    tool_env: ToolEnv, container: Container, tool: str, tool_input: Any, fields: set[str]
) -> None:
    before = tool_env.total()
    with pytest.raises(ValidationError) as caught:
        await container.runner.execute(tool, tool_input, connection_name=WITH_BOT, identifier="ada")
    error = caught.value
    assert tool_env.total() == before
    assert error.code == "VALIDATION_ERROR"
    assert error.status == 400
    assert set(error.fields) == fields
    assert error.details["fields"] == error.fields
    for name, reason in error.fields.items():
        assert reason.strip(), name
        assert name in error.message
        assert reason in error.message


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize(
    "tool_input", [None, [], "guild_id=1", 7], ids=["null", "array", "string", "number"]
)
async def test_input_that_is_not_an_object_is_refused(
    tool_env: ToolEnv, container: Container, tool: str, tool_input: Any
) -> None:
    before = tool_env.total()
    with pytest.raises(ValidationError) as caught:
        await container.runner.execute(tool, tool_input, connection_name=WITH_BOT, identifier="ada")
    assert set(caught.value.fields) == {"tool_input"}
    assert "JSON object" in caught.value.fields["tool_input"]
    assert tool_env.total() == before


@pytest.mark.parametrize("tool", TOOLS)
async def test_an_unknown_field_is_refused_on_every_tool(
    tool_env: ToolEnv, container: Container, tool: str
) -> None:
    before = tool_env.total()
    with pytest.raises(ValidationError) as caught:
        await container.runner.execute(
            tool, {"surprise": True}, connection_name=WITH_BOT, identifier="ada"
        )
    fields = caught.value.fields
    assert "surprise" in fields
    assert "unknown parameter" in fields["surprise"]
    required = {p.name for p in container.catalog.get(tool).params if p.required}
    assert set(fields) == {"surprise"} | required
    assert tool_env.total() == before


async def test_a_refused_input_on_an_unlinked_identifier_still_names_the_field(
    tool_env: ToolEnv, container: Container
) -> None:
    # Input is checked before the account is looked up, so the caller learns about both
    # problems in the right order and nothing is sent either way.
    before = tool_env.total()
    with pytest.raises(ValidationError) as caught:
        await container.runner.execute(
            "discord_list_my_guilds", {"limit": 0}, connection_name=WITH_BOT, identifier="nobody"
        )
    assert set(caught.value.fields) == {"limit"}
    assert tool_env.total() == before
