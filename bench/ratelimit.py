"""Benchmark: 20 concurrent agents hammer one rate-limit bucket of the sandbox.

Runs the same load twice against a fresh sandbox on loopback, in the same process:

* ``tokenward``: every agent calls through ``ProviderClient`` (aiohttp transport + RateLimiter);
* ``naive``: every agent calls with a bare aiohttp session and, on a 429, sleeps the body's
  ``retry_after`` and tries again (what a hand-written client does).

For each it prints requests completed, 429s the sandbox sent, and utilisation of the permitted
rate (completed / (limit × duration / window)). Targets (issue 4): no 429 after the first
response of the bucket, utilisation ≥ 90 %.

    .venv/bin/python bench/ratelimit.py [--agents 20] [--duration 20] [--window-scale 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

from tokenward._serving import BackgroundServer
from tokenward.clock import SystemClock
from tokenward.proxy.client import ProviderClient, StaticCredentials
from tokenward.proxy.ratelimit import RateLimiter
from tokenward.proxy.transport import AiohttpTransport
from tokenward.sandbox import SandboxSettings, create_sandbox_app

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
    clock = SystemClock()
    async with AiohttpTransport() as transport:
        client = ProviderClient(
            transport=transport,
            limiter=RateLimiter(clock, max_wait=60),
            clock=clock,
            base_url=url,
            user_agent=UA,
        )
        deadline = time.monotonic() + duration

        async def agent() -> int:
            done = 0
            while time.monotonic() < deadline:
                response = await client.request("GET", PATH, credentials=StaticCredentials())
                if response.status == 200 and time.monotonic() <= deadline:
                    done += 1
            return done

        return sum(await asyncio.gather(*(agent() for _ in range(agents))))


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
    args = parser.parse_args()

    settings = SandboxSettings(window_scale=args.window_scale)
    with BackgroundServer(create_sandbox_app(settings)) as server:
        limit, window = bucket_shape(server.url)
        print(
            f"bucket: {limit} requests / {window:g} s; {args.agents} agents; "
            f"{args.duration:g} s per run"
        )
        results = []
        for name, runner in (("tokenward", run_tokenward), ("naive", run_naive)):
            httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
            completed = asyncio.run(runner(server.url, args.agents, args.duration))
            limited = int(sandbox_stats(server.url)["rate_limited"])
            results.append(Result(name, completed, limited, limit, window, args.duration))
        for result in results:
            print(result.line())
        ours = results[0]
        ok = ours.rate_limited == 0 and ours.utilisation >= 0.9
        print("target (no 429, utilisation >= 90%):", "met" if ok else "NOT met")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
