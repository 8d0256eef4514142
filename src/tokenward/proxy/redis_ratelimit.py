"""The rate limiter with its state in Redis, shared by every replica and worker.

The algorithm is :mod:`tokenward.proxy.ratelimit`'s (read that docstring first); what changes is
where the state lives and who may change it:

* **One script per acquire.** ``ACQUIRE`` runs atomically in Redis (``EVALSHA`` of a script
  registered once): it checks the invalid-request block, resolves the route to its learned bucket
  hash, refills the bucket if its window is over, takes one request (or says how long to wait),
  and reserves a send time in the identity's global log, all in one round trip. Nothing is taken
  when the answer is "wait": the caller sleeps that long (bounded by ``max_wait``) and asks again.
* **One script per response.** ``UPDATE`` learns ``route → bucket hash`` (shared discovery), folds
  the response's ``X-RateLimit-*`` headers into the bucket exactly as the in-process limiter does
  (windows told apart by ``X-RateLimit-Reset``, ``Remaining`` minus what is still in flight, only
  ever lowered within a window), applies a 429 (``global`` pauses the identity's global log,
  ``user``/``shared`` empties the bucket until ``retry_after``) and records 401/403/non-shared 429s
  in the shared invalid-request log. It runs in the background after the response, so it adds
  no latency to the call.
* **Time is Redis's.** Both scripts read ``TIME``; windows end at Redis time plus Discord's
  ``Reset-After``, so replicas' clocks never meet. Discord's absolute ``Reset`` is only compared
  with itself (to tell windows apart).
* **In flight, with leases.** Requests in flight are members of a sorted set scored with a lease
  deadline (``in_flight_lease``): a replica that dies mid-request stops counting once its
  leases end, instead of holding the bucket forever. A bucket whose limits are unknown lets one
  probe through (a lease of its own, released only by its owner); others poll until its headers
  arrive. A caller cancelled while its acquire script ran gives back what the script may have
  granted (``CANCEL``).
* **Keys.** Under the configured prefix: ``rl:r:{identity}`` (hash route → bucket),
  ``rl:b:{identity}:{bucket}:{major}`` (hash: limit, remaining, reset, window, window key) with
  ``…/f`` (in flight), ``rl:g:{identity}`` (list: the global log's send times) and
  ``rl:gp:{identity}`` (global pause), ``rl:inv`` (sorted set of invalid responses) and
  ``rl:inv:block`` (set, with its expiry, once the budget is spent). Every key expires once idle.
  The bucket key is computed inside the script from the learned hash, so the scripts need a
  single Redis (not Cluster).

**Redis away.** Any Redis error makes this call, and every call for the next
:data:`~tokenward.shared.RETRY_INTERVAL_S`, use the in-process :class:`RateLimiter` it wraps (the
per-process limits of a single replica); :class:`~tokenward.shared.SharedRedis` logs it, counts
it and shows it on ``/readyz``. A slot remembers which limiter granted it and reports its response
there. When Redis answers again, acquires go back to the shared state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from tokenward.clock import Clock
from tokenward.errors import RateLimited
from tokenward.proxy.ratelimit import (
    _INVALID_STATUSES,
    LimiterSlot,
    RateLimiter,
    RateLimitHeaders,
    rejection,
)
from tokenward.shared import SharedRedis, redis_errors

log = logging.getLogger("tokenward.ratelimit")

# KEYS: 1 routes hash, 2 global log, 3 global pause, 4 invalid block
# ARGV: 1 bucket key prefix, 2 bucket key suffix, 3 route key, 4 slot id, 5 max wait (ms),
#       6 in-flight lease (ms), 7 global limit, 8 global period (ms), 9 idle expiry (ms),
#       10 probe poll (ms)
# Returns {granted, wait_ms, bucket_key, probe, scope}: granted 1 = take it and wait wait_ms
# for the global log; 0 = nothing taken, ask again after wait_ms (or give up past max wait).
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = redis.call('PTTL', KEYS[4])
if blocked > 0 then return {0, blocked, '', 0, 'invalid_requests'} end
local hash = redis.call('HGET', KEYS[1], ARGV[3])
local bkey = ARGV[1] .. (hash or ('?' .. ARGV[3])) .. ARGV[2]
local fkey = bkey .. '/f'
local idle = tonumber(ARGV[9])
local b = redis.call('HMGET', bkey, 'limit', 'rem', 'reset', 'probe', 'unl', 'win', 'wk')
local limit = tonumber(b[1])
local rem = tonumber(b[2]) or 0
local reset = tonumber(b[3]) or now
redis.call('ZREMRANGEBYSCORE', fkey, '-inf', now)
local inflight = redis.call('ZCARD', fkey)
local probe = 0
if b[5] == '1' then
  -- no per-route limit: only the global log applies
elseif limit == nil then
  local until_ = tonumber(b[4]) or 0
  if until_ > now then return {0, math.min(until_ - now, tonumber(ARGV[10])), bkey, 0, 'probe'} end
  probe = 1
else
  if now >= reset then
    if b[7] then redis.call('HSET', bkey, 'floor', b[7]) end
    redis.call('HDEL', bkey, 'wk')
    rem = math.max(0, limit - inflight)
    reset = now + (tonumber(b[6]) or 1000)
  end
  if inflight >= limit then return {0, tonumber(ARGV[10]), bkey, 0, 'in_flight'} end
  if rem <= 0 then return {0, math.max(1, reset - now), bkey, 0, 'bucket'} end
  rem = rem - 1
end
local maxw = tonumber(ARGV[5])
local glimit = tonumber(ARGV[7])
local period = tonumber(ARGV[8])
local paused = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
local at = math.max(now, paused)
local last = tonumber(redis.call('LINDEX', KEYS[2], -1) or '0') or 0
if last > at then at = last end
local n = redis.call('LLEN', KEYS[2])
if n >= glimit then
  local first = tonumber(redis.call('LINDEX', KEYS[2], n - glimit))
  if first + period > at then at = first + period end
end
if at - now > maxw then
  local scope = 'global_limit'
  if paused > now then scope = 'global' end
  return {0, at - now, bkey, 0, scope}
end
redis.call('RPUSH', KEYS[2], at)
redis.call('LTRIM', KEYS[2], -glimit, -1)
redis.call('PEXPIRE', KEYS[2], at - now + period + 1000)
if probe == 1 then
  redis.call('HSET', bkey, 'probe', now + tonumber(ARGV[6]), 'powner', ARGV[4])
elseif limit ~= nil and b[5] ~= '1' then
  redis.call('HSET', bkey, 'rem', rem, 'reset', reset)
end
redis.call('ZADD', fkey, now + tonumber(ARGV[6]), ARGV[4])
local ttl = math.max(reset - now, 0) + idle
redis.call('PEXPIRE', bkey, ttl)
redis.call('PEXPIRE', fkey, ttl + tonumber(ARGV[6]))
return {1, at - now, bkey, probe, ''}
"""

