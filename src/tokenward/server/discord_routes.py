"""``/discord/{connection_id}/...``: what Discord sends to a connection's application.

- ``POST /discord/{connection_id}/interactions``, the Interactions Endpoint URL: a PING gets a
  PONG; every other interaction goes to the application as a ``discord.interaction`` webhook,
  and its answer, or a deferred response, goes back to Discord within the budget
  (:mod:`tokenward.events.relay`).
- ``POST /discord/{connection_id}/events``, the Webhook Events URL: a PING gets 204;
  ``APPLICATION_DEAUTHORIZED`` turns the user's accounts ``DISCONNECTED`` at once (with their
  status events); any other event is queued for the application as ``discord.event``.

Both check Discord's Ed25519 signature with the connection's ``public_key`` before reading
anything (:mod:`tokenward.events.discord`). Every failure is the same ``401
DISCORD_SIGNATURE_INVALID``: missing or malformed headers, a stale timestamp, a wrong signature,
and also an unknown connection or one without a public key (those answer "the signature does not
match", so the routes do not tell which connection ids exist; the log says what was missing).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from tokenward.clock import parse_utc
from tokenward.errors import (
    ConnectionNotFound,
    DiscordSignatureError,
    TokenwardError,
    ValidationError,
)
from tokenward.events.discord import PING, verify_signature
from tokenward.server.api.errors import error_responses
from tokenward.server.container import Container
from tokenward.vault.repository import ConnectionRecord

log = logging.getLogger("tokenward.discord")

MAX_BODY_BYTES = 1024 * 1024
"""Discord's requests are small; a larger body is refused before its signature is checked."""
DEAUTHORIZED_REASON = "deauthorized in Discord"
_NO_KEY = "00" * 32  # checks the headers and fails the signature: same answer as a wrong one

_INTERACTION_ANSWER = {
    "description": 'The interaction response: `{"type": 1}` for a PING; otherwise the '
    "application's answer (an interaction response it returned within the budget) or a "
    "deferred one (type 5 for a command or a modal, 6 for a component, 8 with no choices for "
    "autocomplete).",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"type": {"type": "integer"}, "data": {"type": "object"}},
                "required": ["type"],
            }
        }
    },
}


_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {
        **error_responses(401)[401],
        "description": "`DISCORD_SIGNATURE_INVALID`: a missing or wrong signature, a timestamp "
        "more than `TOKENWARD_DISCORD_SIGNATURE_TOLERANCE_SECONDS` away, or a connection that "
        "does not exist or has no `public_key`.",
    },
    413: {**error_responses(413)[413], "description": "The body is larger than 1 MiB."},
}


