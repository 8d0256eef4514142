"""Several ``tokenward serve`` replicas behind nginx (round robin), on one PostgreSQL database:
the shape of a deployment that outgrew one process, on loopback with real processes.

- A refresh storm spread over three replicas (the token dies at the sandbox, hundreds of
  concurrent tool calls arrive through the balancer) spends exactly one refresh token.
- ``kill -9`` of a replica in the middle of that storm fails only the calls that replica was
  serving; the others succeed and the account stays working.
- With the sandbox's rate limits on and Redis shared by the replicas, a burst for one user token
  and one for one bot token, spread over the three, earn no 429 from Discord and use at least
  90 % of the rate Discord permits; without Redis the same bursts earn 429s (each replica thinks
  it has the whole budget).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import require_service
from e2e.processes import (
    ServiceProcess,
    gateway_environment,
    new_encryption_keys,
    register_application,
    set_redirect_uri,
    start_sandbox,
)
from tokenward._serving import free_port
from tokenward.config import Settings
from tokenward.sandbox.browser import walk_consent
from tokenward.server.container import Container
from tokenward.vault.models import AccountStatus

from .balancer import Balancer, nginx_available

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPLICAS = 3
TOOL = "discord_get_my_user"


@dataclass
class Cluster:
    tmp: Path
    sandbox_url: str
    database_url: str
    keys: str
    ports: list[int]
    balancer: Balancer
    replicas: list[ServiceProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.balancer.url

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.tmp / "test-view",
            database_url=self.database_url,
            encryption_keys=self.keys,
            public_url=self.url,
            discord_base_url=self.sandbox_url,
        )

    def replica(self, n: int, extra: dict[str, str] | None = None) -> ServiceProcess:
        port = self.ports[n]
        env = gateway_environment(
            data_dir=self.tmp / f"replica-{n}",
            port=port,
            sandbox_url=self.sandbox_url,
            encryption_keys=self.keys,
            extra={
                "TOKENWARD_DATABASE_URL": self.database_url,
                "TOKENWARD_PUBLIC_URL": self.url,
                "TOKENWARD_LOG_LEVEL": "WARNING",
                **(extra or {}),
            },
        )
        return ServiceProcess(
            f"replica-{n}",
            ["serve"],
            env,
            health_url=f"http://127.0.0.1:{port}/readyz",
            log_dir=self.tmp / "logs",
        )

    def upstream(self, n: int) -> str:
        return f"127.0.0.1:{self.ports[n]}"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    process, url = start_sandbox(tmp_path / "logs", rate_limits=False)
    try:
        yield url
    finally:
        process.stop()


@contextmanager
def running_cluster(
    tmp_path: Path, sandbox: str, database_url: str, extra: dict[str, str] | None = None
) -> Iterator[Cluster]:
    require_service(nginx_available(), "nginx is not installed (apt-get install -y nginx)")
    ports = [free_port() for _ in range(REPLICAS)]
    balancer = Balancer(tmp_path / "nginx", ports)
    made = Cluster(tmp_path, sandbox, database_url, new_encryption_keys(), ports, balancer)
    try:
        made.replicas.extend(made.replica(n, extra) for n in range(REPLICAS))
        with ThreadPoolExecutor(REPLICAS) as pool:
            list(pool.map(ServiceProcess.start, made.replicas))
        balancer.start()
        yield made
    finally:
        balancer.stop()
        for replica in made.replicas:
            replica.stop()


@pytest.fixture
def cluster(tmp_path: Path, sandbox: str, postgres_url: str) -> Iterator[Cluster]:
    with running_cluster(tmp_path, sandbox, postgres_url) as made:
        yield made


async def link(cluster: Cluster, identifiers: list[str]) -> tuple[str, str]:
    """A connection and ``identifiers`` linked through the balancer (any replica may finish a
    link); returns an API client's credentials."""
    container = Container(cluster.settings())
    await container.start(migrate=False)
    try:
        app = register_application(cluster.sandbox_url)
        connection = await container.vault.create_connection(
            name="discord",
            provider="discord",
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            scopes=["identify", "guilds"],
        )
        set_redirect_uri(
            cluster.sandbox_url, app["client_id"], container.oauth.redirect_uri(connection.id)
        )
        for n, identifier in enumerate(identifiers):
            created = await container.oauth.create_link("discord", identifier)
            assert created.link.startswith(cluster.url)
            user = str(1100000000000000001 + n % 3)
            done = await asyncio.to_thread(walk_consent, created.link, user_id=user)
            assert done.status_code == 200, done.text
        client, secret = await container.vault.create_api_client("replicas")
        return client.client_id, secret.get_secret_value()
    finally:
        await container.close()


