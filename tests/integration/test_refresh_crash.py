"""The core promise under ``kill -9`` and ``SIGTERM``: a crash at any point leaves each account
working or visibly ``EXPIRED`` — never ``ACTIVE`` with a refresh token Discord already spent.

Real processes throughout: ``tokenward sandbox`` and ``tokenward serve`` as children, killed for
real, on SQLite and on PostgreSQL. The storm: every call refreshes (the refresh leeway is longer
than a token's life), 60 accounts at once, Discord's token endpoint a little slow, ``serve`` killed
ten times at random moments and restarted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

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
from tokenward.vault.db import upgrade_async
from tokenward.vault.models import AccountStatus

ACCOUNTS = 60
KILLS = 10
MIN_REFRESHES = 200  # at Discord over the whole storm
TOOL = "discord_get_my_user"


@dataclass
class Storm:
    tmp: Path
    sandbox_url: str
    env: dict[str, str]
    settings: Settings
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self) -> ServiceProcess:
        return ServiceProcess(
            "serve", ["serve"], self.env, health_url=f"{self.url}/healthz", log_dir=self.tmp
        ).start()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    process, url = start_sandbox(tmp_path / "logs", rate_limits=False)
    try:
        yield url
    finally:
        process.stop()


def make_storm(
    tmp: Path, sandbox_url: str, database_url: str | None, *, refresh_every_call: bool = True
) -> Storm:
    port = free_port()
    extra = {"TOKENWARD_LOG_LEVEL": "WARNING"}
    if refresh_every_call:
        # Longer than a token's life (7 days): every call refreshes first.
        extra["TOKENWARD_REFRESH_LEEWAY_SECONDS"] = str(8 * 86400)
    if database_url:
        extra["TOKENWARD_DATABASE_URL"] = database_url
    env = gateway_environment(
        data_dir=tmp / "data",
        port=port,
        sandbox_url=sandbox_url,
        encryption_keys=new_encryption_keys(),
        extra=extra,
    )
    settings = Settings(
        data_dir=tmp / "data",
        database_url=database_url,
        encryption_keys=env["TOKENWARD_ENCRYPTION_KEYS"],
        public_url=f"http://127.0.0.1:{port}",
        discord_base_url=sandbox_url,
    )
    return Storm(tmp, sandbox_url, env, settings, port)


async def link_accounts(
    storm: Storm, container: Container, accounts: int
) -> tuple[str, str, list[str]]:
    """A connection, an API client and ``accounts`` linked accounts; returns the API client's
    credentials and the identifiers."""
    app = register_application(storm.sandbox_url)
    connection = await container.vault.create_connection(
        name="discord",
        provider="discord",
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        scopes=["identify", "guilds"],
    )
    set_redirect_uri(
        storm.sandbox_url, app["client_id"], container.oauth.redirect_uri(connection.id)
    )
    identifiers = [f"user_{n:03d}" for n in range(accounts)]
    for n, identifier in enumerate(identifiers):
        link = await container.oauth.create_link("discord", identifier)
        user = str(1100000000000000001 + n % 3)
        result = await asyncio.to_thread(walk_consent, link.link, user_id=user)
        assert result.status_code == 200, result.text
    client, secret = await container.vault.create_api_client("storm")
    return client.client_id, secret.get_secret_value(), identifiers


async def api_token(url: str, client_id: str, secret: str) -> str:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            f"{url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


async def call_tool(http: httpx.AsyncClient, url: str, token: str, identifier: str) -> int:
    response = await http.post(
        f"{url}/api/v1/tools/execute",
        headers={"Authorization": f"Bearer {token}"},
        json={"tool_name": TOOL, "connection_name": "discord", "identifier": identifier},
    )
    return response.status_code


async def load(url: str, token: str, identifiers: list[str], stop: asyncio.Event) -> int:
    """Every account calls in a loop until ``stop`` is set; returns how many were answered."""
    answered = 0

    async def one_account(http: httpx.AsyncClient, identifier: str) -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                await call_tool(http, url, token, identifier)
                answered += 1
            except httpx.HTTPError:
                await asyncio.sleep(0.01)

    limits = httpx.Limits(max_connections=ACCOUNTS, max_keepalive_connections=ACCOUNTS)
    async with httpx.AsyncClient(trust_env=False, timeout=5.0, limits=limits) as http:
        tasks = [asyncio.create_task(one_account(http, i)) for i in identifiers]
        await stop.wait()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
    return answered


def refreshes_at_discord(sandbox_url: str) -> int:
    stats = httpx.get(f"{sandbox_url}/_sandbox/stats", trust_env=False).raise_for_status().json()
    return int(stats["grants"]["refresh_token"])


def sandbox_refresh_tokens(sandbox_url: str) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{sandbox_url}/_sandbox/tokens", trust_env=False).raise_for_status().json()
    return {t["value"]: t for t in body["details"]["refresh_tokens"]}


async def leased_identifiers(container: Container) -> list[str]:
    page = await container.vault.list_accounts(page_size=200)
    return [a.identifier for a in page.items if a.refresh_lease_owner is not None]


async def run_storm(storm: Storm) -> None:
    rng = random.Random(9)
    async with _container(storm.settings) as container:
        client_id, secret, identifiers = await _setup(storm, container)
    # Discord's token endpoint answers after 40 ms: refreshes are in flight when the kills land.
    httpx.post(
        f"{storm.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token", "latency_ms": 40},
        trust_env=False,
    ).raise_for_status()

    answered = 0
    after_restart: list[float] = []
    left_in_flight = 0
    for _kill in range(KILLS):
        gateway = storm.serve()
        token = await api_token(storm.url, client_id, secret)
        async with _container(storm.settings) as container:
            formerly_leased = await leased_identifiers(container)
        if formerly_leased:
            # The first call on an account whose lease the killed process held.
            async with httpx.AsyncClient(trust_env=False, timeout=30.0) as http:
                started = time.monotonic()
                await call_tool(http, storm.url, token, formerly_leased[0])
                after_restart.append(time.monotonic() - started)
        # Kill in the middle of the load, with calls (and their refreshes) in flight: after a
        # random time, and not before this round's share of the storm's refreshes (a slower
        # machine gets through fewer in the same time).
        duration = rng.uniform(0.6, 1.6)
        before = refreshes_at_discord(storm.sandbox_url)
        stop = asyncio.Event()
        calls = asyncio.create_task(load(storm.url, token, identifiers, stop))
        await asyncio.sleep(duration)
        enough = time.monotonic() + 30
        while (
            refreshes_at_discord(storm.sandbox_url) - before < MIN_REFRESHES // KILLS
            and time.monotonic() < enough
        ):
            await asyncio.sleep(0.05)
        gateway.kill()
        await asyncio.sleep(0.5)  # calls go on failing against the dead gateway for a moment
        stop.set()
        answered += await calls
        async with _container(storm.settings) as container:
            left_in_flight += len(await container.vault.list_interrupted_refreshes())

    # The last restart re-checks whatever the last crash left in flight; then a clean stop.
    gateway = storm.serve()
    async with _container(storm.settings) as container:
        deadline = time.monotonic() + 30
        while await container.vault.list_interrupted_refreshes():
            assert time.monotonic() < deadline, "interrupted refreshes were not re-checked"
            await asyncio.sleep(0.1)
    assert gateway.terminate() in (0, -15), gateway.output()

    stats = httpx.get(f"{storm.sandbox_url}/_sandbox/stats", trust_env=False).json()
    spent = sandbox_refresh_tokens(storm.sandbox_url)
    async with _container(storm.settings) as container:
        accounts = (await container.vault.list_accounts(page_size=200, with_tokens=True)).items
        saved = await container.vault.count_events("account.refreshed")
    assert len(accounts) == ACCOUNTS
    active_and_dead = []
    for account in accounts:
        assert account.status in (AccountStatus.ACTIVE, AccountStatus.EXPIRED), account.public()
        if account.status == AccountStatus.EXPIRED:
            assert (account.status_reason or "").startswith("refresh interrupted"), account.public()
            continue
        assert account.refresh_token is not None
        state = spent[account.refresh_token.get_secret_value()]
        if state["used"] or state["revoked"]:
            active_and_dead.append(account.identifier)
    summary = (
        f"{answered} calls answered, {stats['grants']['refresh_token']} refreshes at Discord, "
        f"{saved} saved, {left_in_flight} refreshes left in flight by the kills, "
        f"{sum(a.status == AccountStatus.EXPIRED for a in accounts)} accounts EXPIRED"
    )
    assert active_and_dead == [], f"ACTIVE with a spent refresh token: {active_and_dead}; {summary}"
    # The storm was real: many refreshes, and kills that landed mid-refresh.
    assert stats["grants"]["refresh_token"] >= MIN_REFRESHES, summary
    assert left_in_flight > 0, summary
    assert after_restart, "no kill left a lease behind to measure"
    assert max(after_restart) < 1.0, f"first call after restart took {after_restart}"


@pytest.mark.slow
async def test_kill_9_during_refresh_storms_on_sqlite(tmp_path: Path, sandbox: str) -> None:
    await run_storm(make_storm(tmp_path, sandbox, None))


@pytest.mark.slow
@pytest.mark.postgres
async def test_kill_9_during_refresh_storms_on_postgresql(
    tmp_path: Path, sandbox: str, postgres_url: str
) -> None:
    await upgrade_async(postgres_url)
    await run_storm(make_storm(tmp_path, sandbox, postgres_url))


async def test_sigterm_lets_a_refresh_in_flight_finish(tmp_path: Path, sandbox: str) -> None:
    storm = make_storm(tmp_path, sandbox, None, refresh_every_call=False)
    async with _container(storm.settings) as container:
        client_id, secret, identifiers = await _setup(storm, container, accounts=1)
    gateway = storm.serve()
    token = await api_token(storm.url, client_id, secret)
    # The token dies at Discord: the next call gets a 401 and refreshes.
    httpx.post(f"{sandbox}/_sandbox/tokens/expire", trust_env=False).raise_for_status()
    httpx.post(
        f"{sandbox}/_sandbox/faults",
        json={"route": "/api/oauth2/token", "latency_ms": 1500},
        trust_env=False,
    ).raise_for_status()
    # The caller gives up long before Discord answers; the refresh goes on without it.
    async with httpx.AsyncClient(trust_env=False, timeout=0.3) as http:
        with pytest.raises(httpx.TimeoutException):
            await call_tool(http, storm.url, token, identifiers[0])
    started = time.monotonic()
    # uvicorn shuts down gracefully, then re-raises the signal: -15 is a clean stop here.
    assert gateway.terminate() in (0, -15), gateway.output()
    assert time.monotonic() - started > 0.8  # it waited for Discord's answer

    stats = httpx.get(f"{sandbox}/_sandbox/stats", trust_env=False).json()
    assert stats["grants"]["refresh_token"] == 1
    async with _container(storm.settings) as container:
        account = (await container.vault.list_accounts(with_tokens=True)).items[0]
    assert account.status == AccountStatus.ACTIVE
    assert account.refresh_started_at is None
    assert account.refresh_token is not None
    state = sandbox_refresh_tokens(sandbox)[account.refresh_token.get_secret_value()]
    assert not state["used"]
    assert not state["revoked"]


# -- helpers ----------------------------------------------------------------------------------


class _container:
    """The vault as a second process sees it (the test's own view of the database)."""

    def __init__(self, settings: Settings) -> None:
        self._container = Container(settings)

    async def __aenter__(self) -> Container:
        await self._container.start(migrate=self._container.settings.is_sqlite)
        return self._container

    async def __aexit__(self, *exc_info: object) -> None:
        await self._container.close()


async def _setup(
    storm: Storm, container: Container, accounts: int = ACCOUNTS
) -> tuple[str, str, list[str]]:
    gateway = storm.serve()  # the callback needs a running gateway
    try:
        return await link_accounts(storm, container, accounts)
    finally:
        gateway.stop()


async def test_sigterm_lets_a_start_up_recheck_in_flight_finish(
    tmp_path: Path, sandbox: str
) -> None:
    """No request waits for this refresh (start-up re-checks it on its own): only the server's
    own drain keeps SIGTERM from cutting it between Discord's answer and the commit."""
    storm = make_storm(tmp_path, sandbox, None, refresh_every_call=False)
    async with _container(storm.settings) as container:
        await _setup(storm, container, accounts=1)
        account = (await container.vault.list_accounts(with_tokens=True)).items[0]
        # A dead process left this account's refresh in flight (the token is still unspent).
        await _mark_interrupted(container, account.id)
    httpx.post(
        f"{sandbox}/_sandbox/faults",
        json={"route": "/api/oauth2/token", "latency_ms": 1500},
        trust_env=False,
    ).raise_for_status()
    gateway = storm.serve()  # re-checks the account at start-up
    await asyncio.sleep(0.3)
    started = time.monotonic()
    assert gateway.terminate() in (0, -15), gateway.output()
    assert time.monotonic() - started > 0.8  # it waited for Discord's answer

    async with _container(storm.settings) as container:
        account = await container.vault.get_account(account.id)
    assert account.status == AccountStatus.ACTIVE, account.status_reason
    assert account.refresh_started_at is None
    assert account.refresh_token is not None
    state = sandbox_refresh_tokens(sandbox)[account.refresh_token.get_secret_value()]
    assert not state["used"]


async def _mark_interrupted(container: Container, account_id: str) -> None:
    from sqlalchemy import update

    from tokenward.vault.repository import ACCOUNTS as ACCOUNT_ROWS

    from .test_refresh_hardening import dead_holder

    async with container.vault.engine.begin() as conn:
        await conn.execute(
            update(ACCOUNT_ROWS)
            .where(ACCOUNT_ROWS.c.id == account_id)
            .values(
                refresh_lease_owner=dead_holder(),
                refresh_lease_until=time.time() + 600,
                refresh_started_at=time.time() - 1,
            )
        )
