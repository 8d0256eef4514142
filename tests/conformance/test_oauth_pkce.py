"""PKCE at the token endpoint (discord-api.md §1.4): S256 only, verifier 43–128 characters of
``A-Z a-z 0-9 - . _ ~``, required once a challenge was sent, checked against it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from . import authorize, exchange, loopback_client, new_verifier, register_app, s256


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with loopback_client(sandbox_url) as c:
        yield c


@pytest.fixture
def app(sandbox_url: str) -> dict[str, Any]:
    return register_app(sandbox_url)


def error_of(response: httpx.Response) -> tuple[int, str, str | None]:
    body = response.json()
    return response.status_code, body["error"], body.get("error_description")


@pytest.mark.parametrize("length", [43, 64, 128])
@pytest.mark.parametrize("basic", [True, False], ids=["basic", "form"])
def test_pkce_success(client: httpx.Client, app: dict[str, Any], length: int, basic: bool) -> None:
    verifier = new_verifier(length)
    code = authorize(client, app, verifier=verifier)
    response = exchange(client, app, code, verifier=verifier, basic=basic)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


def test_verifier_with_every_allowed_character(client: httpx.Client, app: dict[str, Any]) -> None:
    verifier = "AZaz09-._~" * 5
    code = authorize(client, app, verifier=verifier)
    assert exchange(client, app, code, verifier=verifier).status_code == 200


def test_missing_verifier(client: httpx.Client, app: dict[str, Any]) -> None:
    verifier = new_verifier()
    code = authorize(client, app, verifier=verifier)
    response = exchange(client, app, code)
    assert error_of(response) == (400, "invalid_request", 'Missing "code_verifier"')


@pytest.mark.parametrize(
    "bad",
    [
        "a" * 42,  # one short of the 43-character minimum
        "a" * 129,  # one over the maximum
        "a" * 42 + "+",  # '+' is not in the alphabet
        "a" * 42 + "/",
        "a" * 42 + "=",
        "a" * 42 + " ",
        "a" * 42 + "é",
    ],
    ids=["short", "long", "plus", "slash", "equals", "space", "non-ascii"],
)
def test_malformed_verifier(client: httpx.Client, app: dict[str, Any], bad: str) -> None:
    code = authorize(client, app, verifier=new_verifier())
    response = exchange(client, app, code, verifier=bad)
    assert error_of(response) == (400, "invalid_request", 'Invalid "code_verifier"')


def test_mismatched_verifier(client: httpx.Client, app: dict[str, Any]) -> None:
    verifier = new_verifier()
    code = authorize(client, app, verifier=verifier)
    response = exchange(client, app, code, verifier=new_verifier())
    status, error, _ = error_of(response)
    assert (status, error) == (400, "invalid_grant")


def test_plain_challenge_cannot_be_used_as_verifier(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    """The challenge itself (43 valid characters) is not the verifier."""
    verifier = new_verifier()
    code = authorize(client, app, verifier=verifier)
    response = exchange(client, app, code, verifier=s256(verifier))
    assert error_of(response)[:2] == (400, "invalid_grant")


def test_plain_method_refused_at_authorize(client: httpx.Client, app: dict[str, Any]) -> None:
    verifier = new_verifier()
    response = client.get(
        "/oauth2/authorize",
        params={
            "client_id": app["client_id"],
            "response_type": "code",
            "scope": "identify",
            "redirect_uri": app["redirect_uris"][0],
            "code_challenge": verifier,
            "code_challenge_method": "plain",
        },
    )
    assert response.status_code == 302
    assert "error=invalid_request" in response.headers["location"]
    assert "code=" not in response.headers["location"]


def test_confidential_client_may_send_secret_and_verifier(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    """§1.4: Basic auth plus code_verifier together (the Social SDK server-side sample)."""
    verifier = new_verifier()
    code = authorize(client, app, verifier=verifier)
    assert exchange(client, app, code, verifier=verifier, basic=True).status_code == 200


def test_without_challenge_no_verifier_is_needed(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app)
    assert exchange(client, app, code).status_code == 200
