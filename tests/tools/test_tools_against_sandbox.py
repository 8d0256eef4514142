"""Every catalog tool, run through ``ToolRunner.execute`` against the sandbox over loopback.

Expected values come from the sandbox's fixtures (``GET /_sandbox/fixtures``), not from the code
under test, and the sandbox's request accounting shows which credential went where.
"""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenward.errors import BotTokenRequired
from tokenward.sandbox.state import token_label
from tokenward.server.container import Container
from tokenward.tools.runner import ToolResult

from .env import ADA, ALL_SCOPES, GRACE, NO_BOT, WITH_BOT, ToolEnv

DEFAULT_APP = "1300000000000000001"
HUB = "1200000000000000001"
CLUB = "1200000000000000002"
CREW = "1200000000000000003"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def run(
    container: Container,
    tool: str,
    tool_input: dict[str, Any] | None = None,
    *,
    connection: str = WITH_BOT,
    identifier: str = "ada",
) -> ToolResult:
    return await container.runner.execute(
        tool, tool_input or {}, connection_name=connection, identifier=identifier
    )


def by_route(env: ToolEnv, route: str) -> int:
    return int(env.stats()["requests"]["by_route"].get(route, 0))


def by_token(env: ToolEnv, token: str | None) -> int:
    key = token_label(token) if token else "anonymous"
    return int(env.stats()["requests"]["by_token"].get(key, 0))


async def access_token(container: Container, connection: str, identifier: str) -> str:
    record = await container.vault.get_connection_by_name(connection)
    account = await container.vault.find_account(record.id, identifier)
    assert account is not None
    assert account.access_token is not None
    return account.access_token.get_secret_value()


def fixture_user(env: ToolEnv, user_id: str) -> dict[str, Any]:
    return next(u for u in env.fixtures["users"] if u["id"] == user_id)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


# -- 1. discord_get_current_user_application_entitlements --------------------------------------


def _ada_entitlements(env: ToolEnv) -> list[dict[str, Any]]:
    """What the sandbox's user endpoint answers for ada: consumed ones are left out by Discord's
    own default (exclude_consumed=true); deleted and ended ones are still there."""
    return [
        e
        for e in env.fixtures["entitlements"]
        if e.get("user_id") == ADA and e["application_id"] == DEFAULT_APP and not e["consumed"]
    ]


def _ended(entitlement: dict[str, Any]) -> bool:
    ends = entitlement["ends_at"]
    return ends is not None and datetime.fromisoformat(ends) <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("tool_input", "keep"),
    [
        ({}, lambda e: True),
        ({"exclude_deleted": True}, lambda e: not e["deleted"]),
        ({"exclude_ended": True}, lambda e: not _ended(e)),
        (
            {"exclude_deleted": True, "exclude_ended": True},
            lambda e: not e["deleted"] and not _ended(e),
        ),
        ({"exclude_deleted": False, "exclude_ended": False}, lambda e: True),
    ],
    ids=["no-filter", "exclude-deleted", "exclude-ended", "both", "both-false"],
)
async def test_entitlements_are_filtered_by_the_gateway(
    tool_env: ToolEnv, container: Container, tool_input: dict[str, Any], keep: Any
) -> None:
    route = "GET /api/v10/users/@me/applications/{application_id}/entitlements"
    before = by_route(tool_env, route)
    result = await run(
        container,
        "discord_get_current_user_application_entitlements",
        {"application_id": DEFAULT_APP, **tool_input},
    )
    expected = [e["id"] for e in _ada_entitlements(tool_env) if keep(e)]
    assert [e["id"] for e in result.data] == expected
    assert by_route(tool_env, route) == before + 1


async def test_entitlements_fixture_covers_each_filter(tool_env: ToolEnv) -> None:
    # Guards the test above: the unfiltered list must hold a deleted and an ended entitlement,
    # or the filter cases would prove nothing.
    raw = _ada_entitlements(tool_env)
    assert any(e["deleted"] for e in raw)
    assert any(_ended(e) and not e["deleted"] for e in raw)
    assert len([e for e in raw if not e["deleted"] and not _ended(e)]) >= 2


