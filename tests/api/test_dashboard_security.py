"""The dashboard's doors, over a real socket: sign-in, sessions, CSRF, the throttle, and pages
that answer bad input with the form and the field named."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx

from tokenward.config import Settings
from tokenward.server.container import Container
from tokenward.server.dashboard.security import CookieNames

from .conftest import ApiEnv
from .dashboard_client import PASSWORD, Browser, create_admin, events_of


def _walk(routes: Any) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "original_router"):  # an included router, resolved lazily
            yield from _walk(route.original_router.routes)
        else:
            yield route


def dashboard_routes(api: ApiEnv) -> list[tuple[str, str]]:
    routes = []
    for route in _walk(api.app.routes):
        template = str(getattr(route, "path", ""))
        if template.startswith("/dashboard"):
            if template == "/dashboard/sign-in":
                continue
            path = re.sub(r"\{[^}]+\}", "X1", template)
            for method in sorted(getattr(route, "methods", None) or ()):
                if method != "HEAD":
                    routes.append((method, path))
    return routes


def _list_clients(settings: Settings) -> list[Any]:
    async def read() -> list[Any]:
        container = Container(settings)
        await container.start()
        try:
            return await container.vault.list_api_clients()
        finally:
            await container.close()

    return asyncio.run(read())


def test_every_dashboard_route_without_a_session_redirects_to_sign_in(api: ApiEnv) -> None:
    routes = dashboard_routes(api)
    assert len(routes) >= 25, routes
    before = len(_list_clients(api.settings))
    for method, path in routes:
        response = httpx.request(
            method, api.url + path, data={"name": "x", "scopes": "admin"}, trust_env=False
        )
        assert response.status_code == 303, (method, path, response.status_code)
        location = response.headers["location"]
        assert location.startswith("/dashboard/sign-in?next="), (method, path, location)
    # A made-up cookie is no session either.
    forged = httpx.get(
        api.url + "/dashboard", cookies={"tokenward_session": "made-up"}, trust_env=False
    )
    assert forged.status_code == 303
    assert len(_list_clients(api.settings)) == before


def test_sign_in_sets_a_locked_down_cookie_and_sign_out_ends_the_session(
    api: ApiEnv, browser: Browser
) -> None:
    response = browser.sign_in("alice")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("tokenward_session=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/dashboard" in attributes
    assert "secure" not in attributes  # the public URL is plain http here
    stolen = browser.client.cookies.get("tokenward_session")
    assert stolen
    page = browser.client.get("/dashboard")
    assert page.status_code == 200
    assert "alice" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert events_of(api.settings, "admin.signed_in")[-1]["actor"] == "operator:alice"

    csrf = browser.csrf("/dashboard")
    out = browser.client.post("/dashboard/sign-out", data={"csrf_token": csrf})
    assert out.status_code == 303
    # The old cookie, replayed by someone who copied it, no longer opens anything.
    replay = httpx.get(
        api.url + "/dashboard", cookies={"tokenward_session": stolen}, trust_env=False
    )
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/dashboard/sign-in")
    csrf_replay = httpx.post(
        api.url + "/dashboard/api-clients/new",
        cookies={"tokenward_session": stolen},
        data={"csrf_token": csrf, "name": "sneaky", "scopes": "admin"},
        trust_env=False,
    )
    assert csrf_replay.status_code == 303
    assert "sneaky" not in [c.name for c in _list_clients(api.settings)]


def test_secure_cookie_names_on_https() -> None:
    https = CookieNames.for_base("https://gw.example.com")
    assert https.secure
    assert https.session.startswith("__Secure-")
    plain = CookieNames.for_base("http://127.0.0.1:8080")
    assert not plain.secure


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    api: ApiEnv, browser: Browser
) -> None:
    assert browser.sign_in("alice").status_code == 303
    before = [c.client_id for c in _list_clients(api.settings)]
    for data in (
        {"name": "no-token", "scopes": "admin"},
        {"name": "wrong-token", "scopes": "admin", "csrf_token": "0" * 64},
        {"name": "empty-token", "scopes": "admin", "csrf_token": ""},
    ):
        refused = browser.client.post("/dashboard/api-clients/new", data=data)
        assert refused.status_code == 403, data
        assert "CSRF" in refused.text
    assert [c.client_id for c in _list_clients(api.settings)] == before
    # Another operator's token does not fit this session either.
    create_admin(api.settings, "bob")
    other = Browser(api.url)
    try:
        assert other.sign_in("bob").status_code == 303
        bobs = other.csrf()
    finally:
        other.client.close()
    refused = browser.client.post(
        "/dashboard/api-clients/new", data={"name": "x", "scopes": "admin", "csrf_token": bobs}
    )
    assert refused.status_code == 403
    assert [c.client_id for c in _list_clients(api.settings)] == before

    made = browser.client.post(
        "/dashboard/api-clients/new",
        data={"name": "made-here", "scopes": "accounts:read", "csrf_token": browser.csrf()},
    )
    assert made.status_code == 200
    secret = re.search(r'value="(tws_[^"]+)"', made.text)
    assert secret is not None
    assert "made-here" in [c.name for c in _list_clients(api.settings)]
    created = events_of(api.settings, "api_client.created")[-1]
    assert created["actor"] == "operator:alice"
    # The secret is shown once: the list never carries it.
    assert secret.group(1) not in browser.client.get("/dashboard/api-clients").text


def test_failed_sign_ins_are_throttled_per_username(api: ApiEnv, browser: Browser) -> None:
    create_admin(api.settings, "bob")
    limit = api.settings.dashboard_sign_in_failures
    for _ in range(limit):
        assert browser.sign_in("alice", "not the password").status_code == 401
    throttled = browser.sign_in("alice")  # even the right password waits now
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    assert "Too many failed sign-ins" in throttled.text
    assert browser.client.get("/dashboard").status_code == 303
    other = Browser(api.url)
    try:
        assert other.sign_in("bob").status_code == 303  # bob is not locked out
    finally:
        other.client.close()


def test_sign_in_form_needs_its_own_token_and_next_stays_on_the_dashboard(
    api: ApiEnv, browser: Browser
) -> None:
    forged = httpx.post(
        api.url + "/dashboard/sign-in",
        data={"username": "alice", "password": PASSWORD, "form_token": "x"},
        trust_env=False,
    )
    assert forged.status_code == 403
    page = browser.client.get("/dashboard/sign-in?next=https://evil.example/")
    assert 'value="/dashboard"' in page.text
    assert "evil.example" not in page.text


def test_bad_input_shows_the_form_again_with_the_field_named(api: ApiEnv, browser: Browser) -> None:
    assert browser.sign_in("alice").status_code == 303
    csrf = browser.csrf("/dashboard/connections/new")
    bad = browser.client.post(
        "/dashboard/connections/new",
        data={
            "csrf_token": csrf,
            "name": "has spaces",
            "client_id": "123456789012345678",
            "client_secret": "a-client-secret",
            "scopes": "identify",
        },
    )
    assert bad.status_code == 400
    assert 'id="name-error"' in bad.text
    assert 'value="has spaces"' in bad.text  # what was typed is kept
    missing = browser.client.post(
        "/dashboard/connections/new",
        data={"csrf_token": csrf, "name": "ok-name", "scopes": "identify"},
    )
    assert missing.status_code == 400
    assert 'id="client_id-error"' in missing.text
    assert api.get("/api/v1/connections").json()["connections"] == []
    hook = browser.client.post(
        "/dashboard/webhooks/new", data={"csrf_token": csrf, "url": "ftp://nope"}
    )
    assert hook.status_code == 400
    assert 'id="url-error"' in hook.text


def test_every_page_renders_for_an_operator(api: ApiEnv, browser: Browser) -> None:
    connection = api.connect("discord")
    assert browser.sign_in("alice").status_code == 303
    for path in (
        "/dashboard",
        "/dashboard/connections",
        "/dashboard/connections/new",
        "/dashboard/connections/discord",
        "/dashboard/connections/discord/delete",
        "/dashboard/accounts",
        "/dashboard/accounts?status=ACTIVE&connection=discord",
        "/dashboard/activity",
        "/dashboard/activity?kind=connection.created",
        "/dashboard/webhooks",
        "/dashboard/api-clients",
        "/dashboard/mcp-sessions",
        "/dashboard/mcp-sessions?identifier=nobody&connection=discord&all=1",
        "/dashboard/keys",
    ):
        page = browser.client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert "<h1>" in page.text
    edit = browser.client.get("/dashboard/connections/discord").text
    assert connection["redirect_uri"] in edit
    assert browser.client.get("/dashboard/accounts/nope").status_code == 404
    assert browser.client.get("/dashboard/accounts?status=NOPE").status_code == 400
