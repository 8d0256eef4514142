"""The control API under ``/_sandbox/`` (issue #2, architecture.md "Sandbox")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from . import DEFAULT_REDIRECT, authorize, exchange, loopback_client, refresh, tokens_for

DEFAULT_CLIENT_ID = "1300000000000000001"
ADA = "1100000000000000001"
GRACE = "1100000000000000002"


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with loopback_client(sandbox_url) as c:
        yield c


@pytest.fixture
def app(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/_sandbox/applications", json={"redirect_uris": [DEFAULT_REDIRECT]})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def assert_invalid(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["message"]
    assert field in error["details"]["fields"], error


def me(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/api/v10/oauth2/@me", headers={"Authorization": f"Bearer {token}"})


# -- applications ------------------------------------------------------------------------------


def test_default_application_is_listed(client: httpx.Client) -> None:
    response = client.get("/_sandbox/applications")
    assert response.status_code == 200
    apps = response.json()
    (default,) = [a for a in apps if a["client_id"] == DEFAULT_CLIENT_ID]
    assert set(default) >= {"client_id", "client_secret", "bot_token", "name", "redirect_uris"}
    assert default["client_secret"]
    assert default["bot_token"]
    assert default["redirect_uris"]


def test_register_application(client: httpx.Client) -> None:
    uris = ["http://127.0.0.1:8080/sso/v1/oauth/abc/callback", "myapp://oauth/cb"]
    response = client.post("/_sandbox/applications", json={"redirect_uris": uris, "name": "Quill"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"client_id", "client_secret", "bot_token", "redirect_uris"}
    assert body["redirect_uris"] == uris
    assert body["client_id"].isdigit()
    assert len(body["client_id"]) >= 17
    listed = {a["client_id"]: a for a in client.get("/_sandbox/applications").json()}
    assert listed[body["client_id"]]["name"] == "Quill"
    assert listed[body["client_id"]]["client_secret"] == body["client_secret"]
    # Two registrations never share credentials.
    again = client.post("/_sandbox/applications", json={"redirect_uris": uris}).json()
    assert again["client_id"] != body["client_id"]
    assert again["client_secret"] != body["client_secret"]
    assert again["bot_token"] != body["bot_token"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "redirect_uris"),
        ({"redirect_uris": "http://127.0.0.1:9/cb"}, "redirect_uris"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"redirect_uris": [1]}, "redirect_uris"),
        ({"redirect_uris": ["/relative/cb"]}, "redirect_uris[0]"),
        ({"redirect_uris": [DEFAULT_REDIRECT, "http://127.0.0.1:9/cb#frag"]}, "redirect_uris[1]"),
        ({"redirect_uris": ["http:///nohost"]}, "redirect_uris[0]"),
        ({"redirect_uris": [f"http://127.0.0.1:9/{i}" for i in range(11)]}, "redirect_uris"),
        ({"redirect_uris": [DEFAULT_REDIRECT], "name": 5}, "name"),
        ({"redirect_uris": [DEFAULT_REDIRECT], "redirect_uri": "x"}, "redirect_uri"),
    ],
)
def test_register_application_validation(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = len(client.get("/_sandbox/applications").json())
    assert_invalid(client.post("/_sandbox/applications", json=body), field)
    assert len(client.get("/_sandbox/applications").json()) == before


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'"text"'])
def test_register_application_needs_a_json_object(client: httpx.Client, content: bytes) -> None:
    response = client.post(
        "/_sandbox/applications", content=content, headers={"Content-Type": "application/json"}
    )
    assert_invalid(response, "body")


def test_patch_redirect_uris_takes_effect(client: httpx.Client, app: dict[str, Any]) -> None:
    new_uri = "http://127.0.0.1:9/new-callback"
    response = client.patch(
        f"/_sandbox/applications/{app['client_id']}", json={"redirect_uris": [new_uri]}
    )
    assert response.status_code == 200
    assert response.json()["redirect_uris"] == [new_uri]
    assert response.json()["client_secret"] == app["client_secret"]
    query = {"client_id": app["client_id"], "response_type": "code", "scope": "identify"}
    old = client.get("/oauth2/authorize", params={**query, "redirect_uri": DEFAULT_REDIRECT})
    assert old.status_code == 400
    assert "location" not in old.headers
    assert (
        client.get("/oauth2/authorize", params={**query, "redirect_uri": new_uri}).status_code
        == 200
    )


def test_patch_validation_and_unknown_application(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    path = f"/_sandbox/applications/{app['client_id']}"
    assert_invalid(client.patch(path, json={"redirect_uris": ["nope"]}), "redirect_uris[0]")
    assert_invalid(client.patch(path, json={"redirect_uri": [DEFAULT_REDIRECT]}), "redirect_uri")
    unchanged = {a["client_id"]: a for a in client.get("/_sandbox/applications").json()}
    assert unchanged[app["client_id"]]["redirect_uris"] == [DEFAULT_REDIRECT]
    missing = client.patch(
        "/_sandbox/applications/1399999999999999999", json={"redirect_uris": [DEFAULT_REDIRECT]}
    )
    assert missing.status_code == 404


# -- stats and reset ---------------------------------------------------------------------------


def test_stats_counters_move_exactly(client: httpx.Client, app: dict[str, Any]) -> None:
    stats = client.get("/_sandbox/stats").json()
    assert stats["grants"] == {"authorization_code": 0, "refresh_token": 0}
    assert stats["revocations"] == 0
    for key in ("rate_limited", "unauthorized", "forbidden"):
        assert isinstance(stats[key], int)
    assert set(stats["requests"]) >= {"total", "by_route", "by_token"}

    first = tokens_for(client, app)
    second = tokens_for(client, app, user_id=GRACE)
    exchange(client, app, "bogus-code")  # failures count nothing
    refreshed = refresh(client, app, first["refresh_token"]).json()
    refresh(client, app, first["refresh_token"])  # replay: refused, not counted
    refresh(client, app, refreshed["refresh_token"])
    auth = (app["client_id"], app["client_secret"])
    client.post("/api/oauth2/token/revoke", data={"token": second["access_token"]}, auth=auth)
    client.post("/api/oauth2/token/revoke", data={"token": "unknown"}, auth=auth)

    stats = client.get("/_sandbox/stats").json()
    assert stats["grants"] == {"authorization_code": 2, "refresh_token": 2}
    assert stats["revocations"] == 1


def test_reset_forgets_everything_but_the_default_application(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    before = {a["client_id"]: a for a in client.get("/_sandbox/applications").json()}
    tokens = tokens_for(client, app)
    client.post("/_sandbox/faults", json={"route": "/api/v10/gateway", "status": 503})
    assert client.post("/_sandbox/reset").status_code == 200

    after = client.get("/_sandbox/applications").json()
    assert [a["client_id"] for a in after] == [DEFAULT_CLIENT_ID]
    assert after[0] == before[DEFAULT_CLIENT_ID]  # same secret and bot token as before
    listed = client.get("/_sandbox/tokens").json()
    assert tokens["access_token"] not in listed["access_tokens"]
    assert listed["access_tokens"] == listed["refresh_tokens"] == listed["codes"] == []
    assert client.get("/_sandbox/faults").json() == {"faults": []}
    stats = client.get("/_sandbox/stats").json()
    assert stats["grants"] == {"authorization_code": 0, "refresh_token": 0}
    assert me(client, tokens["access_token"]).status_code == 401


# -- faults ------------------------------------------------------------------------------------


def test_fault_crud(client: httpx.Client) -> None:
    created = client.post(
        "/_sandbox/faults",
        json={"route": "/api/v10/users/@me", "status": 503, "probability": 0.5, "count": 3},
    )
    assert created.status_code == 201
    assert created.json() == {
        "route": "/api/v10/users/@me",
        "status": 503,
        "probability": 0.5,
        "latency_ms": 0.0,
        "drop_connection": False,
        "remaining": 3,
        "statuses": [],
        "method": None,
        "after_handler": False,
    }
    client.post("/_sandbox/faults", json={"route": "*", "latency_ms": 25})
    client.post("/_sandbox/faults", json={"route": "/api/v10/gateway", "drop_connection": True})
    faults = client.get("/_sandbox/faults").json()["faults"]
    assert [f["route"] for f in faults] == ["/api/v10/users/@me", "*", "/api/v10/gateway"]
    assert faults[1]["probability"] == 1.0
    assert faults[1]["remaining"] is None

    deleted = client.delete("/_sandbox/faults", params={"route": "*"})
    assert deleted.json() == {"deleted": 1}
    routes = [f["route"] for f in client.get("/_sandbox/faults").json()["faults"]]
    assert routes == ["/api/v10/users/@me", "/api/v10/gateway"]
    assert client.delete("/_sandbox/faults", params={"route": "/nothing"}).json() == {"deleted": 0}
    assert client.delete("/_sandbox/faults").json() == {"deleted": 2}
    assert client.get("/_sandbox/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": 500}, "route"),
        ({"route": "api/v10/users/@me", "status": 500}, "route"),
        ({"route": 5, "status": 500}, "route"),
        ({"route": "*", "status": 99}, "status"),
        ({"route": "*", "status": 600}, "status"),
        ({"route": "*", "status": "500"}, "status"),
        ({"route": "*", "status": True}, "status"),
        ({"route": "*", "status": 500.5}, "status"),
        ({"route": "*", "status": 500, "probability": -0.1}, "probability"),
        ({"route": "*", "status": 500, "probability": 1.01}, "probability"),
        ({"route": "*", "status": 500, "probability": "1"}, "probability"),
        ({"route": "*", "latency_ms": -1}, "latency_ms"),
        ({"route": "*", "latency_ms": 600_001}, "latency_ms"),
        ({"route": "*", "drop_connection": "yes"}, "drop_connection"),
        ({"route": "*", "status": 500, "count": 0}, "count"),
        ({"route": "*", "status": 500, "count": 1.5}, "count"),
        ({"route": "*", "status": 500, "rate": 0.5}, "rate"),
        ({"route": "*", "statuses": []}, "statuses"),
        ({"route": "*", "statuses": 503}, "statuses"),
        ({"route": "*", "statuses": [500, "502"]}, "statuses"),
        ({"route": "*", "statuses": [500, 600]}, "statuses"),
        ({"route": "*", "statuses": [True]}, "statuses"),
        ({"route": "*", "statuses": [500] * 17}, "statuses"),
        ({"route": "*", "status": 500, "statuses": [502]}, "statuses"),
        ({"route": "*"}, "status"),  # a rule that does nothing
        ({"route": "*", "latency_ms": 0}, "status"),
        ({"route": "*", "status": 500, "method": "get"}, "method"),
        ({"route": "*", "status": 500, "method": "TRACE"}, "method"),
        ({"route": "*", "status": 500, "after_handler": "yes"}, "after_handler"),
        ({"route": "*", "latency_ms": 5, "after_handler": True}, "after_handler"),
    ],
)
def test_fault_validation(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    assert_invalid(client.post("/_sandbox/faults", json=body), field)
    assert client.get("/_sandbox/faults").json() == {"faults": []}


def test_fault_needs_a_json_object(client: httpx.Client) -> None:
    response = client.post(
        "/_sandbox/faults", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert_invalid(response, "body")


# -- tokens ------------------------------------------------------------------------------------


def test_expire_tokens_for_one_user(client: httpx.Client, app: dict[str, Any]) -> None:
    ada = tokens_for(client, app, user_id=ADA)
    grace = tokens_for(client, app, user_id=GRACE)
    assert me(client, ada["access_token"]).status_code == 200

    response = client.post("/_sandbox/tokens/expire", json={"user_id": ADA})
    assert response.json() == {"expired": 1}
    assert me(client, ada["access_token"]).status_code == 401
    assert me(client, grace["access_token"]).status_code == 200
    # Only access tokens expire: the refresh token still gets a working access token.
    renewed = refresh(client, app, ada["refresh_token"])
    assert renewed.status_code == 200
    assert me(client, renewed.json()["access_token"]).status_code == 200


def test_expire_tokens_filters_and_counts(client: httpx.Client, app: dict[str, Any]) -> None:
    other = client.post("/_sandbox/applications", json={"redirect_uris": [DEFAULT_REDIRECT]}).json()
    mine = tokens_for(client, app)
    theirs = tokens_for(client, other)
    assert client.post(
        "/_sandbox/tokens/expire", json={"client_id": other["client_id"]}
    ).json() == {"expired": 1}
    assert me(client, theirs["access_token"]).status_code == 401
    assert me(client, mine["access_token"]).status_code == 200
    # No body: every live access token; already expired ones are not counted again.
    assert client.post("/_sandbox/tokens/expire").json() == {"expired": 1}
    assert me(client, mine["access_token"]).status_code == 401
    assert client.post("/_sandbox/tokens/expire", json={}).json() == {"expired": 0}


@pytest.mark.parametrize(
    ("body", "field"), [({"user_id": 1}, "user_id"), ({"token": "x"}, "token")]
)
def test_expire_tokens_validation(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    assert_invalid(client.post("/_sandbox/tokens/expire", json=body), field)


def test_tokens_lists_every_secret_issued(client: httpx.Client, app: dict[str, Any]) -> None:
    tokens = tokens_for(client, app, scope="identify guilds")
    pending = authorize(client, app)
    listed = client.get("/_sandbox/tokens").json()
    assert tokens["access_token"] in listed["access_tokens"]
    assert tokens["refresh_token"] in listed["refresh_tokens"]
    assert pending in listed["codes"]
    assert app["client_secret"] in listed["client_secrets"]
    assert app["bot_token"] in listed["bot_tokens"]

    details = listed["details"]
    (access,) = [t for t in details["access_tokens"] if t["value"] == tokens["access_token"]]
    assert access["client_id"] == app["client_id"]
    assert access["user_id"] == ADA
    assert access["scopes"] == ["identify", "guilds"]
    assert access["valid"] is True
    assert access["expired"] is False
    assert access["revoked"] is False
    assert access["expires_at"] - access["issued_at"] == 604800
    (code,) = [c for c in details["codes"] if c["value"] == pending]
    assert code["used"] is False


# -- interactions and messages ---------------------------------------------------------------


def test_create_interaction_defaults_and_fields(client: httpx.Client) -> None:
    made = client.post("/_sandbox/interactions", json={"user_id": GRACE, "type": 3})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["application_id"] == DEFAULT_CLIENT_ID
    assert body["guild_id"] == "1200000000000000001"
    assert body["channel_id"] == "1600000000000000102"
    assert body["user_id"] == GRACE
    assert body["type"] == 3
    assert body["token"]
    assert body["responded"] is False
    assert client.post("/_sandbox/interactions").status_code == 201  # no body: all defaults


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": 5}, "user_id"),
        ({"guild_id": "abc"}, "guild_id"),
        ({"type": 9}, "type"),
        ({"data": []}, "data"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_create_interaction_validation(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    assert_invalid(client.post("/_sandbox/interactions", json=body), field)


def test_create_interaction_unknown_objects(client: httpx.Client) -> None:
    for body in (
        {"application_id": "1300000000000000999"},
        {"channel_id": "1600000000000000999"},
        {"guild_id": "1200000000000000003"},  # #general is not in that guild
        {"user_id": "1100000000000000999"},
    ):
        response = client.post("/_sandbox/interactions", json=body)
        assert response.status_code == 404, body
        assert response.json()["error"]["code"] == "NOT_FOUND"


def test_messages_lists_what_is_stored(client: httpx.Client) -> None:
    listed = client.get("/_sandbox/messages", params={"channel_id": "1600000000000000102"})
    body = listed.json()
    assert [m["author"]["id"] for m in body["messages"]] == [
        ADA,
        GRACE,
        "1300000000000000901",
    ]
    assert body["messages"][0]["pinned"] is True
    assert body["created"] == 0
    assert len(client.get("/_sandbox/messages").json()["messages"]) == 5
    unknown = client.get("/_sandbox/messages", params={"channel_id": "1"})
    assert unknown.status_code == 404