class PayloadTooLarge(TokenwardError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


async def _body(request: Request) -> bytes:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(chunks)


async def _verified(
    container: Container, connection_id: str, request: Request
) -> tuple[ConnectionRecord, dict[str, Any]]:
    """The connection and the parsed body of a request Discord signed; 401 otherwise."""
    body = await _body(request)
    connection: ConnectionRecord | None = None
    if 0 < len(connection_id) <= 64:
        try:
            connection = await container.vault.get_connection(connection_id)
        except ConnectionNotFound:
            connection = None
    key = connection.public_key if connection is not None else None
    try:
        verify_signature(
            key or _NO_KEY,
            request.headers,
            body,
            now=container.clock.time(),
            tolerance=container.settings.discord_signature_tolerance_seconds,
        )
        if connection is None or key is None:
            # Never let a signature that happens to verify against the stand-in key through.
            raise DiscordSignatureError("the signature does not match")
    except DiscordSignatureError as exc:
        why = (
            "no such connection"
            if connection is None
            else "the connection has no public_key"
            if key is None
            else exc.message
        )
        log.warning("refused a request to /discord/%s/...: %s", connection_id[:64], why)
        raise
    try:
        parsed = json.loads(body)
    except ValueError:
        raise ValidationError(
            "the body is not JSON", fields={"body": "must be a JSON object"}
        ) from None
    if not isinstance(parsed, dict):
        raise ValidationError("the body is not a JSON object", fields={"body": "must be an object"})
    return connection, parsed


def discord_router(container: Container) -> APIRouter:
    router = APIRouter(prefix="/discord", tags=["discord"])

    @router.post(
        "/{connection_id}/interactions",
        summary="Interactions Endpoint URL (Discord calls this)",
        response_class=JSONResponse,
        responses={200: _INTERACTION_ANSWER, **_REFUSED},
    )
    async def interactions(connection_id: str, request: Request) -> JSONResponse:
        """Set this URL (the connection's `interactions_endpoint_url`) as the Interactions
        Endpoint URL of the Discord application. Discord signs each request
        (`X-Signature-Ed25519`, `X-Signature-Timestamp`); a request that fails the check, or
        for a connection without a `public_key`, is refused with 401. A PING is answered with a
        PONG; every other interaction is sent to your webhook endpoints as a
        `discord.interaction` event, and the first interaction response one of them answers
        within `TOKENWARD_DISCORD_INTERACTION_TIMEOUT_SECONDS` is Discord's answer; otherwise a
        deferred response is."""
        started = time.monotonic()
        connection, interaction = await _verified(container, connection_id, request)
        if interaction.get("type") == PING:
            container.metrics.record_discord_inbound("interaction", "ping")
            return JSONResponse({"type": 1})
        answer = await container.relay.interaction(connection, interaction, started=started)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    @router.post(
        "/{connection_id}/events",
        summary="Webhook Events URL (Discord calls this)",
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Received."}, **_REFUSED},
    )
    async def events(connection_id: str, request: Request) -> Response:
        """Set this URL (the connection's `event_webhooks_url`) as the Webhook Events URL of the
        Discord application. Signatures are checked as for interactions. A PING (`type: 0`) is
        answered 204; `APPLICATION_DEAUTHORIZED` turns every connected account of that Discord
        user `DISCONNECTED` at once (reason "deauthorized in Discord", with a
        `connected_account.status_updated` event each), except an account linked again after the
        event's `timestamp` (a late delivery does not end the newer grant); every other event is
        sent to your webhook endpoints as a `discord.event` event."""
        connection, body = await _verified(container, connection_id, request)
        if body.get("type") == 0:
            container.metrics.record_discord_inbound("event", "ping")
            return Response(status_code=204)
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ValidationError(
                "the body has no event", fields={"event": "must be an object with a type"}
            )
        if event["type"] == "APPLICATION_DEAUTHORIZED":
            data = event.get("data")
            user = data.get("user") if isinstance(data, dict) else None
            user_id = user.get("id") if isinstance(user, dict) else None
            if not isinstance(user_id, str) or not user_id:
                raise ValidationError(
                    "APPLICATION_DEAUTHORIZED without a user id",
                    fields={"event.data.user.id": "must be the Discord user's id"},
                )
            changed = await container.vault.disconnect_provider_user(
                connection.id, user_id, DEAUTHORIZED_REASON, raised_at=_raised_at(event)
            )
            for account in changed:
                container.directory.forget(account.connection_id, account.identifier)
            container.metrics.record_discord_inbound("event", "deauthorized")
            log.info(
                "Discord user %s deauthorized connection %s (event of %s): %d account(s) "
                "disconnected",
                user_id,
                connection.name,
                event.get("timestamp") if isinstance(event.get("timestamp"), str) else "?",
                len(changed),
            )
        else:
            await container.relay.event(connection, event)
        return Response(status_code=204)

    return router


def _raised_at(event: dict[str, Any]) -> float | None:
    """When Discord raised a webhook event (its ``timestamp``, ISO 8601, UTC when it names no
    zone), as epoch seconds; None when absent or unreadable (the event then counts as new)."""
    when = parse_utc(event.get("timestamp"))
    return None if when is None else when.timestamp()