# KEYS: 1 routes hash, 2 bucket key the slot was taken from, 3 global pause, 4 invalid log,
#       5 invalid block
# ARGV: 1 bucket key prefix, 2 suffix, 3 route key, 4 slot id, 5 probe (0/1), 6 status,
#       7 bucket hash, 8 limit, 9 remaining, 10 reset after (ms), 11 reset (epoch s),
#       12 retry after (ms, 429 only), 13 429 scope, 14 invalid (0/1), 15 invalid window (ms),
#       16 invalid budget, 17 idle expiry (ms), 18 response carried no limits (0/1)
# Empty strings are absent values.
UPDATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local taken = KEYS[2]
redis.call('ZREM', taken .. '/f', ARGV[4])
if redis.call('HGET', taken, 'powner') == ARGV[4] then
  redis.call('HDEL', taken, 'probe', 'powner')
end
local target = taken
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[7])
  redis.call('PEXPIRE', KEYS[1], 86400000)
  target = ARGV[1] .. ARGV[7] .. ARGV[2]
end
local status = tonumber(ARGV[6])
local idle = tonumber(ARGV[17])
local b = redis.call('HMGET', target, 'limit', 'rem', 'reset', 'win', 'wk', 'floor', 'unl')
local limit = tonumber(b[1])
local rem = tonumber(b[2]) or 0
local reset = tonumber(b[3]) or now
local win = tonumber(b[4])
local wk = tonumber(b[5])
local floor = tonumber(b[6])
local hl = tonumber(ARGV[8])
local hr = tonumber(ARGV[9])
local ra = tonumber(ARGV[10])
local hreset = tonumber(ARGV[11])
if ra == nil and hreset ~= nil then ra = math.max(0, hreset * 1000 - now) end
if hl ~= nil and hr ~= nil and ra ~= nil then
  local key = now + ra
  if hreset ~= nil then key = math.floor(hreset * 1000) end
  redis.call('ZREMRANGEBYSCORE', target .. '/f', '-inf', now)
  local inflight = redis.call('ZCARD', target .. '/f')
  local usable = math.max(0, hr - inflight)
  if hr >= hl - 1 or win == nil then win = math.max(ra, 1) end
  if wk ~= nil and math.abs(key - wk) <= 50 then
    rem = math.min(rem, usable)
    reset = math.min(reset, now + ra)
  elseif key > (floor or -1) + 50 and (wk == nil or key > wk) then
    wk = key
    rem = usable
    reset = now + ra
  end
  limit = hl
  rem = math.min(rem, limit)
  redis.call('HSET', target, 'limit', limit, 'rem', rem, 'reset', reset, 'win', win, 'unl', 0)
  if wk ~= nil then redis.call('HSET', target, 'wk', wk) end
