"""One pure-ASGI middleware in front of every sandbox route but ``/_sandbox/*``.

Per request, in order: account for it in ``state.stats`` (total, by route template, by token
label), apply the matching fault rules of ``state.faults`` (latency, a forced status, a dropped
connection), enforce the rate limits (``ratelimit.py``), call the app, and count 401/403/429
answers. It is written against raw ASGI messages (no ``BaseHTTPMiddleware``) because the
sandbox is the "direct" baseline of the benchmarks: its own overhead must stay small.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from http import HTTPStatus
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenward.sandbox.ratelimit import Decision, RateLimiter
from tokenward.sandbox.routing import RouteTable
from tokenward.sandbox.state import FaultRule, SandboxState, token_label

# Seed of the generator that decides whether a probabilistic fault fires: runs are repeatable
# (the generator is recreated on ``POST /_sandbox/reset``).
FAULT_SEED = 20_240_601
_LIMITER_KEY = "ratelimit.limiter"
_RANDOM_KEY = "faults.random"
_VIA = (b"via", b"1.1 google")  # Discord's 429s carry Via; clients use it to tell Cloudflare apart
_JSON = (b"content-type", b"application/json")


def _json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def ratelimit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", f"{decision.reset_at:.3f}".encode()),
        (b"x-ratelimit-reset-after", f"{decision.reset_after:.3f}".encode()),
        (b"x-ratelimit-bucket", decision.bucket.encode()),
    ]


def too_many_requests(
    retry_after: float, is_global: bool
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Discord's 429: body ``{message, retry_after, global}``, ``Retry-After`` rounded up."""
    retry_after = max(round(retry_after, 3), 0.001)
    body = _json_body(
        {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
    )
    headers = [
        _JSON,
        _VIA,
        (b"retry-after", str(math.ceil(retry_after)).encode()),
        (b"x-ratelimit-scope", b"global" if is_global else b"user"),
    ]
    if is_global:
        headers.append((b"x-ratelimit-global", b"true"))
    return body, headers


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState, table: RouteTable) -> None:
        self.app = app
        self.state = state
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        state = self.state
        stats = state.stats
        method: str = scope["method"]
        found = self.table.match_scope(scope)
        if found is not None:
            entry, major = found.entry, found.major
            stats.by_route[f"{method} {found.prefix}{entry.template}"] += 1
        else:
            entry, major = None, ""
            stats.by_route[f"{method} {path}"] += 1
        stats.requests_total += 1
        credential = _credential(scope)
        label = token_label(credential) if credential else None
        stats.by_token[label or "anonymous"] += 1

        after: list[FaultRule] = []
        if state.faults:
            forced, after = await self._apply_faults(path, method, send)
            if forced:
                return

        extra: list[tuple[bytes, bytes]] = []
        limit = entry.limits.get(method) if entry is not None else None
        if state.settings.rate_limits and limit is not None:
            identity = label or _client_ip(scope)
            decision = self._limiter().hit(identity, limit, major)
            if not decision.allowed:
                body, headers = too_many_requests(decision.retry_after, decision.is_global)
                if not decision.is_global:
                    headers.extend(ratelimit_headers(decision))
                stats.rate_limited += 1
                if decision.is_global:
                    stats.rate_limited_global += 1
                await _send_response(send, 429, body, headers)
                return
            extra = ratelimit_headers(decision)

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 401:
                    stats.unauthorized += 1
                elif status == 403:
                    stats.forbidden += 1
                elif status == 429:
                    stats.rate_limited += 1
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        if after:
            # The request is handled for real (its effects stay), then the answer is lost.
            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await self._fault_outcome(after, send)
            return
        await self.app(scope, receive, send_counted)

    def _limiter(self) -> RateLimiter:
        limiter = self.state.extra.get(_LIMITER_KEY)
        if limiter is None:
            limiter = RateLimiter(self.state.settings, self.state.clock)
            self.state.extra[_LIMITER_KEY] = limiter
        assert isinstance(limiter, RateLimiter)
        return limiter

    def _random(self) -> random.Random:
        rng = self.state.extra.get(_RANDOM_KEY)
        if rng is None:
            rng = random.Random(FAULT_SEED)
            self.state.extra[_RANDOM_KEY] = rng
        assert isinstance(rng, random.Random)
        return rng

    async def _apply_faults(
        self, path: str, method: str, send: Send
    ) -> tuple[bool, list[FaultRule]]:
        """Fire the matching rules. ``(True, [])`` when the response was forced (or the
        connection dropped) and the request must go no further; otherwise the fired rules with
        ``after_handler`` (applied once the request has been handled)."""
        state = self.state
        fired: list[FaultRule] = []
        for rule in list(state.faults):
            if not rule.matches(path, method):
                continue
            if rule.remaining is not None and rule.remaining <= 0:
                _discard(state.faults, rule)
                continue
            if rule.probability <= 0:
                continue
            if rule.probability < 1 and self._random().random() >= rule.probability:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    _discard(state.faults, rule)
            fired.append(rule)
        if not fired:
            return False, []
        latency = sum(rule.latency_ms for rule in fired)
        if latency > 0:
            await asyncio.sleep(latency / 1000)
        before = [rule for rule in fired if not rule.after_handler]
        after = [rule for rule in fired if rule.after_handler]
        if await self._fault_outcome(before, send):
            return True, []
        return False, [
            rule for rule in after if rule.drop_connection or rule.status or rule.statuses
        ]

    async def _fault_outcome(self, rules: list[FaultRule], send: Send) -> bool:
        """Drop the connection or force a status for the first rule that says so."""
        if any(rule.drop_connection for rule in rules):
            await _drop_connection(send)
            return True
        for rule in rules:
            if rule.status is not None:
                await self._forced_response(rule.status, send)
                return True
            if rule.statuses:
                await self._forced_response(self._random().choice(rule.statuses), send)
                return True
        return False

    async def _forced_response(self, status: int, send: Send) -> None:
        stats = self.state.stats
        if status == 429:
            stats.rate_limited += 1
            body, headers = too_many_requests(self.state.settings.window_scale * 1.0, False)
            await _send_response(send, 429, body, headers)
            return
        if status == 401:
            stats.unauthorized += 1
        elif status == 403:
            stats.forbidden += 1
        if status < 200 or status in (204, 304):
            await _send_response(send, status, b"", [])
            return
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = _json_body({"message": f"{status}: {phrase}", "code": 0})
        await _send_response(send, status, body, [_JSON])


def _discard(rules: list[FaultRule], rule: FaultRule) -> None:
    # Identity, not equality: two identical rules are two rules.
    for index, candidate in enumerate(rules):
        if candidate is rule:
            del rules[index]
            return


def _credential(scope: Scope) -> str | None:
    """The token in the Authorization header (without its scheme), or None."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1").strip()
            if not text:
                return None
            _, _, credential = text.partition(" ")
            return credential.strip() or text
    return None


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return f"ip:{client[0]}" if client else "ip:unknown"


async def _send_response(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send: Send) -> None:
    """Announce a body, send part of it, and stop: the server then closes the connection and
    the client sees a truncated response (a protocol/connection error in httpx and aiohttp)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [_JSON, (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"', "more_body": True})
