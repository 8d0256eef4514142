"""What the sandbox sends to applications: interactions over HTTP and webhook events.

Discord POSTs interactions to an application's ``interactions_endpoint_url`` and webhook events to
its ``event_webhooks_url`` (``discord-api.md`` §6.6, §6.7). Every request is signed with the
application's Ed25519 key: ``X-Signature-Timestamp`` is the Unix time in whole seconds and
``X-Signature-Ed25519`` the hex signature of ``timestamp + raw body``; the public half is the
application's ``verify_key``. An endpoint must answer within three seconds and must refuse a
request whose signature does not verify with ``401``; Discord checks that by sending bad
signatures on purpose and removes a URL that accepts one.

The sandbox sends only to loopback URLs (``127.0.0.0/8``, ``::1``, ``localhost``), with a
three-second deadline per request, and records every delivery for tests to read back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tokenward.sandbox.errors import DiscordError
from tokenward.sandbox.state import Application, SandboxState
from tokenward.sandbox.world import Interaction, World

DELIVERY_DEADLINE = 3.0  # seconds Discord waits for an endpoint's answer
STALE_AGE = 3600  # a "stale" signature is made for a timestamp this many seconds in the past
MAX_URL_LENGTH = 2048
MAX_RECORDED_BODY = 4000  # characters of a non-JSON answer kept in a record

Signature = Literal["valid", "bad", "stale"]
SIGNATURES: tuple[Signature, ...] = ("valid", "bad", "stale")

# Discord's ApplicationEventWebhooksStatus.
EVENTS_DISABLED = 1
EVENTS_ENABLED = 2
EVENT_TYPES = (
    "APPLICATION_AUTHORIZED",
    "APPLICATION_DEAUTHORIZED",
    "ENTITLEMENT_CREATE",
    "ENTITLEMENT_DELETE",
    "ENTITLEMENT_UPDATE",
    "GAME_DIRECT_MESSAGE_CREATE",
    "GAME_DIRECT_MESSAGE_DELETE",
    "GAME_DIRECT_MESSAGE_UPDATE",
    "LOBBY_MESSAGE_CREATE",
    "LOBBY_MESSAGE_DELETE",
    "LOBBY_MESSAGE_UPDATE",
    "QUEST_USER_ENROLLMENT",
)


def loopback_url_problem(url: str) -> str | None:
    """Why the sandbox will not send to ``url``, or None when it is a loopback http(s) URL."""
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "://" not in url:
        return "must be an absolute http(s) URL"
    host = parts.hostname
    if not host:
        return "must name a host"
    try:
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        return "has an invalid port"
    if parts.fragment or any(c.isspace() for c in url):
        return "must not contain a fragment or whitespace"
    if host == "localhost":
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        return (
            f"the sandbox sends only to loopback addresses (127.0.0.0/8, ::1, localhost), "
            f"not to {host}"
        )
    return None


# -- signing -------------------------------------------------------------------------------------


def signature_headers(
    app: Application, body: bytes, now: float, signature: Signature = "valid"
) -> dict[str, str]:
    """The headers Discord puts on an outgoing request: a signature over timestamp + body.

    ``bad`` signs with a key that is not the application's (a well-formed signature that does
    not verify); ``stale`` signs correctly but for a timestamp an hour old.
    """
    timestamp = str(int(now) - (STALE_AGE if signature == "stale" else 0))
    key = Ed25519PrivateKey.generate() if signature == "bad" else app.interaction_key
    signed = key.sign(timestamp.encode("ascii") + body)
    return {
        "Content-Type": "application/json",
        "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)",
        "X-Signature-Ed25519": signed.hex(),
        "X-Signature-Timestamp": timestamp,
    }


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What an endpoint did with one request."""

    http_status: int | None
    body: bytes
    elapsed_ms: float
    timed_out: bool = False
    error: str | None = None

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def recorded_body(self) -> Any:
        """The answer as a record shows it: the JSON value, else the text (cut short), else None."""
        value = self.json()
        if value is not None:
            return value
        if not self.body:
            return None
        return self.body.decode("utf-8", "replace")[:MAX_RECORDED_BODY]


