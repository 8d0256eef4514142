"""Benchmark: 20 concurrent agents hammer one rate-limit bucket of the sandbox.

Runs the same load twice against a fresh sandbox on loopback, in the same process:

* ``tokenward``: every agent calls through ``ProviderClient`` (aiohttp transport + RateLimiter);
* ``naive``: every agent calls with a bare aiohttp session and, on a 429, sleeps the body's
  ``retry_after`` and tries again (what a hand-written client does).

With ``--redis URL`` it adds two runs where the agents are split over two gateway replicas (two
``ProviderClient``s with limiters of their own), as behind a load balancer:

* ``2 replicas, local``: each replica's in-process RateLimiter (what TOKENWARD_REDIS_URL unset
  gives): together they exceed the bucket;
* ``2 replicas, redis``: each replica's RedisRateLimiter on the same Redis (one shared bucket);

and a micro-benchmark of the limiter alone: the cost of one acquire + response update on a
bucket that never runs out, in-process and through Redis (one script round trip).

For each it prints requests completed, 429s the sandbox sent, and utilisation of the permitted
rate (completed / (limit × duration / window)). Targets (issue 4): no 429 after the first
response of the bucket, utilisation ≥ 90 %.

    .venv/bin/python bench/ratelimit.py [--agents 20] [--duration 20] [--window-scale 0.2]
                                        [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

from tokenward._serving import BackgroundServer
from tokenward.clock import SystemClock
from tokenward.proxy.client import ProviderClient, StaticCredentials
from tokenward.proxy.ratelimit import Limiter, RateLimiter
from tokenward.proxy.redis_ratelimit import RedisRateLimiter
from tokenward.proxy.transport import AiohttpTransport
from tokenward.sandbox import SandboxSettings, create_sandbox_app
from tokenward.shared import SharedRedis

PATH = "/api/v10/guilds/1200000000000000001/widget.json"
UA = "DiscordBot (https://github.com/tokenward/tokenward, 0.1.0)"


@dataclass
class Result:
    name: str
    completed: int
    rate_limited: int
    limit: int
    window: float
    duration: float

    @property
    def utilisation(self) -> float:
        permitted = self.limit * self.duration / self.window
        return self.completed / permitted

    def line(self) -> str:
        return (
            f"{self.name:<10} completed {self.completed:>5}   429s {self.rate_limited:>4}   "
            f"permitted {self.limit * self.duration / self.window:>6.0f}   "
            f"utilisation {self.utilisation:6.1%}"
        )


def sandbox_stats(url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{url}/_sandbox/stats").json()
    return data


def bucket_shape(url: str) -> tuple[int, float]:
    response = httpx.get(url + PATH)
    limit = int(response.headers["X-RateLimit-Limit"])
    window = float(response.headers["X-RateLimit-Reset-After"])
    httpx.post(f"{url}/_sandbox/reset").raise_for_status()
    return limit, window


async def run_tokenward(url: str, agents: int, duration: float) -> int:
    return await run_replicas(
        url, agents, duration, [lambda clock: RateLimiter(clock, max_wait=60)]
    )


async def run_replicas(
    url: str,
    agents: int,
    duration: float,
    limiters: list[Callable[[SystemClock], Limiter]],
) -> int:
    """The agents, spread round-robin over one ProviderClient per limiter (one per replica)."""
    clock = SystemClock()
    made = [make(clock) for make in limiters]
    async with AiohttpTransport() as transport:
        clients = [
            ProviderClient(
                transport=transport,
                limiter=limiter,
                clock=clock,
                base_url=url,
                user_agent=UA,
                max_rate_limit_retries=0,
            )
            for limiter in made
        ]
        deadline = time.monotonic() + duration

        async def agent(index: int) -> int:
            client = clients[index % len(clients)]
            done = 0
            while time.monotonic() < deadline:
                try:
                    response = await client.request("GET", PATH, credentials=StaticCredentials())
                except Exception:  # a refused call (429 passed on): not completed
                    await asyncio.sleep(0.05)
                    continue
                if response.status == 200 and time.monotonic() <= deadline:
                    done += 1
            return done

        try:
            return sum(await asyncio.gather(*(agent(i) for i in range(agents))))
        finally:
            for limiter in made:
                await limiter.aclose()
                if isinstance(limiter, RedisRateLimiter):
                    await limiter.shared.aclose()


def redis_limiter(url: str, prefix: str, **options: Any) -> Callable[[SystemClock], Limiter]:
    def make(clock: SystemClock) -> Limiter:
        shared = SharedRedis(url, clock, prefix=prefix)
        return RedisRateLimiter(shared, clock, max_wait=60, **options)

    return make


async def micro(make: Callable[[SystemClock], Limiter], rounds: int) -> tuple[float, float]:
    """Microseconds per acquire + update on a bucket that never runs out (and a global limit
    that never binds), one call after another, and of the acquire alone (what a call waits for;
    the update is sent in the background): the limiter's own cost on the hot path."""
    clock = SystemClock()
    limiter = make(clock)
    headers = {
        "X-RateLimit-Limit": "1000000000",
        "X-RateLimit-Remaining": "999999999",
        "X-RateLimit-Reset-After": "3600",
        "X-RateLimit-Bucket": "micro",
    }
    acquiring = 0.0
    try:
        for round_ in range(rounds + 200):  # the first 200 warm up
            if round_ == 200:
                started = time.perf_counter()
                acquiring = 0.0
            entered = time.perf_counter()
            async with limiter.acquire("GET /micro", f"tok_{round_ % 40}") as slot:
                acquiring += time.perf_counter() - entered
                slot.update(200, headers)
        elapsed = time.perf_counter() - started
    finally:
        await limiter.aclose()
        if isinstance(limiter, RedisRateLimiter):
            await limiter.shared.aclose()
    return elapsed / rounds * 1e6, acquiring / rounds * 1e6


