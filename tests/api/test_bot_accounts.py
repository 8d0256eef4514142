"""The Discord Bot connector through the HTTP API (issue 10): a ``discordbot`` connection needs
no OAuth client; each connected account holds a bot token, checked with Discord before anything
is stored, encrypted, never returned; tools, the proxy and tool policy act as that bot."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tokenward.sandbox.state import token_label
from tokenward.vault.repository import Vault

from .conftest import ApiEnv, assert_error

ADA = "1100000000000000001"
GUILD = "1200000000000000001"


def sandbox(api: ApiEnv, method: str, path: str, **kw: Any) -> Any:
    return httpx.request(method, f"{api.sandbox_url}{path}", **kw).raise_for_status().json()


def bot_connection(api: ApiEnv, name: str = "discordbot", **extra: Any) -> dict[str, Any]:
    response = api.post(
        "/api/v1/connections", json={"name": name, "provider": "discordbot", **extra}
    )
    assert response.status_code == 201, response.text
    connection: dict[str, Any] = response.json()["connection"]
    return connection


def new_bot(api: ApiEnv) -> tuple[str, str]:
    """A sandbox application's bot: ``(token, bot user id)``."""
    app = api.register_app()
    me = httpx.get(
        f"{api.sandbox_url}/api/v10/users/@me", headers={"Authorization": f"Bot {app['bot_token']}"}
    ).json()
    return app["bot_token"], me["id"]


def add_account(
    api: ApiEnv, token: str, identifier: str = "team_1", connection: str = "discordbot"
):
    return api.post(
        "/api/v1/connected-accounts",
        json={
            "connection_name": connection,
            "identifier": identifier,
            "credentials": {"bot_token": token},
        },
    )


def execute(
    api: ApiEnv,
    tool: str,
    identifier: str = "team_1",
    connection: str = "discordbot",
    **tool_input: Any,
):
    return api.post(
        "/api/v1/tools/execute",
        json={
            "tool_name": tool,
            "connection_name": connection,
            "identifier": identifier,
            "tool_input": tool_input,
        },
    )


def requests_seen(api: ApiEnv) -> int:
    return int(sandbox(api, "GET", "/_sandbox/stats")["requests"]["total"])


