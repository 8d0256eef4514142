"""Refresh under crashes, races and odd answers (issue 9: "Refresh under crashes and races").

Each test names the failure it guards against. The vault is real (SQLite, and PostgreSQL where
the test takes ``database_url``), Discord is the sandbox over loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tokenward.clock import ManualClock
from tokenward.errors import ReauthorizationRequired, UpstreamUnavailable
from tokenward.oauth.endpoints import ClientCredentials, OAuthEndpoints, OAuthUnavailable, TokenSet
from tokenward.oauth.holder import ProcessIdentity, process_start
from tokenward.oauth.refresh import INTERRUPTED_REASON, TokenManager
from tokenward.sandbox.browser import walk_consent
from tokenward.server.container import Container
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import ACCOUNTS, AccountRecord, Vault

from .gateway_env import (
    Gateway,
    gateway_settings,
    local_container,
    make_connection,
    sandbox_stats,
    start_gateway,
)
from .test_oauth_lifecycle import ADA, link_account

EIGHT_DAYS = 8 * 86400


def manager(
    container: Container,
    *,
    endpoints: OAuthEndpoints | None = None,
    identity: ProcessIdentity | None = None,
    ahead: float = EIGHT_DAYS,
    **kwargs: Any,
) -> TokenManager:
    """A TokenManager whose clock is ``ahead`` seconds in the future (every token is due)."""
    options: dict[str, Any] = {"backoff_base": 0.01, "backoff_cap": 0.05, **kwargs}
    return TokenManager(
        container.vault,
        endpoints or container.oauth.endpoints,
        ManualClock(start=time.time() + ahead),
        identity=identity,
        **options,
    )


def other_host(name: str) -> ProcessIdentity:
    """A worker on another replica: nothing here can tell whether it is alive."""
    return dataclasses.replace(ProcessIdentity.current(), host=name)


def dead_holder() -> str:
    """The lease owner string of a process on this host that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = process_start(proc.pid)
    proc.kill()
    proc.wait()
    me = ProcessIdentity.current()
    return dataclasses.replace(me, pid=proc.pid, started=started).holder()


async def set_row(vault: Vault, account_id: str, **values: Any) -> None:
    async with vault.engine.begin() as conn:
        await conn.execute(update(ACCOUNTS).where(ACCOUNTS.c.id == account_id).values(**values))


