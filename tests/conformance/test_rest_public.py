"""REST endpoints that need no token (discord-api.md §0, §2.1–2.5, §2.10, §4).

Ids and codes come from ``GET /_sandbox/fixtures``; expected shapes come from the reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from .helpers import ADA, bearer, bot, bot_token, issue_token


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_url, verify=False) as c:
        yield c


@pytest.fixture
def doc(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/_sandbox/fixtures")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def assert_error(
    response: httpx.Response, status: int, code: int, message: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str)
    if message is not None:
        assert body["message"] == message
    return body


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _is_past(iso: str | None) -> bool:
    return iso is not None and datetime.fromisoformat(iso).timestamp() <= _now()


# -- fixtures document --------------------------------------------------------------------------


def test_fixtures_document_lists_every_kind_of_fake_object(doc: dict[str, Any]) -> None:
    for key in (
        "users",
        "guilds",
        "invites",
        "templates",
        "sticker_packs",
        "connections",
        "entitlements",
    ):
        assert doc[key], key
    assert len(doc["guilds"]) >= 4
    widget_states = {guild["widget_enabled"] for guild in doc["guilds"]}
    assert widget_states == {True, False}
    # The third fake user is in no guild.
    member_of = {m["user_id"] for m in doc["memberships"]}
    assert doc["users"][2]["id"] not in member_of
    assert all(len(t["code"]) == 12 and t["code"].isalnum() for t in doc["templates"])


# -- versions and generic errors ----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v10", "/api/v9", "/api"])
def test_gateway_answers_under_every_prefix(client: httpx.Client, prefix: str) -> None:
    response = client.get(f"{prefix}/gateway")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"url": "wss://gateway.discord.gg"}


def test_gateway_accepts_a_bot_token_and_a_bearer_token(
    client: httpx.Client, sandbox_url: str
) -> None:
    assert client.get("/api/v10/gateway", headers=bot(bot_token(sandbox_url))).status_code == 200
    token = issue_token(sandbox_url, ADA, ["identify"])
    assert client.get("/api/v10/gateway", headers=bearer(token)).status_code == 200


def test_unknown_route_is_a_generic_404(client: httpx.Client) -> None:
    assert_error(client.get("/api/v10/no/such/route"), 404, 0, "404: Not Found")


def test_wrong_method_is_405(client: httpx.Client) -> None:
    response = client.post("/api/v10/gateway", json={})
    assert response.status_code == 405
    assert response.json()["code"] == 0


def test_a_garbage_token_is_refused_even_where_none_is_needed(client: httpx.Client) -> None:
    response = client.get("/api/v10/gateway", headers=bot("not-a-real-token"))
    assert_error(response, 401, 0, "401: Unauthorized")


# -- guild templates ------------------------------------------------------------------------------


def test_guild_template_shape(client: httpx.Client, doc: dict[str, Any]) -> None:
    code = doc["templates"][0]["code"]
    body = client.get(f"/api/v10/guilds/templates/{code}").json()
    for key in (
        "code", "name", "description", "usage_count", "creator_id", "creator", "created_at",
        "updated_at", "source_guild_id", "serialized_source_guild", "is_dirty",
    ):  # fmt: skip
        assert key in body, key
    assert body["code"] == code
    assert body["creator"]["id"] == body["creator_id"]
    datetime.fromisoformat(body["created_at"])
    datetime.fromisoformat(body["updated_at"])
    # Inside the snapshot, ids are small integer placeholders, not snowflakes.
    snapshot = body["serialized_source_guild"]
    assert snapshot["name"]
    ids = [item["id"] for item in snapshot["roles"] + snapshot["channels"]]
    assert ids
    assert all(isinstance(i, int) and i < 1000 for i in ids)


def test_unknown_guild_template_is_10057(client: httpx.Client) -> None:
    response = client.get("/api/v10/guilds/templates/NoSuchTmpl99")
    assert_error(response, 404, 10057, "Unknown Guild Template")


# -- guild widget -------------------------------------------------------------------------------


def _guild(doc: dict[str, Any], widget: bool, with_invite: bool | None = None) -> dict[str, Any]:
    for guild in doc["guilds"]:
        if guild["widget_enabled"] != widget:
            continue
        if with_invite is not None and bool(guild["widget_invite_code"]) != with_invite:
            continue
        return dict(guild)
    raise AssertionError("no such fixture guild")


def test_widget_json_shape(client: httpx.Client, doc: dict[str, Any]) -> None:
    guild = _guild(doc, widget=True, with_invite=True)
    body = client.get(f"/api/v10/guilds/{guild['id']}/widget.json").json()
    assert set(body) >= {"id", "name", "instant_invite", "channels", "members", "presence_count"}
    assert body["id"] == guild["id"]
    assert body["instant_invite"].startswith("https://discord.com/invite/")
    assert body["channels"]
    assert all(set(c) == {"id", "name", "position"} for c in body["channels"])
    assert 0 < len(body["members"]) <= 100
    for member in body["members"]:
        assert {"id", "username", "discriminator", "avatar", "status", "avatar_url"} <= set(member)
        assert member["avatar"] is None
    assert isinstance(body["presence_count"], int)


def test_widget_json_without_invite_channel_has_null_instant_invite(
    client: httpx.Client, doc: dict[str, Any]
) -> None:
    guild = _guild(doc, widget=True, with_invite=False)
    assert client.get(f"/api/v10/guilds/{guild['id']}/widget.json").json()["instant_invite"] is None


def test_disabled_widget_is_403_50004(client: httpx.Client, doc: dict[str, Any]) -> None:
    guild = _guild(doc, widget=False)
    assert_error(client.get(f"/api/v10/guilds/{guild['id']}/widget.json"), 403, 50004)


def test_widget_of_unknown_guild_is_10004(client: httpx.Client) -> None:
    response = client.get("/api/v10/guilds/1299999999999999999/widget.json")
    assert_error(response, 404, 10004, "Unknown Guild")


def test_non_snowflake_guild_id_is_a_form_error(client: httpx.Client) -> None:
    body = assert_error(client.get("/api/v10/guilds/abc/widget.json"), 400, 50035)
    assert body["errors"]["guild_id"]["_errors"][0]["code"]


# -- invites ------------------------------------------------------------------------------------


def _invite(doc: dict[str, Any], **want: Any) -> dict[str, Any]:
    for invite in doc["invites"]:
        if (
            want.get("event") is not None
            and bool(invite["guild_scheduled_event_id"]) != want["event"]
        ):
            continue
        expires = invite["expires_at"]
        kind = "none" if expires is None else ("past" if _is_past(expires) else "future")
        if want.get("expiry") not in (None, kind):
            continue
        return dict(invite)
    raise AssertionError(f"no fixture invite like {want}")


def test_permanent_invite_shape(client: httpx.Client, doc: dict[str, Any]) -> None:
    invite = _invite(doc, expiry="none", event=False)
    body = client.get(f"/api/v10/invites/{invite['code']}").json()
    assert body["code"] == invite["code"]
    assert body["type"] == 0
    assert "expires_at" in body
    assert body["expires_at"] is None
    assert body["guild_id"] == invite["guild_id"]
    assert set(body["guild"]) >= {
        "id", "name", "splash", "banner", "description", "icon", "features",
        "verification_level", "vanity_url_code", "nsfw_level", "nsfw",
        "premium_subscription_count",
    }  # fmt: skip
    assert set(body["channel"]) == {"id", "type", "name"}
    assert "approximate_member_count" not in body
    assert "guild_scheduled_event" not in body


def test_expiring_invite_always_carries_expires_at(
    client: httpx.Client, doc: dict[str, Any]
) -> None:
    invite = _invite(doc, expiry="future")
    body = client.get(f"/api/v10/invites/{invite['code']}").json()
    assert datetime.fromisoformat(body["expires_at"]).timestamp() > _now()
    # with_expiration no longer exists: it changes nothing.
    again = client.get(f"/api/v10/invites/{invite['code']}", params={"with_expiration": "false"})
    assert again.json() == body


def test_with_counts_adds_approximate_counts(client: httpx.Client, doc: dict[str, Any]) -> None:
    invite = _invite(doc, expiry="none")
    body = client.get(f"/api/v10/invites/{invite['code']}", params={"with_counts": "true"}).json()
    assert isinstance(body["approximate_member_count"], int)
    assert isinstance(body["approximate_presence_count"], int)
    assert body["approximate_presence_count"] <= body["approximate_member_count"]


def test_guild_scheduled_event_id_adds_the_event(client: httpx.Client, doc: dict[str, Any]) -> None:
    invite = _invite(doc, event=True)
    event_id = invite["guild_scheduled_event_id"]
    body = client.get(
        f"/api/v10/invites/{invite['code']}", params={"guild_scheduled_event_id": event_id}
    ).json()
    assert body["guild_scheduled_event"]["id"] == event_id
    assert body["guild_scheduled_event"]["guild_id"] == invite["guild_id"]


def test_expired_invite_is_unknown(client: httpx.Client, doc: dict[str, Any]) -> None:
    invite = _invite(doc, expiry="past")
    assert_error(client.get(f"/api/v10/invites/{invite['code']}"), 404, 10006, "Unknown Invite")


def test_unknown_invite_is_10006(client: httpx.Client) -> None:
    assert_error(client.get("/api/v10/invites/zzNoSuch1"), 404, 10006, "Unknown Invite")


# -- sticker packs ------------------------------------------------------------------------------


def test_sticker_packs_shape(client: httpx.Client) -> None:
    body = client.get("/api/v10/sticker-packs").json()
    packs = body["sticker_packs"]
    assert packs
    for pack in packs:
        assert {"id", "sku_id", "name", "description", "stickers"} <= set(pack)
        for sticker in pack["stickers"]:
            assert sticker["pack_id"] == pack["id"]
    assert any(pack["stickers"] for pack in packs)
