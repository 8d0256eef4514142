"""Revocation (discord-api.md §1.6, RFC 7009): revoking any one token kills every access and
refresh token of that user↔application authorization, whatever the hint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from . import loopback_client, refresh, register_app, token_details, tokens_for

ADA = "1100000000000000001"
GRACE = "1100000000000000002"


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with loopback_client(sandbox_url) as c:
        yield c


@pytest.fixture
def app(sandbox_url: str) -> dict[str, Any]:
    return register_app(sandbox_url)


def revoke(
    client: httpx.Client,
    app: dict[str, Any],
    token: str,
    hint: str | None = None,
    *,
    basic: bool = True,
    path: str = "/api/oauth2/token/revoke",
) -> httpx.Response:
    data = {"token": token}
    if hint is not None:
        data["token_type_hint"] = hint
    if basic:
        return client.post(path, data=data, auth=(app["client_id"], app["client_secret"]))
    data |= {"client_id": app["client_id"], "client_secret": app["client_secret"]}
    return client.post(path, data=data)


def me(client: httpx.Client, access_token: str) -> httpx.Response:
    return client.get("/api/v10/oauth2/@me", headers={"Authorization": f"Bearer {access_token}"})


@pytest.mark.parametrize(
    ("which", "hint"),
    [
        ("refresh_token", None),
        ("refresh_token", "refresh_token"),
        ("access_token", None),
        ("access_token", "refresh_token"),  # a wrong hint changes nothing
    ],
)
def test_revoking_one_token_kills_the_whole_grant(
    sandbox_url: str, client: httpx.Client, app: dict[str, Any], which: str, hint: str | None
) -> None:
    old = tokens_for(client, app, user_id=ADA)
    new = refresh(client, app, old["refresh_token"]).json()  # a second access token, same grant
    later = tokens_for(client, app, user_id=ADA)  # a second code exchange, same user and app
    for token in (old["access_token"], new["access_token"], later["access_token"]):
        assert me(client, token).status_code == 200

    assert revoke(client, app, new[which], hint).status_code == 200

    details = token_details(sandbox_url)
    for body in (old, new, later):
        assert details[body["access_token"]]["valid"] is False
        assert details[body["refresh_token"]]["valid"] is False
        assert me(client, body["access_token"]).status_code == 401
    assert refresh(client, app, later["refresh_token"]).status_code == 400


def test_revocation_spares_other_users_and_applications(
    sandbox_url: str, client: httpx.Client, app: dict[str, Any]
) -> None:
    other_app = register_app(sandbox_url)
    ada = tokens_for(client, app, user_id=ADA)
    grace = tokens_for(client, app, user_id=GRACE)
    ada_elsewhere = tokens_for(client, other_app, user_id=ADA)
    assert revoke(client, app, ada["refresh_token"]).status_code == 200
    assert me(client, ada["access_token"]).status_code == 401
    assert me(client, grace["access_token"]).status_code == 200
    assert me(client, ada_elsewhere["access_token"]).status_code == 200
    assert refresh(client, app, grace["refresh_token"]).status_code == 200


def test_another_application_cannot_revoke(
    sandbox_url: str, client: httpx.Client, app: dict[str, Any]
) -> None:
    other_app = register_app(sandbox_url)
    tokens = tokens_for(client, app)
    assert revoke(client, other_app, tokens["access_token"]).status_code == 200
    assert me(client, tokens["access_token"]).status_code == 200
    assert token_details(sandbox_url)[tokens["refresh_token"]]["valid"] is True


def test_unknown_token_is_200(client: httpx.Client, app: dict[str, Any]) -> None:
    response = revoke(client, app, "never-issued")
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/oauth2/token/revoke", "/api/v10/oauth2/token/revoke"])
def test_form_field_client_auth_and_both_paths(
    client: httpx.Client, app: dict[str, Any], path: str
) -> None:
    tokens = tokens_for(client, app)
    assert revoke(client, app, tokens["access_token"], basic=False, path=path).status_code == 200
    assert me(client, tokens["access_token"]).status_code == 401


def test_revoke_requires_client_authentication(client: httpx.Client, app: dict[str, Any]) -> None:
    tokens = tokens_for(client, app)
    response = client.post("/api/oauth2/token/revoke", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    wrong = {**app, "client_secret": "wrong"}
    assert revoke(client, wrong, tokens["access_token"]).status_code == 401
    assert me(client, tokens["access_token"]).status_code == 200


def test_revoke_refuses_json(client: httpx.Client, app: dict[str, Any]) -> None:
    tokens = tokens_for(client, app)
    response = client.post(
        "/api/oauth2/token/revoke",
        json={"token": tokens["access_token"]},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 400
    assert "error" in response.json()
    assert me(client, tokens["access_token"]).status_code == 200


def test_revoke_without_token(client: httpx.Client, app: dict[str, Any]) -> None:
    response = client.post(
        "/api/oauth2/token/revoke", data={}, auth=(app["client_id"], app["client_secret"])
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_revocation_ends_prompt_none(client: httpx.Client, app: dict[str, Any]) -> None:
    """After revocation the app is no longer authorized, so prompt=none shows the page again."""
    tokens = tokens_for(client, app)
    query = {
        "client_id": app["client_id"],
        "response_type": "code",
        "scope": "identify",
        "redirect_uri": app["redirect_uris"][0],
        "prompt": "none",
    }
    assert client.get("/oauth2/authorize", params=query).status_code == 302
    revoke(client, app, tokens["access_token"])
    assert client.get("/oauth2/authorize", params=query).status_code == 200