async def post_signed(
    app: Application, url: str, payload: dict[str, Any], now: float, signature: Signature
) -> Outcome:
    """POST ``payload`` to ``url`` (loopback, checked by the caller), signed, with the deadline."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = signature_headers(app, body, now, signature)
    started = time.monotonic()

    def elapsed() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(DELIVERY_DEADLINE),
            follow_redirects=False,
            trust_env=False,  # never through a proxy: the request must stay on loopback
            verify=False,  # noqa: S501  (loopback only; test endpoints use self-signed certs)
        ) as client:
            response = await asyncio.wait_for(
                client.post(url, content=body, headers=headers), DELIVERY_DEADLINE
            )
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(None, b"", elapsed(), timed_out=True, error="no answer within 3 seconds")
    except httpx.HTTPError as exc:
        return Outcome(None, b"", elapsed(), error=f"{type(exc).__name__}: {exc}"[:300])
    return Outcome(response.status_code, response.content, elapsed())


# -- interactions --------------------------------------------------------------------------------


def _user_for(world: World, interaction: Interaction) -> dict[str, Any]:
    return world.user_object(interaction.user_id)


def interaction_payload(
    world: World, app: Application, interaction: Interaction, locale: str = "en-US"
) -> dict[str, Any]:
    """The interaction object Discord POSTs to the endpoint (receiving-and-responding.mdx)."""
    payload: dict[str, Any] = {
        "id": interaction.id,
        "application_id": interaction.application_id,
        "type": interaction.type,
        "token": interaction.token,
        "version": 1,
        "locale": locale,
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if interaction.type != 1:
        payload["data"] = interaction.data
        channel = world.channels.get(interaction.channel_id) or {"id": interaction.channel_id}
        payload["channel_id"] = interaction.channel_id
        payload["channel"] = {
            k: channel[k]
            for k in ("id", "type", "guild_id", "name", "parent_id", "nsfw", "topic")
            if k in channel
        }
        try:
            app_permissions = world.channel_permissions(channel, app.bot_user_id)
        except DiscordError:
            app_permissions = 0
        payload["app_permissions"] = str(app_permissions)
        guild = world.guilds.get(interaction.guild_id or "")
        if guild is not None:
            member = world.member_object(guild, interaction.user_id)
            try:
                member["permissions"] = str(world.channel_permissions(channel, interaction.user_id))
            except DiscordError:
                member["permissions"] = "0"
            payload["guild_id"] = guild.id
            payload["guild"] = {
                "id": guild.id,
                "locale": guild.data.get("preferred_locale") or "en-US",
                "features": list(guild.data.get("features") or []),
            }
            payload["guild_locale"] = guild.data.get("preferred_locale") or "en-US"
            payload["member"] = member
            payload["authorizing_integration_owners"] = {"0": guild.id}
            payload["context"] = 0
        else:
            payload["user"] = _user_for(world, interaction)
            payload["authorizing_integration_owners"] = {"1": interaction.user_id}
            payload["context"] = 1
    return payload


def _classify_answer(interaction: Interaction) -> str:
    return "deferred" if interaction.response_type in (5, 6) else "answered"


async def deliver_interaction(
    state: SandboxState,
    app: Application,
    interaction: Interaction,
    payload: dict[str, Any],
    signature: Signature = "valid",
) -> dict[str, Any]:
    """Send one interaction to the application's endpoint and act on the answer as Discord
    would; returns the delivery record (also kept on the interaction)."""
    from tokenward.sandbox.families.webhooks import apply_interaction_response
    from tokenward.sandbox.rest import check_request_body

    url = app.interactions_endpoint_url
    assert url is not None
    world = state.world
    record: dict[str, Any] = {
        "interaction_id": interaction.id,
        "token": interaction.token,
        "application_id": app.client_id,
        "url": url,
        "signature": signature,
        "status": "pending",  # while the request is open
        "http_status": None,
        "response": None,
        "elapsed_ms": 0.0,
        "refused_bad_signature": None,
        "probe": None,
        "endpoint_removed": False,
        "error": None,
    }
    interaction.delivery = record

    app.deliveries += 1
    probe_accepted = False
    if (
        signature == "valid"
        and app.bad_signature_every
        and (app.deliveries % app.bad_signature_every == 0)
    ):
        probe = await ping_interactions_endpoint(state, app, url, signature="bad")
        record["probe"] = probe
        record["refused_bad_signature"] = probe["refused"]
        probe_accepted = probe["http_status"] is not None and not probe["refused"]

    outcome = await post_signed(app, url, payload, state.clock.time(), signature)
    record["http_status"] = outcome.http_status
    record["response"] = outcome.recorded_body()
    record["elapsed_ms"] = outcome.elapsed_ms

    if signature != "valid":
        refused = outcome.http_status == 401
        record["refused_bad_signature"] = refused
        if refused:
            record["status"] = "refused"
        else:
            record["status"] = "timeout" if outcome.timed_out else "error"
            record["error"] = outcome.error or (
                f"the endpoint answered {outcome.http_status} to a request whose signature does "
                "not verify; it must answer 401"
            )
            # An answer other than 401 accepted the forgery; no answer at all is only a failure.
            probe_accepted = outcome.http_status is not None
    elif interaction.responded:
        # The endpoint answered through POST /interactions/{id}/{token}/callback while the
        # request was open; its HTTP answer (or the lack of one) then no longer matters.
        record["status"] = _classify_answer(interaction)
    elif outcome.timed_out:
        record["status"] = "timeout"
        record["error"] = outcome.error
    elif outcome.http_status is None:
        record["error"] = outcome.error
    elif outcome.http_status == 401:
        record["error"] = (
            "the endpoint refused a correctly signed request (401); it should verify with the "
            "application's verify_key"
        )
    elif not 200 <= outcome.http_status < 300:
        record["error"] = f"the endpoint answered HTTP {outcome.http_status}"
    else:
        answer = outcome.json()
        if not isinstance(answer, dict):
            record["error"] = "the endpoint's answer is not a JSON interaction response"
        else:
            try:
                # Checked as a body of POST /interactions/{id}/{token}/callback would be.
                checked = check_request_body("create_interaction_response", answer)
                apply_interaction_response(world, interaction, checked)
            except DiscordError as exc:
                record["error"] = {"message": exc.message, "code": exc.code, "errors": exc.errors}
            else:
                record["status"] = _classify_answer(interaction)

    if record["status"] == "pending":
        record["status"] = "error"
    if probe_accepted and app.interactions_endpoint_url == url:
        app.interactions_endpoint_url = None
        record["endpoint_removed"] = True
    return record


async def ping_interactions_endpoint(
    state: SandboxState, app: Application, url: str, signature: Signature = "valid"
) -> dict[str, Any]:
    """Send a PING (type 1) as the Developer Portal does when the URL is saved."""
    payload = {"id": state.world.new_id(), "application_id": app.client_id, "type": 1, "version": 1}
    outcome = await post_signed(app, url, payload, state.clock.time(), signature)
    answer = outcome.json()
    result: dict[str, Any] = {
        "url": url,
        "signature": signature,
        "http_status": outcome.http_status,
        "response": outcome.recorded_body(),
        "elapsed_ms": outcome.elapsed_ms,
        "error": outcome.error,
    }
    if signature == "valid":
        result["ok"] = (
            outcome.http_status == 200 and isinstance(answer, dict) and answer.get("type") == 1
        )
    else:
        result["refused"] = outcome.http_status == 401
    return result


async def verify_interactions_endpoint(
    state: SandboxState, app: Application, url: str
) -> dict[str, Any]:
    """The Developer Portal's check: a signed PING gets ``{"type": 1}``, a badly signed one 401."""
    ping = await ping_interactions_endpoint(state, app, url)
    bad = await ping_interactions_endpoint(state, app, url, signature="bad")
    problem = None
    if not ping["ok"]:
        problem = 'a signed PING did not get 200 {"type": 1}'
    elif not bad["refused"]:
        problem = "a PING with a bad signature was not refused with 401"
    return {
        "url": url,
        "ok": problem is None,
        "problem": problem,
        "ping": ping,
        "bad_signature": bad,
    }


