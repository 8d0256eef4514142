"""API-client scopes: every route needs its scope, tokens carry the client's scopes, and a
least-privilege agent cannot touch connections (issue 9, "API client scopes")."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tokenward.config import Settings
from tokenward.server.api.auth import AUDIENCE, ISSUER
from tokenward.server.container import Container

from .conftest import ApiEnv, api_settings, assert_error, create_api_client, start_api

PG_BASE_URL = os.environ.get("TOKENWARD_TEST_POSTGRES_URL") or (
    f"postgresql://{os.environ.get('PGUSER', 'postgres')}@127.0.0.1:5432/test"
)

# (method, path, JSON body, the scope it needs): every /api route and the proxy.
ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/v1/connections", None, "connections:read"),
    ("GET", "/api/v1/connections/discord", None, "connections:read"),
    (
        "POST",
        "/api/v1/connections",
        {"name": "other", "client_id": "1100000000000000999", "client_secret": "s" * 16},
        "connections:write",
    ),
    ("PATCH", "/api/v1/connections/discord", {"scopes": "identify"}, "connections:write"),
    ("DELETE", "/api/v1/connections/nope", None, "connections:write"),
    ("GET", "/api/v1/connected-accounts", None, "accounts:read"),
    ("GET", "/api/v1/connected-accounts/nope", None, "accounts:read"),
    ("DELETE", "/api/v1/connected-accounts/nope", None, "accounts:write"),
    (
        "POST",
        "/api/v1/connected-accounts/authorization-link",
        {"connection_name": "discord", "identifier": "u1"},
        "accounts:write",
    ),
    (
        "POST",
        "/api/v1/connected-accounts",
        {"connection_name": "nope", "identifier": "u1", "credentials": {"bot_token": "t" * 20}},
        "accounts:write",
    ),
    (
        "POST",
        "/api/v1/connected-accounts/verify",
        {"auth_request_id": "nope", "identifier": "u1"},
        "accounts:write",
    ),
    ("GET", "/api/v1/tools", None, "tools:execute"),
    (
        "POST",
        "/api/v1/tools/execute",
        {"tool_name": "discord_get_my_user", "connection_name": "discord", "identifier": "u1"},
        "tools:execute",
    ),
    (
        "POST",
        "/api/v1/mcp/sessions",
        {"connection_name": "discord", "identifier": "u1"},
        "mcp:sessions",
    ),
    ("GET", "/api/v1/webhooks", None, "webhooks:read"),
    ("GET", "/api/v1/webhooks/nope/deliveries", None, "webhooks:read"),
    ("POST", "/api/v1/webhooks", {"url": "http://10.0.0.1/x"}, "webhooks:write"),
    ("DELETE", "/api/v1/webhooks/nope", None, "webhooks:write"),
]


def _call(
    api: ApiEnv, token: str, method: str, path: str, body: dict[str, Any] | None
) -> httpx.Response:
    return api.request(method, path, token=token, json=body)


def test_every_route_refuses_a_token_without_its_scope_and_names_it(api: ApiEnv) -> None:
    api.connect()
    # A token whose scopes allow nothing on the routes under test: "proxy" only.
    outsider = api.scoped_token("proxy")
    for method, path, body, needed in ROUTES:
        response = _call(api, outsider, method, path, body)
        error = assert_error(response, 403, "INSUFFICIENT_SCOPE")
        assert error["details"]["required_scope"] == needed, (method, path)
        assert error["details"]["granted_scopes"] == ["proxy"]
        assert needed in error["message"]
        assert response.headers["www-authenticate"] == (
            f'Bearer realm="tokenward", error="insufficient_scope", scope="{needed}"'
        )


def test_the_scope_a_route_names_is_enough_for_it(api: ApiEnv) -> None:
    api.connect()
    for method, path, body, needed in ROUTES:
        scope = f"{needed} tools:execute" if needed == "mcp:sessions" else needed
        response = _call(api, api.scoped_token(scope), method, path, body)
        assert response.status_code != 403, (method, path, response.text)
        assert response.status_code < 500, (method, path, response.text)


def test_write_includes_read_and_admin_includes_everything(api: ApiEnv) -> None:
    api.connect()
    writer = api.scoped_token("connections:write accounts:write")
    assert api.get("/api/v1/connections", token=writer).status_code == 200
    assert api.get("/api/v1/connected-accounts", token=writer).status_code == 200
    assert_error(api.get("/api/v1/tools", token=writer), 403, "INSUFFICIENT_SCOPE")
    admin = api.scoped_token("admin")
    for method, path, body, _needed in ROUTES:
        assert _call(api, admin, method, path, body).status_code != 403, (method, path)


def test_an_mcp_session_needs_tools_execute_too(api: ApiEnv) -> None:
    api.connect()
    body = {"connection_name": "discord", "identifier": "u1"}
    only_sessions = api.scoped_token("mcp:sessions")
    error = assert_error(
        api.post("/api/v1/mcp/sessions", token=only_sessions, json=body), 403, "INSUFFICIENT_SCOPE"
    )
    assert error["details"]["required_scope"] == "tools:execute"
    both = api.scoped_token("mcp:sessions tools:execute")
    assert api.post("/api/v1/mcp/sessions", token=both, json=body).status_code == 200


def test_the_proxy_needs_the_proxy_scope(api: ApiEnv) -> None:
    api.connect()
    headers = {"connection_name": "discord", "identifier": "nobody"}
    tools_only = api.scoped_token("tools:execute accounts:read")
    refused = api.get("/proxy/api/v10/users/@me", token=tools_only, headers=headers)
    error = assert_error(refused, 403, "INSUFFICIENT_SCOPE")
    assert error["details"]["required_scope"] == "proxy"
    # The same challenge header as the /api routes give.
    assert 'error="insufficient_scope", scope="proxy"' in refused.headers["www-authenticate"]
    allowed = api.get("/proxy/api/v10/users/@me", token=api.scoped_token("proxy"), headers=headers)
    assert_error(allowed, 404, "ACCOUNT_NOT_FOUND")  # past the scope check


def _client_secret(settings: Settings, name: str) -> str:
    async def read() -> str:
        container = Container(settings)
        await container.start()
        try:
            record = await container.vault.get_connection_by_name(name)
        finally:
            await container.close()
        return record.client_secret.get_secret_value()

    return asyncio.run(read())


def test_an_agent_client_cannot_change_the_discord_client_secret(api: ApiEnv) -> None:
    """Regression (issue 9): any API client could replace the connection's client secret."""
    api.connect()
    before = _client_secret(api.settings, "discord")
    client_id, secret = create_api_client(api.settings, "agent", "tools:execute,accounts:read")
    issued = api.issue_token(client_id=client_id, client_secret=secret)
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == "tools:execute accounts:read"
    token = issued.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["scope"] == (
        "tools:execute accounts:read"
    )

    for body in ({"client_secret": "attacker-secret-123456"}, {"bot_token": None}):
        response = api.patch("/api/v1/connections/discord", token=token, json=body)
        error = assert_error(response, 403, "INSUFFICIENT_SCOPE")
        assert error["details"]["required_scope"] == "connections:write"
    assert_error(api.delete("/api/v1/connections/discord", token=token), 403, "INSUFFICIENT_SCOPE")
    assert _client_secret(api.settings, "discord") == before
    # What the agent is for still works.
    assert api.get("/api/v1/tools", token=token).status_code == 200
    assert api.get("/api/v1/connected-accounts", token=token).status_code == 200
    # An operator's client with connections:write can.
    ops_id, ops_secret = create_api_client(api.settings, "ops", "connections:write")
    ops = api.issue_token(client_id=ops_id, client_secret=ops_secret).json()["access_token"]
    changed = api.patch(
        "/api/v1/connections/discord", token=ops, json={"client_secret": "rotated-secret-1234"}
    )
    assert changed.status_code == 200, changed.text
    assert _client_secret(api.settings, "discord") == "rotated-secret-1234"