async def test_entitlements_limit_applies_after_the_filters(
    tool_env: ToolEnv, container: Container
) -> None:
    kept = [e for e in _ada_entitlements(tool_env) if not e["deleted"] and not _ended(e)]
    result = await run(
        container,
        "discord_get_current_user_application_entitlements",
        {"application_id": DEFAULT_APP, "exclude_deleted": True, "exclude_ended": True, "limit": 1},
    )
    assert [e["id"] for e in result.data] == [kept[0]["id"]]
    everything = await run(
        container,
        "discord_get_current_user_application_entitlements",
        {"application_id": DEFAULT_APP, "limit": 2},
    )
    assert [e["id"] for e in everything.data] == [e["id"] for e in _ada_entitlements(tool_env)][:2]
    first = result.data[0]
    assert set(first) >= {"id", "sku_id", "application_id", "type", "deleted", "ends_at"}


# -- 2. discord_get_gateway --------------------------------------------------------------------


async def test_get_gateway_sends_the_bot_token_when_the_connection_has_one(
    tool_env: ToolEnv, container: Container
) -> None:
    bot = tool_env.apps[WITH_BOT]["bot_token"]
    with_bot_before, anonymous_before = by_token(tool_env, bot), by_token(tool_env, None)

    with_bot = await run(container, "discord_get_gateway", connection=WITH_BOT)
    assert by_token(tool_env, bot) == with_bot_before + 1

    without = await run(container, "discord_get_gateway", connection=NO_BOT)
    assert by_token(tool_env, None) == anonymous_before + 1

    assert with_bot.data == without.data == {"url": "wss://gateway.discord.gg"}
    assert with_bot.image is None
    assert with_bot.execution_id.startswith("exec_")


# -- 3. discord_get_guild_template -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("SbxHubTmpl26", "SbxHubTmpl26"),
        ("discord.new/SbxHubTmpl26", "SbxHubTmpl26"),
        ("https://discord.new/CrewStart01x", "CrewStart01x"),
        ("https://discord.com/template/CrewStart01x", "CrewStart01x"),
        ("https://www.discord.com/template/SbxHubTmpl26/?utm=x", "SbxHubTmpl26"),
    ],
)
async def test_guild_template_by_code_and_link(
    tool_env: ToolEnv, container: Container, code: str, expected: str
) -> None:
    result = await run(container, "discord_get_guild_template", {"template_code": code})
    fixture = next(t for t in tool_env.fixtures["templates"] if t["code"] == expected)
    data = result.data
    assert data["code"] == expected
    assert data["name"] == fixture["name"]
    assert data["usage_count"] == fixture["usage_count"]
    assert data["creator"]["id"] == fixture["creator_id"]
    assert data["source_guild_id"] == fixture["source_guild_id"]
    assert "serialized_source_guild" in data


# -- 4. discord_get_guild_widget ---------------------------------------------------------------


async def test_guild_widget_json(tool_env: ToolEnv, container: Container) -> None:
    guild = next(g for g in tool_env.fixtures["guilds"] if g["id"] == HUB)
    result = await run(container, "discord_get_guild_widget", {"guild_id": HUB})
    data = result.data
    assert data["id"] == HUB
    assert data["name"] == guild["name"] == "Sandbox Hub"
    assert data["instant_invite"] == f"https://discord.com/invite/{guild['widget_invite_code']}"
    voice = [c["id"] for c in guild["channels"] if c["type"] in (2, 13)]
    assert [c["id"] for c in data["channels"]] == voice
    assert len(data["members"]) == 4
    assert {m["username"] for m in data["members"]} >= {"ada", "grace"}
    assert data["presence_count"] == guild["approximate_presence_count"]


async def test_guild_widget_without_invite_channel(tool_env: ToolEnv, container: Container) -> None:
    result = await run(container, "discord_get_guild_widget", {"guild_id": CREW})
    assert result.data["name"] == "Compiler Crew"
    assert result.data["instant_invite"] is None


# -- 5. discord_get_guild_widget_png -----------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "size"),
    [(None, (118, 20)), ("shield", (118, 20)), ("banner2", (320, 76)), ("banner4", (320, 213))],
)
async def test_guild_widget_png_is_an_image_result(
    tool_env: ToolEnv, container: Container, style: str | None, size: tuple[int, int]
) -> None:
    tool_input: dict[str, Any] = {"guild_id": HUB}
    if style is not None:
        tool_input["style"] = style
    result = await run(container, "discord_get_guild_widget_png", tool_input)
    assert result.data is None
    assert result.image is not None
    assert result.image.media_type == "image/png"
    assert result.image.data.startswith(PNG_SIGNATURE)
    assert png_size(result.image.data) == size
    doc = result.data_json()
    assert doc["type"] == "image"
    assert doc["media_type"] == "image/png"
    assert base64.b64decode(doc["data"]) == result.image.data


# -- 6. discord_get_invite_deprecated ----------------------------------------------------------


