"""The sandbox calls applications as Discord does: interactions POSTed to the interactions
endpoint and webhook events to the event webhooks URL, signed with Ed25519 (``discord-api.md``
§6.6, §6.7).

The application side is a small Starlette app on its own loopback port that checks every
signature with the ``verify_key`` it read from ``GET /api/v10/applications/@me`` (with
``cryptography``, independently of the sandbox's signing code), then answers as the test says.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenward._serving import BackgroundServer

from . import loopback_client, tokens_for
from .bot import ADA, APP, GENERAL, GRACE, HUB, SPAMMER, Bot

Answer = Callable[[dict[str, Any]], Response]


@dataclass
class Received:
    path: str
    payload: dict[str, Any]
    headers: dict[str, str]
    signature_ok: bool
    raw: bytes


@dataclass
class Endpoint:
    """The application's endpoints: ``/interactions`` and ``/events``."""

    verify_key: str = ""
    check_signatures: bool = True
    max_age: float | None = None  # refuse timestamps older than this many seconds
    delay: float = 0.0
    answer: Answer = field(default=lambda payload: JSONResponse({"type": 1}))
    async_answer: Callable[[dict[str, Any]], Awaitable[Response]] | None = None
    received: list[Received] = field(default_factory=list)

    def verified(self, request_headers: dict[str, str], raw: bytes) -> bool:
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.verify_key))
            signature = bytes.fromhex(request_headers["x-signature-ed25519"])
            timestamp = request_headers["x-signature-timestamp"]
            key.verify(signature, timestamp.encode() + raw)
        except (InvalidSignature, KeyError, ValueError):
            return False
        return self.max_age is None or abs(time.time() - int(timestamp)) <= self.max_age

    async def interactions(self, request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        ok = self.verified(headers, raw)
        payload = json.loads(raw)
        self.received.append(Received("/interactions", payload, headers, ok, raw))
        if self.check_signatures and not ok:
            return Response("invalid request signature", status_code=401)
        if payload["type"] == 1:
            return JSONResponse({"type": 1})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.async_answer is not None:
            return await self.async_answer(payload)
        return self.answer(payload)

    async def events(self, request: Request) -> Response:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        ok = self.verified(headers, raw)
        self.received.append(Received("/events", json.loads(raw), headers, ok, raw))
        if self.check_signatures and not ok:
            return Response("invalid request signature", status_code=401)
        return Response(status_code=204)

    def last(self, path: str) -> Received:
        return [r for r in self.received if r.path == path][-1]


@pytest.fixture(scope="module")
def endpoint_server() -> Iterator[tuple[Endpoint, str]]:
    endpoint = Endpoint()

    async def interactions(request: Request) -> Response:
        return await endpoint.interactions(request)

    async def events(request: Request) -> Response:
        return await endpoint.events(request)

    app = Starlette(
        routes=[
            Route("/interactions", interactions, methods=["POST"]),
            Route("/events", events, methods=["POST"]),
        ]
    )
    with BackgroundServer(app) as server:
        yield endpoint, server.url


@pytest.fixture
def endpoint(bot: Bot, endpoint_server: tuple[Endpoint, str]) -> Endpoint:
    """The application endpoint, reset, knowing the verify key the application object shows,
    and registered as the default application's interactions endpoint and events URL."""
    endpoint, url = endpoint_server
    endpoint.received.clear()
    endpoint.check_signatures = True
    endpoint.max_age = None
    endpoint.delay = 0.0
    endpoint.async_answer = None
    endpoint.answer = lambda payload: JSONResponse({"type": 4, "data": {"content": "pong"}})
    endpoint.verify_key = bot.ok(bot.get("/applications/@me"))["verify_key"]
    response = bot.client.patch(
        f"/_sandbox/applications/{APP}",
        json={
            "interactions_endpoint_url": f"{url}/interactions",
            "event_webhooks_url": f"{url}/events",
        },
    )
    assert response.status_code == 200, response.text
    return endpoint


def invoke(bot: Bot, **body: Any) -> dict[str, Any]:
    response = bot.client.post("/_sandbox/interactions/invoke", json={"command": "ping", **body})
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


# -- the key ------------------------------------------------------------------------------------


def test_verify_key_is_the_same_ed25519_key_everywhere(bot: Bot) -> None:
    listed = bot.client.get("/_sandbox/applications").json()
    key = next(a for a in listed if a["client_id"] == APP)["verify_key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key), key
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(key))  # a valid point, not just 32 bytes
    assert bot.ok(bot.get("/applications/@me"))["verify_key"] == key
    assert bot.ok(bot.get(f"/applications/{APP}"))["verify_key"] == key
    assert bot.ok(bot.get("/oauth2/applications/@me"))["verify_key"] == key
    assert bot.ok(bot.get("/oauth2/@me"))["application"]["verify_key"] == key
    other = bot.client.post(
        "/_sandbox/applications", json={"redirect_uris": ["http://127.0.0.1:9/cb"]}
    ).json()
    assert other["verify_key"] != key
    bot.client.post("/_sandbox/reset").raise_for_status()
    after = bot.client.get("/_sandbox/applications").json()[0]
    assert after["verify_key"] == key  # the key pair outlives a reset, as the credentials do
    assert after["interactions_endpoint_url"] is None


# -- invoke ---------------------------------------------------------------------------------------


def test_invoke_delivers_a_signed_command_and_a_type_4_answer_becomes_the_message(
    bot: Bot, endpoint: Endpoint
) -> None:
    record = invoke(
        bot, command="ping", options=[{"name": "loud", "value": True}], user_id=ADA, guild_id=HUB
    )
    assert record["status"] == "answered", record
    assert record["http_status"] == 200
    assert record["response"] == {"type": 4, "data": {"content": "pong"}}
    assert record["refused_bad_signature"] is None
    assert 0 <= record["elapsed_ms"] < 3000

    got = endpoint.last("/interactions")
    assert got.signature_ok
    assert got.headers["content-type"] == "application/json"
    assert abs(int(got.headers["x-signature-timestamp"]) - time.time()) < 5
    payload = got.payload
    assert payload["id"] == record["interaction_id"]
    assert payload["token"] == record["token"]
    assert payload["application_id"] == APP
    assert payload["type"] == 2
    assert payload["version"] == 1
    assert payload["guild_id"] == HUB
    assert payload["channel_id"] == GENERAL
    assert payload["member"]["user"]["id"] == ADA
    assert payload["member"]["permissions"].isdigit()
    assert payload["app_permissions"].isdigit()
    assert payload["locale"] == "en-US"
    fixtures = bot.fixtures["application_commands"]
    assert payload["data"] == {
        "id": fixtures["global"],
        "name": "ping",
        "type": 1,
        "options": [{"name": "loud", "type": 5, "value": True}],
    }

    message = next(m for m in bot.messages(GENERAL) if m["content"] == "pong")
    assert message["author"]["id"] == bot.fixtures["bot"]["user_id"]
    assert message["interaction_metadata"]["id"] == record["interaction_id"]
    original = bot.client.get(
        f"/api/v10/webhooks/{APP}/{record['token']}/messages/@original"
    ).json()
    assert original["id"] == message["id"]

    stored = bot.client.get(f"/_sandbox/interactions/{record['interaction_id']}").json()
    assert stored["delivery"]["status"] == "answered"
    assert stored["response_type"] == 4
    assert stored["original_message"]["content"] == "pong"
    assert stored["original_pending"] is False


def test_invoke_in_a_dm_sends_the_user_instead_of_a_member(bot: Bot, endpoint: Endpoint) -> None:
    dm = bot.ok(bot.post("/users/@me/channels", json={"recipient_id": ADA}))
    wrong = bot.client.post(
        "/_sandbox/interactions/invoke",
        json={"command": "ping", "channel_id": dm["id"], "user_id": GRACE},
    )
    assert wrong.status_code == 400
    assert "user_id" in wrong.json()["error"]["details"]["fields"]
    record = invoke(bot, channel_id=dm["id"], user_id=ADA)
    assert record["status"] == "answered", record
    payload = endpoint.last("/interactions").payload
    assert payload["user"]["id"] == ADA
    assert "member" not in payload
    assert "guild_id" not in payload
    assert payload["channel_id"] == dm["id"]
    assert payload["context"] == 1
    assert [m["content"] for m in bot.messages(dm["id"])] == ["pong"]


def test_user_and_channel_options_come_with_resolved_objects(bot: Bot, endpoint: Endpoint) -> None:
    options = [
        {"name": "who", "type": 6, "value": GRACE},
        {"name": "where", "type": 7, "value": GENERAL},
        {"name": "count", "value": 3},
    ]
    invoke(bot, options=options)
    data = endpoint.last("/interactions").payload["data"]
    assert data["options"][2] == {"name": "count", "type": 4, "value": 3}
    assert data["resolved"]["users"][GRACE]["id"] == GRACE
    assert "user" not in data["resolved"]["members"][GRACE]
    assert data["resolved"]["channels"][GENERAL]["name"] == "general"
    unknown = bot.client.post(
        "/_sandbox/interactions/invoke",
        json={"command": "ping", "options": [{"name": "who", "type": 6, "value": "42"}]},
    )
    assert unknown.status_code == 400
    assert "options[0].value" in unknown.json()["error"]["details"]["fields"]


def test_a_slow_endpoint_is_a_timeout_after_three_seconds(bot: Bot, endpoint: Endpoint) -> None:
    endpoint.delay = 4.5
    started = time.monotonic()
    record = invoke(bot)
    took = time.monotonic() - started
    assert record["status"] == "timeout", record
    assert record["http_status"] is None
    assert 2.9 < took < 4.0
    assert 2900 <= record["elapsed_ms"] < 3900
    assert bot.messages(GENERAL)[-1]["content"] != "pong"
    stored = bot.client.get(f"/_sandbox/interactions/{record['interaction_id']}").json()
    assert stored["original_message"] is None
    assert stored["interaction"]["responded"] is False


def test_deferred_then_edited_original_and_a_follow_up(bot: Bot, endpoint: Endpoint) -> None:
    endpoint.answer = lambda payload: JSONResponse({"type": 5})
    record = invoke(bot)
    assert record["status"] == "deferred", record
    interaction_id, token = record["interaction_id"], record["token"]
    thinking = bot.client.get(f"/_sandbox/interactions/{interaction_id}").json()
    assert thinking["original_pending"] is True
    assert thinking["original_message"]["flags"] & 128

    edited = bot.client.patch(
        f"/api/v10/webhooks/{APP}/{token}/messages/@original", json={"content": "done thinking"}
    )
    assert edited.status_code == 200, edited.text
    follow = bot.client.post(f"/api/v10/webhooks/{APP}/{token}", json={"content": "one more"})
    assert follow.status_code == 200, follow.text

    stored = bot.client.get(f"/_sandbox/interactions/{interaction_id}").json()
    assert stored["original_pending"] is False
    assert stored["original_message"]["content"] == "done thinking"
    assert [m["content"] for m in stored["followups"]] == ["one more"]
    contents = [m["content"] for m in bot.messages(GENERAL)]
    assert contents[-2:] == ["done thinking", "one more"]


def test_an_endpoint_may_answer_through_the_callback_route(bot: Bot, endpoint: Endpoint) -> None:
    base = str(bot.client.base_url)

    def answer(payload: dict[str, Any]) -> Response:
        url = f"{base}/api/v10/interactions/{payload['id']}/{payload['token']}/callback"
        callback = httpx.post(url, json={"type": 4, "data": {"content": "via callback"}})
        assert callback.status_code == 204, callback.text
        return Response(status_code=202)

    endpoint.answer = answer
    record = invoke(bot)
    assert record["status"] == "answered", record
    assert bot.messages(GENERAL)[-1]["content"] == "via callback"


def test_a_callback_in_time_counts_even_if_the_http_answer_is_late(
    bot: Bot, endpoint: Endpoint
) -> None:
    base = str(bot.client.base_url)

    async def answer_late(payload: dict[str, Any]) -> Response:
        url = f"{base}/api/v10/interactions/{payload['id']}/{payload['token']}/callback"
        async with httpx.AsyncClient() as client:
            callback = await client.post(url, json={"type": 5})
        assert callback.status_code == 204, callback.text
        await asyncio.sleep(4.0)
        return Response(status_code=204)

    endpoint.async_answer = answer_late
    record = invoke(bot)
    assert record["status"] == "deferred", record
    assert record["http_status"] is None  # the HTTP answer never came in time
    stored = bot.client.get(f"/_sandbox/interactions/{record['interaction_id']}").json()
    assert stored["original_pending"] is True


def test_a_bad_answer_is_an_error_and_creates_nothing(bot: Bot, endpoint: Endpoint) -> None:
    before = len(bot.messages(GENERAL))
    endpoint.answer = lambda payload: JSONResponse({"type": 8})  # autocomplete, not allowed here
    record = invoke(bot)
    assert record["status"] == "error"
    assert record["error"]["code"] == 50035
    endpoint.answer = lambda payload: JSONResponse({"type": 4, "data": {"flags": "many"}})
    record = invoke(bot)
    assert record["status"] == "error"
    assert record["error"]["code"] == 50035
    assert "data" in record["error"]["errors"], record
    endpoint.answer = lambda payload: JSONResponse({"type": 4, "data": {"content": "x" * 2001}})
    assert invoke(bot)["error"]["code"] == 50035
    endpoint.answer = lambda payload: Response("oops", status_code=500)
    record = invoke(bot)
    assert record["status"] == "error"
    assert record["http_status"] == 500
    assert record["response"] == "oops"
    assert len(bot.messages(GENERAL)) == before


# -- signatures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("signature", ["bad", "stale"])
def test_a_refused_bad_or_stale_signature_is_recorded(
    bot: Bot, endpoint: Endpoint, signature: str
) -> None:
    endpoint.max_age = 300  # a careful endpoint also refuses old timestamps
    record = invoke(bot, signature=signature)
    assert record["status"] == "refused", record
    assert record["http_status"] == 401
    assert record["refused_bad_signature"] is True
    assert record["endpoint_removed"] is False
    got = endpoint.last("/interactions")
    assert not got.signature_ok
    if signature == "stale":
        # a real signature, over a timestamp an hour old
        endpoint.max_age = None
        assert endpoint.verified(got.headers, got.raw)
        assert time.time() - int(got.headers["x-signature-timestamp"]) > 3000
    app = next(a for a in bot.client.get("/_sandbox/applications").json() if a["client_id"] == APP)
    assert app["interactions_endpoint_url"] is not None


def test_an_accepted_bad_signature_is_recorded_and_the_url_removed(
    bot: Bot, endpoint: Endpoint
) -> None:
    endpoint.check_signatures = False
    before = len(bot.messages(GENERAL))
    record = invoke(bot, signature="bad")
    assert record["refused_bad_signature"] is False
    assert record["status"] == "error"
    assert record["http_status"] == 200
    assert record["endpoint_removed"] is True
    assert len(bot.messages(GENERAL)) == before  # an answer to a forged request is not acted on
    assert bot.ok(bot.get("/applications/@me"))["interactions_endpoint_url"] is None
    again = bot.client.post("/_sandbox/interactions/invoke", json={"command": "ping"})
    assert again.status_code == 400
    assert "application_id" in again.json()["error"]["details"]["fields"]


def test_no_answer_to_a_bad_signature_is_not_an_acceptance(bot: Bot, endpoint: Endpoint) -> None:
    endpoint.check_signatures = False
    endpoint.delay = 4.5
    record = invoke(bot, signature="bad")
    assert record["status"] == "timeout", record
    assert record["refused_bad_signature"] is False
    assert record["endpoint_removed"] is False
    assert bot.ok(bot.get("/applications/@me"))["interactions_endpoint_url"] is not None


def test_an_accepted_stale_signature_is_not_refused(bot: Bot, endpoint: Endpoint) -> None:
    record = invoke(bot, signature="stale")  # the endpoint checks the signature, not the age
    assert record["refused_bad_signature"] is False
    assert record["endpoint_removed"] is True


def test_bad_signature_every_sends_a_probe_before_every_nth_delivery(
    bot: Bot, endpoint: Endpoint
) -> None:
    bot.client.patch(f"/_sandbox/applications/{APP}", json={"bad_signature_every": 2})
    first, second, third = invoke(bot), invoke(bot), invoke(bot)
    assert first["probe"] is None
    assert third["probe"] is None
    assert first["refused_bad_signature"] is None
    assert second["probe"]["signature"] == "bad"
    assert second["probe"]["refused"] is True
    assert second["refused_bad_signature"] is True
    assert [r["status"] for r in (first, second, third)] == ["answered"] * 3
    probes = [r for r in endpoint.received if r.payload["type"] == 1]
    assert len(probes) == 1
    assert not probes[0].signature_ok

    endpoint.check_signatures = False
    fourth = invoke(bot)
    assert fourth["refused_bad_signature"] is False
    assert fourth["status"] == "answered"  # the real delivery still happens
    assert fourth["endpoint_removed"] is True


# -- setting the URL --------------------------------------------------------------------------


def test_ping_interactions_endpoint_checks_both_pings(bot: Bot, endpoint: Endpoint) -> None:
    result = bot.client.post(f"/_sandbox/applications/{APP}/ping-interactions-endpoint").json()
    assert result["ok"] is True, result
    assert result["ping"]["response"] == {"type": 1}
    assert result["bad_signature"]["refused"] is True
    endpoint.check_signatures = False
    result = bot.client.post(f"/_sandbox/applications/{APP}/ping-interactions-endpoint").json()
    assert result["ok"] is False
    assert "bad signature" in result["problem"]


def test_patch_current_application_verifies_the_urls_like_discord(
    bot: Bot, endpoint_server: tuple[Endpoint, str], endpoint: Endpoint
) -> None:
    _, base = endpoint_server
    bot.client.patch(
        f"/_sandbox/applications/{APP}",
        json={"interactions_endpoint_url": None, "event_webhooks_url": None},
    )
    saved = bot.ok(
        bot.patch(
            "/applications/@me",
            json={
                "interactions_endpoint_url": f"{base}/interactions",
                "event_webhooks_url": f"{base}/events",
                "event_webhooks_types": ["APPLICATION_DEAUTHORIZED"],
            },
        )
    )
    assert saved["interactions_endpoint_url"] == f"{base}/interactions"
    assert saved["event_webhooks_url"] == f"{base}/events"
    assert saved["event_webhooks_status"] == 2
    assert saved["event_webhooks_types"] == ["APPLICATION_DEAUTHORIZED"]
    kinds = [(r.path, r.payload["type"], r.signature_ok) for r in endpoint.received]
    assert ("/interactions", 1, True) in kinds
    assert ("/interactions", 1, False) in kinds
    assert ("/events", 0, True) in kinds
    assert ("/events", 0, False) in kinds

    # An endpoint that accepts bad signatures is not saved; nothing changes.
    bot.client.patch(f"/_sandbox/applications/{APP}", json={"interactions_endpoint_url": None})
    endpoint.check_signatures = False
    refused = bot.patch(
        "/applications/@me",
        json={
            "interactions_endpoint_url": f"{base}/interactions",
            "description": {"default": "changed"},
        },
    )
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["code"] == 50035
    errors = body["errors"]["interactions_endpoint_url"]["_errors"]
    assert errors[0]["code"] == "APPLICATION_INTERACTIONS_ENDPOINT_URL_INVALID"
    current = bot.ok(bot.get("/applications/@me"))
    assert current["interactions_endpoint_url"] is None
    assert current["description"] != "changed"

    # A URL the sandbox may not call cannot be verified either.
    remote = bot.patch(
        "/applications/@me", json={"interactions_endpoint_url": "https://example.com/i"}
    )
    assert remote.status_code == 400
    assert "interactions_endpoint_url" in remote.json()["errors"], remote.text


def test_only_loopback_urls_are_accepted(bot: Bot) -> None:
    for url in ("https://example.com/hook", "http://10.0.0.1/hook", "ftp://127.0.0.1/x", "nope"):
        response = bot.client.patch(
            f"/_sandbox/applications/{APP}", json={"interactions_endpoint_url": url}
        )
        assert response.status_code == 400, url
        assert "interactions_endpoint_url" in response.json()["error"]["details"]["fields"]
    for url in ("http://localhost:9/i", "http://127.0.0.5:9/i", "http://[::1]:9/i"):
        response = bot.client.patch(
            f"/_sandbox/applications/{APP}", json={"event_webhooks_url": url}
        )
        assert response.status_code == 200, response.text
    bad = bot.client.post(
        f"/_sandbox/applications/{APP}/ping-event-webhooks", json={"url": "http://192.0.2.1/e"}
    )
    assert bad.status_code == 400
    assert "loopback" in bad.json()["error"]["details"]["fields"]["url"]


def test_invoke_input_is_checked(bot: Bot, endpoint: Endpoint) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "command"),
        ({"command": "ping", "options": [{"name": "x"}]}, "options[0].value"),
        ({"command": "ping", "signature": "forged"}, "signature"),
        ({"command": "ping", "surprise": 1}, "surprise"),
        ({"command": "ping", "user_id": SPAMMER, "guild_id": HUB}, "user_id"),
    ]
    for body, field_name in cases:
        response = bot.client.post("/_sandbox/interactions/invoke", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field_name in response.json()["error"]["details"]["fields"], response.text
    assert endpoint.received == []


# -- webhook events -----------------------------------------------------------------------------


def test_deauthorize_revokes_the_grant_and_sends_a_signed_event(
    bot: Bot, endpoint: Endpoint
) -> None:
    base = str(bot.client.base_url)
    with loopback_client(base) as client:
        app = next(a for a in client.get("/_sandbox/applications").json() if a["client_id"] == APP)
        tokens = tokens_for(client, app, scope="identify", user_id=GRACE)
        access, refresh = tokens["access_token"], tokens["refresh_token"]
        assert (
            client.get(
                "/api/v10/users/@me", headers={"Authorization": f"Bearer {access}"}
            ).status_code
            == 200
        )

        result = client.post(f"/_sandbox/users/{GRACE}/deauthorize", json={"client_id": APP})
        assert result.status_code == 200, result.text
        body = result.json()
        assert body["revoked_grants"] == 1
        event = body["event"]
        assert event["status"] == "delivered", event
        assert event["http_status"] == 204
        assert event["acknowledged"] is True
        assert 0 <= event["elapsed_ms"] < 3000

        me = client.get("/api/v10/users/@me", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 401
        refreshed = client.post(
            "/api/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh},
            auth=(APP, str(app["client_secret"])),
        )
        assert refreshed.status_code == 400
        assert refreshed.json()["error"] == "invalid_grant"

    got = endpoint.last("/events")
    assert got.signature_ok
    payload = got.payload
    assert payload["version"] == 1
    assert payload["application_id"] == APP
    assert payload["type"] == 1
    assert payload["event"]["type"] == "APPLICATION_DEAUTHORIZED"
    assert payload["event"]["data"]["user"]["id"] == GRACE
    assert "T" in payload["event"]["timestamp"]
    listed = bot.client.get("/_sandbox/events", params={"application_id": APP}).json()
    assert listed["deliveries"][-1]["id"] == event["id"]

    again = bot.client.post(f"/_sandbox/users/{GRACE}/deauthorize", json={"client_id": APP})
    assert again.json()["revoked_grants"] == 0
    assert again.json()["event"] is None
    assert "not authorized" in again.json()["event_skipped"]


def test_revoking_a_token_also_sends_the_event(bot: Bot, endpoint: Endpoint) -> None:
    base = str(bot.client.base_url)
    with loopback_client(base) as client:
        app = next(a for a in client.get("/_sandbox/applications").json() if a["client_id"] == APP)
        tokens = tokens_for(client, app, scope="identify", user_id=GRACE)
        revoked = client.post(
            "/api/oauth2/token/revoke",
            data={"token": tokens["refresh_token"]},
            auth=(APP, str(app["client_secret"])),
        )
        assert revoked.status_code == 200
        deadline = time.monotonic() + 5
        deliveries: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not deliveries:
            deliveries = client.get("/_sandbox/events").json()["deliveries"]
            time.sleep(0.05)
        assert [d["event_type"] for d in deliveries] == ["APPLICATION_DEAUTHORIZED"]
        assert deliveries[0]["status"] == "delivered"
        assert endpoint.last("/events").payload["event"]["data"]["user"]["id"] == GRACE
        # A second revoke finds no live grant: no second event.
        client.post(
            "/api/oauth2/token/revoke",
            data={"token": tokens["access_token"]},
            auth=(APP, str(app["client_secret"])),
        )
        time.sleep(0.3)
        assert len(client.get("/_sandbox/events").json()["deliveries"]) == 1


def test_deauthorize_respects_the_subscription(bot: Bot, endpoint: Endpoint) -> None:
    bot.client.patch(
        f"/_sandbox/applications/{APP}", json={"event_webhooks_types": ["ENTITLEMENT_CREATE"]}
    )
    bot.bearer(ADA, "identify")  # a live grant of ada
    result = bot.client.post(f"/_sandbox/users/{ADA}/deauthorize", json={"client_id": APP}).json()
    assert result["revoked_grants"] == 1
    assert result["event"] is None
    assert "APPLICATION_DEAUTHORIZED" in result["event_skipped"]
    assert [r for r in endpoint.received if r.path == "/events"] == []


def test_ping_and_generic_events_are_recorded(bot: Bot, endpoint: Endpoint) -> None:
    ping = bot.client.post(f"/_sandbox/applications/{APP}/ping-event-webhooks").json()
    assert ping["status"] == "delivered", ping
    assert ping["http_status"] == 204
    assert ping["webhook_type"] == 0
    assert endpoint.last("/events").payload == {"version": 1, "application_id": APP, "type": 0}

    entitlement = {"id": "1", "sku_id": "2", "user_id": ADA, "type": 8}
    sent = bot.client.post(
        f"/_sandbox/applications/{APP}/events",
        json={"type": "ENTITLEMENT_CREATE", "data": entitlement},
    ).json()
    assert sent["status"] == "delivered"
    assert endpoint.last("/events").payload["event"]["data"] == entitlement

    bot.bearer(GRACE, "identify", "applications.commands")
    authorized = bot.client.post(
        f"/_sandbox/applications/{APP}/events",
        json={"type": "APPLICATION_AUTHORIZED", "user_id": GRACE},
    ).json()
    assert authorized["status"] == "delivered", authorized
    event = endpoint.last("/events").payload["event"]
    assert event["type"] == "APPLICATION_AUTHORIZED"
    assert event["data"]["integration_type"] == 1
    assert event["data"]["scopes"] == ["identify", "applications.commands"]
    assert event["data"]["user"]["id"] == GRACE

    bad = bot.client.post(
        f"/_sandbox/applications/{APP}/ping-event-webhooks", json={"signature": "bad"}
    ).json()
    assert bad["status"] == "refused"
    assert bad["refused_bad_signature"] is True
    endpoint.check_signatures = False
    lenient = bot.client.post(
        f"/_sandbox/applications/{APP}/ping-event-webhooks", json={"signature": "bad"}
    ).json()
    assert lenient["refused_bad_signature"] is False
    assert lenient["status"] == "accepted_bad_signature"

    unknown = bot.client.post(f"/_sandbox/applications/{APP}/events", json={"type": "NOPE"})
    assert unknown.status_code == 400
    assert "type" in unknown.json()["error"]["details"]["fields"]
    deliveries = bot.client.get("/_sandbox/events").json()["deliveries"]
    assert [d["status"] for d in deliveries] == [
        "delivered",
        "delivered",
        "delivered",
        "refused",
        "accepted_bad_signature",
    ]