def test_a_token_can_ask_for_fewer_scopes_never_more(api: ApiEnv) -> None:
    narrow = api.issue_token(scope="accounts:read")
    assert narrow.status_code == 200
    assert narrow.json()["scope"] == "accounts:read"
    token = narrow.json()["access_token"]
    assert_error(api.get("/api/v1/connections", token=token), 403, "INSUFFICIENT_SCOPE")

    client_id, secret = create_api_client(api.settings, "reader", "accounts:read")
    beyond = api.issue_token(client_id=client_id, client_secret=secret, scope="accounts:write")
    error = assert_error(beyond, 400, "INVALID_SCOPE")
    assert "accounts:write" in error["details"]["fields"]["scope"]
    unknown = api.issue_token(scope="accounts:read everything")
    error = assert_error(unknown, 400, "VALIDATION_ERROR")
    assert "'everything'" in error["details"]["fields"]["scope"]
    # The default is all of the client's scopes.
    assert api.issue_token().json()["scope"] == "admin"


def test_a_token_from_before_scopes_counts_as_admin(api: ApiEnv) -> None:
    auth = api.app.state.api_auth
    kid, key = auth.keys.active()
    now = int(time.time())
    legacy = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": api.client_id, "iat": now, "exp": now + 600},
        key,
        algorithm="HS256",
        headers={"kid": kid},
    )
    assert api.get("/api/v1/connections", token=legacy).status_code == 200


@pytest.mark.parametrize("scopes", ["", "tools:execute,nope", "ADMIN"])
def test_unknown_or_empty_scopes_are_refused_at_creation(api: ApiEnv, scopes: str) -> None:
    from tokenward.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        create_api_client(api.settings, "bad", scopes)
    assert "scopes" in info.value.fields


@pytest.mark.postgres
def test_scopes_round_trip_on_postgresql(tmp_path: Path, sandbox_url: str) -> None:
    """The scopes column, stored and read back by a gateway on PostgreSQL."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from conftest import require_service
    from tokenward.vault.db import normalize_database_url, upgrade

    base = make_url(normalize_database_url(PG_BASE_URL))
    name = f"tw_scopes_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(
            host=base.host or "127.0.0.1",
            port=base.port or 5432,
            user=base.username,
            password=base.password,
            database=base.database or "test",
            timeout=3,
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        require_service(False, f"PostgreSQL is not reachable ({type(exc).__name__})")
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        settings = api_settings(tmp_path, sandbox_url, database_url=url)
        client_id, secret = create_api_client(settings, "agent", "accounts:read tools:execute")
        default_id, default_secret = create_api_client(settings, "backend")
        server, _ = start_api(settings, sandbox_url)
        try:
            form = {"grant_type": "client_credentials"}
            token_url = f"{server.url}/oauth/token"
            agent = httpx.post(
                token_url, data={**form, "client_id": client_id, "client_secret": secret}
            ).json()
            assert agent["scope"] == "tools:execute accounts:read"
            backend = httpx.post(
                token_url,
                data={**form, "client_id": default_id, "client_secret": default_secret},
            ).json()
            assert backend["scope"] == "admin"
            refused = httpx.get(
                f"{server.url}/api/v1/connections",
                headers={"Authorization": f"Bearer {agent['access_token']}"},
            )
            assert_error(refused, 403, "INSUFFICIENT_SCOPE")
        finally:
            server.stop()
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
