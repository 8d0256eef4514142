"""``/openapi.json`` says what the server does: the statuses each route really returns (400 for
validation, never 422), the error envelope for each, and every input the server accepts
(issue 9, "The OpenAPI document").

The walk provokes every error each route can give (bad input, no token, a token without the
scope, unknown names, conflicts, throttling, Discord refusing) against a real gateway and the
sandbox, and checks every answer against the operation the document describes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tokenward.sandbox.browser import walk_consent

from .conftest import ApiEnv

_METHODS = {"get", "post", "put", "patch", "delete"}


@dataclass
class Walk:
    """Sends requests as a given operation of the document and checks each answer against it."""

    api: ApiEnv
    spec: dict[str, Any]
    seen: dict[tuple[str, str], set[int]] = field(default_factory=dict)

    def operation(self, method: str, template: str) -> dict[str, Any]:
        operation: dict[str, Any] = self.spec["paths"][template][method.lower()]
        return operation

    def call(
        self,
        method: str,
        template: str,
        *,
        params: dict[str, str] | None = None,
        token: str | None = None,
        auth: bool = True,
        client: httpx.Client | None = None,
        **kw: Any,
    ) -> httpx.Response:
        path = template
        for name, value in (params or {}).items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, path
        if client is None:
            response = self.api.request(method, path, token=token, auth=auth, **kw)
        else:
            response = client.request(method, self.api.url + path, **kw)
        self.check(method, template, response)
        return response

    def check(self, method: str, template: str, response: httpx.Response) -> None:
        operation = self.operation(method, template)
        status = str(response.status_code)
        declared = operation["responses"]
        where = f"{method} {template} answered {status}: {response.text[:200]}"
        # "default" covers only what Discord answered (passed through, or PROVIDER_ERROR with
        # Discord's status); every error of the gateway's own must be declared by its status.
        from_discord = not _is_envelope(response) or (
            response.json()["error"]["code"] == "PROVIDER_ERROR"
        )
        assert status in declared or (from_discord and "default" in declared), where
        self.seen.setdefault((method.upper(), template), set()).add(response.status_code)
        entry = declared.get(status) or declared["default"]
        if response.status_code >= 400 and _is_envelope(response):
            schemas = [
                json.dumps(content.get("schema", {}))
                for content in entry.get("content", {}).values()
            ]
            assert any("ErrorEnvelope" in schema for schema in schemas), where


def _is_envelope(response: httpx.Response) -> bool:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return False
    body = response.json()
    if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
        return False
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    return "code" in error


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in _METHODS:
                yield method.upper(), path, operation


@pytest.fixture
def walk(api: ApiEnv) -> Walk:
    response = api.get("/openapi.json", auth=False)
    assert response.status_code == 200
    return Walk(api, response.json())


def test_no_operation_declares_422_and_validation_errors_are_400(walk: Walk) -> None:
    text = json.dumps(walk.spec)
    assert '"422"' not in text
    assert "HTTPValidationError" not in text
    response = walk.call("POST", "/api/v1/connections", json={"name": "x y"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    for method, path, operation in _operations(walk.spec):
        if operation.get("parameters") or "requestBody" in operation:
            assert "400" in operation["responses"], (method, path)
        assert "500" in operation["responses"], (method, path)


def test_every_api_operation_names_its_scope_and_declares_401_and_403(walk: Walk) -> None:
    for method, path, operation in _operations(walk.spec):
        if not (path.startswith("/api/") or path.startswith("/proxy/")):
            continue
        security = operation.get("security")
        assert security is not None, (method, path)
        assert len(security) == 1, (method, path, security)  # one requirement, not alternatives
        assert security[0].get("ApiToken"), (method, path, security)
        assert {"401", "403"} <= set(operation["responses"]), (method, path)
    scheme = walk.spec["components"]["securitySchemes"]["ApiToken"]
    assert "tools:execute" in scheme["flows"]["clientCredentials"]["scopes"]


def test_the_document_accepts_what_the_server_accepts(walk: Walk) -> None:
    token_op = walk.operation("POST", "/oauth/token")
    form = token_op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"grant_type", "client_id", "client_secret", "scope"} <= set(form["properties"])
    assert {"ClientCredentialsBasic": []} in token_op["security"]
    assert walk.spec["components"]["securitySchemes"]["ClientCredentialsBasic"]["scheme"] == (
        "basic"
    )
    listing = walk.operation("GET", "/api/v1/connected-accounts")
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} == {
        "connection_name",
        "identifier",
        "status",
        "page_size",
        "page_token",
    }
    delete = walk.operation("DELETE", "/api/v1/connected-accounts/{account_id}")
    assert "force" in {p["name"] for p in delete["parameters"]}
    proxy = walk.spec["paths"]["/proxy/{path}"]
    assert set(proxy) == {"get", "post", "put", "patch", "delete"}
    headers = {p["name"] for p in proxy["get"]["parameters"] if p["in"] == "header"}
    assert headers == {"connection_name", "connection-name", "identifier"}
    assert proxy["get"]["security"] == [{"ApiToken": ["proxy"]}]
    # Either spelling of the header really is accepted (past the header check: the account is
    # unknown, which is 404, not a 400 for a missing header).
    walk.api.connect()
    for name in ("connection_name", "connection-name"):
        response = walk.call(
            "GET",
            "/proxy/{path}",
            params={"path": "api/v10/users/@me"},
            headers={name: "discord", "identifier": "nobody"},
        )
        assert response.json()["error"]["code"] == "ACCOUNT_NOT_FOUND"


def test_every_status_the_routes_return_is_declared(walk: Walk) -> None:
    api = walk.api
    outsider = api.scoped_token("proxy")  # a valid token with no /api scope
    reader = api.scoped_token("accounts:read")  # no proxy scope

    # -- every operation: no token, a token without the scope ----------------------------------
    for method, path, operation in _operations(walk.spec):
        if not operation.get("security") or "ApiToken" not in operation["security"][0]:
            continue
        params = dict.fromkeys(re.findall(r"{([^}]+)}", path), "zz-unknown")
        if path == "/proxy/{path}":
            params["path"] = "api/v10/users/@me"
        body = {} if "requestBody" in operation else None
        assert walk.call(method, path, params=params, auth=False, json=body).status_code == 401
        wrong = reader if path.startswith("/proxy/") else outsider
        response = walk.call(method, path, params=params, token=wrong, json=body)
        assert response.status_code == 403, (method, path)

    # -- /oauth/token -----------------------------------------------------------------------------
    walk.call("POST", "/oauth/token", auth=False, data={"grant_type": "password"})
    walk.call("POST", "/oauth/token", auth=False, json={"grant_type": "client_credentials"})
    walk.call(
        "POST",
        "/oauth/token",
        auth=False,
        data={"grant_type": "client_credentials", "client_id": "twc_x", "client_secret": "x"},
    )
    walk.call(
        "POST",
        "/oauth/token",
        auth=False,
        data={
            "grant_type": "client_credentials",
            "client_id": api.client_id,
            "client_secret": api.client_secret,
            "scope": "nope",
        },
    )
    api.app.state.api_auth.failures.limit = 1
    with httpx.Client(
        transport=httpx.HTTPTransport(local_address="127.0.0.11"), trust_env=False
    ) as elsewhere:
        wrong = {"grant_type": "client_credentials", "client_id": "twc_y", "client_secret": "x"}
        statuses = [
            walk.call("POST", "/oauth/token", client=elsewhere, data=wrong).status_code
            for _ in range(2)
        ]
        assert statuses == [401, 429]

    # -- connections ------------------------------------------------------------------------------
    api.connect()
    walk.call("GET", "/api/v1/connections")
    dup = {
        "name": "discord",
        "client_id": "1100000000000000999",
        "client_secret": "s" * 16,
        "scopes": "identify",
    }
    assert walk.call("POST", "/api/v1/connections", json=dup).status_code == 409
    walk.call("POST", "/api/v1/connections", json={})
    walk.call("POST", "/api/v1/connections", content=b"{not json", headers=_json)
    walk.call("GET", "/api/v1/connections/{name}", params={"name": "nope"})
    walk.call("GET", "/api/v1/connections/{name}", params={"name": "x" * 65})
    walk.call("PATCH", "/api/v1/connections/{name}", params={"name": "nope"}, json={"scopes": "a"})
    walk.call("PATCH", "/api/v1/connections/{name}", params={"name": "discord"}, json={})
    walk.call("DELETE", "/api/v1/connections/{name}", params={"name": "nope"})
    walk.call("DELETE", "/api/v1/connections/{name}", params={"name": "x" * 65})

    # -- connected accounts ---------------------------------------------------------------------
    link_path = "/api/v1/connected-accounts/authorization-link"
    walk.call("POST", link_path, json={"connection_name": "nope", "identifier": "u"})
    walk.call("POST", link_path, json={"connection_name": "discord"})
    pending = walk.call("POST", link_path, json={"connection_name": "discord", "identifier": "p"})
    linked = walk.call("POST", link_path, json={"connection_name": "discord", "identifier": "a"})
    assert walk_consent(linked.json()["link"]).status_code == 200
    account_id = linked.json()["connected_account"]["id"]
    verify = "/api/v1/connected-accounts/verify"
    walk.call("POST", verify, json={"auth_request_id": "nope", "identifier": "a"})
    walk.call("POST", verify, json={"identifier": "a"})
    walk.call("GET", "/api/v1/connected-accounts")
    walk.check(
        "GET", "/api/v1/connected-accounts", api.get("/api/v1/connected-accounts?page_size=0")
    )
    walk.check(
        "GET",
        "/api/v1/connected-accounts",
        api.get("/api/v1/connected-accounts?connection_name=nope"),
    )
    walk.check(
        "GET", "/api/v1/connected-accounts", api.get("/api/v1/connected-accounts?status=WHAT")
    )
    one = "/api/v1/connected-accounts/{account_id}"
    walk.call("GET", one, params={"account_id": account_id})
    walk.call("GET", one, params={"account_id": "nope"})
    walk.call("GET", one, params={"account_id": "x" * 65})
    walk.call("DELETE", one, params={"account_id": "nope"})

    # -- bot accounts (a discordbot connection: each account holds a bot token) ------------------
    bots = walk.call("POST", "/api/v1/connections", json={"name": "bots", "provider": "discordbot"})
    assert bots.status_code == 201, bots.text
    first, second = api.register_app(), api.register_app()
    accounts = "/api/v1/connected-accounts"

    def store(token: str, connection: str = "bots") -> httpx.Response:
        body = {
            "connection_name": connection,
            "identifier": "b",
            "credentials": {"bot_token": token},
        }
        return walk.call("POST", accounts, json=body)

    assert store(first["bot_token"]).status_code == 201
    assert store(first["bot_token"]).status_code == 200  # the same bot: its token replaced
    assert store(second["bot_token"]).status_code == 409  # another bot for the same identifier
    assert store("not-a-real-bot-token-value").status_code == 400  # Discord refuses it
    assert store(first["bot_token"], connection="nope").status_code == 404
    fault = {"route": "/api/v10/users/@me", "status": 503}
    httpx.post(f"{api.sandbox_url}/_sandbox/faults", json=fault).raise_for_status()
    try:
        assert store(first["bot_token"]).status_code == 502  # Discord down: nothing stored
    finally:
        httpx.delete(f"{api.sandbox_url}/_sandbox/faults").raise_for_status()
    walk.call("POST", accounts, json={"connection_name": "bots"})

    # -- tools ---------------------------------------------------------------------------------
    execute = "/api/v1/tools/execute"
    walk.call("GET", "/api/v1/tools")

    def run(tool: str, identifier: str = "a", **tool_input: Any) -> httpx.Response:
        body = {
            "tool_name": tool,
            "connection_name": "discord",
            "identifier": identifier,
            "tool_input": tool_input,
        }
        return walk.call("POST", execute, json=body)

    assert run("discord_get_my_user").status_code == 200
    assert run("discord_no_such_tool").status_code == 404
    assert run("discord_get_my_user", identifier="p").status_code == 409  # not linked yet
    assert run("discord_get_my_user", identifier="nobody").status_code == 404
    assert run("discord_get_my_user", unexpected=1).status_code == 400
    assert run("discord_get_user", user_id="1100000000000000002").status_code == 409  # no bot
    assert run("discord_resolve_invite", invite_code="zzzzzzzz").status_code == 404  # Discord's
    walk.call("POST", execute, json={"tool_name": "x"})
    policy = {"allowed_tools": ["*", "!*_ban*"]}
    walk.call("PATCH", "/api/v1/connections/{name}", params={"name": "bots"}, json=policy)
    banned = {
        "tool_name": "discordbot_create_guild_ban",
        "connection_name": "bots",
        "identifier": "b",
        "tool_input": {"guild_id": "1100000000000000001", "user_id": "1100000000000000002"},
    }
    assert walk.call("POST", execute, json=banned).status_code == 403  # TOOL_NOT_ALLOWED

    # -- MCP sessions ---------------------------------------------------------------------------
    sessions = "/api/v1/mcp/sessions"
    walk.call("POST", sessions, json={"connection_name": "discord", "identifier": "a"})
    walk.call("POST", sessions, json={"connection_name": "nope", "identifier": "a"})
    walk.call("POST", sessions, json={"connection_name": "discord", "identifier": "a", "tools": []})
    read_only_writes = {
        "connection_name": "bots",
        "identifier": "b",
        "read_only": True,
        "tools": ["discordbot_delete_message"],
    }
    assert walk.call("POST", sessions, json=read_only_writes).status_code == 400
    listed = api.get(f"{sessions}?identifier=a")
    walk.check("GET", sessions, listed)
    assert listed.status_code == 200
    walk.check("GET", sessions, api.get(f"{sessions}?include_inactive=maybe"))
    session_one = "/api/v1/mcp/sessions/{session_id}"
    first = listed.json()["sessions"][0]["id"]
    assert walk.call("DELETE", session_one, params={"session_id": first}).status_code == 200
    walk.call("DELETE", session_one, params={"session_id": "nope"})
    walk.call("DELETE", session_one, params={"session_id": "x" * 33})

    # -- the proxy ------------------------------------------------------------------------------
    proxy = "/proxy/{path}"
    who = {"connection_name": "discord", "identifier": "a"}
    walk.call("GET", proxy, params={"path": "api/v10/users/@me"}, headers=who)
    walk.call("GET", proxy, params={"path": "api/v10/users/@me"}, headers={"identifier": "a"})
    walk.call("GET", proxy, params={"path": "api/v10/users/..%2f..%2fx"}, headers=who)
    walk.call("GET", proxy, params={"path": "api/v10/no-such-route"}, headers=who)
    walk.call(
        "GET",
        proxy,
        params={"path": "api/v10/users/@me"},
        headers={"connection_name": "discord", "identifier": "p"},
    )

    # -- webhooks --------------------------------------------------------------------------------
    # An event type nothing here emits: no delivery ever leaves for the made-up host.
    quiet = {"url": "https://hooks.example.com/tokenward", "events": ["discord.event"]}
    hooks = "/api/v1/webhooks"
    created = walk.call("POST", hooks, json=quiet)
    assert created.status_code == 201, created.text
    hook_id = created.json()["id"]
    walk.call("POST", hooks, json={"url": "http://10.0.0.1/x"})
    walk.call("POST", hooks, json={**quiet, "events": ["no.such.event"]})
    walk.call("GET", hooks)
    hook = "/api/v1/webhooks/{endpoint_id}"
    for verb, path in (
        ("GET", hook),
        ("DELETE", hook),
        ("POST", hook + "/rotate-secret"),
        ("POST", hook + "/enable"),
        ("GET", hook + "/deliveries"),
    ):
        walk.call(verb, path, params={"endpoint_id": hook_id})
        walk.call(verb, path, params={"endpoint_id": "nope"})
        walk.call(verb, path, params={"endpoint_id": "x" * 41})
        if verb == "DELETE":
            walk.call("POST", hooks, json=quiet)
    walk.check(
        "GET", hook + "/deliveries", api.get(f"/api/v1/webhooks/{hook_id}/deliveries?limit=0")
    )
    resend = hook + "/deliveries/{delivery_id}/resend"
    walk.call("POST", resend, params={"endpoint_id": "nope", "delivery_id": "nope"})
    walk.call("POST", resend, params={"endpoint_id": "nope", "delivery_id": "x" * 41})

    # -- Discord failing ------------------------------------------------------------------------
    fault = {"route": "/api/oauth2/token/revoke", "status": 503}
    httpx.post(f"{api.sandbox_url}/_sandbox/faults", json=fault).raise_for_status()
    try:
        deleted = walk.call("DELETE", one, params={"account_id": account_id})
        assert deleted.status_code == 502
    finally:
        httpx.delete(f"{api.sandbox_url}/_sandbox/faults").raise_for_status()

    # -- what Discord calls (signed by Discord, no API token) -----------------------------------
    for route in ("/discord/{connection_id}/interactions", "/discord/{connection_id}/events"):
        params = {"connection_id": "zz-unknown"}
        assert walk.call("POST", route, params=params, auth=False, json={}).status_code == 401
        huge = walk.call("POST", route, params=params, auth=False, content=b"x" * (1 << 20 | 1))
        assert huge.status_code == 413
        assert walk.operation("POST", route).get("security") is None

    # -- operations --------------------------------------------------------------------------------
    walk.call("GET", "/healthz", auth=False)
    walk.call("GET", "/metrics", auth=False)

    # Every operation of the API was exercised, and each declared 404/409 was seen somewhere.
    api_operations = {
        (m, p)
        for m, p, _ in _operations(walk.spec)
        if p.startswith(("/api/", "/proxy/", "/oauth/"))
    }
    missing = api_operations - set(walk.seen)
    assert not missing, missing
    seen = {status for statuses in walk.seen.values() for status in statuses}
    assert {400, 401, 403, 404, 409, 429, 502} <= seen
    assert pending.status_code == 200


_json = {"Content-Type": "application/json"}