def api_token(url: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        trust_env=False,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


@dataclass
class Outcome:
    status: int
    upstream: str


async def storm(url: str, token: str, identifier: str, calls: int) -> list[Outcome]:
    """``calls`` concurrent tool calls for one account through the balancer."""
    limits = httpx.Limits(max_connections=calls, max_keepalive_connections=calls)
    async with httpx.AsyncClient(trust_env=False, timeout=60.0, limits=limits) as http:

        async def one() -> Outcome:
            try:
                response = await http.post(
                    f"{url}/api/v1/tools/execute",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "tool_name": TOOL,
                        "connection_name": "discord",
                        "identifier": identifier,
                    },
                )
            except httpx.HTTPError as exc:
                return Outcome(0, type(exc).__name__)
            return Outcome(response.status_code, response.headers.get("x-upstream", ""))

        return list(await asyncio.gather(*(one() for _ in range(calls))))


def sandbox_json(sandbox_url: str, path: str) -> Any:
    return httpx.get(f"{sandbox_url}{path}", trust_env=False).raise_for_status().json()


def refresh_tokens(sandbox_url: str) -> dict[str, dict[str, Any]]:
    body = sandbox_json(sandbox_url, "/_sandbox/tokens")
    return {t["value"]: t for t in body["details"]["refresh_tokens"]}


async def account_state(cluster: Cluster, identifier: str) -> tuple[AccountStatus, str | None]:
    container = Container(cluster.settings())
    await container.start(migrate=False)
    try:
        connection = await container.vault.get_connection_by_name("discord")
        page = await container.vault.list_accounts(
            connection_id=connection.id, identifier=identifier, with_tokens=True
        )
        account = page.items[0]
        refresh = account.refresh_token.get_secret_value() if account.refresh_token else None
        return account.status, refresh
    finally:
        await container.close()


async def lease_holder_pid(cluster: Cluster, identifier: str) -> int | None:
    container = Container(cluster.settings())
    await container.start(migrate=False)
    try:
        connection = await container.vault.get_connection_by_name("discord")
        account = await container.vault.find_account(connection.id, identifier)
        owner = None if account is None else account.refresh_lease_owner
    finally:
        await container.close()
    if not owner:
        return None
    parts = owner.split("|")
    return int(parts[4]) if len(parts) > 4 and parts[4].isdigit() else None


async def test_a_refresh_storm_over_three_replicas_spends_one_refresh_token(
    cluster: Cluster,
) -> None:
    client_id, secret = await link(cluster, ["storm"])
    token = api_token(cluster.url, client_id, secret)
    httpx.post(f"{cluster.sandbox_url}/_sandbox/tokens/expire", trust_env=False).raise_for_status()
    before = sandbox_json(cluster.sandbox_url, "/_sandbox/stats")["grants"]["refresh_token"]

    outcomes = await storm(cluster.url, token, "storm", 300)

    refreshes = sandbox_json(cluster.sandbox_url, "/_sandbox/stats")["grants"]["refresh_token"]
    failed = [o for o in outcomes if o.status != 200]
    served_by = {o.upstream for o in outcomes}
    assert failed == [], failed[:5]
    assert served_by == {cluster.upstream(n) for n in range(REPLICAS)}, served_by
    assert refreshes - before == 1
    status, refresh_token = await account_state(cluster, "storm")
    assert status is AccountStatus.ACTIVE
    assert refresh_token is not None
    assert not refresh_tokens(cluster.sandbox_url)[refresh_token]["used"]


async def test_kill_9_of_a_replica_mid_storm_fails_only_its_own_calls(cluster: Cluster) -> None:
    client_id, secret = await link(cluster, ["storm"])
    token = api_token(cluster.url, client_id, secret)
    httpx.post(f"{cluster.sandbox_url}/_sandbox/tokens/expire", trust_env=False).raise_for_status()
    # Discord's token endpoint takes a second: the storm waits on one refresh in flight.
    httpx.post(
        f"{cluster.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token", "latency_ms": 1000},
        trust_env=False,
    ).raise_for_status()
    before = sandbox_json(cluster.sandbox_url, "/_sandbox/stats")["grants"]["refresh_token"]

    calls = asyncio.create_task(storm(cluster.url, token, "storm", 240))
    holder = None
    deadline = time.monotonic() + 5
    while holder is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        holder = await lease_holder_pid(cluster, "storm")
    assert holder is not None, "no replica took the refresh lease"
    victim = next(n for n, r in enumerate(cluster.replicas) if r.pid != holder)
    cluster.replicas[victim].kill()
    outcomes = await calls

    failed = [o for o in outcomes if o.status != 200]
    others = [o for o in failed if o.upstream != cluster.upstream(victim)]
    assert others == [], others[:5]
    assert len(failed) < len(outcomes)
    refreshes = sandbox_json(cluster.sandbox_url, "/_sandbox/stats")["grants"]["refresh_token"]
    assert refreshes - before == 1
    status, refresh_token = await account_state(cluster, "storm")
    assert status is AccountStatus.ACTIVE
    assert refresh_token is not None
    assert not refresh_tokens(cluster.sandbox_url)[refresh_token]["used"]
    # The survivors go on serving the account.
    after = await storm(cluster.url, token, "storm", 20)
    assert all(o.status == 200 for o in after if o.upstream != cluster.upstream(victim))


