"""REST endpoints that act for a user or a bot (discord-api.md §2.6–2.9, §2.11, §2.12, §4).

User tokens come from the real OAuth2 flow (``helpers.issue_token`` with the sandbox's URL).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from .helpers import (
    ADA,
    CATALOG_SCOPES,
    DEFAULT_CLIENT_ID,
    GRACE,
    LINUS,
    bearer,
    bot,
    bot_token,
    issue_token,
)

ME = "/api/v10/users/@me"
MY_ENTITLEMENTS = f"/api/v10/users/@me/applications/{DEFAULT_CLIENT_ID}/entitlements"
APP_ENTITLEMENTS = f"/api/v10/applications/{DEFAULT_CLIENT_ID}/entitlements"
SANDBOX_HUB = "1200000000000000001"
QUIET_CORNER = "1200000000000000004"


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_url, verify=False) as c:
        yield c


@pytest.fixture
def doc(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/_sandbox/fixtures").json()
    return body


def assert_error(
    response: httpx.Response, status: int, code: int, message: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    if message is not None:
        assert body["message"] == message
    return body


def _past(iso: str | None) -> bool:
    return iso is not None and datetime.fromisoformat(iso) <= datetime.now(UTC)


# -- scope enforcement and bad tokens -----------------------------------------------------------

SCOPED_ROUTES = [
    (ME, "identify"),
    ("/api/v10/users/@me/guilds", "guilds"),
    (f"/api/v10/users/@me/guilds/{SANDBOX_HUB}/member", "guilds.members.read"),
    ("/api/v10/users/@me/connections", "connections"),
    ("/api/v10/oauth2/userinfo", "openid"),
]


@pytest.mark.parametrize(("path", "scope"), SCOPED_ROUTES)
def test_missing_scope_is_403_50026(
    client: httpx.Client, sandbox_url: str, path: str, scope: str
) -> None:
    others = [s for s in CATALOG_SCOPES if s != scope]
    token = issue_token(sandbox_url, ADA, others)
    response = client.get(path, headers=bearer(token))
    assert_error(response, 403, 50026, "Missing required OAuth2 scope")
    # ... and with the scope the same token shape works.
    assert (
        client.get(path, headers=bearer(issue_token(sandbox_url, ADA, [scope]))).status_code == 200
    )


USER_ROUTES = [path for path, _ in SCOPED_ROUTES] + ["/api/v10/oauth2/@me", MY_ENTITLEMENTS]


@pytest.mark.parametrize("path", USER_ROUTES)
def test_bad_or_missing_token_is_401(client: httpx.Client, path: str) -> None:
    for headers in ({}, bearer("not-a-token"), {"Authorization": "garbage"}):
        assert_error(client.get(path, headers=headers), 401, 0, "401: Unauthorized")


def test_expired_and_revoked_tokens_are_401(client: httpx.Client, sandbox_url: str) -> None:
    expired = issue_token(sandbox_url, ADA, ["identify"])
    assert client.get(ME, headers=bearer(expired)).status_code == 200
    client.post("/_sandbox/tokens/expire", json={}).raise_for_status()
    assert_error(client.get(ME, headers=bearer(expired)), 401, 0)

    revoked = issue_token(sandbox_url, GRACE, ["identify"])
    apps = client.get("/_sandbox/applications").json()
    app = next(a for a in apps if a["client_id"] == DEFAULT_CLIENT_ID)
    client.post(
        "/api/oauth2/token/revoke",
        data={"token": revoked},
        auth=(app["client_id"], app["client_secret"]),
    ).raise_for_status()
    assert_error(client.get(ME, headers=bearer(revoked)), 401, 0)


# -- /users/@me and /users/{id} -----------------------------------------------------------------


def test_users_me_with_identify_has_no_email(client: httpx.Client, sandbox_url: str) -> None:
    body = client.get(ME, headers=bearer(issue_token(sandbox_url, ADA, ["identify"]))).json()
    assert body["id"] == ADA
    for key in ("username", "discriminator", "global_name", "avatar"):
        assert key in body
    assert "email" not in body
    assert "verified" not in body


def test_users_me_with_email_scope_adds_email_and_verified(
    client: httpx.Client, sandbox_url: str
) -> None:
    token = issue_token(sandbox_url, GRACE, ["identify", "email"])
    body = client.get(ME, headers=bearer(token)).json()
    assert body["id"] == GRACE
    assert "@" in body["email"]
    assert isinstance(body["verified"], bool)


def test_users_me_with_bot_token_is_the_bot(client: httpx.Client, sandbox_url: str) -> None:
    body = client.get(ME, headers=bot(bot_token(sandbox_url))).json()
    assert body["bot"] is True
    assert body["id"] not in (ADA, GRACE, LINUS)


def test_get_user_is_bot_only(client: httpx.Client, sandbox_url: str) -> None:
    path = f"/api/v10/users/{GRACE}"
    token = issue_token(sandbox_url, ADA, CATALOG_SCOPES)
    assert_error(client.get(path, headers=bearer(token)), 401, 0)
    assert_error(client.get(path), 401, 0)
    body = client.get(path, headers=bot(bot_token(sandbox_url))).json()
    assert body["id"] == GRACE
    assert body["username"]
    assert "email" not in body


def test_get_unknown_user_is_10013(client: httpx.Client, sandbox_url: str) -> None:
    response = client.get("/api/v10/users/1199999999999999999", headers=bot(bot_token(sandbox_url)))
    assert_error(response, 404, 10013, "Unknown User")


# -- /oauth2/@me and /oauth2/userinfo -----------------------------------------------------------


def test_oauth2_me_without_identify_has_no_user(client: httpx.Client, sandbox_url: str) -> None:
    token = issue_token(sandbox_url, ADA, ["guilds"])
    body = client.get("/api/v10/oauth2/@me", headers=bearer(token)).json()
    assert body["application"]["id"] == DEFAULT_CLIENT_ID
    assert {
        "id",
        "name",
        "icon",
        "description",
        "bot_public",
        "bot_require_code_grant",
        "verify_key",
        "flags",
    } <= set(body["application"])
    assert body["scopes"] == ["guilds"]
    assert datetime.fromisoformat(body["expires"]) > datetime.now(UTC)
    assert "user" not in body


def test_oauth2_me_with_identify_has_the_user(client: httpx.Client, sandbox_url: str) -> None:
    token = issue_token(sandbox_url, GRACE, ["identify", "guilds"])
    body = client.get("/api/v10/oauth2/@me", headers=bearer(token)).json()
    assert sorted(body["scopes"]) == ["guilds", "identify"]
    assert body["user"]["id"] == GRACE


def test_userinfo_claims_follow_scopes(client: httpx.Client, sandbox_url: str) -> None:
    path = "/api/v10/oauth2/userinfo"
    only = client.get(path, headers=bearer(issue_token(sandbox_url, ADA, ["openid"]))).json()
    assert only == {"sub": ADA}
    full = client.get(
        path, headers=bearer(issue_token(sandbox_url, ADA, ["openid", "identify", "email"]))
    ).json()
    assert full["sub"] == ADA
    assert full["email"].endswith("@example.com")
    assert isinstance(full["email_verified"], bool)
    assert full["preferred_username"]
    assert "nickname" in full
    assert full["picture"].startswith("https://")
    assert full["locale"]


# -- guilds -------------------------------------------------------------------------------------


def test_my_guilds_shape_and_order(
    client: httpx.Client, sandbox_url: str, doc: dict[str, Any]
) -> None:
    token = issue_token(sandbox_url, ADA, ["guilds"])
    guilds = client.get("/api/v10/users/@me/guilds", headers=bearer(token)).json()
    expected = sorted((m["guild_id"] for m in doc["memberships"] if m["user_id"] == ADA), key=int)
    assert [g["id"] for g in guilds] == expected
    for guild in guilds:
        assert {"id", "name", "icon", "banner", "owner", "permissions", "features"} <= set(guild)
        assert isinstance(guild["owner"], bool)
        assert guild["permissions"].isdigit()
        assert "approximate_member_count" not in guild
    counted = client.get(
        "/api/v10/users/@me/guilds", params={"with_counts": "true"}, headers=bearer(token)
    ).json()
    assert all(isinstance(g["approximate_member_count"], int) for g in counted)
    assert all(isinstance(g["approximate_presence_count"], int) for g in counted)


def test_my_guilds_pagination(client: httpx.Client, sandbox_url: str) -> None:
    headers = bearer(issue_token(sandbox_url, ADA, ["guilds"]))
    ids = [g["id"] for g in client.get("/api/v10/users/@me/guilds", headers=headers).json()]
    assert len(ids) >= 3
    path = "/api/v10/users/@me/guilds"
    assert [g["id"] for g in client.get(path, params={"limit": 1}, headers=headers).json()] == ids[
        :1
    ]
    after = client.get(path, params={"after": ids[0]}, headers=headers).json()
    assert [g["id"] for g in after] == ids[1:]
    before = client.get(path, params={"before": ids[-1]}, headers=headers).json()
    assert [g["id"] for g in before] == ids[:-1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before": "yesterday"}, "before"),
        ({"after": "-5"}, "after"),
        ({"with_counts": "maybe"}, "with_counts"),
    ],
)
def test_my_guilds_bad_params_are_50035(
    client: httpx.Client, sandbox_url: str, params: dict[str, str], field: str
) -> None:
    token = issue_token(sandbox_url, ADA, ["guilds"])
    response = client.get("/api/v10/users/@me/guilds", params=params, headers=bearer(token))
    body = assert_error(response, 400, 50035, "Invalid Form Body")
    errors = body["errors"][field]["_errors"]
    assert errors
    assert all(isinstance(e["code"], str) and e["message"] for e in errors)


def test_user_in_no_guild_gets_an_empty_list(client: httpx.Client, sandbox_url: str) -> None:
    token = issue_token(sandbox_url, LINUS, ["guilds"])
    assert client.get("/api/v10/users/@me/guilds", headers=bearer(token)).json() == []


def test_my_guild_member(client: httpx.Client, sandbox_url: str, doc: dict[str, Any]) -> None:
    token = issue_token(sandbox_url, ADA, ["guilds.members.read"])
    body = client.get(
        f"/api/v10/users/@me/guilds/{SANDBOX_HUB}/member", headers=bearer(token)
    ).json()
    membership = next(
        m for m in doc["memberships"] if m["user_id"] == ADA and m["guild_id"] == SANDBOX_HUB
    )
    for key in (
        "user", "nick", "avatar", "banner", "roles", "joined_at", "premium_since", "deaf", "mute",
        "flags", "pending", "communication_disabled_until",
    ):  # fmt: skip
        assert key in body, key
    assert body["user"]["id"] == ADA
    assert body["roles"] == membership["roles"]
    assert body["nick"] == membership["nick"]
    datetime.fromisoformat(body["joined_at"])


@pytest.mark.parametrize(
    ("user", "guild"), [(LINUS, SANDBOX_HUB), (ADA, QUIET_CORNER), (ADA, "1299999999999999999")]
)
def test_not_a_member_is_unknown_guild(
    client: httpx.Client, sandbox_url: str, user: str, guild: str
) -> None:
    token = issue_token(sandbox_url, user, ["guilds.members.read"])
    response = client.get(f"/api/v10/users/@me/guilds/{guild}/member", headers=bearer(token))
    assert_error(response, 404, 10004, "Unknown Guild")


def test_my_guild_member_refuses_bot_tokens(client: httpx.Client, sandbox_url: str) -> None:
    response = client.get(
        f"/api/v10/users/@me/guilds/{SANDBOX_HUB}/member", headers=bot(bot_token(sandbox_url))
    )
    assert_error(response, 401, 0)


# -- connections --------------------------------------------------------------------------------


def test_my_connections(client: httpx.Client, sandbox_url: str) -> None:
    token = issue_token(sandbox_url, ADA, ["connections"])
    connections = client.get("/api/v10/users/@me/connections", headers=bearer(token)).json()
    assert len(connections) >= 2
    for item in connections:
        assert {
            "id", "name", "type", "verified", "friend_sync", "show_activity", "two_way_link",
            "visibility",
        } <= set(item)  # fmt: skip
        assert item["visibility"] in (0, 1)
    assert {"twitch", "github"} <= {item["type"] for item in connections}


# -- entitlements -------------------------------------------------------------------------------


def _mine(doc: dict[str, Any], user: str) -> list[dict[str, Any]]:
    return [
        e
        for e in doc["entitlements"]
        if e.get("user_id") == user and e["application_id"] == DEFAULT_CLIENT_ID
    ]


def test_my_entitlements_are_unfiltered(
    client: httpx.Client, sandbox_url: str, doc: dict[str, Any]
) -> None:
    token = issue_token(sandbox_url, ADA, ["identify"])  # any scope will do
    got = client.get(MY_ENTITLEMENTS, headers=bearer(token)).json()
    assert all(e["user_id"] == ADA for e in got)
    assert any(e["deleted"] for e in got), "deleted entitlements must be returned"
    assert any(_past(e["ends_at"]) for e in got), "ended entitlements must be returned"
    for entitlement in got:
        assert {"id", "sku_id", "application_id", "type", "deleted", "starts_at", "ends_at"} <= set(
            entitlement
        )
    # The endpoint has no limit/exclude_deleted/exclude_ended: they change nothing.
    ignored = client.get(
        MY_ENTITLEMENTS,
        params={"limit": "1", "exclude_deleted": "true", "exclude_ended": "true"},
        headers=bearer(token),
    ).json()
    assert ignored == got
    # exclude_consumed defaults to true; false brings the consumed ones back.
    everything = client.get(
        MY_ENTITLEMENTS, params={"exclude_consumed": "false"}, headers=bearer(token)
    ).json()
    assert {e["id"] for e in everything} == {e["id"] for e in _mine(doc, ADA)}
    assert {e["id"] for e in everything if not e.get("consumed")} == {e["id"] for e in got}


def test_my_entitlements_sku_filter(
    client: httpx.Client, sandbox_url: str, doc: dict[str, Any]
) -> None:
    token = issue_token(sandbox_url, ADA, ["identify"])
    sku = _mine(doc, ADA)[0]["sku_id"]
    got = client.get(
        MY_ENTITLEMENTS, params={"sku_ids": f"{sku},1400000000000009999"}, headers=bearer(token)
    ).json()
    assert got
    assert {e["sku_id"] for e in got} == {sku}


def test_my_entitlements_refuse_bot_tokens(client: httpx.Client, sandbox_url: str) -> None:
    assert_error(client.get(MY_ENTITLEMENTS, headers=bot(bot_token(sandbox_url))), 401, 0)


def test_application_entitlements_with_the_apps_bot(
    client: httpx.Client, sandbox_url: str, doc: dict[str, Any]
) -> None:
    headers = bot(bot_token(sandbox_url))
    got = client.get(APP_ENTITLEMENTS, headers=headers).json()
    assert got
    assert not any(e["deleted"] for e in got), "exclude_deleted defaults to true"
    with_deleted = client.get(
        APP_ENTITLEMENTS, params={"exclude_deleted": "false"}, headers=headers
    ).json()
    assert any(e["deleted"] for e in with_deleted)
    not_ended = client.get(
        APP_ENTITLEMENTS, params={"exclude_ended": "true"}, headers=headers
    ).json()
    assert not any(_past(e["ends_at"]) for e in not_ended)
    assert any(_past(e["ends_at"]) for e in got)
    only_grace = client.get(APP_ENTITLEMENTS, params={"user_id": GRACE}, headers=headers).json()
    assert only_grace
    assert {e["user_id"] for e in only_grace} == {GRACE}
    first = client.get(APP_ENTITLEMENTS, params={"limit": 2}, headers=headers).json()
    assert len(first) == 2


def test_application_entitlements_refuse_an_ordinary_user(
    client: httpx.Client, sandbox_url: str
) -> None:
    token = issue_token(sandbox_url, GRACE, CATALOG_SCOPES)
    response = client.get(APP_ENTITLEMENTS, headers=bearer(token))
    assert_error(response, 403, 20012)


def test_application_entitlements_refuse_another_apps_bot(client: httpx.Client) -> None:
    other = client.post(
        "/_sandbox/applications", json={"redirect_uris": ["http://127.0.0.1:9/cb"]}
    ).json()
    response = client.get(APP_ENTITLEMENTS, headers=bot(other["bot_token"]))
    assert_error(response, 403, 20012)


def test_application_entitlements_for_the_owner_with_the_developer_scope(
    client: httpx.Client, sandbox_url: str, doc: dict[str, Any]
) -> None:
    token = issue_token(sandbox_url, doc["application_owner_id"], ["applications.entitlements"])
    assert client.get(APP_ENTITLEMENTS, headers=bearer(token)).status_code == 200
