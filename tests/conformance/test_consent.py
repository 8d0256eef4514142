"""The consent page (issue #2, discord-api.md §1.3): a plain form with Authorize and Cancel,
a choice of fake users, and ``prompt=none`` skipping it after a prior approval."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from . import DEFAULT_REDIRECT, consent, loopback_client, parse_consent, query_of, register_app

ACCESS_DENIED = "The resource owner or authorization server denied the request"


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with loopback_client(sandbox_url) as c:
        yield c


@pytest.fixture
def app(sandbox_url: str) -> dict[str, Any]:
    return register_app(sandbox_url, [DEFAULT_REDIRECT], name="Quill <Notes> & Co")


@pytest.fixture
def users(sandbox_url: str) -> list[dict[str, Any]]:
    """The sandbox's fake users, as the fixtures endpoint lists them (or the fixtures module)."""
    from tokenward.sandbox.fixtures import USERS

    return [{"id": u.id, "username": u.username} for u in USERS]


def params(app: dict[str, Any], **extra: str) -> dict[str, str]:
    return {
        "client_id": app["client_id"],
        "response_type": "code",
        "scope": "identify email guilds",
        "redirect_uri": DEFAULT_REDIRECT,
        "state": "s-1",
        **extra,
    }


def test_page_names_app_scopes_users_and_both_buttons(
    client: httpx.Client, app: dict[str, Any], users: list[dict[str, Any]]
) -> None:
    page = client.get("/oauth2/authorize", params=params(app))
    assert page.status_code == 200
    html = page.text
    # The application's name, escaped.
    assert "Quill &lt;Notes&gt; &amp; Co" in html
    assert "<Notes>" not in html
    for scope in ("identify", "email", "guilds"):
        assert f"<code>{scope}</code>" in html
    form = parse_consent(html)
    assert form.method == "post"
    assert form.action == "/oauth2/authorize"
    assert [uid for uid, _ in form.users] == [u["id"] for u in users]
    assert [checked for _, checked in form.users] == [True] + [False] * (len(users) - 1)
    assert ("action", "authorize", "Authorize") in form.buttons
    assert ("action", "cancel", "Cancel") in form.buttons
    assert form.buttons[0][1] == "authorize"  # the default button: Enter authorizes
    assert form.hidden["client_id"] == app["client_id"]
    assert form.hidden["state"] == "s-1"
    assert form.hidden["scope"] == "identify email guilds"
    assert "<script" not in html.lower()  # works without JavaScript


def test_page_escapes_reflected_parameters(client: httpx.Client, app: dict[str, Any]) -> None:
    page = client.get("/oauth2/authorize", params=params(app, state='"><script>x()</script>'))
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert parse_consent(page.text).hidden["state"] == '"><script>x()</script>'


def test_authorize_button_redirects_with_code_and_state(
    client: httpx.Client, app: dict[str, Any], users: list[dict[str, Any]]
) -> None:
    response = consent(client, params(app), user_id=users[1]["id"])
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(DEFAULT_REDIRECT + "?")
    back = query_of(location)
    assert set(back) == {"code", "state"}
    assert back["state"] == "s-1"
    # The code belongs to the user picked on the page.
    token = client.post(
        "/api/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": DEFAULT_REDIRECT,
        },
        auth=(app["client_id"], app["client_secret"]),
    )
    assert token.status_code == 200
    details = httpx.get(f"{client.base_url}/_sandbox/tokens", verify=False).json()["details"]
    (entry,) = [t for t in details["access_tokens"] if t["value"] == token.json()["access_token"]]
    assert entry["user_id"] == users[1]["id"]


def test_authorize_sets_an_httponly_lax_session_cookie(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    response = consent(client, params(app))
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_cancel_button_redirects_with_access_denied(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    response = consent(client, params(app), action="cancel")
    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {
        "error": "access_denied",
        "error_description": ACCESS_DENIED,
        "state": "s-1",
    }
    assert "set-cookie" not in response.headers
    tokens = httpx.get(f"{client.base_url}/_sandbox/tokens", verify=False).json()
    assert tokens["codes"] == []


def test_form_post_is_revalidated(client: httpx.Client, app: dict[str, Any]) -> None:
    form = parse_consent(client.get("/oauth2/authorize", params=params(app)).text)
    tampered = {**form.hidden, "redirect_uri": "http://evil.example/cb", "action": "authorize"}
    tampered["user_id"] = form.users[0][0]
    response = client.post("/oauth2/authorize", data=tampered)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_unknown_user_is_refused(client: httpx.Client, app: dict[str, Any]) -> None:
    form = parse_consent(client.get("/oauth2/authorize", params=params(app)).text)
    data = {**form.hidden, "action": "authorize", "user_id": "1"}
    response = client.post("/oauth2/authorize", data=data)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_prompt_none_skips_the_page_after_approval(
    client: httpx.Client, app: dict[str, Any], users: list[dict[str, Any]]
) -> None:
    assert consent(client, params(app), user_id=users[2]["id"]).status_code == 302
    # Same scopes (or fewer), same browser: straight back with a code.
    for scope in ("identify email guilds", "guilds identify", "email"):
        response = client.get(
            "/oauth2/authorize", params=params(app, prompt="none", scope=scope, state="again")
        )
        assert response.status_code == 302, scope
        back = query_of(response.headers["location"])
        assert set(back) == {"code", "state"}
        assert back["state"] == "again"


def test_prompt_none_shows_the_page_without_prior_approval(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    response = client.get("/oauth2/authorize", params=params(app, prompt="none"))
    assert response.status_code == 200
    assert "location" not in response.headers


def test_prompt_none_shows_the_page_for_more_scopes(
    client: httpx.Client, app: dict[str, Any]
) -> None:
    assert consent(client, params(app, scope="identify")).status_code == 302
    response = client.get(
        "/oauth2/authorize", params=params(app, prompt="none", scope="identify connections")
    )
    assert response.status_code == 200


def test_prompt_none_needs_the_session_cookie(
    sandbox_url: str, client: httpx.Client, app: dict[str, Any]
) -> None:
    assert consent(client, params(app)).status_code == 302
    with loopback_client(sandbox_url) as other_browser:
        response = other_browser.get("/oauth2/authorize", params=params(app, prompt="none"))
    assert response.status_code == 200


def test_prompt_consent_always_shows_the_page(client: httpx.Client, app: dict[str, Any]) -> None:
    assert consent(client, params(app)).status_code == 302
    response = client.get("/oauth2/authorize", params=params(app, prompt="consent"))
    assert response.status_code == 200


def test_approval_is_per_application(
    sandbox_url: str, client: httpx.Client, app: dict[str, Any]
) -> None:
    other = register_app(sandbox_url, [DEFAULT_REDIRECT])
    assert consent(client, params(app)).status_code == 302
    response = client.get("/oauth2/authorize", params=params(other, prompt="none"))
    assert response.status_code == 200