# -- one set of Discord limits over the replicas ----------------------------------------------

WINDOW_SCALE = 0.2  # the sandbox's route buckets (5 requests per 5 s) become 5 per second
BUCKET_LIMIT, BUCKET_WINDOW = 5, 5.0 * WINDOW_SCALE
BURST = 25


@pytest.fixture
def limited_sandbox(tmp_path: Path) -> Iterator[str]:
    process, url = start_sandbox(
        tmp_path / "logs",
        name="limited-sandbox",
        env={"TOKENWARD_SANDBOX_WINDOW_SCALE": str(WINDOW_SCALE)},
    )
    try:
        yield url
    finally:
        process.stop()


def bot_headers(cluster: Cluster, token: str) -> dict[str, str]:
    """A discordbot connection with one account holding the sandbox's default bot token."""
    apps = sandbox_json(cluster.sandbox_url, "/_sandbox/applications")
    bot = next(a["bot_token"] for a in apps if a["client_id"] == "1300000000000000001")
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=cluster.url, headers=auth, trust_env=False, timeout=30) as http:
        made = http.post("/api/v1/connections", json={"name": "bots", "provider": "discordbot"})
        assert made.status_code == 201, made.text
        account = http.post(
            "/api/v1/connected-accounts",
            json={
                "connection_name": "bots",
                "identifier": "team",
                "credentials": {"bot_token": bot},
            },
        )
        assert account.status_code in (200, 201), account.text
    return {"connection_name": "bots", "identifier": "team"}


async def proxied_burst(
    cluster: Cluster, token: str, headers: dict[str, str], calls: int
) -> tuple[list[Outcome], float]:
    """``calls`` concurrent proxied ``GET /users/@me`` through the balancer; their outcomes and
    the seconds from the first sent to the last answered."""
    limits = httpx.Limits(max_connections=calls, max_keepalive_connections=calls)
    async with httpx.AsyncClient(trust_env=False, timeout=60.0, limits=limits) as http:

        async def one() -> Outcome:
            response = await http.get(
                f"{cluster.url}/proxy/api/v10/users/@me",
                headers={"Authorization": f"Bearer {token}", **headers},
            )
            return Outcome(response.status_code, response.headers.get("x-upstream", ""))

        started = time.monotonic()
        outcomes = list(await asyncio.gather(*(one() for _ in range(calls))))
        return outcomes, time.monotonic() - started


def utilisation(calls: int, elapsed: float) -> float:
    """How much of Discord's permitted rate a burst used: the least time the bucket allows for
    ``calls`` (a window opens at the first request; ``BUCKET_LIMIT`` per window) over the time
    taken."""
    windows = -(-calls // BUCKET_LIMIT)
    return (windows - 1) * BUCKET_WINDOW / elapsed


@pytest.mark.redis
@pytest.mark.parametrize("shared", [True, False], ids=["with-redis", "without-redis"])
async def test_bursts_over_three_replicas_stay_inside_one_set_of_limits(
    tmp_path: Path,
    limited_sandbox: str,
    postgres_url: str,
    redis_server_url: str,
    redis_prefix: str,
    shared: bool,
) -> None:
    extra = (
        {"TOKENWARD_REDIS_URL": redis_server_url, "TOKENWARD_REDIS_PREFIX": redis_prefix}
        if shared
        else {}
    )
    with running_cluster(tmp_path, limited_sandbox, postgres_url, extra) as cluster:
        client_id, secret = await link(cluster, ["burst"])
        token = api_token(cluster.url, client_id, secret)
        cases = {
            "user": {"connection_name": "discord", "identifier": "burst"},
            "bot": bot_headers(cluster, token),
        }
        seen: dict[str, tuple[int, float, set[str]]] = {}
        for name, headers in cases.items():
            # Let the windows of the set-up calls end first.
            await asyncio.sleep(BUCKET_WINDOW * 1.2)
            before = sandbox_json(cluster.sandbox_url, "/_sandbox/stats")["rate_limited"]
            outcomes, elapsed = await proxied_burst(cluster, token, headers, BURST)
            after = sandbox_json(cluster.sandbox_url, "/_sandbox/stats")["rate_limited"]
            if shared:
                assert [o.status for o in outcomes] == [200] * BURST, outcomes
            seen[name] = (after - before, elapsed, {o.upstream for o in outcomes})

    for name, (upstream_429s, elapsed, served_by) in seen.items():
        print(
            f"{name}: {upstream_429s} upstream 429s, utilisation {utilisation(BURST, elapsed):.0%}"
        )
        assert len(served_by) == REPLICAS, (name, served_by)
        if shared:
            assert upstream_429s == 0, (name, seen)
            assert utilisation(BURST, elapsed) >= 0.9, (name, seen)
        else:
            assert upstream_429s > 0, (name, seen)