def spend_refresh_token(sandbox_url: str, app: dict[str, Any], account: AccountRecord) -> None:
    """Use the stored refresh token at Discord, as a process that died after sending it did."""
    assert account.refresh_token is not None
    response = httpx.post(
        f"{sandbox_url}/api/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": account.refresh_token.get_secret_value(),
        },
        auth=(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 200, response.text


def refresh_token_state(sandbox_url: str, value: str) -> dict[str, Any]:
    body = httpx.get(f"{sandbox_url}/_sandbox/tokens").raise_for_status().json()
    found: dict[str, Any] = next(
        t for t in body["details"]["refresh_tokens"] if t["value"] == value
    )
    return found


# -- one odd answer must not kill a healthy account --------------------------------------------


async def test_an_odd_400_from_the_token_endpoint_keeps_the_account_active(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    httpx.post(
        f"{gateway.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token", "status": 400, "count": 1},
    ).raise_for_status()
    tokens = manager(container)

    with pytest.raises(UpstreamUnavailable) as info:
        await tokens.grant(account_id)

    assert info.value.details["retry_after"] > 0
    assert info.value.details["attempts"] == 1
    account = await container.vault.get_account(account_id)
    assert account.status == AccountStatus.ACTIVE, account.status_reason
    assert account.refresh_lease_owner is None
    assert account.refresh_started_at is None  # Discord answered: the token was not used
    # The next call tries again, and works.
    grant = await tokens.grant(account_id)
    assert grant.version == account.version + 1


async def test_invalid_client_keeps_the_account_active_until_the_secret_is_fixed(
    container: Container, gateway: Gateway
) -> None:
    connection, app = await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    await container.vault.update_connection(connection.id, client_secret="not-the-secret")
    tokens = manager(container)

    with pytest.raises(UpstreamUnavailable) as info:
        await tokens.grant(account_id)

    assert "invalid_client" in info.value.message
    assert (await container.vault.get_account(account_id)).status == AccountStatus.ACTIVE
    await container.vault.update_connection(connection.id, client_secret=app["client_secret"])
    grant = await tokens.grant(account_id)
    me = httpx.get(
        f"{gateway.sandbox_url}/api/v10/users/@me",
        headers={"Authorization": f"Bearer {grant.access_token}"},
    )
    assert me.status_code == 200


# -- a worker that lost its lease ----------------------------------------------------------------


class StallThenLose:
    """Worker A's endpoints: its first attempt stalls past its lease, worker B refreshes
    meanwhile, then A's attempt fails; every later call goes to Discord for real."""

    def __init__(self, real: OAuthEndpoints, during_stall: Any) -> None:
        self.real = real
        self.during_stall = during_stall
        self.refresh_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def refresh(self, client: ClientCredentials, refresh_token: str) -> TokenSet:
        self.refresh_calls += 1
        if self.refresh_calls == 1:
            await self.during_stall()
            raise OAuthUnavailable("timed out", sent=False)
        return await self.real.refresh(client, refresh_token)


async def test_a_worker_whose_lease_ran_out_never_marks_a_refreshed_account_expired(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    before = sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"]
    worker_b = manager(container, identity=other_host("replica-b"))
    b_grants = []

    async def lease_runs_out_and_b_refreshes() -> None:
        await set_row(container.vault, account_id, refresh_lease_until=0.0)
        b_grants.append(await worker_b.grant(account_id))

    endpoints = StallThenLose(container.oauth.endpoints, lease_runs_out_and_b_refreshes)
    worker_a = manager(container, endpoints=endpoints, identity=other_host("replica-a"))

    a_grant = await worker_a.grant(account_id)

    account = await container.vault.get_account(account_id)
    assert account.status == AccountStatus.ACTIVE, account.status_reason
    assert a_grant.access_token == b_grants[0].access_token
    assert endpoints.refresh_calls == 1  # A never sent the spent refresh token
    assert sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"] == before + 1


async def test_mark_expired_is_conditional_on_the_lease_and_the_version(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    vault = container.vault
    account = await vault.get_account(account_id)
    assert await vault.acquire_refresh_lease(account_id, "worker-b", 60)

    assert await vault.mark_expired(account_id, "stale", owner="worker-a") is None
    assert (
        await vault.mark_expired(account_id, "stale", expected_version=account.version - 1) is None
    )
    unchanged = await vault.get_account(account_id)
    assert unchanged.status == AccountStatus.ACTIVE
    assert unchanged.refresh_lease_owner == "worker-b"

    expired = await vault.mark_expired(
        account_id, "dead", owner="worker-b", expected_version=account.version
    )
    assert expired is not None
    assert expired.status == AccountStatus.EXPIRED
    assert expired.refresh_lease_owner is None


async def test_the_lease_covers_the_whole_retry_budget_and_each_attempt_checks_it(
    container: Container, gateway: Gateway
) -> None:
    tokens = TokenManager(
        container.vault, container.oauth.endpoints, ManualClock(), attempt_timeout=30.0
    )
    assert tokens.lease_ttl >= 4 * 30.0 + 0.25 + 0.5 + 1.0
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    vault = container.vault
    version = (await vault.get_account(account_id)).version
    assert await vault.acquire_refresh_lease(account_id, "me", 5.0)

    async with vault.refresh_writer() as writer:
        assert await writer.begin_attempt(account_id, "me", version, lease_needed=45.0)
        row = await vault.get_account(account_id)
        assert row.refresh_lease_until is not None
        assert row.refresh_lease_until >= vault.clock.time() + 44.0  # extended for the attempt
        assert row.refresh_started_at is not None  # the intent is on record
        assert not await writer.begin_attempt(account_id, "someone-else", version, lease_needed=1)
        assert not await writer.begin_attempt(account_id, "me", version + 1, lease_needed=1)


# -- dead holders, interrupted refreshes ---------------------------------------------------------


async def test_a_lease_held_by_a_dead_process_is_taken_over_at_once(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    await set_row(
        container.vault,
        account_id,
        refresh_lease_owner=dead_holder(),
        refresh_lease_until=time.time() + 600,
    )
    tokens = manager(container)

    started = time.monotonic()
    grant = await asyncio.wait_for(tokens.grant(account_id), timeout=10)
    waited = time.monotonic() - started

    assert waited < 1.0
    account = await container.vault.get_account(account_id)
    assert grant.access_token == account.access_token.get_secret_value()  # type: ignore[union-attr]
    assert account.refresh_lease_owner is None


async def test_a_caller_whose_token_still_works_does_not_wait_for_a_live_refresh(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    live = ProcessIdentity.current().holder()  # a live holder: this very process
    await set_row(
        container.vault, account_id, refresh_lease_owner=live, refresh_lease_until=time.time() + 600
    )
    account = await container.vault.get_account(account_id)
    # Due (within a leeway of ten days) but not expired.
    tokens = manager(container, ahead=0, leeway=10 * 86400)
    before = sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"]

    grant = await asyncio.wait_for(tokens.grant(account_id), timeout=10)

    assert grant.version == account.version
    assert sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"] == before


async def interrupted(
    container: Container, gateway: Gateway, *, spent: bool, name: str = "discord"
) -> str:
    """An account whose refresh a dead process left in flight (its token spent or not)."""
    _connection, app = await make_connection(container, gateway.sandbox_url, name=name)
    link = await container.oauth.create_link(name, "user_123")
    result = await asyncio.to_thread(walk_consent, link.link, user_id=ADA)
    assert result.status_code == 200, result.text
    account_id = link.account.id
    account = await container.vault.get_account(account_id)
    if spent:
        spend_refresh_token(gateway.sandbox_url, app, account)
    await set_row(
        container.vault,
        account_id,
        refresh_lease_owner=dead_holder(),
        refresh_lease_until=time.time() + 600,
        refresh_started_at=time.time() - 1,
    )
    return account_id


async def test_an_interrupted_refresh_whose_token_was_spent_ends_expired_with_its_reason(
    container: Container, gateway: Gateway
) -> None:
    account_id = await interrupted(container, gateway, spent=True)

    assert await container.tokens.recover_interrupted() == 1

    account = await container.vault.get_account(account_id)
    assert account.status == AccountStatus.EXPIRED
    assert account.status_reason == INTERRUPTED_REASON
    assert account.status_reason.startswith("refresh interrupted")
    assert account.refresh_started_at is None
    assert account.refresh_lease_owner is None
    events = await container.vault.list_events(account_id=account_id, kind="account.expired")
    assert [e.data.get("interrupted") for e in events] == [True]
    with pytest.raises(ReauthorizationRequired) as info:
        await container.tokens.grant(account_id)
    assert info.value.details["authorization_link"]


async def test_an_interrupted_refresh_that_never_reached_discord_ends_active(
    container: Container, gateway: Gateway
) -> None:
    account_id = await interrupted(container, gateway, spent=False)
    old = await container.vault.get_account(account_id)

    assert await container.tokens.recover_interrupted() == 1

    account = await container.vault.get_account(account_id)
    assert account.status == AccountStatus.ACTIVE
    assert account.refresh_started_at is None
    assert account.version == old.version + 1
    assert account.refresh_token is not None
    state = refresh_token_state(gateway.sandbox_url, account.refresh_token.get_secret_value())
    assert not state["used"]
    assert not state["revoked"]
    # Nothing left to re-check.
    assert await container.tokens.recover_interrupted() == 0


async def test_a_refresh_in_flight_under_a_live_lease_is_left_alone(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    await set_row(
        container.vault,
        account_id,
        refresh_lease_owner=other_host("replica-b").holder(),
        refresh_lease_until=time.time() + 600,
        refresh_started_at=time.time(),
    )
    before = sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"]

    assert await container.tokens.recover_interrupted() == 0

    assert sandbox_stats(gateway.sandbox_url)["grants"]["refresh_token"] == before


async def test_serve_rechecks_interrupted_refreshes_at_start_up(
    tmp_path: Path, sandbox_url: str
) -> None:
    settings = gateway_settings(tmp_path, sandbox_url)
    first = start_gateway(settings, sandbox_url)
    try:
        async with local_container(settings) as container:
            spent = await interrupted(container, first, spent=True, name="spent")
            unspent = await interrupted(container, first, spent=False, name="unspent")
    finally:
        first.server.stop()

    second = start_gateway(settings, sandbox_url)  # the restart after the crash
    try:
        async with local_container(settings) as container:
            deadline = time.monotonic() + 10
            while await container.vault.list_interrupted_refreshes():
                assert time.monotonic() < deadline, "start-up did not re-check the accounts"
                await asyncio.sleep(0.05)
            assert (await container.vault.get_account(spent)).status == AccountStatus.EXPIRED
            assert (await container.vault.get_account(unspent)).status == AccountStatus.ACTIVE
    finally:
        second.server.stop()