async def run_naive(url: str, agents: int, duration: float) -> int:
    async with aiohttp.ClientSession(headers={"User-Agent": UA}) as session:
        deadline = time.monotonic() + duration

        async def agent() -> int:
            done = 0
            while time.monotonic() < deadline:
                async with session.get(url + PATH) as response:
                    body = await response.json()
                    if response.status == 429:
                        await asyncio.sleep(float(body.get("retry_after", 1.0)))
                    elif time.monotonic() <= deadline:
                        done += 1
            return done

        return sum(await asyncio.gather(*(agent() for _ in range(agents))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--window-scale", type=float, default=0.2)
    parser.add_argument("--redis", help="also run two replicas with and without shared Redis")
    args = parser.parse_args()

    settings = SandboxSettings(window_scale=args.window_scale)
    with BackgroundServer(create_sandbox_app(settings)) as server:
        limit, window = bucket_shape(server.url)
        print(
            f"bucket: {limit} requests / {window:g} s; {args.agents} agents; "
            f"{args.duration:g} s per run"
        )
        results = []
        runs: list[tuple[str, Callable[[str, int, float], Any]]] = [
            ("tokenward", run_tokenward),
            ("naive", run_naive),
        ]
        if args.redis:
            prefix = f"bench:{secrets.token_hex(4)}:"
            local = [lambda clock: RateLimiter(clock, max_wait=60)] * 2
            shared = [redis_limiter(args.redis, prefix)] * 2
            runs += [
                ("2 local", lambda u, a, d: run_replicas(u, a, d, local)),
                ("2 redis", lambda u, a, d: run_replicas(u, a, d, shared)),
            ]
        for name, runner in runs:
            httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
            completed = asyncio.run(runner(server.url, args.agents, args.duration))
            limited = int(sandbox_stats(server.url)["rate_limited"])
            results.append(Result(name, completed, limited, limit, window, args.duration))
        for result in results:
            print(result.line())
        ours = [results[0], *(r for r in results if r.name == "2 redis")]
        ok = all(r.rate_limited == 0 and r.utilisation >= 0.9 for r in ours)
        print("target (no 429, utilisation >= 90%):", "met" if ok else "NOT met")
        if args.redis:
            prefix = f"bench:{secrets.token_hex(4)}:"
            rounds = 5000
            unbound = {"global_limit": 10**9}
            local_us = asyncio.run(micro(lambda clock: RateLimiter(clock, **unbound), rounds))
            redis_us = asyncio.run(micro(redis_limiter(args.redis, prefix, **unbound), rounds))
            print(
                f"limiter alone ({rounds} rounds), acquire + update: in-process "
                f"{local_us[0]:.1f} µs, redis {redis_us[0]:.1f} µs; acquire only: in-process "
                f"{local_us[1]:.1f} µs, redis {redis_us[1]:.1f} µs"
            )
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