async def test_get_invite_deprecated_works_and_is_marked(
    tool_env: ToolEnv, container: Container
) -> None:
    spec = container.catalog.get("discord_get_invite_deprecated")
    assert spec.annotations.deprecated is True
    assert spec.annotations.replaced_by == "discord_resolve_invite"
    assert container.catalog.description("discord_get_invite_deprecated").startswith(
        "DEPRECATED: use discord_resolve_invite"
    )
    assert container.catalog.get("discord_resolve_invite").annotations.deprecated is False

    result = await run(
        container,
        "discord_get_invite_deprecated",
        {
            "invite_code": "https://discord.gg/Hb7xQp2K",
            "with_counts": True,
            "with_expiration": True,
        },
    )
    guild = next(g for g in tool_env.fixtures["guilds"] if g["id"] == HUB)
    data = result.data
    assert data["code"] == "Hb7xQp2K"
    assert data["guild"]["id"] == HUB
    assert data["guild"]["name"] == guild["name"]
    assert data["channel"]["id"] == "1600000000000000101"
    assert data["inviter"]["id"] == ADA
    assert data["expires_at"] is None
    assert data["approximate_member_count"] == guild["approximate_member_count"]
    assert data["approximate_presence_count"] == guild["approximate_presence_count"]


# -- 7. discord_get_my_guild_member ------------------------------------------------------------


@pytest.mark.parametrize("guild_id", [HUB, CLUB, CREW])
async def test_my_guild_member(tool_env: ToolEnv, container: Container, guild_id: str) -> None:
    membership = next(
        m
        for m in tool_env.fixtures["memberships"]
        if m["user_id"] == ADA and m["guild_id"] == guild_id
    )
    result = await run(container, "discord_get_my_guild_member", {"guild_id": guild_id})
    data = result.data
    assert data["user"]["id"] == ADA
    assert data["nick"] == membership["nick"]
    assert data["roles"] == membership["roles"]
    assert data["joined_at"] == membership["joined_at"]
    assert data["premium_since"] == membership["premium_since"]


# -- 8. discord_get_my_oauth2_authorization ----------------------------------------------------


async def test_my_oauth2_authorization(tool_env: ToolEnv, container: Container) -> None:
    result = await run(container, "discord_get_my_oauth2_authorization")
    data = result.data
    assert data["application"]["id"] == tool_env.apps[WITH_BOT]["client_id"]
    assert sorted(data["scopes"]) == sorted(ALL_SCOPES.split())
    assert data["expires"]
    assert data["user"]["id"] == ADA


# -- 9. discord_get_my_user --------------------------------------------------------------------


async def test_my_user(tool_env: ToolEnv, container: Container) -> None:
    ada = fixture_user(tool_env, ADA)
    result = await run(container, "discord_get_my_user")
    data = result.data
    for key in ("id", "username", "global_name", "avatar", "locale", "mfa_enabled"):
        assert data[key] == ada[key], key
    assert data["email"] == ada["email"] == "ada@example.com"
    assert data["verified"] is True


async def test_my_user_without_email_scope_has_no_email(
    tool_env: ToolEnv, container: Container
) -> None:
    result = await run(
        container, "discord_get_my_user", connection="narrow", identifier="ada-narrow"
    )
    assert result.data["id"] == ADA
    assert "email" not in result.data


# -- 10. discord_get_openid_connect_userinfo ---------------------------------------------------


async def test_openid_userinfo(tool_env: ToolEnv, container: Container) -> None:
    ada = fixture_user(tool_env, ADA)
    result = await run(container, "discord_get_openid_connect_userinfo")
    data = result.data
    assert data["sub"] == ADA
    assert data["email"] == ada["email"]
    assert data["email_verified"] is True
    assert data["preferred_username"] == ada["username"]
    assert data["nickname"] == ada["global_name"]
    assert data["locale"] == ada["locale"]
    assert data["picture"].endswith(f"/avatars/{ADA}/{ada['avatar']}.png")


# -- 11. discord_get_public_keys ---------------------------------------------------------------


async def test_public_keys_are_the_sandbox_jwks(tool_env: ToolEnv, container: Container) -> None:
    jwks = httpx.get(f"{tool_env.sandbox_url}/api/oauth2/keys").raise_for_status().json()
    result = await run(container, "discord_get_public_keys")
    assert result.data == jwks
    assert len(result.data["keys"]) >= 1
    key = result.data["keys"][0]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["kid"]
    assert key["n"]
    assert key["e"]


# -- 12. discord_get_user ----------------------------------------------------------------------


