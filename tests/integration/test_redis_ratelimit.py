"""The shared rate limiter: several limiters (replicas) on one Redis act as one, against the sandbox
with its rate limits on; and a Redis that is away or restarts never fails a call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from conftest import PrivateRedis, closed_port_url
from tokenward.clock import SystemClock
from tokenward.errors import RateLimited
from tokenward.proxy.client import Credential, ProviderClient, StaticCredentials
from tokenward.proxy.ratelimit import Limiter, RateLimiter, route_of
from tokenward.proxy.redis_ratelimit import RedisRateLimiter
from tokenward.proxy.retry import RetryPolicy
from tokenward.proxy.transport import AiohttpTransport, Timeouts
from tokenward.shared import SharedRedis

pytestmark = pytest.mark.redis

UA = "DiscordBot (https://github.com/tokenward/tokenward, 0.1.0)"
ME = "/api/v10/users/@me"


def bot_token(sandbox_url: str) -> str:
    """The sandbox's default application's bot token."""
    apps = httpx.get(f"{sandbox_url}/_sandbox/applications").raise_for_status().json()
    return str(next(app["bot_token"] for app in apps if app["client_id"] == "1300000000000000001"))


def stats(sandbox_url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{sandbox_url}/_sandbox/stats").raise_for_status().json()
    return data


@asynccontextmanager
async def replica(
    sandbox_url: str, make_limiter: Callable[[SystemClock], Limiter]
) -> AsyncIterator[ProviderClient]:
    """One gateway replica's proxy core: its own transport and limiter."""
    clock = SystemClock()
    limiter = make_limiter(clock)
    async with AiohttpTransport(timeouts=Timeouts(total=10, connect=5)) as transport:
        try:
            yield ProviderClient(
                transport=transport,
                limiter=limiter,
                clock=clock,
                base_url=sandbox_url,
                user_agent=UA,
                retry_policy=RetryPolicy(deadline=2.0, base_delay=0.05, max_delay=0.5),
                max_rate_limit_retries=0,
            )
        finally:
            await limiter.aclose()
            if isinstance(limiter, RedisRateLimiter):
                await limiter.shared.aclose()


def shared_limiter(
    url: str, prefix: str, **options: Any
) -> Callable[[SystemClock], RedisRateLimiter]:
    def make(clock: SystemClock) -> RedisRateLimiter:
        shared = SharedRedis(url, clock, prefix=prefix, retry_interval=0.2)
        return RedisRateLimiter(shared, clock, max_wait=20, **options)

    return make


def local_limiter(clock: SystemClock) -> Limiter:
    return RateLimiter(clock, max_wait=20)


async def burst(clients: list[ProviderClient], calls: int, credential: Credential) -> list[int]:
    """``calls`` concurrent calls for one token, spread round-robin over ``clients``; statuses
    (a RateLimited refusal by our limiter or a failed call counts as 0)."""
    source = StaticCredentials(credential)

    async def one(index: int) -> int:
        client = clients[index % len(clients)]
        try:
            response = await client.request("GET", ME, credentials=source)
        except RateLimited:
            return 0
        return response.status

    return list(await asyncio.gather(*(one(i) for i in range(calls))))


async def test_two_replicas_on_one_redis_never_exceed_a_bucket(
    sandbox_url: str, redis_server_url: str, redis_prefix: str
) -> None:
    token = Credential("bot", bot_token(sandbox_url))
    make = shared_limiter(redis_server_url, redis_prefix)
    async with replica(sandbox_url, make) as a, replica(sandbox_url, make) as b:
        statuses = await burst([a, b], 24, token)
    assert statuses == [200] * 24
    assert stats(sandbox_url)["rate_limited"] == 0


async def test_without_redis_the_same_burst_earns_429s(sandbox_url: str) -> None:
    """The control: two per-process limiters each think they own the bucket."""
    token = Credential("bot", bot_token(sandbox_url))
    async with replica(sandbox_url, local_limiter) as a, replica(sandbox_url, local_limiter) as b:
        statuses = await burst([a, b], 24, token)
    assert stats(sandbox_url)["rate_limited"] > 0
    assert statuses.count(200) < 24


async def test_bucket_discovery_is_shared(
    sandbox_url: str, redis_server_url: str, redis_prefix: str
) -> None:
    token = Credential("bot", bot_token(sandbox_url))
    make = shared_limiter(redis_server_url, redis_prefix)
    async with replica(sandbox_url, make) as a, replica(sandbox_url, make) as b:
        assert (await burst([a], 1, token)) == [200]
        limiter_a, limiter_b = a.limiter, b.limiter
        assert isinstance(limiter_a, RedisRateLimiter)
        assert isinstance(limiter_b, RedisRateLimiter)
        await limiter_a.flush()
        route = route_of("GET", ME).key
        seen_by_b = await limiter_b.bucket_state(token.rate_limit_identity(), route)
        assert seen_by_b is not None
        assert len(seen_by_b["bucket"]) == 32  # the sandbox's hash, not the provisional name
        assert int(seen_by_b["limit"]) == 5
        assert int(seen_by_b["rem"]) == 4


