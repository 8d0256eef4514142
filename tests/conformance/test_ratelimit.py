"""Rate limits (discord-api.md §3.1): headers, per-route buckets keyed by identity and major
parameter, 429 bodies and headers, the global limit of 50 requests per second, per-IP limits
for unauthenticated calls.

Most tests run a sandbox of their own on a frozen :class:`ManualClock`, so windows only move
when a test advances the clock; limits are read from the headers, never assumed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tokenward._serving import BackgroundServer
from tokenward.clock import ManualClock
from tokenward.sandbox import SandboxSettings, create_sandbox_app

from .helpers import ADA, GRACE, bearer, bot, bot_token, issue_token

ME = "/api/v10/users/@me"
RATELIMIT_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-bucket",
)


@dataclass
class Frozen:
    url: str
    clock: ManualClock
    client: httpx.Client


@pytest.fixture(scope="module")
def frozen_server() -> Iterator[tuple[BackgroundServer, ManualClock]]:
    clock = ManualClock()
    with BackgroundServer(create_sandbox_app(SandboxSettings(), clock)) as server:
        yield server, clock


@pytest.fixture
def frozen(frozen_server: tuple[BackgroundServer, ManualClock]) -> Iterator[Frozen]:
    server, clock = frozen_server
    with httpx.Client(base_url=server.url, verify=False) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield Frozen(server.url, clock, client)


def limits(response: httpx.Response) -> dict[str, Any]:
    for name in RATELIMIT_HEADERS:
        assert name in response.headers, f"{name} missing"
    h = response.headers
    return {
        "limit": int(h["x-ratelimit-limit"]),
        "remaining": int(h["x-ratelimit-remaining"]),
        "reset": float(h["x-ratelimit-reset"]),
        "reset_after": float(h["x-ratelimit-reset-after"]),
        "bucket": h["x-ratelimit-bucket"],
    }


def exhaust(
    client: httpx.Client, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """Spend a bucket and return the first 429 (asserting no earlier request was refused)."""
    first = client.get(path, headers=headers)
    assert first.status_code != 429, first.text
    for _ in range(limits(first)["remaining"]):
        assert client.get(path, headers=headers).status_code != 429
    refused = client.get(path, headers=headers)
    assert refused.status_code == 429, refused.text
    return refused


def assert_user_429(response: httpx.Response) -> float:
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"message", "retry_after", "global"}
    assert body["global"] is False
    assert body["message"] == "You are being rate limited."
    assert isinstance(body["retry_after"], float)
    assert body["retry_after"] > 0
    assert response.headers["retry-after"] == str(math.ceil(body["retry_after"]))
    assert response.headers["x-ratelimit-scope"] == "user"
    assert "x-ratelimit-global" not in response.headers
    assert limits(response)["remaining"] == 0
    return float(body["retry_after"])


# -- headers and the fixed window ---------------------------------------------------------------


def test_headers_count_down_in_a_fixed_window(frozen: Frozen) -> None:
    headers = bearer(issue_token(frozen.url, ADA, ["identify"]))
    now = frozen.clock.time()
    first = limits(frozen.client.get(ME, headers=headers))
    assert first["limit"] >= 2
    assert first["remaining"] == first["limit"] - 1
    assert first["reset_after"] > 0
    assert first["reset"] == pytest.approx(now + first["reset_after"], abs=0.01)
    int(first["bucket"], 16)  # an opaque hex id

    frozen.clock.advance(first["reset_after"] / 2)
    second = limits(frozen.client.get(ME, headers=headers))
    assert second["remaining"] == first["limit"] - 2
    assert second["reset"] == first["reset"], "the window must not slide"
    assert second["bucket"] == first["bucket"]
    assert second["reset_after"] == pytest.approx(first["reset_after"] / 2, abs=0.01)

    # After the window, the next request opens a new one that starts at that request.
    frozen.clock.advance(first["reset_after"])
    third = limits(frozen.client.get(ME, headers=headers))
    assert third["remaining"] == first["limit"] - 1
    assert third["reset"] == pytest.approx(frozen.clock.time() + third["reset_after"], abs=0.01)
    assert third["reset_after"] == pytest.approx(first["reset_after"], abs=0.01)


def test_error_answers_carry_the_headers_too(frozen: Frozen) -> None:
    response = frozen.client.get("/api/v10/invites/zzNoSuch1")
    assert response.status_code == 404
    limits(response)


def test_versions_share_a_bucket(frozen: Frozen) -> None:
    headers = bearer(issue_token(frozen.url, ADA, ["identify"]))
    v10 = limits(frozen.client.get(ME, headers=headers))
    bare = limits(frozen.client.get("/api/users/@me", headers=headers))
    assert bare["bucket"] == v10["bucket"]
    assert bare["remaining"] == v10["remaining"] - 1


# -- 429 ----------------------------------------------------------------------------------------


def test_exhausted_bucket_gives_a_429_then_recovers(frozen: Frozen) -> None:
    headers = bearer(issue_token(frozen.url, ADA, ["identify"]))
    refused = exhaust(frozen.client, ME, headers)
    retry_after = assert_user_429(refused)
    assert frozen.client.get(ME, headers=headers).status_code == 429, "still inside the window"
    stats = frozen.client.get("/_sandbox/stats").json()
    assert stats["rate_limited"] == 2

    frozen.clock.advance(retry_after)
    again = frozen.client.get(ME, headers=headers)
    assert again.status_code == 200
    assert limits(again)["remaining"] == limits(again)["limit"] - 1


def test_buckets_are_per_token(frozen: Frozen) -> None:
    ada = bearer(issue_token(frozen.url, ADA, ["identify"]))
    grace = bearer(issue_token(frozen.url, GRACE, ["identify"]))
    exhaust(frozen.client, ME, ada)
    fresh = frozen.client.get(ME, headers=grace)
    assert fresh.status_code == 200
    assert limits(fresh)["remaining"] == limits(fresh)["limit"] - 1
    assert frozen.client.get(ME, headers=bot(bot_token(frozen.url))).status_code == 200


def test_buckets_are_per_guild_id(frozen: Frozen) -> None:
    hub = "/api/v10/guilds/1200000000000000001/widget.json"
    crew = "/api/v10/guilds/1200000000000000003/widget.json"
    refused = exhaust(frozen.client, hub)
    other = frozen.client.get(crew)
    assert other.status_code == 200
    assert limits(other)["bucket"] == limits(refused)["bucket"], "same bucket, another major id"
    assert limits(other)["remaining"] == limits(other)["limit"] - 1


def test_unauthenticated_calls_are_limited_per_ip(frozen: Frozen) -> None:
    refused = exhaust(frozen.client, "/api/v10/gateway")
    assert_user_429(refused)
    # A bot token is another identity with its own counters.
    assert (
        frozen.client.get("/api/v10/gateway", headers=bot(bot_token(frozen.url))).status_code == 200
    )
    assert frozen.client.get("/api/v10/gateway").status_code == 429


# -- the global limit ---------------------------------------------------------------------------


def test_global_limit_of_50_per_second_per_token(frozen: Frozen) -> None:
    ada = bearer(issue_token(frozen.url, ADA, ["identify"]))
    # Distinct guild ids: every request has a fresh route counter, only the global one fills.
    for n in range(50):
        response = frozen.client.get(
            f"/api/v10/guilds/{1290000000000000000 + n}/widget.json", headers=ada
        )
        assert response.status_code == 404, (n, response.text)
    refused = frozen.client.get("/api/v10/guilds/1290000000000000999/widget.json", headers=ada)
    assert refused.status_code == 429
    body = refused.json()
    assert body["global"] is True
    assert 0 < body["retry_after"] <= 1.0
    assert refused.headers["x-ratelimit-global"] == "true"
    assert refused.headers["x-ratelimit-scope"] == "global"
    assert refused.headers["retry-after"] == str(math.ceil(body["retry_after"]))
    # Another identity is not affected.
    grace = bearer(issue_token(frozen.url, GRACE, ["identify"]))
    assert frozen.client.get(ME, headers=grace).status_code == 200
    frozen.clock.advance(1.0)
    assert frozen.client.get(ME, headers=ada).status_code == 200


# -- exemptions and the off switch --------------------------------------------------------------


def test_token_endpoint_is_not_rate_limited(frozen: Frozen) -> None:
    for _ in range(60):
        response = frozen.client.post(
            "/api/oauth2/token", data={"grant_type": "authorization_code"}
        )
        assert response.status_code in (400, 401), response.text
        assert "x-ratelimit-bucket" not in response.headers


def test_rate_limits_can_be_switched_off() -> None:
    app = create_sandbox_app(SandboxSettings(rate_limits=False), ManualClock())
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, verify=False) as client:
        for _ in range(60):
            assert client.get("/api/v10/gateway").status_code == 200


# -- real time ----------------------------------------------------------------------------------


def test_window_resets_in_real_time(sandbox_url: str) -> None:
    """On the shared sandbox (real clock, windows scaled down): wait Retry-After, then succeed."""
    with httpx.Client(base_url=sandbox_url, verify=False) as client:
        refused = exhaust(client, "/api/v10/invites/zzNoSuch1")
        retry_after = assert_user_429(refused)
        assert retry_after < 5
        time.sleep(retry_after + 0.05)
        assert client.get("/api/v10/invites/zzNoSuch1").status_code == 404