async def test_get_user_me_uses_the_user_token(tool_env: ToolEnv, container: Container) -> None:
    token = await access_token(container, WITH_BOT, "ada")
    bot = tool_env.apps[WITH_BOT]["bot_token"]
    user_before, bot_before = by_token(tool_env, token), by_token(tool_env, bot)
    me_before = by_route(tool_env, "GET /api/v10/users/@me")

    result = await run(container, "discord_get_user", {"user_id": "@me"})

    assert result.data["id"] == ADA
    assert result.data["email"] == "ada@example.com"
    assert by_token(tool_env, token) == user_before + 1
    assert by_token(tool_env, bot) == bot_before
    assert by_route(tool_env, "GET /api/v10/users/@me") == me_before + 1


@pytest.mark.parametrize("connection", [WITH_BOT, NO_BOT])
async def test_get_user_me_works_without_a_bot_token(
    tool_env: ToolEnv, container: Container, connection: str
) -> None:
    result = await run(container, "discord_get_user", {"user_id": "@me"}, connection=connection)
    assert result.data["username"] == "ada"


async def test_get_user_by_id_uses_the_bot_token(tool_env: ToolEnv, container: Container) -> None:
    token = await access_token(container, WITH_BOT, "ada")
    bot = tool_env.apps[WITH_BOT]["bot_token"]
    user_before, bot_before = by_token(tool_env, token), by_token(tool_env, bot)
    route = "GET /api/v10/users/{user_id}"
    route_before = by_route(tool_env, route)

    result = await run(container, "discord_get_user", {"user_id": GRACE})

    grace = fixture_user(tool_env, GRACE)
    assert result.data["id"] == GRACE
    assert result.data["username"] == grace["username"]
    assert result.data["global_name"] == grace["global_name"]
    assert result.data["bot"] is False
    assert "email" not in result.data
    assert by_token(tool_env, bot) == bot_before + 1
    assert by_token(tool_env, token) == user_before
    assert by_route(tool_env, route) == route_before + 1


async def test_get_user_by_id_without_a_bot_token_sends_nothing(
    tool_env: ToolEnv, container: Container
) -> None:
    before = tool_env.total()
    with pytest.raises(BotTokenRequired) as caught:
        await run(container, "discord_get_user", {"user_id": GRACE}, connection=NO_BOT)
    error = caught.value
    assert error.code == "BOT_TOKEN_REQUIRED"
    assert "bot token" in error.message
    assert "--bot-token" in error.message  # how to add one
    assert '"@me"' in error.message  # and the alternative that needs none
    assert error.details["tool_name"] == "discord_get_user"
    assert tool_env.total() == before


# -- 13. discord_list_my_guilds ----------------------------------------------------------------


def _ada_guild_ids(env: ToolEnv) -> list[str]:
    return sorted(
        (m["guild_id"] for m in env.fixtures["memberships"] if m["user_id"] == ADA), key=int
    )


async def test_list_my_guilds(tool_env: ToolEnv, container: Container) -> None:
    result = await run(container, "discord_list_my_guilds")
    ids = _ada_guild_ids(tool_env)
    assert [g["id"] for g in result.data] == ids == [HUB, CLUB, CREW]
    names = {g["id"]: g["name"] for g in tool_env.fixtures["guilds"]}
    owners = {g["id"]: g["owner_id"] for g in tool_env.fixtures["guilds"]}
    for guild in result.data:
        assert guild["name"] == names[guild["id"]]
        assert guild["owner"] is (owners[guild["id"]] == ADA)
        assert isinstance(guild["permissions"], str)
        assert "approximate_member_count" not in guild


@pytest.mark.parametrize(
    ("tool_input", "expected"),
    [
        ({"limit": 1}, [HUB]),
        ({"after": HUB}, [CLUB, CREW]),
        ({"before": CREW}, [HUB, CLUB]),
        ({"before": CREW, "limit": 1}, [CLUB]),
        ({"after": HUB, "limit": 1}, [CLUB]),
        ({"limit": 200}, [HUB, CLUB, CREW]),
    ],
)
async def test_list_my_guilds_paging(
    tool_env: ToolEnv, container: Container, tool_input: dict[str, Any], expected: list[str]
) -> None:
    result = await run(container, "discord_list_my_guilds", tool_input)
    assert [g["id"] for g in result.data] == expected


async def test_list_my_guilds_with_counts(tool_env: ToolEnv, container: Container) -> None:
    result = await run(container, "discord_list_my_guilds", {"with_counts": True})
    counts = {g["id"]: g["approximate_member_count"] for g in tool_env.fixtures["guilds"]}
    assert {g["id"]: g["approximate_member_count"] for g in result.data} == {
        i: counts[i] for i in (HUB, CLUB, CREW)
    }


