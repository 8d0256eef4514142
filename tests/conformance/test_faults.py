"""Fault injection (``POST /_sandbox/faults``) and request accounting (``GET /_sandbox/stats``):
the sandbox must let tests make Discord slow, failing or unreachable, and count what it saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from .helpers import ADA, bearer, issue_token

GATEWAY = "/api/v10/gateway"
STICKERS = "/api/v10/sticker-packs"


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_url, verify=False) as c:
        yield c


def add_fault(client: httpx.Client, **rule: Any) -> dict[str, Any]:
    response = client.post("/_sandbox/faults", json=rule)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def stats(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/_sandbox/stats").json()
    return body


# -- faults -------------------------------------------------------------------------------------


def test_forced_status_has_a_discord_shaped_body(client: httpx.Client) -> None:
    add_fault(client, route=GATEWAY, status=503)
    response = client.get(GATEWAY)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == 0
    assert body["message"].startswith("503")
    # Other routes and the control API are untouched.
    assert client.get(STICKERS).status_code == 200
    assert client.get("/_sandbox/stats").status_code == 200


def test_forced_429_looks_like_discord(client: httpx.Client) -> None:
    add_fault(client, route=GATEWAY, status=429)
    response = client.get(GATEWAY)
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"message", "retry_after", "global"}
    assert "retry-after" in response.headers


def test_wildcard_applies_to_every_api_route(client: httpx.Client) -> None:
    add_fault(client, route="*", status=500)
    assert client.get(GATEWAY).status_code == 500
    assert client.get("/api/v10/users/@me").status_code == 500
    assert client.get("/_sandbox/faults").status_code == 200


def test_latency(client: httpx.Client) -> None:
    add_fault(client, route=GATEWAY, latency_ms=300)
    started = time.perf_counter()
    response = client.get(GATEWAY)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, "latency alone does not change the answer"
    assert elapsed >= 0.3
    started = time.perf_counter()
    client.get(STICKERS)
    assert time.perf_counter() - started < 0.3


def test_count_fires_that_many_times_then_the_rule_is_gone(client: httpx.Client) -> None:
    add_fault(client, route=GATEWAY, status=502, count=2)
    assert [client.get(GATEWAY).status_code for _ in range(3)] == [502, 502, 200]
    assert client.get("/_sandbox/faults").json()["faults"] == []


def test_probability_zero_never_fires(client: httpx.Client) -> None:
    add_fault(client, route=GATEWAY, status=500, probability=0.0)
    assert {client.get(GATEWAY).status_code for _ in range(8)} == {200}


def test_probability_is_repeatable_after_a_reset(client: httpx.Client) -> None:
    def run() -> list[int]:
        client.post("/_sandbox/reset").raise_for_status()
        add_fault(client, route=STICKERS, status=500, probability=0.5)
        return [client.get(STICKERS).status_code for _ in range(8)]

    first = run()
    assert first == run()
    assert set(first) == {200, 500}, "with p=0.5 and a fixed seed, 8 draws give both outcomes"


def test_statuses_draw_one_status_per_firing(client: httpx.Client) -> None:
    """A mix such as Discord's 5xx: each firing answers one of ``statuses``, drawn from the
    seeded generator, so the sequence repeats after a reset."""

    def run() -> list[int]:
        client.post("/_sandbox/reset").raise_for_status()
        rule = add_fault(client, route=STICKERS, statuses=[500, 502, 503, 504], probability=0.9)
        assert rule["statuses"] == [500, 502, 503, 504]
        assert rule["status"] is None
        # 40 requests: the few that pass stay within the route's bucket (10 per window).
        return [client.get(STICKERS).status_code for _ in range(40)]

    first = run()
    assert first == run()
    assert set(first) == {200, 500, 502, 503, 504}
    for status in (500, 502, 503, 504):
        add_fault(client, route=GATEWAY, statuses=[status], count=1)
        response = client.get(GATEWAY)
        body = response.json()
        assert response.status_code == status
        assert body["message"].startswith(str(status))


def test_dropped_connection_breaks_httpx(client: httpx.Client) -> None:
    add_fault(client, route=GATEWAY, drop_connection=True)
    with pytest.raises(httpx.TransportError):
        client.get(GATEWAY)
    add_fault(client, route=STICKERS, drop_connection=True, count=1)
    with pytest.raises(httpx.TransportError):
        client.get(STICKERS)
    assert client.get(STICKERS).status_code == 200, "the connection pool recovers"


async def test_dropped_connection_breaks_aiohttp(sandbox_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{sandbox_url}/_sandbox/faults", json={"route": GATEWAY, "drop_connection": True}
        ) as created:
            assert created.status == 201
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{sandbox_url}{GATEWAY}") as response:
                await response.read()


# -- stats --------------------------------------------------------------------------------------


def test_stats_count_requests_by_route_template_and_token(
    client: httpx.Client, sandbox_url: str
) -> None:
    token = issue_token(sandbox_url, ADA, ["identify"])
    before = stats(client)
    client.get("/api/v10/users/@me", headers=bearer(token))
    client.get("/api/v10/users/@me", headers=bearer(token))
    client.get("/api/v10/guilds/1200000000000000001/widget.json")
    client.get("/api/v10/guilds/1200000000000000003/widget.json")
    after = stats(client)
    assert after["requests"]["total"] - before["requests"]["total"] == 4
    by_route = after["requests"]["by_route"]
    assert by_route["GET /api/v10/users/@me"] == 2
    assert by_route["GET /api/v10/guilds/{guild_id}/widget.json"] == 2
    by_token = after["requests"]["by_token"]
    assert by_token["anonymous"] >= 2
    labelled = [key for key, n in by_token.items() if key != "anonymous" and n == 2]
    assert len(labelled) == 1
    assert token not in str(after), "stats must not leak the token"


def test_stats_count_401_403_and_429(client: httpx.Client, sandbox_url: str) -> None:
    client.get("/api/v10/users/@me", headers=bearer("nope"))
    client.get("/api/v10/guilds/1200000000000000002/widget.json")  # widget disabled
    token = issue_token(sandbox_url, ADA, ["identify"])
    client.get("/api/v10/users/@me/connections", headers=bearer(token))  # missing scope
    statuses = [client.get("/api/v10/invites/Hb7xQp2K").status_code for _ in range(12)]
    counted = stats(client)
    assert counted["unauthorized"] == 1
    assert counted["forbidden"] == 2
    assert counted["rate_limited"] == statuses.count(429) > 0
