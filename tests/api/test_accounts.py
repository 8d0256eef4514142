"""``/api/v1/connected-accounts``: the link → consent → ACTIVE → delete lifecycle through the HTTP
API, verification, pagination, and every kind of bad input."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tokenward.sandbox.browser import walk_consent

from .conftest import ApiEnv, assert_error

ADA = "1100000000000000001"
GRACE = "1100000000000000002"
ACCOUNT_KEYS = {
    "id",
    "connection_name",
    "connection_id",
    "identifier",
    "status",
    "status_reason",
    "granted_scopes",
    "provider_user_id",
    "token_expires_at",
    "last_used_at",
    "created_at",
    "updated_at",
}


def link(api: ApiEnv, identifier: str = "user_123", **extra: Any) -> dict[str, Any]:
    response = api.post(
        "/api/v1/connected-accounts/authorization-link",
        json={"connection_name": "discord", "identifier": identifier, **extra},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stats(api: ApiEnv) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{api.sandbox_url}/_sandbox/stats").json()
    return body


def test_link_consent_active_then_delete_revokes(api: ApiEnv) -> None:
    connection = api.connect()
    before = time.time()
    body = link(api)

    assert set(body) == {"link", "expires_at", "connected_account"}
    assert body["link"].startswith(f"{api.settings.public_base}/connect/")
    expires_at = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert before + 590 < expires_at < time.time() + 610
    account = body["connected_account"]
    assert set(account) == ACCOUNT_KEYS
    assert account["status"] == "PENDING_AUTH"
    assert account["identifier"] == "user_123"
    assert account["connection_name"] == "discord"
    assert account["connection_id"] == connection["id"]

    result = walk_consent(body["link"], user_id=GRACE)
    assert result.status_code == 200, result.text
    assert "Discord connected" in result.text

    fetched = api.get(f"/api/v1/connected-accounts/{account['id']}")
    assert fetched.status_code == 200
    active = fetched.json()["connected_account"]
    assert active["status"] == "ACTIVE"
    assert active["provider_user_id"] == GRACE
    assert {"identify", "guilds"} <= set(active["granted_scopes"])
    assert datetime.fromisoformat(active["token_expires_at"]).timestamp() > time.time()
    # The same link again reuses the account.
    again = link(api)["connected_account"]
    assert again["id"] == account["id"]
    assert again["status"] == "ACTIVE"

    deleted = api.delete(f"/api/v1/connected-accounts/{account['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "deleted": True,
        "id": account["id"],
        "revoked": True,
        "revoke_error": None,
        "siblings_disconnected": [],
    }
    assert stats(api)["revocations"] == 1
    assert_error(api.get(f"/api/v1/connected-accounts/{account['id']}"), 404, "ACCOUNT_NOT_FOUND")
    assert_error(
        api.delete(f"/api/v1/connected-accounts/{account['id']}"), 404, "ACCOUNT_NOT_FOUND"
    )


def test_a_revoke_failure_is_502_unless_forced(api: ApiEnv) -> None:
    api.connect()
    account = link(api)
    assert walk_consent(account["link"]).status_code == 200
    account_id = account["connected_account"]["id"]
    httpx.post(
        f"{api.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token/revoke", "status": 503},
    ).raise_for_status()
    try:
        failed = api.delete(f"/api/v1/connected-accounts/{account_id}")
        error = assert_error(failed, 502, "REVOKE_FAILED")
        assert error["details"]["account_id"] == account_id
        still = api.get(f"/api/v1/connected-accounts/{account_id}").json()["connected_account"]
        assert still["status"] == "ACTIVE"
        forced = api.delete(f"/api/v1/connected-accounts/{account_id}?force=true")
    finally:
        httpx.delete(f"{api.sandbox_url}/_sandbox/faults").raise_for_status()
    assert forced.status_code == 200, forced.text
    assert forced.json()["revoked"] is False
    assert forced.json()["revoke_error"]
    assert_error(api.get(f"/api/v1/connected-accounts/{account_id}"), 404, "ACCOUNT_NOT_FOUND")


def test_user_verification_flow(api: ApiEnv) -> None:
    api.connect()
    verify_url = f"{api.url}/healthz"  # any page of the application's; here one that answers
    body = link(api, "user_v", user_verify_url=verify_url, state="app-state-1")
    result = walk_consent(body["link"])
    landed = urlsplit(result.visited[-1])
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == verify_url
    query = parse_qs(landed.query)
    assert query["state"] == ["app-state-1"]
    auth_request_id = query["auth_request_id"][0]
    account_id = body["connected_account"]["id"]
    pending = api.get(f"/api/v1/connected-accounts/{account_id}").json()["connected_account"]
    assert pending["status"] == "PENDING_VERIFICATION"

    wrong = api.post(
        "/api/v1/connected-accounts/verify",
        json={"auth_request_id": auth_request_id, "identifier": "someone_else"},
    )
    assert "identifier" in assert_error(wrong, 400, "VALIDATION_ERROR")["details"]["fields"]
    unknown = api.post(
        "/api/v1/connected-accounts/verify",
        json={"auth_request_id": "01NOPE", "identifier": "user_v"},
    )
    assert_error(unknown, 404, "AUTH_REQUEST_NOT_FOUND")

    verified = api.post(
        "/api/v1/connected-accounts/verify",
        json={"auth_request_id": auth_request_id, "identifier": "user_v"},
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["connected_account"]["status"] == "ACTIVE"
    twice = api.post(
        "/api/v1/connected-accounts/verify",
        json={"auth_request_id": auth_request_id, "identifier": "user_v"},
    )
    assert_error(twice, 409, "CONFLICT")


def test_pagination_walks_every_page_in_creation_order(api: ApiEnv) -> None:
    api.connect()
    api.connect("other")
    made = [link(api, f"user_{i}")["connected_account"]["id"] for i in range(7)]
    api.post(
        "/api/v1/connected-accounts/authorization-link",
        json={"connection_name": "other", "identifier": "user_0"},
    )

    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        params: dict[str, Any] = {"connection_name": "discord", "page_size": 3}
        if token:
            params["page_token"] = token
        response = api.get("/api/v1/connected-accounts", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"connected_accounts", "next_page_token"}
        assert len(body["connected_accounts"]) <= 3
        seen.extend(a["id"] for a in body["connected_accounts"])
        pages += 1
        token = body["next_page_token"]
        if token is None:
            break
    assert seen == made
    assert pages == 3

    everything = api.get("/api/v1/connected-accounts", params={"page_size": 200}).json()
    assert len(everything["connected_accounts"]) == 8
    assert everything["next_page_token"] is None
    one = api.get(
        "/api/v1/connected-accounts", params={"identifier": "user_0", "connection_name": "other"}
    ).json()["connected_accounts"]
    assert [a["connection_name"] for a in one] == ["other"]
    pending = api.get("/api/v1/connected-accounts", params={"status": "PENDING_AUTH"}).json()
    assert len(pending["connected_accounts"]) == 8
    active = api.get("/api/v1/connected-accounts", params={"status": "ACTIVE"}).json()
    assert active == {"connected_accounts": [], "next_page_token": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 201}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"page_token": "garbage!"}, "page_token"),
        ({"page_token": "eyJub3QiOiAiYW4gYWZ0ZXIifQ"}, "page_token"),
        ({"status": "SLEEPING"}, "status"),
        ({"identifier": ""}, "identifier"),
    ],
)
def test_bad_list_parameters_are_400(api: ApiEnv, params: dict[str, Any], field: str) -> None:
    response = api.get("/api/v1/connected-accounts", params=params)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]["fields"], error


def test_listing_an_unknown_connection_is_404(api: ApiEnv) -> None:
    response = api.get("/api/v1/connected-accounts", params={"connection_name": "nope"})
    assert_error(response, 404, "CONNECTION_NOT_FOUND")


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"identifier": "u"}, {"connection_name"}),
        ({"connection_name": "discord"}, {"identifier"}),
        ({}, {"connection_name", "identifier"}),
        ({"connection_name": "discord", "identifier": 5}, {"identifier"}),
        ({"connection_name": ["discord"], "identifier": "u"}, {"connection_name"}),
        ({"connection_name": "discord", "identifier": "u", "extra": True}, {"extra"}),
        ({"connection_name": "discord", "identifier": ""}, {"identifier"}),
        ({"connection_name": "discord", "identifier": "   "}, {"identifier"}),
        ({"connection_name": "discord", "identifier": "a\nb"}, {"identifier"}),
        ({"connection_name": "discord", "identifier": "x" * 256}, {"identifier"}),
        (
            {"connection_name": "discord", "identifier": "u", "user_verify_url": "ftp://x/y"},
            {"user_verify_url"},
        ),
        ({"connection_name": "discord", "identifier": "u", "state": 7}, {"state"}),
        (
            {"connection_name": "discord", "identifier": "u", "allow_user_change": "yes"},
            {"allow_user_change"},
        ),
    ],
)
def test_bad_authorization_link_bodies_are_400_and_create_nothing(
    api: ApiEnv, payload: dict[str, Any], fields: set[str]
) -> None:
    api.connect()
    response = api.post("/api/v1/connected-accounts/authorization-link", json=payload)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]) == fields, error
    listed = api.get("/api/v1/connected-accounts").json()
    assert listed["connected_accounts"] == []


def test_an_authorization_link_for_an_unknown_connection_is_404(api: ApiEnv) -> None:
    response = api.post(
        "/api/v1/connected-accounts/authorization-link",
        json={"connection_name": "nope", "identifier": "u"},
    )
    assert_error(response, 404, "CONNECTION_NOT_FOUND")


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"auth_request_id", "identifier"}),
        ({"auth_request_id": 1, "identifier": "u"}, {"auth_request_id"}),
        ({"auth_request_id": "a", "identifier": "u", "more": 1}, {"more"}),
    ],
)
def test_bad_verify_bodies_are_400(api: ApiEnv, payload: dict[str, Any], fields: set[str]) -> None:
    response = api.post("/api/v1/connected-accounts/verify", json=payload)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]) == fields


def test_unknown_accounts_and_bad_flags(api: ApiEnv) -> None:
    assert_error(api.get("/api/v1/connected-accounts/01NOPE"), 404, "ACCOUNT_NOT_FOUND")
    assert_error(api.delete("/api/v1/connected-accounts/01NOPE"), 404, "ACCOUNT_NOT_FOUND")
    for name in ("force", "revoke", "revoke_siblings"):
        flag = api.delete("/api/v1/connected-accounts/01NOPE", params={name: "maybe"})
        assert name in assert_error(flag, 400, "VALIDATION_ERROR")["details"]["fields"]
    too_long = api.get("/api/v1/connected-accounts/" + "a" * 65)
    assert "account_id" in assert_error(too_long, 400, "VALIDATION_ERROR")["details"]["fields"]


def test_deleting_one_identifier_of_a_discord_user_is_409_until_the_caller_decides(
    api: ApiEnv,
) -> None:
    api.connect()
    first = link(api, "user_a")
    second = link(api, "user_b")
    for body in (first, second):
        assert walk_consent(body["link"], user_id=GRACE).status_code == 200
    first_id = first["connected_account"]["id"]
    second_id = second["connected_account"]["id"]

    refused = api.delete(f"/api/v1/connected-accounts/{first_id}")

    error = assert_error(refused, 409, "SIBLINGS_AFFECTED")
    assert error["details"]["account_id"] == first_id
    assert error["details"]["provider_user_id"] == GRACE
    assert error["details"]["siblings"] == [
        {"id": second_id, "identifier": "user_b", "connection_name": "discord", "status": "ACTIVE"}
    ]
    assert "revoke_siblings=true" in error["message"]
    assert "revoke=false" in error["message"]
    assert stats(api)["revocations"] == 0
    assert api.get(f"/api/v1/connected-accounts/{first_id}").status_code == 200

    deleted = api.delete(
        f"/api/v1/connected-accounts/{first_id}", params={"revoke_siblings": "true"}
    )

    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["revoked"] is True
    assert deleted.json()["siblings_disconnected"] == [
        {
            "id": second_id,
            "identifier": "user_b",
            "connection_name": "discord",
            "status": "DISCONNECTED",
        }
    ]
    sibling = api.get(f"/api/v1/connected-accounts/{second_id}").json()["connected_account"]
    assert sibling["status"] == "DISCONNECTED"
    assert first_id in sibling["status_reason"]
    # Disconnected means "send a new link": a tool call says so.
    call = api.post(
        "/api/v1/tools/execute",
        json={
            "tool_name": "discord_get_my_user",
            "tool_input": {},
            "connection_name": "discord",
            "identifier": "user_b",
        },
    )
    assert call.status_code >= 400
    assert "authorization_link" in call.json()["error"]["details"]


def test_revoke_false_deletes_here_only(api: ApiEnv) -> None:
    api.connect()
    first = link(api, "user_a")
    second = link(api, "user_b")
    for body in (first, second):
        assert walk_consent(body["link"], user_id=GRACE).status_code == 200
    first_id = first["connected_account"]["id"]

    deleted = api.delete(f"/api/v1/connected-accounts/{first_id}", params={"revoke": "false"})

    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "deleted": True,
        "id": first_id,
        "revoked": False,
        "revoke_error": None,
        "siblings_disconnected": [],
    }
    assert stats(api)["revocations"] == 0
    still = api.get(f"/api/v1/connected-accounts/{second['connected_account']['id']}")
    assert still.json()["connected_account"]["status"] == "ACTIVE"


def test_a_link_may_allow_changing_the_discord_user(api: ApiEnv) -> None:
    api.connect()
    first = link(api, "user_a")
    assert walk_consent(first["link"], user_id=GRACE).status_code == 200
    account_id = first["connected_account"]["id"]

    refused = walk_consent(link(api, "user_a")["link"], user_id=ADA)
    assert refused.status_code == 409
    kept = api.get(f"/api/v1/connected-accounts/{account_id}").json()["connected_account"]
    assert kept["provider_user_id"] == GRACE

    allowed = walk_consent(link(api, "user_a", allow_user_change=True)["link"], user_id=ADA)
    assert allowed.status_code == 200, allowed.text
    changed = api.get(f"/api/v1/connected-accounts/{account_id}").json()["connected_account"]
    assert changed["provider_user_id"] == ADA


def test_a_connection_requiring_user_verification_needs_a_verify_url(api: ApiEnv) -> None:
    connection = api.connect()
    patched = api.patch("/api/v1/connections/discord", json={"require_user_verification": True})
    assert patched.status_code == 200, patched.text
    assert patched.json()["connection"]["require_user_verification"] is True

    refused = api.post(
        "/api/v1/connected-accounts/authorization-link",
        json={"connection_name": "discord", "identifier": "user_a"},
    )

    error = assert_error(refused, 400, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]) == {"user_verify_url"}
    assert api.get("/api/v1/connected-accounts").json()["connected_accounts"] == []
    body = link(api, "user_a", user_verify_url=f"{api.url}/healthz")
    result = walk_consent(body["link"], user_id=GRACE)
    assert urlsplit(result.visited[-1]).path == "/healthz"
    account_id = body["connected_account"]["id"]
    pending = api.get(f"/api/v1/connected-accounts/{account_id}").json()["connected_account"]
    assert pending["status"] == "PENDING_VERIFICATION"
    assert connection["require_user_verification"] is False