def test_a_bot_connection_needs_no_oauth_client(api: ApiEnv) -> None:
    connection = bot_connection(api)
    assert connection["provider"] == "discordbot"
    assert connection["client_id"] is None
    assert connection["redirect_uri"] is None
    assert connection["scopes"] == []
    assert connection["allowed_tools"] is None
    # Its accounts are not linked through OAuth2: no authorization link.
    error = assert_error(
        api.post(
            "/api/v1/connected-accounts/authorization-link",
            json={"connection_name": "discordbot", "identifier": "team_1"},
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert "bot tokens" in error["details"]["fields"]["connection_name"]


def test_the_token_is_checked_with_discord_then_stored_encrypted_and_never_returned(
    api: ApiEnv,
) -> None:
    bot_connection(api)
    token, bot_id = new_bot(api)
    before = sandbox(api, "GET", "/_sandbox/stats")["requests"]["by_token"].get(
        token_label(token), 0
    )

    response = add_account(api, token)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True
    account = body["connected_account"]
    assert account["status"] == "ACTIVE"
    assert account["provider_user_id"] == bot_id
    assert account["token_expires_at"] is None
    # Checked with Discord, as the bot (GET /users/@me with "Bot <token>").
    after = sandbox(api, "GET", "/_sandbox/stats")["requests"]["by_token"][token_label(token)]
    assert after == before + 1

    listed = api.get("/api/v1/connected-accounts?connection_name=discordbot").json()
    assert [a["identifier"] for a in listed["connected_accounts"]] == ["team_1"]
    for seen in api.responses:
        assert token not in seen.text
    assert token.encode() not in (api.settings.data_dir / "tokenward.db").read_bytes()


def test_a_refused_token_is_a_400_naming_the_field_and_writes_nothing(api: ApiEnv) -> None:
    bot_connection(api)
    before = requests_seen(api)
    error = assert_error(
        add_account(api, "Zm9vYmFyYmF6.not-a-token.anywhere"), 400, "VALIDATION_ERROR"
    )
    assert "refused it (401)" in error["details"]["fields"]["credentials.bot_token"]
    assert requests_seen(api) == before + 1  # the check, nothing else
    shapeless = assert_error(add_account(api, "has a space in it, bad"), 400, "VALIDATION_ERROR")
    assert "credentials.bot_token" in shapeless["details"]["fields"]
    assert requests_seen(api) == before + 1  # a malformed token is not even sent
    listed = api.get("/api/v1/connected-accounts?connection_name=discordbot").json()
    assert listed["connected_accounts"] == []


def test_bot_tools_and_the_proxy_act_as_the_bot(api: ApiEnv) -> None:
    bot_connection(api)
    token, bot_id = new_bot(api)
    assert add_account(api, token).status_code == 201

    me = execute(api, "discordbot_get_current_user")
    assert me.status_code == 200, me.text
    assert me.json()["data"]["id"] == bot_id
    assert me.json()["data"]["bot"] is True
    assert me.json()["notes"] == []
    other = execute(api, "discordbot_get_user", user_id=ADA)
    assert other.status_code == 200, other.text
    assert other.json()["data"]["id"] == ADA
    guilds = execute(api, "discordbot_list_current_user_guilds", limit=10)
    assert guilds.status_code == 200
    assert guilds.json()["data"] == []

    proxied = api.get(
        "/proxy/api/v10/users/@me",
        headers={"connection_name": "discordbot", "identifier": "team_1"},
    )
    assert proxied.status_code == 200, proxied.text
    assert proxied.json()["id"] == bot_id
    # Every one of those calls carried the bot's token (the sandbox counts requests per token).
    by_token = sandbox(api, "GET", "/_sandbox/stats")["requests"]["by_token"]
    # new_bot's own look-up, the check, three tools, one proxied call
    assert by_token[token_label(token)] == 6


def test_tools_run_only_on_a_connection_of_their_provider(api: ApiEnv) -> None:
    bot_connection(api)
    api.connect()
    token, _ = new_bot(api)
    assert add_account(api, token).status_code == 201
    wrong = assert_error(execute(api, "discord_get_my_user"), 400, "VALIDATION_ERROR")
    assert "discordbot connection" in wrong["details"]["fields"]["tool_name"]
    other_way = assert_error(
        execute(api, "discordbot_get_current_user", connection="discord"), 400, "VALIDATION_ERROR"
    )
    assert "discord connection" in other_way["details"]["fields"]["tool_name"]
    on_oauth = assert_error(add_account(api, token, connection="discord"), 400, "VALIDATION_ERROR")
    assert "authorization links" in on_oauth["details"]["fields"]["connection_name"]


def test_a_401_marks_the_account_expired_with_a_reason_and_an_event(api: ApiEnv) -> None:
    bot_connection(api)
    token, _ = new_bot(api)
    account = add_account(api, token).json()["connected_account"]
    sandbox(api, "POST", "/_sandbox/reset")  # the sandbox forgets the bot: its token now gets 401

    refused = assert_error(
        execute(api, "discordbot_get_current_user"), 401, "REAUTHORIZATION_REQUIRED"
    )
    assert "accounts create" in refused["details"]["hint"]
    shown = api.get(f"/api/v1/connected-accounts/{account['id']}").json()["connected_account"]
    assert shown["status"] == "EXPIRED"
    assert "rejected the bot token (401)" in shown["status_reason"]

    # The dead token is not sent again (the gateway's IP has an invalid-request budget).
    before = requests_seen(api)
    again = assert_error(
        execute(api, "discordbot_get_current_user"), 401, "REAUTHORIZATION_REQUIRED"
    )
    assert again["details"]["status"] == "EXPIRED"
    proxied = api.get(
        "/proxy/api/v10/users/@me",
        headers={"connection_name": "discordbot", "identifier": "team_1"},
    )
    assert_error(proxied, 401, "REAUTHORIZATION_REQUIRED")
    assert requests_seen(api) == before

    # A bot token cannot be revoked through Discord's API: deleting only forgets it here.
    deleted = api.delete(f"/api/v1/connected-accounts/{account['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["revoked"] is False
    fresh, _ = new_bot(api)
    assert add_account(api, fresh).status_code == 201
    assert execute(api, "discordbot_get_current_user").status_code == 200


def test_an_identifier_keeps_its_bot(api: ApiEnv) -> None:
    bot_connection(api)
    first, first_id = new_bot(api)
    second, _ = new_bot(api)
    assert add_account(api, first).status_code == 201
    refused = assert_error(add_account(api, second), 409, "BOT_CHANGE_REFUSED")
    assert refused["details"]["provider_user_id"] == first_id
    assert execute(api, "discordbot_get_current_user").json()["data"]["id"] == first_id


def test_the_connection_policy_refuses_by_rule_and_sends_nothing(api: ApiEnv) -> None:
    bot_connection(api, allowed_tools=["*", "!*_ban*"])
    token, _ = new_bot(api)
    assert add_account(api, token).status_code == 201
    before = requests_seen(api)
    ban = {"guild_id": GUILD, "user_id": ADA}
    error = assert_error(
        execute(api, "discordbot_create_guild_ban", **ban), 403, "TOOL_NOT_ALLOWED"
    )
    assert error["details"]["rule"] == "!*_ban*"
    assert error["details"]["policy"] == "connection.allowed_tools"
    assert "'!*_ban*'" in error["message"]
    assert requests_seen(api) == before
    assert execute(api, "discordbot_get_current_user").status_code == 200

    # An allow-list: what no pattern allows is refused, naming no rule.
    patched = api.patch(
        "/api/v1/connections/discordbot", json={"allowed_tools": ["discordbot_get_*"]}
    )
    assert patched.status_code == 200
    assert patched.json()["connection"]["allowed_tools"] == ["discordbot_get_*"]
    listing = assert_error(
        execute(api, "discordbot_list_current_user_guilds"), 403, "TOOL_NOT_ALLOWED"
    )
    assert listing["details"]["rule"] is None
    assert "none of its allowed_tools" in listing["message"]

    # null: every tool again. The ban is sent; whatever Discord answers (this new bot is not in
    # the guild: 403 50001), it is no longer the policy refusing it.
    cleared = api.patch("/api/v1/connections/discordbot", json={"allowed_tools": None})
    assert cleared.json()["connection"]["allowed_tools"] is None
    sent = requests_seen(api)
    answer = execute(api, "discordbot_create_guild_ban", **ban)
    assert answer.json().get("error", {}).get("code") != "TOOL_NOT_ALLOWED", answer.text
    assert requests_seen(api) == sent + 1


def test_policy_patterns_must_match_a_tool_of_the_provider(api: ApiEnv) -> None:
    bot_connection(api)
    typo = assert_error(
        api.patch("/api/v1/connections/discordbot", json={"allowed_tools": ["*", "!*_bann*"]}),
        400,
        "VALIDATION_ERROR",
    )
    assert "matches none" in typo["details"]["fields"]["allowed_tools"]
    user_tools = assert_error(
        api.patch("/api/v1/connections/discordbot", json={"allowed_tools": ["discord_get_*"]}),
        400,
        "VALIDATION_ERROR",
    )
    assert "discord_get_*" in user_tools["details"]["fields"]["allowed_tools"]
    unused = assert_error(
        api.patch("/api/v1/connections/discordbot", json={"client_secret": "s" * 20}),
        400,
        "VALIDATION_ERROR",
    )
    assert "not used by provider discordbot" in unused["details"]["fields"]["client_secret"]
    assert api.get("/api/v1/connections/discordbot").json()["connection"]["allowed_tools"] is None


def test_the_proxy_never_resends_a_write_but_resends_a_nonce_message(api: ApiEnv) -> None:
    """No blind retry: a POST that got a 503 or lost its connection reached Discord once and is
    not sent again. A message with a nonce and enforce_nonce is the exception Discord makes safe:
    the proxy resends it after a dropped connection."""
    bot_connection(api)
    token, _ = new_bot(api)
    assert add_account(api, token).status_code == 201
    who = {"connection_name": "discordbot", "identifier": "team_1"}
    path = "/api/v10/channels/1300000000000000010/messages"
    route = "POST /api/v10/channels/{channel_id}/messages"  # the sandbox counts by template

    def posts() -> int:
        by_route = sandbox(api, "GET", "/_sandbox/stats")["requests"]["by_route"]
        return int(by_route.get(route, 0))

    sandbox(api, "POST", "/_sandbox/faults", json={"route": path, "status": 503})
    answer = api.post("/proxy" + path, headers=who, json={"content": "hello"})
    assert answer.status_code == 503
    assert answer.headers["x-tokenward-attempts"] == "1"
    assert "retry-after" not in answer.headers  # not told to repeat a write blindly either
    assert posts() == 1
    sandbox(api, "DELETE", "/_sandbox/faults")

    sandbox(api, "POST", "/_sandbox/faults", json={"route": path, "drop_connection": True})
    dropped = assert_error(
        api.post("/proxy" + path, headers=who, json={"content": "hello"}),
        502,
        "UPSTREAM_UNAVAILABLE",
    )
    assert dropped["details"]["attempts"] == 1
    assert "may have reached Discord" in dropped["message"]
    assert posts() == 2
    sandbox(api, "DELETE", "/_sandbox/faults")

    once = {"route": path, "drop_connection": True, "count": 1}
    sandbox(api, "POST", "/_sandbox/faults", json=once)
    message = {"content": "hello", "nonce": "tw-42", "enforce_nonce": True}
    resent = api.post("/proxy" + path, headers=who, json=message)
    assert resent.headers["x-tokenward-attempts"] == "2"
    assert posts() == 4  # the dropped one and its resend


def test_an_unknown_bot_identifier_says_how_to_create_it(api: ApiEnv) -> None:
    bot_connection(api)
    error = assert_error(
        execute(api, "discordbot_get_current_user", identifier="nobody"), 404, "ACCOUNT_NOT_FOUND"
    )
    assert "bot token" in error["message"]
    assert "authorization link" not in error["message"]


def test_tool_calls_and_proxied_requests_are_in_the_audit_trail_with_their_api_client(
    api: ApiEnv,
) -> None:
    """The dashboard's Activity reads these: the API client that asked, the tool or the route
    (a template: ids of the major parameter only, no token), Discord's status and error code,
    the time taken."""
    bot_connection(api)
    token, _bot_id = new_bot(api)
    assert add_account(api, token).status_code == 201
    proxy_headers = {"connection_name": "discordbot", "identifier": "team_1"}
    assert execute(api, "discordbot_get_current_user").status_code == 200
    assert api.get("/proxy/api/v10/users/@me", headers=proxy_headers).status_code == 200
    missing = api.get("/proxy/api/v10/channels/1600000000000009999", headers=proxy_headers)
    assert missing.status_code == 404

    async def read() -> dict[str, list[dict[str, Any]]]:
        vault = Vault.from_settings(api.settings)
        try:
            found: dict[str, list[dict[str, Any]]] = {}
            for kind in ("tool.executed", "proxy.request"):
                found[kind] = [e.data for e in await vault.list_events(kind=kind)]
            return found
        finally:
            await vault.close()

    deadline = time.monotonic() + 10
    while True:  # the bookkeeper writes in the background, about once a second
        events = asyncio.run(read())
        if len(events["proxy.request"]) >= 2 and events["tool.executed"]:
            break
        assert time.monotonic() < deadline, events
        time.sleep(0.2)
    actor = f"api_client:{api.client_id}"
    assert events["tool.executed"][-1]["tool"] == "discordbot_get_current_user"
    assert events["tool.executed"][-1]["actor"] == actor
    ok, refused = events["proxy.request"][-2:]
    assert ok["route"] == "GET /users/@me"
    assert ok["status"] == 200
    assert ok["actor"] == actor
    assert ok["latency_ms"] > 0
    assert refused["route"] == "GET /channels/{channel_id}"
    assert refused["major"] == "channel_id:1600000000000009999"
    assert refused["status"] == 404
    assert refused["discord_code"] == 10003
    assert token not in repr(events)
