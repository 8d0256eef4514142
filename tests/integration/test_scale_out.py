"""Two gateways on one PostgreSQL database and one Redis: what one changes, the other sees at once
(not after a cache TTL); and Redis away is a readiness detail and a metric, never a failure."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import api_settings, create_api_client, start_api
from conftest import PrivateRedis, closed_port_url
from e2e.processes import tokenward_command
from tokenward.config import Settings
from tokenward.proxy.redis_ratelimit import RedisRateLimiter
from tokenward.shared import redacted_url

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

SOON = 3.0  # far below every cache TTL (API clients 30 s, the account directory 15 s + 30 s)


class Gateway:
    def __init__(self, settings: Settings, sandbox_url: str) -> None:
        self.settings = settings
        self.server, self.container = start_api(settings, sandbox_url)
        self.url = self.server.url

    def call(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return httpx.request(
            method, self.url + path, headers=headers, timeout=30, trust_env=False, **kw
        )


@pytest.fixture
def pair(
    tmp_path: Path, sandbox_url: str, postgres_url: str, redis_server_url: str, redis_prefix: str
) -> Iterator[tuple[Gateway, Gateway]]:
    first = api_settings(
        tmp_path / "a",
        sandbox_url,
        database_url=postgres_url,
        redis_url=redis_server_url,
        redis_prefix=redis_prefix,
    )
    second = first.model_copy(update={"port": api_settings(tmp_path / "b", sandbox_url).port})
    second.public_url = f"http://127.0.0.1:{second.port}"
    gateways = [Gateway(first, sandbox_url), Gateway(second, sandbox_url)]
    try:
        for gateway in gateways:
            shared = gateway.container.shared
            assert shared is not None
            wait_until(lambda s=shared: s.subscribed.is_set(), "subscribed")  # type: ignore[misc]
        yield gateways[0], gateways[1]
    finally:
        for gateway in gateways:
            gateway.server.stop()


def wait_until(check: Callable[[], bool], what: str, timeout: float = SOON) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not {what} within {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - started


def token_for(gateway: Gateway, client_id: str, secret: str) -> str:
    response = httpx.post(
        gateway.url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    env.update(
        TOKENWARD_DATA_DIR=str(settings.data_dir),
        TOKENWARD_DATABASE_URL=str(settings.database_url),
        TOKENWARD_ENCRYPTION_KEYS=str(settings.encryption_keys),
        TOKENWARD_REDIS_URL=str(settings.redis_url),
        TOKENWARD_REDIS_PREFIX=settings.redis_prefix,
    )
    return env


def test_a_deleted_api_client_is_refused_by_every_gateway_at_once(
    pair: tuple[Gateway, Gateway],
) -> None:
    a = pair[0]
    client_id, secret = create_api_client(a.settings)
    token = token_for(a, client_id, secret)
    for gateway in pair:  # both have verified the token and know the client
        assert gateway.call("GET", "/api/v1/connections", token).status_code == 200
    deleted = subprocess.run(
        [*tokenward_command(), "api-clients", "delete", client_id],
        env=cli_env(a.settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deleted.returncode == 0, deleted.stderr
    for gateway in pair:
        wait_until(
            lambda g=gateway: g.call("GET", "/api/v1/connections", token).status_code == 401,  # type: ignore[misc]
            "refused",
        )
        refused = gateway.call("GET", "/api/v1/connections", token).json()
        assert refused["error"]["details"]["reason"] == "client_deleted"


def test_connection_changes_reach_the_other_gateways_directory(
    pair: tuple[Gateway, Gateway],
) -> None:
    a, b = pair
    client_id, secret = create_api_client(a.settings)
    token = token_for(a, client_id, secret)
    sandbox_app = httpx.post(
        f"{a.settings.discord_base_url}/_sandbox/applications",
        json={"redirect_uris": ["http://127.0.0.1:9/placeholder"]},
    ).json()
    created = a.call(
        "POST",
        "/api/v1/connections",
        token,
        json={
            "name": "shared",
            "provider": "discord",
            "client_id": sandbox_app["client_id"],
            "client_secret": sandbox_app["client_secret"],
            "scopes": "identify",
        },
    )
    assert created.status_code == 201, created.text
    headers = {"connection_name": "shared", "identifier": "nobody"}

    def proxied() -> str:
        response = b.call("GET", "/proxy/api/v10/users/@me", token, headers=headers)
        return str(response.json()["error"]["code"])

    assert proxied() == "ACCOUNT_NOT_FOUND"  # B has the connection in its directory now
    assert "shared" in b.container.directory._connections
    deleted = a.call("DELETE", "/api/v1/connections/shared", token)
    assert deleted.status_code == 200, deleted.text
    wait_until(lambda: "shared" not in b.container.directory._connections, "forgotten by B")
    assert proxied() == "CONNECTION_NOT_FOUND"


def test_redis_away_is_a_readiness_detail_and_a_metric(
    tmp_path: Path, sandbox_url: str, postgres_url: str
) -> None:
    settings = api_settings(
        tmp_path, sandbox_url, database_url=postgres_url, redis_url=closed_port_url()
    )
    server, _container = start_api(settings, sandbox_url)
    try:
        ready = httpx.get(server.url + "/readyz", trust_env=False)
        assert ready.status_code == 200, ready.text
        redis_check = ready.json()["checks"]["redis"]
        assert redis_check["ok"] is True
        assert redis_check["degraded"] is True
        assert redis_check["mode"] == "per-process"
        assert "unreachable" in redis_check["detail"]
        metrics = httpx.get(server.url + "/metrics", trust_env=False).text
        assert "tokenward_redis_up 0.0" in metrics
        assert "tokenward_redis_degraded_total 1.0" in metrics
    finally:
        server.stop()


def test_readiness_shows_redis_when_it_answers(
    tmp_path: Path, sandbox_url: str, postgres_url: str, redis_server_url: str, redis_prefix: str
) -> None:
    settings = api_settings(
        tmp_path,
        sandbox_url,
        database_url=postgres_url,
        redis_url=redis_server_url,
        redis_prefix=redis_prefix,
    )
    server, _container = start_api(settings, sandbox_url)
    try:
        ready = httpx.get(server.url + "/readyz", trust_env=False).json()
        assert ready["checks"]["redis"] == {
            "ok": True,
            "redis": redacted_url(redis_server_url),
            "reachable": True,
            "degraded": False,
            "mode": "shared",
        }
        metrics = httpx.get(server.url + "/metrics", trust_env=False).text
        assert "tokenward_redis_up 1.0" in metrics
    finally:
        server.stop()


def bot_account(gateway: Gateway, token: str, name: str = "bots") -> dict[str, str]:
    """A discordbot connection and one account on the sandbox's default bot; proxy headers."""
    base = gateway.settings.discord_base_url
    apps = httpx.get(f"{base}/_sandbox/applications").raise_for_status().json()
    bot = next(app["bot_token"] for app in apps if app["client_id"] == "1300000000000000001")
    created = gateway.call(
        "POST", "/api/v1/connections", token, json={"name": name, "provider": "discordbot"}
    )
    assert created.status_code == 201, created.text
    account = gateway.call(
        "POST",
        "/api/v1/connected-accounts",
        token,
        json={"connection_name": name, "identifier": "team", "credentials": {"bot_token": bot}},
    )
    assert account.status_code in (200, 201), account.text
    return {"connection_name": name, "identifier": "team"}


