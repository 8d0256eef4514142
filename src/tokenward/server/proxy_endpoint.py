"""``ANY /proxy/{path}``: Discord's REST API on a connected account's behalf.

A pure ASGI middleware in front of the FastAPI router, because this is the hot path: no routing
tables, no dependency injection, no body parsing. Per call it authenticates the API token
(cached verification), resolves ``connection_name`` / ``identifier`` (headers, ``_`` or ``-``)
to the account from the in-memory directory, and hands the call to ``ProviderClient`` — so the
path guard, refresh, rate limiting and retries are the same as for tools. The connection's
provider picks the credential: a ``discord`` account's OAuth2 token, a ``discordbot`` account's
bot token (a 401 then marks the account ``EXPIRED``). A POST is never resent once it may have
reached Discord, except a message created with a ``nonce`` and ``enforce_nonce: true``
(:mod:`tokenward.proxy.writes`). Discord's status, body
and rate-limit headers come back as they are, plus ``X-Tokenward-Attempts`` (requests sent for
this call) and, on a transient 5xx that retries could not get past, a ``Retry-After``.

Answers up to ``ProviderClient.buffer_limit`` (1 MiB) are read whole before anything is sent to
the client, so an idempotent call whose answer breaks off mid-body is retried within the retry
budget; only larger answers are streamed through.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenward.errors import (
    ReauthorizationRequired,
    TokenwardError,
    ValidationError,
)
from tokenward.proxy.accounts import AccountCredentials, BotAccountCredentials
from tokenward.proxy.client import CredentialSource
from tokenward.proxy.paths import safe_path
from tokenward.proxy.ratelimit import route_of
from tokenward.proxy.transport import TransportError, UpstreamResponse
from tokenward.proxy.writes import retry_safe_write
from tokenward.server.api.errors import error_headers
from tokenward.server.container import Container

log = logging.getLogger("tokenward.proxy")

PREFIX = "/proxy"
MAX_REQUEST_BODY = 8 * 1024 * 1024
# Response headers worth passing back from Discord (besides the body's own).
_PASS_BACK = frozenset(
    {
        "content-type",
        "content-encoding",
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
        "x-ratelimit-global",
        "x-ratelimit-scope",
        "etag",
        "last-modified",
        "cache-control",
    }
)
# Request headers an application may forward to Discord.
_FORWARD = frozenset(
    {
        "content-type",
        "accept",
        "accept-language",
        "if-none-match",
        "if-modified-since",
        "x-audit-log-reason",
    }
)

Authenticator = Callable[[str | None], Awaitable[object]]


async def send_error(send: Send, exc: TokenwardError, extra: dict[str, str] | None = None) -> None:
    body = json.dumps(exc.to_dict()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    own = getattr(exc, "headers", None)  # e.g. Retry-After on UPSTREAM_UNAVAILABLE
    # The same headers the API's error responses carry (WWW-Authenticate, Retry-After on 429).
    merged = {**error_headers(exc), **(own if isinstance(own, dict) else {}), **(extra or {})}
    for key, value in merged.items():
        headers.append((str(key).lower().encode(), str(value).encode()))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ProxyEndpoint:
    """Serves ``/proxy/...``; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, container: Container, authenticate: Authenticator) -> None:
        self.app = app
        self.container = container
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send)
        except TokenwardError as exc:
            await send_error(send, exc)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        auth, connection_name, identifier, content_type, forwarded = read_headers(scope["headers"])
        await self.authenticate(auth)
        missing = {}
        if not connection_name:
            missing["connection_name"] = "header is required (connection_name or connection-name)"
        if not identifier:
            missing["identifier"] = "header is required"
        if missing:
            raise ValidationError("missing proxy headers", fields=missing)
        assert connection_name is not None
        assert identifier is not None
        # The guard must see the path exactly as it was sent (percent-escapes included).
        raw_path: bytes = scope.get("raw_path") or path_bytes(scope)
        upstream_path = safe_path(raw_path.decode("latin-1")[len(PREFIX) :], "/api")
        raw_query: bytes = scope.get("query_string", b"")
        query = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True) if raw_query else []
        method: str = scope["method"]
        body = await _read_body(receive) if method not in ("GET", "HEAD") else None

        container = self.container
        connection = await container.directory.connection(connection_name)
        connector = container.connector(connection)
        account = await container.directory.account(connection, identifier)
        credentials: CredentialSource
        if connector.uses_oauth:
            if not account.can_call:
                await container.tokens.require_active(account)  # raises, with a new link
            credentials = AccountCredentials(
                container.tokens, container.directory, account, scheme=connector.account_scheme
            )
        else:
            credentials = BotAccountCredentials(
                container.vault,
                container.directory,
                account,
                connection_name=connection_name,
                scheme=connector.account_scheme,
            )
        try:
            response = await container.client_for(connector).request(
                method,
                upstream_path,
                credentials=credentials,
                query=query,
                headers=forwarded,
                body=body,
                stream=True,
                retry_safe=retry_safe_write(method, upstream_path, body, content_type),
            )
        except ReauthorizationRequired as exc:
            if connector.uses_oauth:
                await container.runner.refused_after_refresh(
                    exc, account.id, connection_name, identifier
                )
            raise
        container.bookkeeper.note_used(account.id)
        _note_request(
            container, connection.id, account.id, method, upstream_path, response, started
        )
        # (The answer's hop-by-hop headers are gone already: UpstreamResponse strips them.)
        out_headers = [
            (low.encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.items()
            if (low := name.lower()) in _PASS_BACK
        ]
        out_headers.append((b"x-tokenward-attempts", str(response.attempts).encode()))
        if response.retry_after is not None and response.headers.get("Retry-After") is None:
            # A transient error the retries could not get past: say when to try again.
            seconds = max(1, math.ceil(response.retry_after))
            out_headers.append((b"retry-after", str(seconds).encode()))
        if response.is_read:
            # The common case: the whole answer was read (and a broken one retried) before any
            # byte went to the client; one write with a Content-Length.
            content = response.content
            out_headers.append((b"content-length", str(len(content)).encode()))
            await send(
                {"type": "http.response.start", "status": response.status, "headers": out_headers}
            )
            await send({"type": "http.response.body", "body": content})
            return
        # A large answer is streamed through. Once its first bytes are out, a break can no
        # longer be retried or reported: the client's connection is closed unfinished, so the
        # client sees a truncated answer rather than a complete-looking one.
        await send(
            {"type": "http.response.start", "status": response.status, "headers": out_headers}
        )
        try:
            async for chunk in response.iter_bytes():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TransportError as exc:
            log.warning(
                "the answer broke off while streaming (%s); closing the client's connection",
                exc.kind.value,
            )
            return
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


_FORWARD_BYTES = frozenset(name.encode() for name in _FORWARD)
# The gateway's own request headers (the first of each counts), by their spellings.
_OWN = {
    b"authorization": "authorization",
    b"connection_name": "connection_name",
    b"connection-name": "connection_name",
    b"identifier": "identifier",
}


def read_headers(
    headers: list[tuple[bytes, bytes]],
) -> tuple[str | None, str | None, str | None, str | None, list[tuple[str, str]]]:
    """One pass over a proxied request's headers: ``(authorization, connection_name,
    identifier, content_type, forwarded)``. The first of each of the gateway's own headers
    counts (``connection_name`` or ``connection-name``); of the others, only those in
    ``_FORWARD`` go on to Discord, in their order."""
    first: dict[str, str] = {}  # the gateway's own headers and Content-Type, first of each
    forwarded: list[tuple[str, str]] = []
    for key, value in headers:
        own = _OWN.get(key)
        if own is not None:
            first.setdefault(own, value.decode("latin-1"))
        elif key in _FORWARD_BYTES:
            name, text = key.decode("latin-1"), value.decode("latin-1")
            if name == "content-type":
                first.setdefault(name, text)
            forwarded.append((name, text))
    get = first.get
    return (
        get("authorization"),
        get("connection_name"),
        get("identifier"),
        get("content-type"),
        forwarded,
    )


def _note_request(
    container: Container,
    connection_id: str,
    account_id: str,
    method: str,
    path: str,
    response: UpstreamResponse,
    started: float,
) -> None:
    """The audit trail's ``proxy.request``: the route as a template (ids of the major parameter
    only; a webhook's or interaction's token never), Discord's status and error code, the time
    taken; written in the background with the API client that asked (see the bookkeeper)."""
    route = route_of(method, path)
    data: dict[str, object] = {
        "route": route.key,
        "status": response.status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "attempts": response.attempts,
    }
    if route.major is not None:  # "channel_id:…", "guild_id:…", "webhook_id:…" (no token hash)
        data["major"] = ":".join(route.major.split(":")[:2])
    if response.status >= 400 and response.is_read:
        code = _discord_code(response.content)
        if code is not None:
            data["discord_code"] = code
    container.bookkeeper.note_event("proxy.request", connection_id, account_id, data)


def _discord_code(content: bytes) -> int | None:
    """Discord's JSON error code in an error body, if it has one."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def path_bytes(scope: Scope) -> bytes:
    return str(scope.get("path", "")).encode("utf-8")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BODY:
            raise ValidationError(
                "request body is too large",
                fields={"body": f"at most {MAX_REQUEST_BODY} bytes"},
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