async def test_a_global_429_pauses_every_replica(redis_server_url: str, redis_prefix: str) -> None:
    clock = SystemClock()
    make = shared_limiter(redis_server_url, redis_prefix)
    a, b = make(clock), make(clock)
    try:
        async with a.acquire("GET /users/@me", "tok_x") as slot:
            slot.update(
                429, {"X-RateLimit-Scope": "global"}, body_retry_after=5.0, body_global=True
            )
        await a.flush()
        with pytest.raises(RateLimited) as refused:
            async with b.acquire("GET /guilds/{guild_id}", "tok_x", max_wait=1.0):
                pass
        assert refused.value.details["scope"] == "global"
        assert 3.5 < refused.value.retry_after <= 5.0
        # Another identity is not paused.
        async with b.acquire("GET /guilds/{guild_id}", "tok_y", max_wait=1.0):
            pass
    finally:
        for limiter in (a, b):
            await limiter.aclose()
            await limiter.shared.aclose()


async def test_the_invalid_request_budget_is_shared(
    redis_server_url: str, redis_prefix: str
) -> None:
    """401s counted by one replica stop the others too (the IP is the same)."""
    clock = SystemClock()
    make = shared_limiter(redis_server_url, redis_prefix, invalid_budget=3)
    a, b = make(clock), make(clock)
    try:
        for index in range(3):
            async with a.acquire("GET /users/@me", f"tok_{index}") as slot:
                slot.update(401, {})
        await a.flush()
        with pytest.raises(RateLimited) as refused:
            async with b.acquire("GET /gateway", "ip"):
                pass
        assert refused.value.details["scope"] == "invalid_requests"
        assert 590 < refused.value.retry_after <= 600
    finally:
        for limiter in (a, b):
            await limiter.aclose()
            await limiter.shared.aclose()


async def test_redis_unreachable_at_start_calls_still_work(sandbox_url: str) -> None:
    token = Credential("bot", bot_token(sandbox_url))
    make = shared_limiter(closed_port_url(), "tw:")
    async with replica(sandbox_url, make) as a:
        statuses = await burst([a], 12, token)
        limiter = a.limiter
        assert isinstance(limiter, RedisRateLimiter)
        assert not limiter.shared.up
        assert limiter.shared.report()["degraded"] is True
        assert limiter.fallback_grants == 12
        assert limiter.shared_grants == 0
    assert statuses == [200] * 12
    assert stats(sandbox_url)["rate_limited"] == 0  # the per-process limits still hold


async def test_redis_restarted_mid_run_fails_no_call(
    sandbox_url: str, private_redis: PrivateRedis
) -> None:
    token = Credential("bot", bot_token(sandbox_url))
    make = shared_limiter(private_redis.url, "tw:")
    async with replica(sandbox_url, make) as a:
        limiter = a.limiter
        assert isinstance(limiter, RedisRateLimiter)
        first = await burst([a], 6, token)
        assert limiter.shared_grants == 6
        private_redis.stop()
        during = await burst([a], 6, token)
        assert not limiter.shared.up
        assert limiter.fallback_grants >= 6
        private_redis.start()
        await asyncio.sleep(0.3)  # past the retry interval
        shared_before = limiter.shared_grants
        after = await burst([a], 6, token)
        assert limiter.shared.up
        assert limiter.shared_grants > shared_before
    assert first + during + after == [200] * 18


async def test_a_replica_that_dies_mid_request_holds_nothing_past_its_lease(
    redis_server_url: str, redis_prefix: str
) -> None:
    """A probe taken by a replica that never answers (killed) stops blocking the bucket once its
    lease ends, instead of until every caller's max_wait runs out."""
    clock = SystemClock()
    make = shared_limiter(redis_server_url, redis_prefix, in_flight_lease=0.5)
    a, b = make(clock), make(clock)
    try:
        dead = a.acquire("GET /users/@me", "tok_z")
        await dead.__aenter__()  # the probe of an unknown bucket, never reported
        started = clock.monotonic()
        async with b.acquire("GET /users/@me", "tok_z", max_wait=5.0) as slot:
            waited = clock.monotonic() - started
            slot.update(200, {})
        assert 0.3 < waited < 2.0
    finally:
        for limiter in (a, b):
            await limiter.aclose()
            await limiter.shared.aclose()


async def test_a_caller_cancelled_while_its_acquire_ran_gives_the_slot_back(
    redis_server_url: str, redis_prefix: str
) -> None:
    """The script granted a probe but its caller was cancelled before reading the answer (a
    client that hung up): the probe is released at once, not when its 60 s lease ends."""
    clock = SystemClock()
    make = shared_limiter(redis_server_url, redis_prefix)
    a, b = make(clock), make(clock)
    granted_then_cancelled = a._acquire

    async def cancelled_after_running(**kw: Any) -> Any:
        await granted_then_cancelled(**kw)  # runs in Redis: the probe is taken
        raise asyncio.CancelledError

    a._acquire = cancelled_after_running  # type: ignore[assignment]
    try:
        with pytest.raises(asyncio.CancelledError):
            async with a.acquire("GET /users/@me", "tok_c"):
                pass
        await a.flush()
        started = clock.monotonic()
        async with b.acquire("GET /users/@me", "tok_c", max_wait=3.0) as slot:
            waited = clock.monotonic() - started
            slot.update(200, {})
        assert waited < 0.5
    finally:
        for limiter in (a, b):
            await limiter.aclose()
            await limiter.shared.aclose()
