"""The rate limiter, on virtual time against an in-memory Discord that counts like Discord."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from tokenward.clock import ManualClock
from tokenward.errors import RateLimited
from tokenward.proxy.ratelimit import (
    GlobalLimiter,
    InvalidRequestGuard,
    RateLimiter,
    RateLimitHeaders,
    RouteInfo,
    route_of,
    token_identity,
)

T = TypeVar("T")


class VirtualClock:
    """Time moves only when every task is blocked: then it jumps to the earliest sleeper."""

    def __init__(self) -> None:
        self._mono = 0.0
        self._wall0 = 1_767_225_600.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._wall0 + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), future))
        await future

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        main = asyncio.ensure_future(coro)
        while not main.done():
            for _ in range(50):
                await asyncio.sleep(0)
                if main.done():
                    break
            if main.done():
                break
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                continue
            deadline = self._sleepers[0][0]
            self._mono = max(self._mono, deadline)
            while self._sleepers and self._sleepers[0][0] <= deadline:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
        return main.result()


@dataclass
class _Window:
    start: float = -1e9
    end: float = -1e9
    count: int = 0


@dataclass
class FakeDiscord:
    """Fixed windows per (auth, bucket, major) and a 50/s global window per auth, like Discord.

    Requests are counted when they *arrive* (after half the latency), answered after the other
    half, so in-flight requests are really in flight.
    """

    clock: VirtualClock
    limit: int = 5
    window: float = 1.0
    latency: float = 0.02
    global_limit: int = 50
    buckets: dict[str, str] = field(default_factory=dict)  # route key → bucket hash
    windows: dict[tuple[str, str, str | None], _Window] = field(
        default_factory=lambda: defaultdict(_Window)
    )
    global_windows: dict[str, _Window] = field(default_factory=lambda: defaultdict(_Window))
    arrivals: list[tuple[float, str, str, str | None]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight_before_first_answer: int = 0
    answered: int = 0

    async def call(
        self, identity: str, route: RouteInfo
    ) -> tuple[int, dict[str, str], float | None, bool]:
        self.in_flight += 1
        if self.answered == 0:
            self.max_in_flight_before_first_answer = max(
                self.max_in_flight_before_first_answer, self.in_flight
            )
        await self.clock.sleep(self.latency / 2)
        now = self.clock.monotonic()
        result = self._count(now, identity, route)
        await self.clock.sleep(self.latency / 2)
        self.in_flight -= 1
        self.answered += 1
        self.statuses[result[0]] += 1
        return result

    def _count(
        self, now: float, identity: str, route: RouteInfo
    ) -> tuple[int, dict[str, str], float | None, bool]:
        bucket = self.buckets.get(route.key, "h-" + route.key)
        self.arrivals.append((now, identity, bucket, route.major))
        glob = self.global_windows[identity]
        if now >= glob.end:
            glob.start, glob.end, glob.count = now, now + 1.0, 0
        glob.count += 1
        if glob.count > self.global_limit:
            return (
                429,
                {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
                (glob.end - now),
                True,
            )
        win = self.windows[(identity, bucket, route.major)]
        if now >= win.end:
            win.start, win.end, win.count = now, now + self.window, 0
        win.count += 1
        reset_after = win.end - now
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - win.count)),
            "X-RateLimit-Reset": f"{self.clock._wall0 + win.end:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        if win.count > self.limit:
            headers["X-RateLimit-Scope"] = "user"
            return 429, headers, reset_after, False
        return 200, headers, None, False


async def limited_call(
    limiter: RateLimiter, discord: FakeDiscord, identity: str, route: RouteInfo
) -> int:
    async with limiter.acquire(route.key, identity, route.major) as slot:
        status, headers, retry_after, is_global = await discord.call(identity, route)
        slot.update(status, headers, retry_after, is_global)
    return status


ROUTE = route_of("GET", "/api/v10/guilds/81384788765712384/widget.json")


# -- route keys and identities --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "key", "major"),
    [
        ("GET", "/api/v10/gateway", "GET /gateway", None),
        ("get", "/api/v10/users/@me", "GET /users/@me", None),
        ("GET", "/api/v10/users/80351110224678912", "GET /users/{id}", None),
        (
            "GET",
            "/api/v10/guilds/81384788765712384/widget.json",
            "GET /guilds/{guild_id}/widget.json",
            "guild_id:81384788765712384",
        ),
        (
            "GET",
            "/api/v10/users/@me/guilds/81384788765712384/member",
            "GET /users/@me/guilds/{id}/member",
            None,
        ),
        ("GET", "/api/v10/invites/discord-api", "GET /invites/{code}", None),
        ("GET", "/api/v10/guilds/templates/hgM48av5Q69A", "GET /guilds/templates/{code}", None),
        (
            "POST",
            "/api/v10/channels/41771983423143937/messages",
            "POST /channels/{channel_id}/messages",
            "channel_id:41771983423143937",
        ),
        (
            "PUT",
            "/api/v10/channels/1/messages/2/reactions/%F0%9F%91%8D/@me",
            "PUT /channels/{channel_id}/messages/{id}/reactions/{emoji}/@me",
            "channel_id:1",
        ),
        ("GET", "/api/v10/sticker-packs", "GET /sticker-packs", None),
    ],
)
def test_route_of(method: str, path: str, key: str, major: str | None) -> None:
    assert route_of(method, path) == RouteInfo(key, major)


def test_webhook_token_is_part_of_the_major_but_never_in_clear() -> None:
    route = route_of("POST", "/api/v10/webhooks/223704706495545344/SECRETtokenVALUE")
    assert route.key == "POST /webhooks/{webhook_id}/{webhook_token}"
    assert route.major is not None
    assert route.major.startswith("webhook_id:223704706495545344:")
    assert "SECRET" not in route.major
    other = route_of("POST", "/api/v10/webhooks/223704706495545344/othertoken")
    assert other.major != route.major


@pytest.mark.parametrize(
    ("method", "path", "key", "major"),
    [
        (
            "DELETE",
            "/api/v10/channels/41771983423143937/messages/1300000000000000009",
            "DELETE /channels/{channel_id}/messages/{id}",
            "channel_id:41771983423143937",
        ),
        (
            "PUT",
            "/api/v10/channels/1/messages/2/reactions/blob%3A123/80351110224678912",
            "PUT /channels/{channel_id}/messages/{id}/reactions/{emoji}/{id}",
            "channel_id:1",
        ),
        (
            "PUT",
            "/api/v10/guilds/81384788765712384/bans/80351110224678912",
            "PUT /guilds/{guild_id}/bans/{id}",
            "guild_id:81384788765712384",
        ),
        (
            "PATCH",
            "/api/v10/guilds/81384788765712384/members/80351110224678912",
            "PATCH /guilds/{guild_id}/members/{id}",
            "guild_id:81384788765712384",
        ),
    ],
)
def test_write_routes_carry_their_major_parameter(
    method: str, path: str, key: str, major: str
) -> None:
    route = route_of(method, path)
    assert (route.key, route.major, route.identity) == (key, major, None)


def test_token_routes_have_an_identity_and_never_the_token_in_clear() -> None:
    callback = route_of("POST", "/api/v10/interactions/1300000000000000001/SECRETint/callback")
    assert callback.key == "POST /interactions/{id}/{interaction_token}/callback"
    assert callback.identity == "interaction:1300000000000000001"
    original = route_of(
        "PATCH", "/api/v10/webhooks/1300000000000000002/SECRETtok/messages/@original"
    )
    assert original.key == "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original"
    assert original.major is not None
    assert original.identity == "webhook:" + original.major.partition(":")[2]
    followup = route_of("POST", "/api/v10/webhooks/1300000000000000002/SECRETtok")
    assert followup.identity == original.identity  # one webhook (id + token), one identity
    for route in (callback, original, followup):
        assert "SECRET" not in f"{route.key} {route.major} {route.identity}"
    assert route_of("GET", "/api/v10/webhooks/1300000000000000002").identity is None


def test_token_identity_hashes_and_never_contains_the_token() -> None:
    assert token_identity(None) == "ip"
    assert token_identity("") == "ip"
    one = token_identity("Bearer abcdefSECRET")
    assert one.startswith("tok_")
    assert "SECRET" not in one
    assert one == token_identity("Bearer abcdefSECRET")
    assert one != token_identity("Bearer other")


def test_header_parsing_is_lenient() -> None:
    parsed = RateLimitHeaders.parse(
        {
            "x-ratelimit-limit": "5",
            "X-RateLimit-Remaining": "-3",
            "X-RateLimit-Reset-After": "nan",
            "X-RateLimit-Reset": "1470173023.123",
            "X-RateLimit-Bucket": "abcd1234",
            "X-RateLimit-Scope": "Shared",
            "X-RateLimit-Global": "true",
            "Retry-After": "oops",
        }
    )
    assert parsed == RateLimitHeaders(
        limit=5,
        remaining=0,
        reset=1470173023.123,
        reset_after=None,
        bucket="abcd1234",
        scope="shared",
        is_global=True,
        retry_after=None,
    )


# -- learning and waiting --------------------------------------------------------------------------


async def test_learns_the_bucket_from_the_first_response() -> None:
    clock = VirtualClock()
    discord = FakeDiscord(clock, buckets={ROUTE.key: "abcd1234"})
    limiter = RateLimiter(clock)

    async def scenario() -> None:
        assert await limited_call(limiter, discord, "u1", ROUTE) == 200

    await clock.run(scenario())
    assert limiter.bucket_hash("u1", ROUTE.key) == "abcd1234"
    state = limiter.bucket_state("u1", ROUTE.key, ROUTE.major)
    assert state is not None
    assert state["bucket"] == "abcd1234"
    assert state["limit"] == 5
    assert state["remaining"] == 4
    assert limiter.bucket_hash("u2", ROUTE.key) is None  # learned per identity


async def test_unknown_bucket_lets_one_request_through_first() -> None:
    clock = VirtualClock()
    discord = FakeDiscord(clock, limit=5)
    limiter = RateLimiter(clock)

    async def scenario() -> list[int]:
        return await asyncio.gather(
            *(limited_call(limiter, discord, "u1", ROUTE) for _ in range(12))
        )

    statuses = await clock.run(scenario())
    assert discord.max_in_flight_before_first_answer == 1
    assert statuses.count(200) == 12
    assert discord.statuses[429] == 0


@pytest.mark.parametrize(
    ("limit", "window", "latency", "callers"),
    [(5, 1.0, 0.02, 20), (1, 0.5, 0.01, 20), (10, 2.0, 0.3, 20), (3, 1.0, 0.9, 8)],
)
async def test_concurrent_callers_get_no_429_and_use_the_rate(
    limit: int, window: float, latency: float, callers: int
) -> None:
    clock = VirtualClock()
    discord = FakeDiscord(clock, limit=limit, window=window, latency=latency)
    limiter = RateLimiter(clock, max_wait=600)
    duration = 20 * window

    async def agent() -> int:
        done = 0
        while clock.monotonic() < duration:
            await limited_call(limiter, discord, "u1", ROUTE)
            done += 1
        return done

    async def scenario() -> int:
        return sum(await asyncio.gather(*(agent() for _ in range(callers))))

    completed = await clock.run(scenario())
    assert discord.statuses[429] == 0
    permitted = limit * duration / window
    # Each window costs at least one round trip of idle time (the reset is learned from answers).
    assert completed >= 0.9 * permitted * window / (window + latency)


async def test_waits_pre_emptively_until_reset() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    headers = {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": "7.5",
        "X-RateLimit-Reset": f"{clock.time() + 7.5}",
        "X-RateLimit-Bucket": "b1",
    }
    async with limiter.acquire(ROUTE.key, "u1", ROUTE.major) as slot:
        slot.update(200, headers)
    before = clock.monotonic()
    async with limiter.acquire(ROUTE.key, "u1", ROUTE.major) as slot:
        waited = clock.monotonic() - before
        slot.update(200, {**headers, "X-RateLimit-Remaining": "1"})
    assert waited == pytest.approx(7.5)


async def test_raises_rate_limited_instead_of_waiting_past_max_wait() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, max_wait=5.0)
    async with limiter.acquire(ROUTE.key, "u1", ROUTE.major) as slot:
        slot.update(
            200,
            {
                "X-RateLimit-Limit": "1",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": "12",
                "X-RateLimit-Bucket": "b1",
            },
        )
    with pytest.raises(RateLimited) as caught:
        async with limiter.acquire(ROUTE.key, "u1", ROUTE.major):
            pytest.fail("should not be admitted")
    assert caught.value.retry_after == pytest.approx(12.0)
    assert caught.value.details == {"retry_after": 12.0, "scope": "bucket"}
    assert clock.monotonic() == 0.0  # gave up at once
    # A per-call bound overrides the limiter's.
    async with limiter.acquire(ROUTE.key, "u1", ROUTE.major, max_wait=20) as slot:
        slot.update(200, {})
    assert clock.monotonic() == pytest.approx(12.0)


async def test_buckets_are_keyed_by_identity_and_major() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, max_wait=1.0)
    exhausted = {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": "60",
        "X-RateLimit-Bucket": "shared-hash",
    }
    async with limiter.acquire(ROUTE.key, "u1", "guild_id:1") as slot:
        slot.update(200, exhausted)
    # Other identity, other major: independent counters, no wait.
    for identity, major in [("u2", "guild_id:1"), ("u1", "guild_id:2")]:
        async with limiter.acquire(ROUTE.key, identity, major) as slot:
            slot.update(200, {**exhausted, "X-RateLimit-Remaining": "0"})
    with pytest.raises(RateLimited):
        async with limiter.acquire(ROUTE.key, "u1", "guild_id:1"):
            pass
    assert clock.monotonic() == 0.0


async def test_routes_sharing_a_hash_share_the_bucket() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, max_wait=1.0)
    exhausted = {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": "60",
        "X-RateLimit-Bucket": "same",
    }
    for key in ("GET /a", "GET /b"):
        async with limiter.acquire(key, "u1") as slot:
            slot.update(200, exhausted)
    with pytest.raises(RateLimited):
        async with limiter.acquire("GET /a", "u1"):
            pass


async def test_a_late_answer_from_the_previous_window_is_ignored() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    wall = clock.time()

    def headers(remaining: int, reset_at: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{reset_at:.3f}",
            "X-RateLimit-Reset-After": f"{max(0.0, reset_at - clock.time()):.3f}",
            "X-RateLimit-Bucket": "b",
        }

    async with limiter.acquire("GET /x", "u1") as slot:
        slot.update(200, headers(4, wall + 1.0))
    late = limiter.acquire("GET /x", "u1")
    await late.__aenter__()  # sent in window 1, answered after window 2 began
    clock.advance(1.5)
    async with limiter.acquire("GET /x", "u1") as slot:
        slot.update(200, headers(4, wall + 2.5))
    late.update(200, headers(0, wall + 1.0))
    state = limiter.bucket_state("u1", "GET /x")
    assert state is not None
    # 4 left per window 2's answer, minus the late request that was still in flight then (it
    # might have counted in window 2); the late answer's "0" (window 1) does not drain it.
    assert state["remaining"] == 3


async def test_cancelled_waiter_releases_nothing_and_blocks_nobody() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    probe = limiter.acquire("GET /x", "u1")
    await probe.__aenter__()  # unknown bucket: the probe is in flight, others queue

    async def wait_for_slot() -> None:
        async with limiter.acquire("GET /x", "u1") as slot:
            slot.update(200, {})

    queued = asyncio.ensure_future(wait_for_slot())
    follower = asyncio.ensure_future(wait_for_slot())
    await asyncio.sleep(0)
    queued.cancel()
    await asyncio.sleep(0)
    probe.update(200, {})  # no headers: the route has no per-route limit
    await asyncio.wait_for(follower, 1)
    with pytest.raises(asyncio.CancelledError):
        await queued
    state = limiter.bucket_state("u1", "GET /x")
    assert state is not None
    assert state["in_flight"] == 0
    assert state["waiting"] == 0


async def test_a_failed_call_without_answer_frees_the_probe() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    with pytest.raises(OSError, match="boom"):
        async with limiter.acquire("GET /x", "u1"):
            raise OSError("boom")
    async with limiter.acquire("GET /x", "u1") as slot:  # would hang if the probe leaked
        slot.update(
            200,
            {
                "X-RateLimit-Limit": "2",
                "X-RateLimit-Remaining": "1",
                "X-RateLimit-Reset-After": "1",
                "X-RateLimit-Bucket": "b",
            },
        )
    assert limiter.bucket_state("u1", "GET /x") == {
        "bucket": "b",
        "limit": 2,
        "remaining": 1,
        "reset_in": 1.0,
        "in_flight": 0,
        "waiting": 0,
    }


# -- 429 handling ----------------------------------------------------------------------------------


async def test_user_429_empties_the_bucket_until_retry_after() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    async with limiter.acquire("GET /x", "u1") as slot:
        slot.update(429, {"X-RateLimit-Scope": "user", "X-RateLimit-Bucket": "b"}, 3.25)
    async with limiter.acquire("GET /x", "u1") as slot:
        assert clock.monotonic() == pytest.approx(3.25)
        slot.update(200, {})
    assert limiter.invalid_guard.total == 1


async def test_global_429_pauses_every_route_of_that_identity_only() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    async with limiter.acquire("GET /x", "u1") as slot:
        slot.update(429, {"X-RateLimit-Global": "true"}, 2.0, True)
    async with limiter.acquire("GET /other", "u2") as slot:  # another identity: not paused
        assert clock.monotonic() == 0.0
        slot.update(200, {})
    async with limiter.acquire("GET /other", "u1") as slot:
        assert clock.monotonic() == pytest.approx(2.0)
        slot.update(200, {})


async def test_global_pause_longer_than_max_wait_raises() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, max_wait=1.0)
    async with limiter.acquire("GET /x", "u1") as slot:
        slot.update(429, {"X-RateLimit-Scope": "global"}, 30.0)
    with pytest.raises(RateLimited) as caught:
        async with limiter.acquire("GET /y", "u1"):
            pass
    assert caught.value.details["scope"] == "global"
    assert caught.value.retry_after == pytest.approx(30.0)


async def test_shared_429_waits_on_the_bucket_but_is_not_an_invalid_request() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    async with limiter.acquire("GET /x", "u1") as slot:
        slot.update(429, {"X-RateLimit-Scope": "shared", "Retry-After": "5"}, 4.5)
    assert limiter.invalid_guard.total == 0
    async with limiter.acquire("GET /x", "u1") as slot:
        assert clock.monotonic() == pytest.approx(4.5)
        slot.update(200, {})


async def test_429_without_body_uses_retry_after_header() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    async with limiter.acquire("GET /x", "u1") as slot:
        slot.update(429, {"Retry-After": "6"})
    async with limiter.acquire("GET /x", "u1") as slot:
        assert clock.monotonic() == pytest.approx(6.0)
        slot.update(200, {})


# -- global limit, invalid-request guard, memory ---------------------------------------------------


async def test_global_limit_50_per_second_per_identity() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_wait=600)
    sends: dict[str, list[float]] = defaultdict(list)

    async def call(identity: str, n: int) -> None:
        async with limiter.acquire(f"GET /r{n}", identity) as slot:  # all different buckets
            sends[identity].append(clock.monotonic())
            await clock.sleep(0.01)
            slot.update(200, {})

    async def scenario() -> None:
        await asyncio.gather(*(call(ident, n) for ident in ("a", "b") for n in range(300)))

    await clock.run(scenario())
    for times in sends.values():
        assert len(times) == 300
        times.sort()
        # No one-second interval holds more than 50 sends.
        assert all(times[i + 50] - times[i] >= 1.0 for i in range(len(times) - 50))
        # And the limit is used, not starved: 300 sends in about 6 s.
        assert times[-1] < 6.5
    # Identities do not share the global limit: both ran in parallel.
    assert abs(sends["a"][-1] - sends["b"][-1]) < 0.5


def test_global_limiter_reservations_are_ordered_and_bounded() -> None:
    limiter = GlobalLimiter(limit=3, period=1.0, margin=0.0)
    delays = [limiter.reserve(0.0, 10.0) for _ in range(7)]
    assert delays == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
    with pytest.raises(RateLimited):
        limiter.reserve(0.0, 1.5)


async def test_invalid_request_guard_stops_sending_at_the_budget() -> None:
    clock = ManualClock()
    guard = InvalidRequestGuard(budget=3, window=600)
    limiter = RateLimiter(clock, invalid_guard=guard)
    for status in (401, 403, 200, 404, 429):
        async with limiter.acquire(f"GET /{status}", "u1") as slot:
            slot.update(status, {"Retry-After": "0"})
        clock.advance(10)
    assert guard.total == 3
    with pytest.raises(RateLimited) as caught:
        async with limiter.acquire("GET /ok", "someone-else"):
            pass
    assert caught.value.details["scope"] == "invalid_requests"
    # The first of them ages out 600 s after it was recorded.
    assert caught.value.retry_after == pytest.approx(600 - 50, abs=1.0)
    clock.advance(caught.value.retry_after + 1)
    async with limiter.acquire("GET /ok", "u1") as slot:
        slot.update(200, {})


def test_invalid_request_guard_memory_is_per_second() -> None:
    guard = InvalidRequestGuard(budget=100_000, window=600)
    for i in range(20_000):
        guard.record(i * 0.05)
    assert guard.total <= 600 * 20
    assert len(guard._counts) <= 601


async def test_idle_buckets_are_evicted() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, max_buckets=100, idle_seconds=30)
    for n in range(1000):
        async with limiter.acquire("GET /guilds/{guild_id}", "u1", f"guild_id:{n}") as slot:
            slot.update(
                200,
                {
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "4",
                    "X-RateLimit-Reset-After": "1",
                    "X-RateLimit-Bucket": "g",
                },
            )
        clock.advance(0.05)
    assert limiter.bucket_count <= 100
    clock.advance(120)
    async with limiter.acquire("GET /x", "u2") as slot:
        slot.update(200, {})
    assert limiter.bucket_count <= 2


async def test_aclose_fails_waiters() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    probe = limiter.acquire("GET /x", "u1")
    await probe.__aenter__()

    async def waiter() -> None:
        async with limiter.acquire("GET /x", "u1"):
            pass

    task = asyncio.ensure_future(waiter())
    await asyncio.sleep(0)
    await limiter.aclose()
    with pytest.raises(RateLimited):
        await task


async def test_uncontended_acquire_is_cheap() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, global_limit=10**9)
    headers = {
        "X-RateLimit-Limit": "1000000",
        "X-RateLimit-Remaining": "999999",
        "X-RateLimit-Reset-After": "1000",
        "X-RateLimit-Bucket": "b",
    }
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        async with limiter.acquire("GET /x", "u1") as slot:
            slot.update(200, headers)
    per_call = (time.perf_counter() - started) / rounds
    assert per_call < 100e-6, f"{per_call * 1e6:.1f} µs per acquire/update"
