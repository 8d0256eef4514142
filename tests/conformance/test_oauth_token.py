"""Token endpoint, authorization_code grant (discord-api.md §1.2, §1.5, §1.7)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tokenward._serving import BackgroundServer
from tokenward.clock import ManualClock
from tokenward.sandbox import SandboxSettings, create_sandbox_app

from . import DEFAULT_REDIRECT, authorize, exchange, loopback_client, register_app

INVALID_CODE = {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'}


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with loopback_client(sandbox_url) as c:
        yield c


@pytest.fixture
def app(sandbox_url: str) -> dict[str, Any]:
    return register_app(sandbox_url, [DEFAULT_REDIRECT, "http://127.0.0.1:9/second"])


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert set(body) <= {"error", "error_description"}
    return body


@pytest.mark.parametrize("path", ["/api/oauth2/token", "/api/v10/oauth2/token"])
@pytest.mark.parametrize("basic", [True, False], ids=["basic", "form"])
def test_code_exchange_response_shape(
    client: httpx.Client, app: dict[str, Any], path: str, basic: bool
) -> None:
    code = authorize(client, app, scope="identify guilds")
    response = exchange(client, app, code, basic=basic, path=path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 604800
    assert body["scope"].split(" ") == ["identify", "guilds"]
    assert body["access_token"] != body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"


def test_code_is_single_use(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app)
    assert exchange(client, app, code).status_code == 200
    replay = exchange(client, app, code)
    assert assert_oauth_error(replay, 400, "invalid_grant") == INVALID_CODE


def test_unknown_code(client: httpx.Client, app: dict[str, Any]) -> None:
    response = exchange(client, app, "not-a-code")
    assert assert_oauth_error(response, 400, "invalid_grant") == INVALID_CODE


def test_code_of_another_application(
    sandbox_url: str, client: httpx.Client, app: dict[str, Any]
) -> None:
    other = register_app(sandbox_url, [DEFAULT_REDIRECT])
    code = authorize(client, app)
    response = exchange(client, other, code, redirect_uri=DEFAULT_REDIRECT)
    assert assert_oauth_error(response, 400, "invalid_grant") == INVALID_CODE
    # A failed attempt by another client does not burn the owner's code.
    assert exchange(client, app, code).status_code == 200


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:9/second", DEFAULT_REDIRECT + "/", "http://evil.example/callback"],
)
def test_redirect_uri_must_equal_the_authorize_one(
    client: httpx.Client, app: dict[str, Any], redirect_uri: str
) -> None:
    code = authorize(client, app)  # authorized with DEFAULT_REDIRECT
    response = exchange(client, app, code, redirect_uri=redirect_uri)
    assert assert_oauth_error(response, 400, "invalid_grant") == INVALID_CODE


def test_redirect_uri_must_be_sent_when_authorize_sent_one(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    code = authorize(client, app)
    response = client.post(
        "/api/v10/oauth2/token",
        data={"grant_type": "authorization_code", "code": code},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert_oauth_error(response, 400, "invalid_grant")


def test_unknown_client(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app)
    fake = {**app, "client_id": "1399999999999999999"}
    for basic in (True, False):
        response = exchange(client, fake, code, basic=basic)
        assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize("basic", [True, False], ids=["basic", "form"])
def test_wrong_secret(client: httpx.Client, app: dict[str, Any], basic: bool) -> None:
    code = authorize(client, app)
    wrong = {**app, "client_secret": app["client_secret"] + "x"}
    response = exchange(client, wrong, code, basic=basic)
    assert_oauth_error(response, 401, "invalid_client")
    assert app["client_secret"] not in response.text
    # The code survives a client-authentication failure.
    assert exchange(client, app, code, basic=basic).status_code == 200


def test_missing_client_authentication(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app)
    response = client.post(
        "/api/v10/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": DEFAULT_REDIRECT},
    )
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer something",
    ],
)
def test_malformed_authorization_header(
    client: httpx.Client, app: dict[str, Any], header: str
) -> None:
    code = authorize(client, app)
    response = client.post(
        "/api/v10/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": DEFAULT_REDIRECT},
        headers={"Authorization": header},
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_json_body_is_refused(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app)
    response = client.post(
        "/api/v10/oauth2/token",
        json={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": DEFAULT_REDIRECT,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")
    # Even with Basic auth the JSON body is not read.
    response = client.post(
        "/api/v10/oauth2/token",
        json={"grant_type": "authorization_code", "code": code, "redirect_uri": DEFAULT_REDIRECT},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_multipart_body_is_refused(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app)
    response = client.post(
        "/api/v10/oauth2/token",
        files={"grant_type": (None, "authorization_code"), "code": (None, code)},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize("grant_type", ["password", "implicit", "", None])
def test_unsupported_grant_type(
    client: httpx.Client, app: dict[str, Any], grant_type: str | None
) -> None:
    data = {} if grant_type is None else {"grant_type": grant_type}
    response = client.post(
        "/api/v10/oauth2/token", data=data, auth=(app["client_id"], app["client_secret"])
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_token_endpoint_only_accepts_post(client: httpx.Client) -> None:
    assert client.get("/api/v10/oauth2/token").status_code == 405


def test_omitted_redirect_uri_at_authorize(client: httpx.Client, app: dict[str, Any]) -> None:
    """Authorize without redirect_uri: Discord uses the first registered URI (§1.3)."""
    query = {"client_id": app["client_id"], "response_type": "code", "scope": "identify"}
    page = client.get("/oauth2/authorize", params=query)
    assert page.status_code == 200
    code = authorize(client, app, redirect_uri="")
    # Sending the first registered URI at the token endpoint is accepted ...
    assert exchange(client, app, code, redirect_uri=DEFAULT_REDIRECT).status_code == 200
    # ... another registered one is not.
    code = authorize(client, app, redirect_uri="")
    response = exchange(client, app, code, redirect_uri="http://127.0.0.1:9/second")
    assert_oauth_error(response, 400, "invalid_grant")


@pytest.fixture(scope="module")
def clocked() -> Iterator[tuple[str, ManualClock]]:
    clock = ManualClock()
    settings = SandboxSettings(code_lifetime=600, token_lifetime=3600, rate_limits=False)
    with BackgroundServer(create_sandbox_app(settings, clock)) as server:
        yield server.url, clock


def test_code_expires_after_its_lifetime(clocked: tuple[str, ManualClock]) -> None:
    url, clock = clocked
    app = register_app(url)
    with loopback_client(url) as client:
        fresh = authorize(client, app)
        stale = authorize(client, app)
        clock.advance(599)
        assert exchange(client, app, fresh).status_code == 200
        clock.advance(1)
        response = exchange(client, app, stale)
        assert assert_oauth_error(response, 400, "invalid_grant") == INVALID_CODE


def test_token_lifetime_setting_is_reported(clocked: tuple[str, ManualClock]) -> None:
    url, _ = clocked
    app = register_app(url)
    with loopback_client(url) as client:
        code = authorize(client, app)
        assert exchange(client, app, code).json()["expires_in"] == 3600
