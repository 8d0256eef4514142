"""Shared fast state in Redis (``TOKENWARD_REDIS_URL``): one link per process, and what it carries.

Several ``serve`` replicas (or ``--workers``) share PostgreSQL as the source of truth and Redis
for state that must be the same everywhere at once:

- the rate limiter's windows, learned buckets, global budgets and the invalid-request budget
  (:class:`~tokenward.proxy.redis_ratelimit.RedisRateLimiter`);
- invalidations: a deleted API client, a changed or deleted connection, a deleted or re-linked
  account are published on one channel (:meth:`SharedRedis.publish`), and every process drops
  what it had cached (API tokens, the account directory) when the message arrives, instead of
  serving stale entries until a TTL ends.

**Redis is never needed for a call to succeed.** Every use goes through :class:`SharedRedis`,
which notices a failure (connection refused, reset, timeout), logs one warning, counts it, and
reports itself *degraded* for :data:`RETRY_INTERVAL_S`: meanwhile callers use their per-process
fallback (the in-process rate limiter, TTL-based cache expiry). The next use after that interval
tries Redis again; the first success logs that shared state resumed. Commands fail fast (short
socket timeouts, no client-side retries), so a dead Redis costs a call at most one timeout, once
per interval. While the subscriber was disconnected messages may have been missed, so when it
reconnects every subscriber is told to drop everything (``resync``).

``/readyz`` reports Redis under ``checks.redis`` but does not fail on it: a process without
Redis still serves correctly, with per-process limits (``degraded: true``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tokenward.clock import Clock
from tokenward.tasks import cancel_and_wait

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# redis-py is imported only when Redis is configured: a process without it does not pay for it.

log = logging.getLogger("tokenward.redis")

RETRY_INTERVAL_S = 1.0
"""How long a failed Redis stays out of the hot path before the next use tries it again."""
COMMAND_TIMEOUT_S = 0.5
RESYNC = "resync"
"""The message kind every subscriber receives after the subscription was (re)established."""

Handler = Callable[[str, str], None]
"""``handler(kind, value)`` for one invalidation message (called on the event loop)."""


@functools.cache
def redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis use may raise when Redis is away (a timeout is ``TimeoutError`` or
    ``RedisError`` depending on where it happens; a refused connection is ``OSError``)."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


def redacted_url(url: str) -> str:
    """``redis://host:port/db`` without a password (for logs and ``/readyz``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "redis"
    _, at, host = rest.rpartition("@")
    return f"{scheme}://{host if at else rest}"


class SharedRedis:
    """The process's link to Redis: a client, health bookkeeping and the invalidation channel."""

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        prefix: str = "tokenward:",
        retry_interval: float = RETRY_INTERVAL_S,
        timeout: float = COMMAND_TIMEOUT_S,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.clock = clock
        self.prefix = prefix
        self.retry_interval = retry_interval
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        from tokenward.redis_pipe import ScriptPipe

        # The hot path's scripts (the rate limiter) go through one pipelined connection.
        self.pipe = ScriptPipe(self.client)
        self.channel = f"{prefix}invalidate"
        self.sender = secrets.token_hex(8)  # tells this process's own messages apart
        self.up = True  # optimistic until the first failure
        self.last_error: str | None = None
        self.failures = 0
        self._retry_at = -1.0
        self._on_state = on_state
        self._handlers: list[Handler] = []
        self._listener: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self.subscribed = asyncio.Event()

    # -- health ---------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Whether the hot path should try Redis now (up, or down long enough to try again)."""
        return self.up or self.clock.monotonic() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        """Record a failed use: degrade (once, with a warning) and try again after the interval."""
        self.failures += 1
        self._retry_at = self.clock.monotonic() + self.retry_interval
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self.up:
            self.up = False
            log.warning(
                "Redis at %s is unreachable (%s): rate limits are per process until it returns",
                redacted_url(self.url),
                type(exc).__name__,
            )
            if self._on_state is not None:
                self._on_state(False)

    def succeeded(self) -> None:
        if not self.up:
            self.up = True
            self.last_error = None
            log.warning(
                "Redis at %s is reachable again: shared state resumed", redacted_url(self.url)
            )
            if self._on_state is not None:
                self._on_state(True)

    async def ping(self) -> bool:
        try:
            await self.client.ping()
        except redis_errors() as exc:
            self.failed(exc)
            return False
        self.succeeded()
        return True

    def report(self) -> dict[str, Any]:
        """The ``checks.redis`` entry of ``/readyz`` (``ok`` stays true: see the module doc)."""
        entry: dict[str, Any] = {
            "ok": True,
            "redis": redacted_url(self.url),
            "reachable": self.up,
            "degraded": not self.up,
            "mode": "shared" if self.up else "per-process",
        }
        if not self.up:
            entry["detail"] = (
                "Redis is unreachable: rate limits are per process and caches expire by TTL "
                f"until it returns ({self.last_error})"
            )
        return entry

    # -- invalidations ----------------------------------------------------------------------------

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def publish(self, kind: str, value: str) -> None:
        """Tell every process (this one included) to drop ``kind``/``value``; fire and forget.

        A process that cannot reach Redis right now still drops its own copy (the caller does
        that directly); the others fall back to their TTLs.
        """
        if not self.usable:
            return
        message = json.dumps({"k": kind, "v": value, "s": self.sender})
        task = asyncio.get_running_loop().create_task(self._publish(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, message: str) -> None:
        try:
            await self.client.publish(self.channel, message)
        except redis_errors() as exc:
            self.failed(exc)
        else:
            self.succeeded()

    async def flush(self) -> None:
        """Wait for published messages to be sent (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    def _dispatch(self, kind: str, value: str) -> None:
        for handler in self._handlers:
            try:
                handler(kind, value)
            except Exception:  # one bad handler must not stop the others
                log.exception("invalidation handler failed for %s", kind)

    async def _listen(self) -> None:
        """Stay subscribed; after each (re)subscription tell handlers to resync."""
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.succeeded()
                self.subscribed.set()
                self._dispatch(RESYNC, "")
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    self._handle(message.get("data"))
            except asyncio.CancelledError:
                raise
            except redis_errors() as exc:
                self.subscribed.clear()
                self.failed(exc)
            finally:
                with contextlib.suppress(*redis_errors()):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(self.retry_interval)  # real waiting; a ManualClock must not move

    def _handle(self, data: object) -> None:
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        if not isinstance(data, str):
            return
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        kind, value = message.get("k"), message.get("v")
        if isinstance(kind, str) and isinstance(value, str) and kind != RESYNC:
            self._dispatch(kind, value)

    async def aclose(self) -> None:
        task, self._listener = self._listener, None
        await cancel_and_wait(task)
        await self.flush()
        await self.pipe.aclose()
        with contextlib.suppress(*redis_errors()):
            await self.client.aclose()
