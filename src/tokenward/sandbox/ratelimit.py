"""Discord's rate limits, emulated (``discord-api.md`` §3).

Discord limits each *identity* (a bot token, each OAuth2 user token, or the client's IP when a
request carries no ``Authorization`` header) twice:

* **Per route bucket.** Every route belongs to a bucket, named by an opaque hash that Discord
  sends as ``X-RateLimit-Bucket`` (several routes may share one). A bucket allows ``limit``
  requests per ``window`` seconds. Counters are kept per ``(identity, bucket, major
  parameter)``: the same bucket for another guild id (the major parameter of the routes here)
  is an independent counter, as is the same bucket for another token.
* **Globally.** ``global_limit`` requests per ``global_window`` seconds (Discord: 50/s) across
  all routes of one identity.

Both are *fixed windows that start at the first request after a reset*: the first request
opens a window ending ``window`` seconds later, each request in it spends one unit of
``remaining``, and once ``remaining`` is zero further requests are refused with 429 until the
window ends; the next request after that opens a new window. This is how Discord's buckets
look from outside (``X-RateLimit-Reset`` stays fixed while ``Remaining`` counts down), and
clients such as discord.py and hikari model them that way.

A refused request does not spend anything. The global check runs first, so a request refused
globally does not touch its route bucket; a request refused by its bucket still counts towards
the global limit, as every request Discord receives does.

Every window length is multiplied by ``settings.window_scale`` so tests run Discord's shapes in
a fraction of the time. Time comes from the sandbox's clock (``state.clock``), so a
``ManualClock`` freezes windows for deterministic tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from tokenward.clock import Clock
from tokenward.sandbox.settings import SandboxSettings

_SWEEP_EVERY = 4096  # requests between sweeps of expired windows


def bucket_hash(name: str) -> str:
    """An opaque, stable, Discord-looking bucket id (32 hex digits) for a bucket name."""
    return hashlib.sha256(f"tokenward-sandbox-bucket:{name}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RouteLimit:
    """A route's bucket; ``limit``/``window`` None means the settings' defaults."""

    bucket: str
    limit: int | None = None
    window: float | None = None

    @classmethod
    def named(cls, name: str, limit: int | None = None, window: float | None = None) -> RouteLimit:
        return cls(bucket_hash(name), limit, window)


@dataclass
class _Window:
    reset_at: float
    remaining: int


@dataclass(frozen=True)
class Decision:
    """The outcome of one request against its bucket (and the global limit)."""

    allowed: bool
    is_global: bool
    bucket: str
    limit: int
    remaining: int
    reset_at: float
    reset_after: float
    # Seconds to wait before retrying; 0 when allowed.
    retry_after: float = 0.0


@dataclass
class RateLimiter:
    settings: SandboxSettings
    clock: Clock
    _buckets: dict[tuple[str, str, str], _Window] = field(default_factory=dict)
    _global: dict[str, _Window] = field(default_factory=dict)
    _hits: int = 0

    def _sweep(self, now: float) -> None:
        self._buckets = {k: w for k, w in self._buckets.items() if w.reset_at > now}
        self._global = {k: w for k, w in self._global.items() if w.reset_at > now}

    def hit(self, identity: str, route: RouteLimit, major: str = "") -> Decision:
        """Count one request of ``identity`` on ``route`` (for major parameter ``major``)."""
        settings = self.settings
        now = self.clock.time()
        self._hits += 1
        if self._hits % _SWEEP_EVERY == 0:
            self._sweep(now)
        limit = route.limit if route.limit is not None else settings.bucket_limit
        window_length = (
            route.window if route.window is not None else settings.bucket_window
        ) * settings.window_scale

        key = (identity, route.bucket, major)
        window = self._buckets.get(key)
        if window is None or window.reset_at <= now:
            window = None  # opened below, only if the global limit lets the request in

        glob = self._global.get(identity)
        if glob is None or glob.reset_at <= now:
            glob = _Window(
                now + settings.global_window * settings.window_scale, settings.global_limit
            )
            self._global[identity] = glob
        if glob.remaining <= 0:
            retry = glob.reset_at - now
            return Decision(
                False, True, route.bucket, settings.global_limit, 0, glob.reset_at, retry, retry
            )
        glob.remaining -= 1

        if window is None:
            window = _Window(now + window_length, limit)
            self._buckets[key] = window
        reset_after = window.reset_at - now
        if window.remaining <= 0:
            return Decision(
                False, False, route.bucket, limit, 0, window.reset_at, reset_after, reset_after
            )
        window.remaining -= 1
        return Decision(
            True, False, route.bucket, limit, window.remaining, window.reset_at, reset_after
        )
