"""ProviderClient against the sandbox over a real loopback socket (aiohttp, real clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tokenward.clock import SystemClock
from tokenward.errors import ReauthorizationRequired
from tokenward.proxy.client import Credential, ProviderClient, StaticCredentials
from tokenward.proxy.ratelimit import RateLimiter, route_of
from tokenward.proxy.retry import RetryPolicy
from tokenward.proxy.transport import AiohttpTransport, Timeouts

UA = "DiscordBot (https://github.com/tokenward/tokenward, 0.1.0)"
WIDGET_GUILD = "1200000000000000001"  # a sandbox guild with its widget enabled
ANON = StaticCredentials()


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[ProviderClient]:
    clock = SystemClock()
    async with AiohttpTransport(timeouts=Timeouts(total=10, connect=5)) as transport:
        yield ProviderClient(
            transport=transport,
            limiter=RateLimiter(clock, max_wait=15),
            clock=clock,
            base_url=sandbox_url,
            user_agent=UA,
            retry_policy=RetryPolicy(deadline=2.0, base_delay=0.05, max_delay=0.5),
        )


def stats(sandbox_url: str) -> dict[str, Any]:
    response = httpx.get(f"{sandbox_url}/_sandbox/stats")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def add_fault(sandbox_url: str, **rule: Any) -> None:
    httpx.post(f"{sandbox_url}/_sandbox/faults", json=rule).raise_for_status()


async def test_anonymous_calls_pass(client: ProviderClient, sandbox_url: str) -> None:
    gateway = await client.request("GET", "/api/v10/gateway", credentials=ANON)
    assert gateway.status == 200
    assert gateway.json()["url"].startswith("wss://")
    packs = await client.request("GET", "/api/v10/sticker-packs", credentials=ANON)
    assert packs.status == 200
    assert isinstance(packs.json()["sticker_packs"], list)
    assert stats(sandbox_url)["requests"]["by_token"] == {"anonymous": 2}


async def test_the_limiter_learns_the_bucket(client: ProviderClient) -> None:
    response = await client.request("GET", "/api/v10/gateway", credentials=ANON)
    learned = client.limiter.bucket_hash("ip", route_of("GET", "/api/v10/gateway").key)
    assert learned is not None
    assert learned == response.headers["X-RateLimit-Bucket"]


async def test_error_answers_come_back_as_they_are(client: ProviderClient) -> None:
    response = await client.request(
        "GET", "/api/v10/guilds/81384788765712384/widget.json", credentials=ANON
    )
    assert response.status == 404
    assert response.json()["code"] == 10004


async def test_twenty_concurrent_callers_get_no_429(
    client: ProviderClient, sandbox_url: str
) -> None:
    path = f"/api/v10/guilds/{WIDGET_GUILD}/widget.json"

    async def agent() -> list[int]:
        codes = []
        for _ in range(2):
            response = await client.request("GET", path, credentials=ANON)
            codes.append(response.status)
        return codes

    results = await asyncio.gather(*(agent() for _ in range(20)))
    assert [code for codes in results for code in codes] == [200] * 40
    observed = stats(sandbox_url)
    assert observed["rate_limited"] == 0
    assert observed["requests"]["total"] == 40


async def test_503_is_retried_on_get(client: ProviderClient, sandbox_url: str) -> None:
    add_fault(sandbox_url, route="/api/v10/gateway", status=503, count=2)
    response = await client.request("GET", "/api/v10/gateway", credentials=ANON)
    assert response.status == 200
    assert stats(sandbox_url)["requests"]["by_route"]["GET /api/v10/gateway"] == 3


async def test_503_is_not_retried_on_post(client: ProviderClient, sandbox_url: str) -> None:
    add_fault(sandbox_url, route="/api/v10/gateway", status=503, count=2)
    response = await client.request(
        "POST",
        "/api/v10/gateway",
        credentials=ANON,
        headers={"Content-Type": "application/json"},
        body=b"{}",
    )
    assert response.status == 503
    assert stats(sandbox_url)["requests"]["by_route"] == {"POST /api/v10/gateway": 1}


async def test_dropped_connection_is_retried_on_get(
    client: ProviderClient, sandbox_url: str
) -> None:
    add_fault(sandbox_url, route="/api/v10/sticker-packs", drop_connection=True, count=1)
    response = await client.request("GET", "/api/v10/sticker-packs", credentials=ANON)
    assert response.status == 200
    assert stats(sandbox_url)["requests"]["by_route"]["GET /api/v10/sticker-packs"] == 2


async def test_rejected_token_asks_for_reauthorization_once(
    client: ProviderClient, sandbox_url: str
) -> None:
    source = StaticCredentials(Credential("bearer", "not-a-real-token", "acct-x"))
    with pytest.raises(ReauthorizationRequired) as caught:
        await client.request("GET", "/api/v10/users/@me", credentials=source)
    assert "not-a-real-token" not in str(caught.value.to_dict())
    observed = stats(sandbox_url)
    assert observed["unauthorized"] == 1
    assert observed["requests"]["total"] == 1
    assert client.limiter.invalid_guard.total == 1
