"""Discord-aware rate limiting: wait before Discord has to say no.

What Discord documents (developers/topics/rate-limits): every authenticated identity (a bot token
or each OAuth2 user token; the IP when there is no token) has per-route limits and a global limit
of 50 requests per second. Responses carry ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset``
(epoch seconds), ``-Reset-After`` (seconds) and ``-Bucket``, an opaque hash several routes may
share; the same bucket under a different *major parameter* (``channel_id``, ``guild_id``,
``webhook_id``) counts separately. A 429 says in its body how long to wait (``retry_after``) and
in ``X-RateLimit-Scope`` whose limit it was: ``user`` (this identity's bucket), ``global`` (this
identity's global limit, also flagged by ``X-RateLimit-Global``) or ``shared`` (a per-resource
limit for everyone). Separately, 10,000 responses with status 401, 403 or 429 (shared 429s
excluded) within 10 minutes get the IP blocked, and a gateway sends every user's traffic from one
IP.

The design follows the two clients that get this right (reference notes, discord-api.md §3):

* **Keys.** A bucket is keyed by ``(identity, bucket, major)`` as in hikari, whose real bucket key
  includes the Authorization header; for a gateway serving many users this is what keeps one
  user's traffic from spending another's budget. ``identity`` is a hash of the Authorization
  value (:func:`token_identity`) or ``"ip"``. Routes are templates with their major parameter
  split off (:func:`route_of`), as discord.py's ``Route`` and hikari's ``CompiledRoute`` do.
* **Learning buckets.** Like discord.py's ``_bucket_hashes`` and hikari's ``RESTBucketManager``,
  each identity keeps a map route → bucket hash. Until a route's hash is known, its requests use
  a provisional bucket named after the route. A bucket whose limits are unknown lets exactly one
  request through (the probe); the others queue until its headers arrive, so a burst of callers
  on a cold route cannot stampede. When the first response names the bucket, the same bucket
  object is re-registered under its hash, queue and all.
* **Counting.** A bucket holds ``limit``, ``remaining`` (what may still be handed out in the
  current window, net of requests already in flight) and ``reset_at`` on the local monotonic
  clock, computed from ``Reset-After``. A response's ``Remaining`` counts its own request and
  possibly some that are still in flight, so the usable remainder is taken as ``Remaining -
  in_flight`` (an underestimate, never an overestimate) and, within one window, only ever lowered.
  Windows are told apart by the absolute ``X-RateLimit-Reset``, so a late response from the
  previous window cannot corrupt the new one. At most ``limit`` requests are in flight per bucket.
* **Waiting.** When ``remaining`` reaches 0, callers queue FIFO and one timer per bucket sleeps
  until the reset (discord.py's pre-emptive sleep, hikari's throttle task), then refills the
  bucket to ``limit`` minus what is still in flight and releases that many waiters. The global
  limit is a sliding-window log per identity (at most ``global_limit`` sends in any
  ``global_period`` plus a small margin), so Discord's fixed one-second windows can never see more
  than 50. A caller that would wait longer than ``max_wait`` gets :class:`RateLimited` with
  ``retry_after`` at once instead (hikari's ``RateLimitTooLongError``, discord.py's
  ``max_ratelimit_timeout``).
* **429s.** ``retry_after`` from the body wins (then ``Retry-After``, then ``Reset-After``). Scope
  ``global`` pauses the identity's global limiter; ``user`` and ``shared`` empty the bucket until
  the retry time. Every 401, 403 and non-shared 429 is recorded by a process-wide
  :class:`InvalidRequestGuard`; once it reaches its safety budget (9,000 of Discord's 10,000 per
  10 minutes) no request is sent until old entries age out.
* **Cost and memory.** An uncontended acquire is a few dict lookups and arithmetic: no lock, no
  task, no await that suspends. Idle buckets and identities are swept once there are more than
  ``max_buckets``, or every ``idle_seconds``.

All time comes from the injected :class:`~tokenward.clock.Clock`.

:class:`Limiter` is the interface the proxy core uses; this module's :class:`RateLimiter` keeps
its state in the process, :class:`~tokenward.proxy.redis_ratelimit.RedisRateLimiter` keeps it in
Redis so that every replica and worker shares one set of windows (``TOKENWARD_REDIS_URL``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from tokenward.clock import Clock
from tokenward.errors import RateLimited

_MAJORS = {"channels": "channel_id", "guilds": "guild_id", "webhooks": "webhook_id"}
_WINDOW_EPSILON = 0.05  # seconds: two reset times closer than this name the same window
_INVALID_STATUSES = frozenset({401, 403, 429})


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """A route template (``"GET /guilds/{guild_id}/widget.json"``), its major parameter, and for
    a route authorised by a token in its path (a webhook's, an interaction's) the identity it is
    limited by when no Authorization is sent."""

    key: str
    major: str | None
    identity: str | None = None


def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def token_identity(authorization: str | None) -> str:
    """Rate-limit identity of an Authorization value: a hash of it, or ``"ip"`` without one."""
    if not authorization:
        return "ip"
    return "tok_" + _short_hash(authorization)


@functools.lru_cache(maxsize=8192)
def route_of(method: str, path: str) -> RouteInfo:
    """The route key and major parameter of a concrete (guarded) path.

    ``/api/v10/guilds/81384788765712384/widget.json`` →
    ``RouteInfo("GET /guilds/{guild_id}/widget.json", "guild_id:81384788765712384")``. Only a
    top-level ``channels``/``guilds``/``webhooks`` id is major (Discord's definition, for writes
    as for reads: ``POST /channels/{channel_id}/messages`` on two channels are two counters);
    other ids become ``{id}``, invite and template codes ``{code}``, a reaction's emoji
    ``{emoji}``. Tokens never reach a key in clear: a webhook's token is hashed into the major
    (``webhook_id + webhook_token``, Discord's combination), an interaction's becomes
    ``{interaction_token}``. Both routes carry no bot token; their ``identity`` (the webhook id and
    token hash, the interaction id) is what they are limited by instead of the gateway's IP.
    """
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if segments and segments[0] == "api":
        segments = segments[1:]
    if segments and segments[0][:1] == "v" and segments[0][1:].isdigit():
        segments = segments[1:]
    template: list[str] = []
    major: str | None = None
    identity: str | None = None
    for index, segment in enumerate(segments):
        previous = segments[index - 1] if index else ""
        numeric = segment.isascii() and segment.isdigit()
        if index == 1 and previous in _MAJORS and numeric:
            name = _MAJORS[previous]
            major = f"{name}:{segment}"
            template.append("{" + name + "}")
        elif index == 2 and segments[0] == "webhooks" and major is not None and not numeric:
            major = f"{major}:{_short_hash(segment)}"
            identity = f"webhook:{major.partition(':')[2]}"
            template.append("{webhook_token}")
        elif index == 2 and segments[0] == "interactions" and segments[1].isdigit():
            identity = f"interaction:{segments[1]}"
            template.append("{interaction_token}")
        elif numeric:
            template.append("{id}")
        elif previous in {"invites", "templates"}:
            template.append("{code}")
        elif previous == "reactions":
            template.append("{emoji}")
        else:
            template.append(segment)
    return RouteInfo(f"{method.upper()} /{'/'.join(template)}", major, identity)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not hasattr(headers, "getall"):
        low = name.lower()
        for key, item in headers.items():
            if key.lower() == low:
                return item
    return value


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The rate-limit headers of one response, parsed leniently (bad values count as absent)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None
    reset_after: float | None = None
    bucket: str | None = None
    scope: str | None = None
    is_global: bool = False
    retry_after: float | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        # A case-insensitive multidict (what the transports give): look names up directly.
        get: Callable[[str], str | None] = (
            headers.get if hasattr(headers, "getall") else functools.partial(_header, headers)
        )
        limit = _float(get("X-RateLimit-Limit"))
        remaining = _float(get("X-RateLimit-Remaining"))
        scope = get("X-RateLimit-Scope")
        return cls(
            limit=int(limit) if limit is not None and limit >= 1 else None,
            remaining=max(0, int(remaining)) if remaining is not None else None,
            reset=_float(get("X-RateLimit-Reset")),
            reset_after=_float(get("X-RateLimit-Reset-After")),
            bucket=get("X-RateLimit-Bucket") or None,
            scope=scope.lower() if scope else None,
            is_global=(get("X-RateLimit-Global") or "").lower() == "true",
            retry_after=_float(get("Retry-After")),
        )


class LimiterSlot(Protocol):
    """One permitted request: ``async with limiter.acquire(...) as slot``, then :meth:`update`
    with the response (or leave the block without it, when no response came)."""

    async def __aenter__(self) -> LimiterSlot: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def update(
        self,
        status: int,
        headers: Mapping[str, str],
        body_retry_after: float | None = None,
        body_global: bool = False,
    ) -> None: ...


class Limiter(Protocol):
    """What the proxy core needs from a rate limiter (in-process or shared)."""

    def acquire(
        self,
        route_key: str,
        identity: str,
        major: str | None = None,
        *,
        max_wait: float | None = None,
    ) -> LimiterSlot: ...

    async def aclose(self) -> None: ...


def rejection(
    parsed: RateLimitHeaders, body_retry_after: float | None, body_global: bool
) -> tuple[float, str]:
    """``(retry_after, scope)`` of a 429: the body's ``retry_after`` wins, then ``Retry-After``,
    then ``Reset-After``; the scope header wins, then the global flags, else ``user``."""
    retry_after = body_retry_after
    if retry_after is None:
        retry_after = parsed.retry_after
    if retry_after is None:
        retry_after = parsed.reset_after if parsed.reset_after is not None else 1.0
    scope = parsed.scope or ("global" if parsed.is_global or body_global else "user")
    return max(0.0, retry_after), scope


class _Bucket:
    __slots__ = (
        "floor_key",
        "in_flight",
        "key",
        "last_used",
        "limit",
        "probing",
        "remaining",
        "reset_at",
        "sleeper",
        "unlimited",
        "waiters",
        "window",
        "window_key",
    )

    def __init__(self, key: tuple[str, str, str | None], now: float) -> None:
        self.key = key
        self.limit: int | None = None  # None: never seen this bucket's headers
        self.remaining = 0
        self.reset_at = now
        self.window_key: float | None = None  # absolute reset of the window we are counting
        self.floor_key = -math.inf  # windows ending at or before this are over
        self.window: float | None = None  # estimated window length
        self.in_flight = 0
        self.probing = False
        self.unlimited = False  # the route answered without any rate-limit headers
        self.waiters: deque[asyncio.Future[bool]] = deque()
        self.sleeper: asyncio.Task[None] | None = None
        self.last_used = now

    def _refill(self, now: float) -> None:
        assert self.limit is not None
        if self.window_key is not None:
            self.floor_key = self.window_key
        self.window_key = None
        self.remaining = max(0, self.limit - self.in_flight)
        self.reset_at = now + (self.window or 1.0)

    def try_take(self, now: float) -> bool:
        """Reserve a request if the bucket allows one now; True means reserved."""
        if self.unlimited:
            self.in_flight += 1
            return True
        if self.limit is None:
            if self.probing:
                return False
            self.probing = True
            self.in_flight += 1
            return True
        if now >= self.reset_at:
            self._refill(now)
        if self.remaining > 0 and self.in_flight < self.limit:
            self.remaining -= 1
            self.in_flight += 1
            return True
        return False

    def estimate_wait(self, now: float, ahead: int) -> float:
        """How long a caller with ``ahead`` waiters in front of it would likely wait."""
        if self.unlimited or self.limit is None:
            return 0.0
        window = self.window or max(0.0, self.reset_at - now) or 1.0
        if now >= self.reset_at:
            available = max(0, self.limit - self.in_flight)
            until_reset = window
        else:
            available = max(0, self.remaining)
            until_reset = self.reset_at - now
        needed = ahead + 1
        if needed <= available:
            return 0.0
        windows = math.ceil((needed - available) / self.limit)
        wait = until_reset + (windows - 1) * window
        return wait if now < self.reset_at else (windows - 1) * window

    def apply(self, headers: RateLimitHeaders, now: float, wall: float) -> None:
        """Fold one response's headers into the bucket (see the module docstring)."""
        assert headers.limit is not None
        assert headers.remaining is not None
        if headers.reset_after is not None:
            reset_after = max(0.0, headers.reset_after)
        elif headers.reset is not None:
            reset_after = max(0.0, headers.reset - wall)
        else:
            return
        window_key = headers.reset if headers.reset is not None else wall + reset_after
        usable = max(0, headers.remaining - self.in_flight)
        self.unlimited = False
        self.limit = headers.limit
        if headers.remaining >= headers.limit - 1 or self.window is None:
            self.window = max(reset_after, 1e-3)
        if self.window_key is not None and abs(window_key - self.window_key) <= _WINDOW_EPSILON:
            self.remaining = min(self.remaining, usable)
            self.reset_at = min(self.reset_at, now + reset_after)
        elif window_key > self.floor_key + _WINDOW_EPSILON and (
            self.window_key is None or window_key > self.window_key
        ):
            self.window_key = window_key
            self.remaining = usable
            self.reset_at = now + reset_after
        # else: a late answer from a window that is already over; it says nothing about now.
        self.remaining = min(self.remaining, headers.limit)

    def exhaust(self, now: float, retry_after: float) -> None:
        """A 429 on this bucket: nothing more until ``retry_after`` has passed."""
        self.unlimited = False
        if self.limit is None:
            self.limit = 1
        self.remaining = 0
        self.reset_at = max(self.reset_at, now + retry_after)

    def idle(self, now: float) -> bool:
        return (
            not self.waiters
            and self.in_flight == 0
            and self.sleeper is None
            and now >= self.reset_at
        )


class GlobalLimiter:
    """At most ``limit`` sends in any ``period`` (+ ``margin``) seconds: a sliding-window log.

    Each caller reserves a send time; times are non-decreasing, so the log is ordered and a
    reservation is O(1). ``pause_until`` implements a global 429.
    """

    __slots__ = ("limit", "log", "paused_until", "period")

    def __init__(self, limit: int, period: float, margin: float) -> None:
        self.limit = limit
        self.period = period + margin
        self.log: deque[float] = deque()
        self.paused_until = -math.inf

    def reserve(self, now: float, max_wait: float) -> float:
        """Reserve a send; return how long to wait first. Raises RateLimited past ``max_wait``."""
        log = self.log
        at = max(now, self.paused_until)
        if log and log[-1] > at:
            at = log[-1]
        cutoff = at - self.period
        while log and log[0] <= cutoff:
            log.popleft()
        full = len(log) >= self.limit
        if full:
            at = max(at, log[0] + self.period)
        delay = at - now
        if delay > max_wait:
            scope = "global" if self.paused_until > now else "global_limit"
            raise RateLimited(
                f"rate limited: the global limit would need a wait of {delay:.3f}s",
                retry_after=delay,
                scope=scope,
            )
        if full:
            log.popleft()
        log.append(at)
        return delay

    def pause_until(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def idle(self, now: float) -> bool:
        return self.paused_until <= now and (not self.log or self.log[-1] <= now - self.period)


class InvalidRequestGuard:
    """Counts 401/403/429 responses over a rolling window and refuses once the budget is spent.

    Discord blocks an IP after 10,000 such responses in 10 minutes; the default budget stops
    at 9,000. Counts are kept per second, so memory is bounded by the window length.
    """

    def __init__(self, budget: int = 9_000, window: float = 600.0) -> None:
        self.budget = budget
        self.window = window
        self._counts: deque[list[float]] = deque()  # [second, count]
        self.total = 0

    def _trim(self, now: float) -> None:
        counts = self._counts
        while counts and counts[0][0] <= now - self.window:
            self.total -= int(counts.popleft()[1])

    def record(self, now: float) -> None:
        second = float(math.floor(now))
        if self._counts and self._counts[-1][0] == second:
            self._counts[-1][1] += 1
        else:
            self._counts.append([second, 1])
        self.total += 1
        self._trim(now)

    def check(self, now: float) -> None:
        """Raise RateLimited (scope ``invalid_requests``) when the budget is spent."""
        self._trim(now)
        if self.total < self.budget:
            return
        excess = self.total - self.budget + 1
        retry_after = self.window
        for second, count in self._counts:
            excess -= int(count)
            if excess <= 0:
                retry_after = second + self.window - now
                break
        raise RateLimited(
            "rate limited: too many 401/403/429 responses from the provider in the last "
            f"{self.window:g}s; sending is paused to protect the gateway's IP",
            retry_after=max(0.0, retry_after),
            scope="invalid_requests",
        )


class _Identity:
    __slots__ = ("buckets", "global_limiter", "last_used", "routes")

    def __init__(self, global_limiter: GlobalLimiter, now: float) -> None:
        self.routes: dict[str, str] = {}
        self.global_limiter = global_limiter
        self.buckets = 0
        self.last_used = now


class Slot:
    """One permitted request. Use as ``async with limiter.acquire(...) as slot``; then
    :meth:`update` with the response (or leave without, when no response came)."""

    __slots__ = (
        "_bucket",
        "_identity",
        "_limiter",
        "_probe",
        "_released",
        "identity",
        "major",
        "max_wait",
        "route_key",
    )

    def __init__(
        self,
        limiter: RateLimiter,
        route_key: str,
        identity: str,
        major: str | None,
        max_wait: float,
    ) -> None:
        self._limiter = limiter
        self.route_key = route_key
        self.identity = identity
        self.major = major
        self.max_wait = max_wait
        self._bucket: _Bucket | None = None
        self._identity: _Identity | None = None
        self._probe = False
        self._released = False

    async def __aenter__(self) -> Slot:
        await self._limiter._enter(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._released:
            self._limiter._release(self)

    def update(
        self,
        status: int,
        headers: Mapping[str, str],
        body_retry_after: float | None = None,
        body_global: bool = False,
    ) -> None:
        """Report the response: its status, headers, and a 429 body's ``retry_after``/``global``."""
        if self._released:
            raise RuntimeError("this slot was already updated")
        self._limiter._update(self, status, headers, body_retry_after, body_global)


class RateLimiter:
    """Per-process limiter for one provider. See the module docstring for the algorithm."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_wait: float = 30.0,
        global_limit: int = 50,
        global_period: float = 1.0,
        global_margin: float = 0.05,
        invalid_guard: InvalidRequestGuard | None = None,
        max_buckets: int = 10_000,
        idle_seconds: float = 300.0,
    ) -> None:
        self.clock = clock
        self.max_wait = max_wait
        self.global_limit = global_limit
        self.global_period = global_period
        self.global_margin = global_margin
        self.invalid_guard = invalid_guard or InvalidRequestGuard()
        self.max_buckets = max_buckets
        self.idle_seconds = idle_seconds
        self._buckets: dict[tuple[str, str, str | None], _Bucket] = {}
        self._identities: dict[str, _Identity] = {}
        self._next_sweep = clock.monotonic() + idle_seconds

    # -- public ---------------------------------------------------------------------------------

    def acquire(
        self,
        route_key: str,
        identity: str,
        major: str | None = None,
        *,
        max_wait: float | None = None,
    ) -> Slot:
        """A slot for one request on ``route_key`` by ``identity`` (see :func:`route_of`)."""
        return Slot(
            self, route_key, identity, major, self.max_wait if max_wait is None else max_wait
        )

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)

    def bucket_hash(self, identity: str, route_key: str) -> str | None:
        """The bucket hash learned for a route, if any."""
        state = self._identities.get(identity)
        return state.routes.get(route_key) if state else None

    def bucket_state(
        self, identity: str, route_key: str, major: str | None = None
    ) -> dict[str, object] | None:
        """A snapshot of a route's bucket, for diagnostics and tests."""
        state = self._identities.get(identity)
        if state is None:
            return None
        bucket_id = state.routes.get(route_key, "?" + route_key)
        bucket = self._buckets.get((identity, bucket_id, major))
        if bucket is None:
            return None
        return {
            "bucket": bucket_id,
            "limit": bucket.limit,
            "remaining": bucket.remaining,
            "reset_in": max(0.0, bucket.reset_at - self.clock.monotonic()),
            "in_flight": bucket.in_flight,
            "waiting": len(bucket.waiters),
        }

    async def aclose(self) -> None:
        """Cancel timers and fail every queued caller."""
        for bucket in list(self._buckets.values()):
            if bucket.sleeper is not None:
                bucket.sleeper.cancel()
                bucket.sleeper = None
            while bucket.waiters:
                waiter = bucket.waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(
                        RateLimited("rate limiter closed", retry_after=0.0, scope="closed")
                    )
        self._buckets.clear()
        self._identities.clear()

    # -- internals -----------------------------------------------------------------------------

    def _identity_state(self, identity: str, now: float) -> _Identity:
        state = self._identities.get(identity)
        if state is None:
            state = _Identity(
                GlobalLimiter(self.global_limit, self.global_period, self.global_margin), now
            )
            self._identities[identity] = state
        state.last_used = now
        return state

    def _resolve(self, slot: Slot, state: _Identity, now: float) -> _Bucket:
        bucket_id = state.routes.get(slot.route_key)
        key = (slot.identity, bucket_id or "?" + slot.route_key, slot.major)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets or now >= self._next_sweep:
                self._sweep(now)
            bucket = _Bucket(key, now)
            self._buckets[key] = bucket
            state.buckets += 1
        bucket.last_used = now
        return bucket

    async def _enter(self, slot: Slot) -> None:
        now = self.clock.monotonic()
        self.invalid_guard.check(now)
        state = self._identity_state(slot.identity, now)
        slot._identity = state
        while True:
            bucket = self._resolve(slot, state, now)
            probe = bucket.limit is None and not bucket.unlimited
            if not bucket.waiters and bucket.try_take(now):
                break
            wait = bucket.estimate_wait(now, len(bucket.waiters))
            if wait > slot.max_wait:
                raise RateLimited(
                    f"rate limited: this route's bucket would need a wait of {wait:.3f}s",
                    retry_after=wait,
                    scope="bucket",
                )
            waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            bucket.waiters.append(waiter)
            self._schedule(bucket, now)
            try:
                granted = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result():
                    self._give_back(bucket, probe=bucket.probing and bucket.limit is None)
                raise
            now = self.clock.monotonic()
            if granted:
                probe = bucket.probing and bucket.limit is None
                break
        slot._bucket = bucket
        slot._probe = probe
        try:
            delay = state.global_limiter.reserve(now, slot.max_wait)
            if delay > 0:
                await self.clock.sleep(delay)
        except BaseException:
            self._give_back(bucket, probe=probe)
            slot._released = True
            raise

    def _give_back(self, bucket: _Bucket, *, probe: bool) -> None:
        """Undo a reservation that was never sent."""
        bucket.in_flight -= 1
        if probe:
            bucket.probing = False
        elif bucket.limit is not None and not bucket.unlimited:
            bucket.remaining += 1
        self._pump(bucket)

    def _release(self, slot: Slot) -> None:
        """Leave without a response (the call failed): the request may still have counted."""
        slot._released = True
        bucket = slot._bucket
        if bucket is None:
            return
        bucket.in_flight -= 1
        if slot._probe:
            bucket.probing = False
        self._pump(bucket)

    def _update(
        self,
        slot: Slot,
        status: int,
        headers: Mapping[str, str],
        body_retry_after: float | None,
        body_global: bool,
    ) -> None:
        slot._released = True
        bucket = slot._bucket
        state = slot._identity
        if bucket is None or state is None:
            raise RuntimeError("update() called outside 'async with'")
        now = self.clock.monotonic()
        parsed = RateLimitHeaders.parse(headers)
        bucket.in_flight -= 1
        if slot._probe:
            bucket.probing = False
        target = bucket
        if parsed.bucket:
            target = self._learn(slot, state, bucket, parsed.bucket)
        has_limits = parsed.limit is not None and parsed.remaining is not None
        if has_limits and (parsed.reset_after is not None or parsed.reset is not None):
            target.apply(parsed, now, self.clock.time())
        elif slot._probe and status < 500 and status != 429 and target.limit is None:
            # The route answered without rate-limit headers: it has no per-route limit.
            target.unlimited = True
        if status == 429:
            retry_after, scope = rejection(parsed, body_retry_after, body_global)
            if scope == "global":
                state.global_limiter.pause_until(now + retry_after)
            else:
                target.exhaust(now, retry_after)
            if scope != "shared":
                self.invalid_guard.record(now)
        elif status in _INVALID_STATUSES:
            self.invalid_guard.record(now)
        self._pump(target)
        if target is not bucket:
            self._pump(bucket)

    def _learn(self, slot: Slot, state: _Identity, bucket: _Bucket, bucket_hash: str) -> _Bucket:
        """Record route → bucket hash and return the bucket that now tracks this request."""
        state.routes[slot.route_key] = bucket_hash
        real_key = (slot.identity, bucket_hash, slot.major)
        if bucket.key == real_key:
            return bucket
        existing = self._buckets.get(real_key)
        if existing is None:
            # Same object under its real name: its queue and counters carry over.
            if self._buckets.get(bucket.key) is bucket:
                del self._buckets[bucket.key]
            bucket.key = real_key
            self._buckets[real_key] = bucket
            return bucket
        # Another route already tracks this hash: callers queued here re-resolve to it.
        while bucket.waiters:
            waiter = bucket.waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)
        if bucket.in_flight == 0 and self._buckets.get(bucket.key) is bucket:
            del self._buckets[bucket.key]
            state.buckets -= 1
        return existing

    def _pump(self, bucket: _Bucket) -> None:
        """Hand free capacity to queued callers, oldest first."""
        now = self.clock.monotonic()
        waiters = bucket.waiters
        while waiters:
            waiter = waiters[0]
            if waiter.done():
                waiters.popleft()
                continue
            if not bucket.try_take(now):
                break
            waiters.popleft()
            waiter.set_result(True)
        self._schedule(bucket, now)

    def _schedule(self, bucket: _Bucket, now: float) -> None:
        """Start the bucket's reset timer when callers wait on an exhausted window."""
        if not bucket.waiters or bucket.sleeper is not None:
            return
        if bucket.limit is None or bucket.unlimited:
            return  # waiting for a probe's answer; _update pumps
        delay = bucket.reset_at - now
        if delay <= 0 and bucket.in_flight >= bucket.limit:
            return  # capped by in-flight requests; their answers pump
        bucket.sleeper = asyncio.get_running_loop().create_task(
            self._wake_after(bucket, max(0.0, delay))
        )

    async def _wake_after(self, bucket: _Bucket, delay: float) -> None:
        try:
            await self.clock.sleep(delay)
        finally:
            bucket.sleeper = None
        self._pump(bucket)

    def _sweep(self, now: float) -> None:
        """Forget idle buckets and identities (their state is re-learned on next use)."""
        self._next_sweep = now + min(self.idle_seconds, 60.0)
        idle = [
            (bucket.last_used, key) for key, bucket in self._buckets.items() if bucket.idle(now)
        ]
        idle.sort()
        overflow = len(self._buckets) - self.max_buckets + 1
        for last_used, key in idle:
            if last_used > now - self.idle_seconds and overflow <= 0:
                break
            del self._buckets[key]
            overflow -= 1
            state = self._identities.get(key[0])
            if state is not None:
                state.buckets -= 1
        for name, state in list(self._identities.items()):
            if (
                state.buckets <= 0
                and state.last_used <= now - self.idle_seconds
                and state.global_limiter.idle(now)
            ):
                del self._identities[name]