elseif ARGV[5] == '1' and status < 500 and status ~= 429 and limit == nil and ARGV[18] == '1' then
  redis.call('HSET', target, 'unl', 1)
end
if status == 429 then
  local retry = tonumber(ARGV[12]) or 1000
  if ARGV[13] == 'global' then
    local paused = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
    if now + retry > paused then
      redis.call('SET', KEYS[3], now + retry, 'PX', retry + 1000)
    end
  else
    if limit == nil then redis.call('HSET', target, 'limit', 1) end
    redis.call('HSET', target, 'rem', 0, 'reset', math.max(reset, now + retry), 'unl', 0)
    reset = math.max(reset, now + retry)
  end
end
if ARGV[14] == '1' then
  local window = tonumber(ARGV[15])
  local budget = tonumber(ARGV[16])
  redis.call('ZADD', KEYS[4], now, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[4], window)
  local n = redis.call('ZCARD', KEYS[4])
  if n >= budget then
    local oldest = redis.call('ZRANGE', KEYS[4], n - budget, n - budget, 'WITHSCORES')
    local until_ = tonumber(oldest[2]) + window
    if until_ > now then redis.call('SET', KEYS[5], 1, 'PX', until_ - now) end
  end
end
redis.call('PEXPIRE', target, math.max(reset - now, 0) + idle)
return 1
"""

# KEYS: 1 bucket key the slot was taken from. ARGV: 1 slot id, 2 probe (0/1), 3 give back (0/1)
RELEASE = """
redis.call('ZREM', KEYS[1] .. '/f', ARGV[1])
if redis.call('HGET', KEYS[1], 'powner') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'probe', 'powner')
end
if ARGV[3] == '1' and ARGV[2] ~= '1' and redis.call('HEXISTS', KEYS[1], 'limit') == 1 then
  redis.call('HINCRBY', KEYS[1], 'rem', 1)
