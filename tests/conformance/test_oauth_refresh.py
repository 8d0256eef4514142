"""refresh_token grant (discord-api.md §1.5, §1.7): every refresh rotates the refresh token and
the old one is dead: ``400 {"error": "invalid_grant", "error_description": "Invalid
\\"refresh_token\\" in request"}``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from . import loopback_client, refresh, register_app, token_details, tokens_for

DEAD_REFRESH = {"error": "invalid_grant", "error_description": 'Invalid "refresh_token" in request'}


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with loopback_client(sandbox_url) as c:
        yield c


@pytest.fixture
def app(sandbox_url: str) -> dict[str, Any]:
    return register_app(sandbox_url)


def test_refresh_rotates(sandbox_url: str, client: httpx.Client, app: dict[str, Any]) -> None:
    first = tokens_for(client, app, scope="identify guilds")
    response = refresh(client, app, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert set(second) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert second["token_type"] == "Bearer"
    assert second["expires_in"] == 604800
    assert second["scope"] == first["scope"]
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]

    # The old refresh token is dead, with Discord's exact body.
    replay = refresh(client, app, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json() == DEAD_REFRESH

    # The new one works (and rotates in turn).
    third = refresh(client, app, second["refresh_token"])
    assert third.status_code == 200
    assert refresh(client, app, second["refresh_token"]).json() == DEAD_REFRESH

    details = token_details(sandbox_url)
    assert details[third.json()["access_token"]]["valid"] is True
    assert details[first["refresh_token"]]["valid"] is False


def test_failed_replay_does_not_kill_the_live_refresh_token(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    first = tokens_for(client, app)
    second = refresh(client, app, first["refresh_token"]).json()
    assert refresh(client, app, first["refresh_token"]).status_code == 400
    assert refresh(client, app, second["refresh_token"]).status_code == 200


def test_refresh_token_of_another_application(
    sandbox_url: str, client: httpx.Client, app: dict[str, Any]
) -> None:
    other = register_app(sandbox_url)
    tokens = tokens_for(client, app)
    response = refresh(client, other, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json() == DEAD_REFRESH
    # Still usable by its own application.
    assert refresh(client, app, tokens["refresh_token"]).status_code == 200


def test_access_token_is_not_a_refresh_token(client: httpx.Client, app: dict[str, Any]) -> None:
    tokens = tokens_for(client, app)
    response = refresh(client, app, tokens["access_token"])
    assert response.json() == DEAD_REFRESH


def test_unknown_and_missing_refresh_token(client: httpx.Client, app: dict[str, Any]) -> None:
    assert refresh(client, app, "bogus").json() == DEAD_REFRESH
    response = client.post(
        "/api/v10/oauth2/token",
        data={"grant_type": "refresh_token"},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_refresh_needs_client_authentication(client: httpx.Client, app: dict[str, Any]) -> None:
    tokens = tokens_for(client, app)
    response = client.post(
        "/api/v10/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    # Client-authentication failures do not consume the refresh token.
    assert refresh(client, app, tokens["refresh_token"]).status_code == 200


def test_refresh_after_revocation_is_invalid_grant(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    tokens = tokens_for(client, app)
    revoked = client.post(
        "/api/oauth2/token/revoke",
        data={"token": tokens["access_token"]},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert revoked.status_code == 200
    response = refresh(client, app, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json() == DEAD_REFRESH


def test_refresh_json_body_is_refused(client: httpx.Client, app: dict[str, Any]) -> None:
    tokens = tokens_for(client, app)
    response = client.post(
        "/api/v10/oauth2/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