# -- webhook events ------------------------------------------------------------------------------


def event_timestamp(now: float) -> str:
    """ISO 8601 in UTC as Discord's examples show it: ``2024-10-18T14:42:53.064834``."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def event_subscribed(app: Application, event_type: str) -> bool:
    return app.event_webhooks_status != EVENTS_DISABLED and (
        app.event_webhooks_types is None or event_type in app.event_webhooks_types
    )


async def deliver_event(
    state: SandboxState,
    app: Application,
    event_type: str | None,
    data: dict[str, Any] | None = None,
    signature: Signature = "valid",
    url: str | None = None,
    raised_seconds_ago: float = 0.0,
) -> dict[str, Any]:
    """Send a webhook event (``event_type``) or, with ``event_type=None``, a PING (type 0) to the
    application's ``event_webhooks_url``; records and returns the delivery. With
    ``raised_seconds_ago`` the event's ``timestamp`` is that far in the past: a late delivery,
    as Discord's retries make."""
    world = state.world
    url = url or app.event_webhooks_url
    assert url is not None
    now = state.clock.time()
    payload: dict[str, Any] = {"version": 1, "application_id": app.client_id, "type": 0}
    if event_type is not None:
        payload["type"] = 1
        raised = now - raised_seconds_ago
        event: dict[str, Any] = {"type": event_type, "timestamp": event_timestamp(raised)}
        if data is not None:
            event["data"] = data
        payload["event"] = event
    outcome = await post_signed(app, url, payload, now, signature)
    status = outcome.http_status
    if outcome.timed_out:
        verdict = "timeout"
    elif status is None:
        verdict = "error"
    elif signature != "valid":
        verdict = "refused" if status == 401 else "accepted_bad_signature"
    elif 200 <= status < 300:
        verdict = "delivered"
    else:
        verdict = "error"
    record: dict[str, Any] = {
        "id": world.new_id(),
        "application_id": app.client_id,
        "url": url,
        "webhook_type": payload["type"],
        "event_type": event_type,
        "signature": signature,
        "status": verdict,
        "http_status": status,
        "acknowledged": status == 204,
        "refused_bad_signature": None if signature == "valid" else status == 401,
        "response": outcome.recorded_body(),
        "elapsed_ms": outcome.elapsed_ms,
        "error": outcome.error,
        "payload": payload,
    }
    world.event_deliveries.append(record)
    return record


async def send_deauthorized(
    state: SandboxState, app: Application, user_id: str, had_grant: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """Deliver APPLICATION_DEAUTHORIZED for a revoked authorization when the application wants
    it; returns ``(record, None)`` or ``(None, why it was not sent)``."""
    if not had_grant:
        return None, "the user had not authorized the application"
    if app.event_webhooks_url is None:
        return None, "the application has no event_webhooks_url"
    if not event_subscribed(app, "APPLICATION_DEAUTHORIZED"):
        return None, "the application is not subscribed to APPLICATION_DEAUTHORIZED"
    user = state.world.user_object(user_id)
    record = await deliver_event(state, app, "APPLICATION_DEAUTHORIZED", {"user": user})
    return record, None


_BACKGROUND: set[asyncio.Task[Any]] = set()


def in_background(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run a delivery after the current answer, as Discord sends events asynchronously."""
    task = asyncio.get_running_loop().create_task(coroutine)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