end
return 1
"""

# An acquire whose answer never arrived (the caller was cancelled while the script ran): undo
# whatever it may have taken, in the bucket it would have used.
# KEYS: 1 routes hash. ARGV: 1 bucket key prefix, 2 suffix, 3 route key, 4 slot id
CANCEL = """
local hash = redis.call('HGET', KEYS[1], ARGV[3])
local bkey = ARGV[1] .. (hash or ('?' .. ARGV[3])) .. ARGV[2]
if redis.call('ZREM', bkey .. '/f', ARGV[4]) == 1 then
  if redis.call('HGET', bkey, 'powner') == ARGV[4] then
    redis.call('HDEL', bkey, 'probe', 'powner')
  elseif redis.call('HEXISTS', bkey, 'limit') == 1 then
    redis.call('HINCRBY', bkey, 'rem', 1)
  end
end
return 1
"""


# Slot ids: unique across every process sharing the Redis (a random prefix per process, drawn
# again in a forked worker, then a counter), without a system call per acquire.
_SLOT_PREFIX = ""
_slot_numbers = itertools.count(1)


def _new_slot_prefix() -> None:
    global _SLOT_PREFIX, _slot_numbers
    _SLOT_PREFIX = secrets.token_hex(6) + "."
    _slot_numbers = itertools.count(1)


_new_slot_prefix()
os.register_at_fork(after_in_child=_new_slot_prefix)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class _SharedSlot:
    """A slot granted by Redis, or by the in-process fallback when Redis is away."""

    __slots__ = (
        "_bucket_key",
        "_fallback",
        "_limiter",
        "_probe",
        "_released",
        "_sent",
        "identity",
        "major",
        "max_wait",
        "route_key",
        "slot_id",
    )

    def __init__(
        self,
        limiter: RedisRateLimiter,
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
        self.slot_id = f"{_SLOT_PREFIX}{next(_slot_numbers):x}"
        self._bucket_key: str | None = None
        self._probe = False
        self._fallback: LimiterSlot | None = None
        self._released = False
        self._sent = False

    async def __aenter__(self) -> _SharedSlot:
        await self._limiter._enter(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fallback is not None:
            await self._fallback.__aexit__(exc_type, exc, tb)
            return
        if not self._released:
            self._released = True
            self._limiter._release(self)

    def update(
        self,
        status: int,
        headers: Mapping[str, str],
        body_retry_after: float | None = None,
        body_global: bool = False,
    ) -> None:
        if self._fallback is not None:
            self._fallback.update(status, headers, body_retry_after, body_global)
            return
        if self._released:
            raise RuntimeError("this slot was already updated")
        self._released = True
        self._limiter._update(self, status, headers, body_retry_after, body_global)


class RedisRateLimiter:
    """Rate-limit state shared through Redis; the in-process limiter while Redis is away."""

    def __init__(
        self,
        shared: SharedRedis,
        clock: Clock,
        *,
        max_wait: float = 30.0,
        global_limit: int = 50,
        global_period: float = 1.0,
        global_margin: float = 0.05,
        invalid_budget: int = 9_000,
        invalid_window: float = 600.0,
        in_flight_lease: float = 60.0,
        idle_seconds: float = 300.0,
        probe_poll: float = 0.02,
        fallback: RateLimiter | None = None,
    ) -> None:
        self.shared = shared
        self.clock = clock
        self.max_wait = max_wait
        self.global_limit = global_limit
        self.global_period_ms = _ms(global_period + global_margin)
        self.invalid_budget = invalid_budget
        self.invalid_window_ms = _ms(invalid_window)
        self.lease_ms = _ms(in_flight_lease)
        self.idle_ms = _ms(idle_seconds)
        self.probe_poll_ms = max(1, _ms(probe_poll))
        self.fallback = fallback or RateLimiter(
            clock,
            max_wait=max_wait,
            global_limit=global_limit,
            global_period=global_period,
            global_margin=global_margin,
        )
        prefix = shared.prefix + "rl:"
        self._prefix = prefix
        self._invalid_log = prefix + "inv"
        self._invalid_block = prefix + "inv:block"
        pipe = shared.pipe  # every script call pipelined with the others (tokenward.redis_pipe)
        self._acquire = pipe.script(ACQUIRE)
        self._update_script = pipe.script(UPDATE)
        self._release_script = pipe.script(RELEASE)
        self._cancel_script = pipe.script(CANCEL)
        self._pending: set[asyncio.Task[Any]] = set()
        self.shared_grants = 0
        self.fallback_grants = 0

    # -- the interface --------------------------------------------------------------------------

    def acquire(
        self,
        route_key: str,
        identity: str,
        major: str | None = None,
        *,
        max_wait: float | None = None,
    ) -> LimiterSlot:
        return _SharedSlot(
            self, route_key, identity, major, self.max_wait if max_wait is None else max_wait
        )

    async def aclose(self) -> None:
        await self.flush()
        await self.fallback.aclose()

    async def flush(self) -> None:
        """Wait until every response has been reported to Redis (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # -- internals ------------------------------------------------------------------------------

    def _keys(self, slot: _SharedSlot) -> tuple[str, str, str]:
        """(routes hash, bucket key prefix, bucket key suffix) of a slot's identity and major."""
        identity = slot.identity
        return (
            f"{self._prefix}r:{identity}",
            f"{self._prefix}b:{identity}:",
            f":{slot.major or ''}",
        )

    async def _enter(self, slot: _SharedSlot) -> None:
        started = self.clock.monotonic()
        routes, bucket_prefix, bucket_suffix = self._keys(slot)
        identity = slot.identity
        keys = [
            routes,
            f"{self._prefix}g:{identity}",
            f"{self._prefix}gp:{identity}",
            self._invalid_block,
        ]
        while self.shared.usable:
            left = slot.max_wait - (self.clock.monotonic() - started)
            try:
                answer = await self._acquire(
                    keys=keys,
                    args=[
                        bucket_prefix,
                        bucket_suffix,
                        slot.route_key,
                        slot.slot_id,
                        _ms(max(0.0, left)),
                        self.lease_ms,
                        self.global_limit,
                        self.global_period_ms,
                        self.idle_ms,
                        self.probe_poll_ms,
                    ],
                )
            except redis_errors() as exc:
                self.shared.failed(exc)
                break
            except asyncio.CancelledError:
                # The script may have granted a slot nobody will use: give it back.
                self._spawn(self._run_cancel(routes, bucket_prefix, bucket_suffix, slot))
                raise
            self.shared.succeeded()
            granted, wait_ms, bucket_key, probe, scope = answer
            wait = int(wait_ms) / 1000
            if int(granted):
                self.shared_grants += 1
                slot._bucket_key = _text(bucket_key)
                slot._probe = bool(int(probe))
                if wait > 0:
                    try:
                        await self.clock.sleep(wait)
                    except BaseException:
                        slot._released = True
                        self._release(slot, give_back=True)
                        raise
                return
            scope = _text(scope)
            if scope in _REFUSED or wait > left:
                raise RateLimited(
                    _refusal(scope, wait, self.invalid_window_ms / 1000),
                    retry_after=wait,
                    scope=_scope_name(scope),
                )
            await self.clock.sleep(wait)
        # Redis is away: this process's own limits, until it returns.
        self.fallback_grants += 1
        fallback = self.fallback.acquire(
            slot.route_key, slot.identity, slot.major, max_wait=slot.max_wait
        )
        await fallback.__aenter__()
        slot._fallback = fallback

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _release(self, slot: _SharedSlot, *, give_back: bool = False) -> None:
        if slot._bucket_key is None:
            return
        self._spawn(self._run_release(slot._bucket_key, slot.slot_id, slot._probe, give_back))

    async def _run_release(
        self, bucket_key: str, slot_id: str, probe: bool, give_back: bool
    ) -> None:
        try:
            await self._release_script(
                keys=[bucket_key], args=[slot_id, int(probe), int(give_back)]
            )
        except redis_errors() as exc:
            self.shared.failed(exc)  # the lease ends the reservation anyway

    async def _run_cancel(
        self, routes: str, bucket_prefix: str, bucket_suffix: str, slot: _SharedSlot
    ) -> None:
        try:
            await self._cancel_script(
                keys=[routes], args=[bucket_prefix, bucket_suffix, slot.route_key, slot.slot_id]
            )
        except redis_errors() as exc:
            self.shared.failed(exc)  # the lease ends the reservation anyway

    def _update(
        self,
        slot: _SharedSlot,
        status: int,
        headers: Mapping[str, str],
        body_retry_after: float | None,
        body_global: bool,
    ) -> None:
        assert slot._bucket_key is not None
        parsed = RateLimitHeaders.parse(headers)
        retry_ms: int | str = ""
        scope = ""
        if status == 429:
            retry_after, scope = rejection(parsed, body_retry_after, body_global)
            retry_ms = _ms(retry_after)
        invalid = status in _INVALID_STATUSES and not (status == 429 and scope == "shared")
        routes, bucket_prefix, bucket_suffix = self._keys(slot)
        has_limits = parsed.limit is not None and parsed.remaining is not None
        args: list[str | int] = [
            bucket_prefix,
            bucket_suffix,
            slot.route_key,
            slot.slot_id,
            int(slot._probe),
            status,
            parsed.bucket or "",
            parsed.limit if parsed.limit is not None else "",
            parsed.remaining if parsed.remaining is not None else "",
            _ms(parsed.reset_after) if parsed.reset_after is not None else "",
            repr(parsed.reset) if parsed.reset is not None else "",
            retry_ms,
            scope,
            int(invalid),
            self.invalid_window_ms,
            self.invalid_budget,
            self.idle_ms,
            0 if has_limits else 1,
        ]
        keys = [
            routes,
            slot._bucket_key,
            f"{self._prefix}gp:{slot.identity}",
            self._invalid_log,
            self._invalid_block,
        ]
        self._spawn(self._run_update(keys, args))

    async def _run_update(self, keys: list[str], args: list[str | int]) -> None:
        try:
            await self._update_script(keys=keys, args=args)
        except redis_errors() as exc:
            self.shared.failed(exc)

    # -- diagnostics ----------------------------------------------------------------------------

    async def bucket_state(
        self, identity: str, route_key: str, major: str | None = None
    ) -> dict[str, Any] | None:
        """A snapshot of a route's shared bucket (diagnostics and tests)."""
        client = self.shared.client
        bucket = await client.hget(f"{self._prefix}r:{identity}", route_key)
        name = _text(bucket) if bucket is not None else "?" + route_key
        key = f"{self._prefix}b:{identity}:{name}:{major or ''}"
        raw = await client.hgetall(key)
        if not raw:
            return None
        state = {_text(k): _text(v) for k, v in raw.items()}
        return {"bucket": name, **state, "in_flight": await client.zcard(key + "/f")}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _scope_name(scope: str) -> str:
    return {"probe": "bucket", "in_flight": "bucket"}.get(scope, scope)


_REFUSED = frozenset({"global", "global_limit", "invalid_requests"})
"""Scopes refused at once: their wait already exceeds the caller's bound (or is a ban guard)."""


def _refusal(scope: str, wait: float, window: float) -> str:
    if scope == "invalid_requests":
        return (
            "rate limited: too many 401/403/429 responses from the provider in the last "
            f"{window:g}s (counted across every replica); sending is paused to protect the "
            "gateway's IP"
        )
    if scope in {"global", "global_limit"}:
        return f"rate limited: the global limit would need a wait of {wait:.3f}s"
    return f"rate limited: this route's bucket would need a wait of {wait:.3f}s"