# -- 14. discord_list_sticker_packs ------------------------------------------------------------


async def test_list_sticker_packs(tool_env: ToolEnv, container: Container) -> None:
    result = await run(container, "discord_list_sticker_packs", connection=NO_BOT)
    packs = result.data["sticker_packs"]
    expected = tool_env.fixtures["sticker_packs"]
    assert [(p["id"], p["name"], p["sku_id"]) for p in packs] == [
        (p["id"], p["name"], p["sku_id"]) for p in expected
    ]
    assert len(packs) == 3
    assert all(p["stickers"] for p in packs)


# -- 15. discord_resolve_invite ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("invite", "code"),
    [
        ("Hb7xQp2K", "Hb7xQp2K"),
        ("discord.gg/Hb7xQp2K", "Hb7xQp2K"),
        ("https://discord.gg/Hb7xQp2K", "Hb7xQp2K"),
        ("https://discord.com/invite/Hb7xQp2K?x=1", "Hb7xQp2K"),
        ("http://www.discord.com/invite/Tmp24hZz/", "Tmp24hZz"),
        ("https://discordapp.com/invite/Tmp24hZz#top", "Tmp24hZz"),
        ("sandbox-hub", "sandbox-hub"),
    ],
)
async def test_resolve_invite_by_code_and_link(
    tool_env: ToolEnv, container: Container, invite: str, code: str
) -> None:
    fixture = next(i for i in tool_env.fixtures["invites"] if i["code"] == code)
    result = await run(container, "discord_resolve_invite", {"invite_code": invite})
    data = result.data
    assert data["code"] == code
    assert data["guild"]["id"] == fixture["guild_id"]
    assert data["channel"]["id"] == fixture["channel_id"]
    assert data["expires_at"] == fixture["expires_at"]
    assert "approximate_member_count" not in data


async def test_resolve_invite_with_counts_and_event(
    tool_env: ToolEnv, container: Container
) -> None:
    fixture = next(i for i in tool_env.fixtures["invites"] if i["code"] == "EvNt2030")
    guild = next(g for g in tool_env.fixtures["guilds"] if g["id"] == fixture["guild_id"])
    result = await run(
        container,
        "discord_resolve_invite",
        {
            "invite_code": "https://discord.gg/EvNt2030",
            "with_counts": True,
            "with_expiration": False,
            "guild_scheduled_event_id": fixture["guild_scheduled_event_id"],
        },
    )
    data = result.data
    assert data["guild"]["name"] == guild["name"]
    assert data["approximate_member_count"] == guild["approximate_member_count"]
    assert data["approximate_presence_count"] == guild["approximate_presence_count"]
    assert data["guild_scheduled_event"]["id"] == fixture["guild_scheduled_event_id"]
    assert data["guild_scheduled_event"]["name"] == "Compiler Night"


# -- 16. discord_retrieve_user_connections -----------------------------------------------------


async def test_retrieve_user_connections(tool_env: ToolEnv, container: Container) -> None:
    result = await run(container, "discord_retrieve_user_connections")
    expected = tool_env.fixtures["connections"][ADA]
    assert result.data == expected
    assert {c["type"] for c in result.data} == {"twitch", "github", "steam"}


# -- the catalog as a whole --------------------------------------------------------------------


def test_this_module_covers_every_tool() -> None:
    """Every read tool the discord connector had before issue 10 (the tools it added are run
    against the sandbox by their own tests)."""
    from tokenward.tools.catalog import Catalog

    names = set(Catalog.load("discord").names()) & set(READS_BEFORE_ISSUE_10)
    assert len(names) == 16
    source = Path(__file__).read_text(encoding="utf-8")
    untested = sorted(n for n in names if f'"{n}"' not in source)
    assert untested == []


READS_BEFORE_ISSUE_10 = (
    "discord_get_current_user_application_entitlements",
    "discord_get_gateway",
    "discord_get_guild_template",
    "discord_get_guild_widget",
    "discord_get_guild_widget_png",
    "discord_get_invite_deprecated",
    "discord_get_my_guild_member",
    "discord_get_my_oauth2_authorization",
    "discord_get_my_user",
    "discord_get_openid_connect_userinfo",
    "discord_get_public_keys",
    "discord_get_user",
    "discord_list_my_guilds",
    "discord_list_sticker_packs",
    "discord_resolve_invite",
    "discord_retrieve_user_connections",
)
