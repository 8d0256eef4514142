"""Authorize endpoint (discord-api.md §1.1, §1.3, §1.4): what redirects, what does not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from . import DEFAULT_REDIRECT, loopback_client, new_verifier, query_of, register_app, s256

INVALID_SCOPE = "The requested scope is invalid, unknown, or malformed."


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with loopback_client(sandbox_url) as c:
        yield c


@pytest.fixture
def app(sandbox_url: str) -> dict[str, Any]:
    return register_app(sandbox_url, [DEFAULT_REDIRECT, "http://127.0.0.1:9/other?x=1"])


def params(app: dict[str, Any], **extra: str) -> dict[str, str]:
    return {
        "client_id": app["client_id"],
        "response_type": "code",
        "scope": "identify guilds",
        "redirect_uri": DEFAULT_REDIRECT,
        "state": "abc123",
        **extra,
    }


@pytest.mark.parametrize(
    "path", ["/oauth2/authorize", "/api/oauth2/authorize", "/api/v10/oauth2/authorize"]
)
def test_valid_request_shows_consent_page_on_every_path(
    client: httpx.Client, app: dict[str, Any], path: str
) -> None:
    response = client.get(path, params=params(app))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers


@pytest.mark.parametrize("client_id", ["1399999999999999999", "not-a-snowflake", ""])
def test_unknown_client_gets_an_error_page_never_a_redirect(
    client: httpx.Client, app: dict[str, Any], client_id: str
) -> None:
    response = client.get("/oauth2/authorize", params=params(app, client_id=client_id))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def test_missing_client_id_gets_an_error_page(client: httpx.Client) -> None:
    response = client.get(
        "/oauth2/authorize", params={"response_type": "code", "scope": "identify"}
    )
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:9/callback/",  # trailing slash
        "http://127.0.0.1:9/CALLBACK",  # case
        "http://127.0.0.1:9/callback?extra=1",  # added query
        "https://127.0.0.1:9/callback",  # scheme
        "http://evil.example/callback",
    ],
)
def test_redirect_uri_must_match_exactly(
    client: httpx.Client, app: dict[str, Any], redirect_uri: str
) -> None:
    response = client.get("/oauth2/authorize", params=params(app, redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "location" not in response.headers


def test_omitted_redirect_uri_uses_the_first_registered_one(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    query = params(app, scope="identify connections")
    del query["redirect_uri"]
    response = client.get("/oauth2/authorize", params=query)
    assert response.status_code == 200
    # An error after the redirect URI is settled goes to the first registered URI.
    query["scope"] = "identify nonsense"
    response = client.get("/oauth2/authorize", params=query)
    assert response.status_code == 302
    assert response.headers["location"].startswith(DEFAULT_REDIRECT + "?")


@pytest.mark.parametrize("scope", ["identify nonsense", "rpc", "identify  bot", ""])
def test_unknown_or_unapproved_scope_redirects_with_invalid_scope(
    client: httpx.Client, app: dict[str, Any], scope: str
) -> None:
    response = client.get("/oauth2/authorize", params=params(app, scope=scope))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(DEFAULT_REDIRECT + "?")
    assert query_of(location) == {
        "error": "invalid_scope",
        "error_description": INVALID_SCOPE,
        "state": "abc123",
    }


def test_error_redirect_keeps_the_registered_query(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    uri = "http://127.0.0.1:9/other?x=1"
    response = client.get("/oauth2/authorize", params=params(app, redirect_uri=uri, scope="x"))
    assert response.status_code == 302
    back = query_of(response.headers["location"])
    assert back["x"] == "1"
    assert back["error"] == "invalid_scope"


@pytest.mark.parametrize("response_type", ["token", "id_token", "bogus"])
def test_other_response_types_redirect_unsupported_response_type(
    client: httpx.Client, app: dict[str, Any], response_type: str
) -> None:
    response = client.get("/oauth2/authorize", params=params(app, response_type=response_type))
    assert response.status_code == 302
    back = query_of(response.headers["location"])
    assert back["error"] == "unsupported_response_type"
    assert back["state"] == "abc123"


@pytest.mark.parametrize("method", ["plain", "s256", "S512", None])
def test_pkce_method_other_than_s256_is_refused(
    client: httpx.Client, app: dict[str, Any], method: str | None
) -> None:
    verifier = new_verifier()
    extra = {"code_challenge": verifier if method == "plain" else s256(verifier)}
    if method is not None:
        extra["code_challenge_method"] = method
    response = client.get("/oauth2/authorize", params=params(app, **extra))
    assert response.status_code == 302
    back = query_of(response.headers["location"])
    assert back == {
        "error": "invalid_request",
        "error_description": 'Unsupported "code_challenge_method"',
        "state": "abc123",
    }


@pytest.mark.parametrize(
    "challenge",
    [
        "abc",  # too short
        s256("x" * 43) + "A",  # 44 characters
        s256("x" * 43)[:-1] + "=",  # not base64url
        "+" * 43,  # standard base64 alphabet
    ],
)
def test_malformed_challenge_is_refused(
    client: httpx.Client, app: dict[str, Any], challenge: str
) -> None:
    response = client.get(
        "/oauth2/authorize",
        params=params(app, code_challenge=challenge, code_challenge_method="S256"),
    )
    assert response.status_code == 302
    back = query_of(response.headers["location"])
    assert back["error"] == "invalid_request"
    assert back["state"] == "abc123"


def test_redirect_without_state_has_no_state(client: httpx.Client, app: dict[str, Any]) -> None:
    query = params(app, scope="bogus")
    del query["state"]
    response = client.get("/oauth2/authorize", params=query)
    assert response.status_code == 302
    assert "state" not in query_of(response.headers["location"])
