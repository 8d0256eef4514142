"""``/api/v1/connections``: shapes, status codes, and every kind of bad input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from tokenward.sandbox.browser import walk_consent

from .conftest import ApiEnv, assert_error

ADA = "1100000000000000001"
GRACE = "1100000000000000002"

CONNECTION_KEYS = {
    "id",
    "name",
    "provider",
    "client_id",
    "scopes",
    "has_bot_token",
    "require_user_verification",
    "allowed_tools",
    "redirect_uri",
    "public_key",
    "interactions_endpoint_url",
    "event_webhooks_url",
    "created_at",
    "updated_at",
}


def body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "discord",
        "provider": "discord",
        "client_id": "123456789012345678",
        "client_secret": "cs-very-secret-value-1",
        "scopes": ["identify", "guilds"],
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not ...}


def test_create_get_list_patch_delete(api: ApiEnv) -> None:
    created = api.post(
        "/api/v1/connections",
        json=body(scopes="identify, guilds email", bot_token="bot-token-secret-value"),
    )
    assert created.status_code == 201, created.text
    connection = created.json()["connection"]
    assert set(connection) == CONNECTION_KEYS
    assert connection["name"] == "discord"
    assert connection["scopes"] == ["identify", "guilds", "email"]
    assert connection["has_bot_token"] is True
    assert connection["redirect_uri"] == (
        f"{api.settings.public_base}/sso/v1/oauth/{connection['id']}/callback"
    )
    datetime.fromisoformat(connection["created_at"])
    assert "cs-very-secret-value-1" not in created.text
    assert "bot-token-secret-value" not in created.text

    fetched = api.get("/api/v1/connections/discord")
    assert fetched.status_code == 200
    assert fetched.json()["connection"] == connection
    listed = api.get("/api/v1/connections")
    assert listed.status_code == 200
    assert listed.json() == {"connections": [connection]}

    patched = api.patch(
        "/api/v1/connections/discord",
        json={"client_secret": "cs-rotated-secret-2", "scopes": ["identify"], "bot_token": None},
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()["connection"]
    assert after["scopes"] == ["identify"]
    assert after["has_bot_token"] is False
    assert after["client_id"] == connection["client_id"]
    assert "cs-rotated-secret-2" not in patched.text
    only_bot = api.patch("/api/v1/connections/discord", json={"bot_token": "new-bot-token-value"})
    assert only_bot.json()["connection"]["has_bot_token"] is True
    assert only_bot.json()["connection"]["scopes"] == ["identify"]

    deleted = api.delete("/api/v1/connections/discord")
    assert deleted.status_code == 200
    assert deleted.json() == {
        "deleted": True,
        "id": connection["id"],
        "name": "discord",
        "accounts_deleted": 0,
        "revoked": 0,
        "revoke_failed": [],
    }
    assert_error(api.get("/api/v1/connections/discord"), 404, "CONNECTION_NOT_FOUND")
    assert api.get("/api/v1/connections").json() == {"connections": []}


def test_duplicate_name_is_409(api: ApiEnv) -> None:
    assert api.post("/api/v1/connections", json=body()).status_code == 201
    error = assert_error(api.post("/api/v1/connections", json=body()), 409, "CONFLICT")
    assert "discord" in error["message"]


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (body(name=...), {"name": "field required"}),
        (body(client_id=..., client_secret=...), {"client_id": None, "client_secret": None}),
        (body(allowed_tools=["*", "!*_bann*"]), {"allowed_tools": "matches none"}),
        (body(allowed_tools=["Discord_*"]), {"allowed_tools": "not a glob"}),
        (body(allowed_tools="*"), {"allowed_tools": None}),
        (
            body(provider="discordbot", bot_token="x" * 20),
            {
                "client_id": "not used by provider discordbot",
                "client_secret": "not used",
                "scopes": "not used",
                "bot_token": "not used",
            },
        ),
        (body(client_id=123), {"client_id": "string"}),
        (body(scopes=5), {"scopes": None}),
        (body(scopes=["identify", 7]), {"scopes.1": "string"}),
        (body(scopes=[]), {"scopes": "at least one scope"}),
        (body(scopes=" , "), {"scopes": "at least one scope"}),
        (body(name="has space"), {"name": "pattern"}),
        (body(name="x" * 65), {"name": "64"}),
        (body(provider="slack"), {"provider": "discord"}),
        (body(color="blue"), {"color": "unknown field"}),
        (body(client_secret=""), {"client_secret": None}),
        (body(bot_token=42), {"bot_token": None}),
        (body(require_user_verification="yes"), {"require_user_verification": None}),
    ],
)
def test_bad_create_bodies_name_each_field(
    api: ApiEnv, payload: dict[str, Any], fields: dict[str, str | None]
) -> None:
    response = api.post("/api/v1/connections", json=payload)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    got = error["details"]["fields"]
    assert set(got) == set(fields), got
    for name, reason in fields.items():
        if reason is not None:
            assert reason in got[name], (name, got[name])
    # Nothing was created, and no submitted secret is echoed.
    assert api.get("/api/v1/connections").json() == {"connections": []}
    assert "cs-very-secret-value-1" not in response.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
        (b"name=discord", "application/x-www-form-urlencoded"),
        (b"null", "application/json"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_400(
    api: ApiEnv, content: bytes, content_type: str
) -> None:
    response = api.post(
        "/api/v1/connections", content=content, headers={"Content-Type": content_type}
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"]["fields"], error


def test_bad_patches(api: ApiEnv) -> None:
    assert api.post("/api/v1/connections", json=body()).status_code == 201
    empty = assert_error(api.patch("/api/v1/connections/discord", json={}), 400, "VALIDATION_ERROR")
    assert "body" in empty["details"]["fields"]
    nulled = assert_error(
        api.patch("/api/v1/connections/discord", json={"client_secret": None, "scopes": None}),
        400,
        "VALIDATION_ERROR",
    )
    assert set(nulled["details"]["fields"]) == {"client_secret", "scopes"}
    nulled_flag = assert_error(
        api.patch("/api/v1/connections/discord", json={"require_user_verification": None}),
        400,
        "VALIDATION_ERROR",
    )
    assert set(nulled_flag["details"]["fields"]) == {"require_user_verification"}
    bad_flag = assert_error(
        api.patch("/api/v1/connections/discord", json={"require_user_verification": 2}),
        400,
        "VALIDATION_ERROR",
    )
    assert "require_user_verification" in bad_flag["details"]["fields"]
    unknown = assert_error(
        api.patch("/api/v1/connections/discord", json={"name": "renamed"}),
        400,
        "VALIDATION_ERROR",
    )
    assert unknown["details"]["fields"] == {"name": "unknown field"}
    wrong_type = assert_error(
        api.patch("/api/v1/connections/discord", json={"scopes": {"a": 1}}),
        400,
        "VALIDATION_ERROR",
    )
    assert "scopes" in wrong_type["details"]["fields"]
    missing = api.patch("/api/v1/connections/nope", json={"scopes": ["identify"]})
    assert_error(missing, 404, "CONNECTION_NOT_FOUND")
    # None of that changed anything.
    assert api.get("/api/v1/connections/discord").json()["connection"]["scopes"] == [
        "identify",
        "guilds",
    ]


def test_unknown_connections_are_404_and_bad_names_400(api: ApiEnv) -> None:
    assert_error(api.get("/api/v1/connections/nope"), 404, "CONNECTION_NOT_FOUND")
    assert_error(api.delete("/api/v1/connections/nope"), 404, "CONNECTION_NOT_FOUND")
    error = assert_error(api.get("/api/v1/connections/" + "n" * 65), 400, "VALIDATION_ERROR")
    assert "name" in error["details"]["fields"]


def test_wrong_method_and_unknown_route_get_the_envelope(api: ApiEnv) -> None:
    wrong = assert_error(
        api.request("PUT", "/api/v1/connections/discord"), 405, "METHOD_NOT_ALLOWED"
    )
    assert set(wrong["details"]["allowed"]) == {"GET", "PATCH", "DELETE"}
    assert_error(api.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    assert_error(api.get("/nothing-here", auth=False), 404, "NOT_FOUND")


def test_require_user_verification_is_set_shown_and_changed(api: ApiEnv) -> None:
    created = api.post("/api/v1/connections", json=body(require_user_verification=True))
    assert created.status_code == 201, created.text
    assert created.json()["connection"]["require_user_verification"] is True
    listed = api.get("/api/v1/connections").json()["connections"]
    assert [c["require_user_verification"] for c in listed] == [True]
    patched = api.patch("/api/v1/connections/discord", json={"require_user_verification": False})
    assert patched.json()["connection"]["require_user_verification"] is False
    other = api.post("/api/v1/connections", json=body(name="plain"))
    assert other.json()["connection"]["require_user_verification"] is False


def test_deleting_a_connection_revokes_its_grants_and_reports_failures(api: ApiEnv) -> None:
    api.connect()
    ids = []
    for identifier, user in (("user_a", GRACE), ("user_b", ADA)):
        made = api.post(
            "/api/v1/connected-accounts/authorization-link",
            json={"connection_name": "discord", "identifier": identifier},
        ).json()
        assert walk_consent(made["link"], user_id=user).status_code == 200
        ids.append(made["connected_account"]["id"])
    api.connect("second")
    made = api.post(
        "/api/v1/connected-accounts/authorization-link",
        json={"connection_name": "second", "identifier": "user_c"},
    ).json()
    assert walk_consent(made["link"], user_id=GRACE).status_code == 200

    deleted = api.delete("/api/v1/connections/discord")

    assert deleted.status_code == 200, deleted.text
    doc = deleted.json()
    assert (doc["accounts_deleted"], doc["revoked"], doc["revoke_failed"]) == (2, 2, [])
    assert httpx.get(f"{api.sandbox_url}/_sandbox/stats").json()["revocations"] == 2
    assert api.get("/api/v1/connected-accounts").json()["connected_accounts"][0]["status"] == (
        "ACTIVE"
    )

    httpx.post(
        f"{api.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token/revoke", "status": 503},
    ).raise_for_status()
    try:
        failed = api.delete("/api/v1/connections/second", params={"revoke": "true"})
    finally:
        httpx.delete(f"{api.sandbox_url}/_sandbox/faults").raise_for_status()
    assert failed.status_code == 200, failed.text
    assert failed.json()["revoked"] == 0
    [failure] = failed.json()["revoke_failed"]
    assert failure["identifier"] == "user_c"
    assert "503" in failure["error"]
    assert api.get("/api/v1/connections").json() == {"connections": []}


def test_deleting_a_connection_without_revoking(api: ApiEnv) -> None:
    api.connect()
    made = api.post(
        "/api/v1/connected-accounts/authorization-link",
        json={"connection_name": "discord", "identifier": "user_a"},
    ).json()
    assert walk_consent(made["link"], user_id=GRACE).status_code == 200

    deleted = api.delete("/api/v1/connections/discord", params={"revoke": "false"})

    assert deleted.json()["revoked"] == 0
    assert deleted.json()["accounts_deleted"] == 1
    assert httpx.get(f"{api.sandbox_url}/_sandbox/stats").json()["revocations"] == 0
    bad = api.delete("/api/v1/connections/discord", params={"revoke": "perhaps"})
    assert "revoke" in assert_error(bad, 400, "VALIDATION_ERROR")["details"]["fields"]


PUBLIC_KEY = "A1" * 32  # the Developer Portal shows it in lower case; either is accepted


def test_public_key_is_set_shown_with_the_discord_urls_changed_and_removed(api: ApiEnv) -> None:
    plain = api.post("/api/v1/connections", json=body(name="plain")).json()["connection"]
    assert plain["public_key"] is None
    assert plain["interactions_endpoint_url"] is None
    assert plain["event_webhooks_url"] is None

    created = api.post("/api/v1/connections", json=body(public_key=PUBLIC_KEY))
    assert created.status_code == 201, created.text
    connection = created.json()["connection"]
    base = f"{api.settings.public_base}/discord/{connection['id']}"
    assert connection["public_key"] == PUBLIC_KEY.lower()
    assert connection["interactions_endpoint_url"] == f"{base}/interactions"
    assert connection["event_webhooks_url"] == f"{base}/events"
    assert api.get("/api/v1/connections/discord").json()["connection"] == connection

    other = "0f" * 32
    patched = api.patch("/api/v1/connections/discord", json={"public_key": other})
    assert patched.status_code == 200, patched.text
    assert patched.json()["connection"]["public_key"] == other
    removed = api.patch("/api/v1/connections/discord", json={"public_key": None})
    after = removed.json()["connection"]
    assert (after["public_key"], after["interactions_endpoint_url"]) == (None, None)
    # A bot connection may carry the key too (the same Discord application's).
    bots = api.post(
        "/api/v1/connections", json={"name": "bots", "provider": "discordbot", "public_key": other}
    )
    assert bots.status_code == 201, bots.text
    assert bots.json()["connection"]["interactions_endpoint_url"].endswith("/interactions")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a1" * 31, "not 62"),
        ("a1" * 33, "not 66"),
        ("zz" * 32, "other characters"),
        ("", "not 0"),
        (42, "string"),
    ],
)
def test_a_bad_public_key_is_400_naming_it_and_nothing_is_written(
    api: ApiEnv, value: object, reason: str
) -> None:
    error = assert_error(
        api.post("/api/v1/connections", json=body(public_key=value)), 400, "VALIDATION_ERROR"
    )
    assert set(error["details"]["fields"]) == {"public_key"}
    assert reason in error["details"]["fields"]["public_key"]
    assert api.get("/api/v1/connections").json() == {"connections": []}

    assert api.post("/api/v1/connections", json=body(public_key=PUBLIC_KEY)).status_code == 201
    patch = api.patch("/api/v1/connections/discord", json={"public_key": value})
    error = assert_error(patch, 400, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]) == {"public_key"}
    kept = api.get("/api/v1/connections/discord").json()["connection"]
    assert kept["public_key"] == PUBLIC_KEY.lower()