def proxied_burst(
    gateways: list[Gateway], token: str, headers: dict[str, str], calls: int
) -> list[int]:
    def one(index: int) -> int:
        gateway = gateways[index % len(gateways)]
        response = gateway.call("GET", "/proxy/api/v10/users/@me", token, headers=headers)
        return response.status_code

    with ThreadPoolExecutor(max_workers=calls) as pool:
        return list(pool.map(one, range(calls)))


def test_a_burst_for_one_bot_spread_over_two_gateways_gets_no_429(
    pair: tuple[Gateway, Gateway], sandbox_url: str
) -> None:
    a, b = pair
    client_id, secret = create_api_client(a.settings)
    token = token_for(a, client_id, secret)
    headers = bot_account(a, token)
    before = httpx.get(f"{sandbox_url}/_sandbox/stats").json()["rate_limited"]
    statuses = proxied_burst([a, b], token, headers, 20)
    assert statuses == [200] * 20
    assert httpx.get(f"{sandbox_url}/_sandbox/stats").json()["rate_limited"] == before == 0


def test_redis_restarted_under_a_gateway_fails_no_call(
    tmp_path: Path, sandbox_url: str, postgres_url: str, private_redis: PrivateRedis
) -> None:
    settings = api_settings(
        tmp_path, sandbox_url, database_url=postgres_url, redis_url=private_redis.url
    )
    gateway = Gateway(settings, sandbox_url)
    try:
        shared = gateway.container.shared
        assert shared is not None
        wait_until(shared.subscribed.is_set, "subscribed")
        client_id, secret = create_api_client(settings)
        token = token_for(gateway, client_id, secret)
        headers = bot_account(gateway, token)
        statuses = proxied_burst([gateway], token, headers, 6)

        private_redis.stop()
        statuses += proxied_burst([gateway], token, headers, 6)
        ready = httpx.get(gateway.url + "/readyz", trust_env=False)
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"]["degraded"] is True
        statuses += proxied_burst([gateway], token, headers, 6)

        private_redis.start()
        wait_until(shared.subscribed.is_set, "subscribed again", timeout=10)
        statuses += proxied_burst([gateway], token, headers, 6)
        ready = httpx.get(gateway.url + "/readyz", trust_env=False)
        assert ready.json()["checks"]["redis"]["mode"] == "shared"
        limiter = gateway.container.limiter
        assert isinstance(limiter, RedisRateLimiter)
        assert limiter.fallback_grants > 0
        assert limiter.shared_grants > 6
    finally:
        gateway.server.stop()
    assert statuses == [200] * 24
    # Each switch (to the per-process limiter, back to a Redis that forgot everything) starts
    # from an unknown bucket whose one probe may meet a spent window; the call retries it.
    assert httpx.get(f"{sandbox_url}/_sandbox/stats").json()["rate_limited"] <= 2
