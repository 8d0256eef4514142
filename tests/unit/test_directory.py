"""The account directory: no stampede on expiry, stale-while-revalidate, only usable accounts."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from tokenward.clock import ManualClock
from tokenward.errors import AccountNotFound
from tokenward.proxy.accounts import AccountDirectory
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import AccountRecord, ConnectionRecord

CONNECTION = ConnectionRecord(
    id="c1",
    name="discord",
    provider="discord",
    client_id="1",
    client_secret=SecretStr("s"),
    scopes=("identify",),
    bot_token=None,
    created_at=0.0,
    updated_at=0.0,
)
ACCOUNT = AccountRecord(
    id="a1",
    connection_id="c1",
    identifier="u1",
    status=AccountStatus.ACTIVE,
    status_reason=None,
    granted_scopes=("identify",),
    provider_user_id="1",
    access_token=SecretStr("t"),
    refresh_token=SecretStr("r"),
    expires_at=10**12,
    version=1,
    refresh_lease_owner=None,
    refresh_lease_until=None,
    last_used_at=None,
    created_at=0.0,
    updated_at=0.0,
)


class CountingVault:
    """Stands in for the vault's two read methods; each read takes a little time."""

    def __init__(self) -> None:
        self.connection_reads = 0
        self.account_reads = 0
        self.account: AccountRecord | None = ACCOUNT

    async def get_connection_by_name(self, name: str) -> ConnectionRecord:
        self.connection_reads += 1
        await asyncio.sleep(0.01)
        return CONNECTION

    async def find_account(self, connection_id: str, identifier: str) -> AccountRecord | None:
        self.account_reads += 1
        await asyncio.sleep(0.01)
        return self.account


def directory() -> tuple[AccountDirectory, CountingVault, ManualClock]:
    vault = CountingVault()
    clock = ManualClock()
    vault_any: Any = vault
    return AccountDirectory(vault_any, clock, ttl=15, max_stale=30), vault, clock


async def test_concurrent_misses_cause_one_read_each() -> None:
    d, vault, _clock = directory()
    connections = await asyncio.gather(*(d.connection("discord") for _ in range(100)))
    accounts = await asyncio.gather(*(d.account(CONNECTION, "u1") for _ in range(100)))
    assert {c.id for c in connections} == {"c1"}
    assert {a.id for a in accounts} == {"a1"}
    assert (vault.connection_reads, vault.account_reads) == (1, 1)


async def test_an_expired_entry_serves_while_one_reload_runs() -> None:
    d, vault, clock = directory()
    await d.account(CONNECTION, "u1")
    clock.advance(16)  # past ttl, within max_stale
    vault.account = replace(ACCOUNT, version=2)
    served = await asyncio.gather(*(d.account(CONNECTION, "u1") for _ in range(50)))
    assert {a.version for a in served} == {1}  # nobody waited for the database
    await asyncio.sleep(0.05)
    assert vault.account_reads == 2  # one background reload for fifty callers
    assert (await d.account(CONNECTION, "u1")).version == 2


async def test_past_max_stale_callers_wait_for_the_database() -> None:
    d, vault, clock = directory()
    await d.account(CONNECTION, "u1")
    clock.advance(50)
    vault.account = replace(ACCOUNT, version=3)
    assert (await d.account(CONNECTION, "u1")).version == 3


async def test_a_deleted_or_expired_account_drops_out() -> None:
    d, vault, clock = directory()
    await d.account(CONNECTION, "u1")
    vault.account = replace(ACCOUNT, status=AccountStatus.EXPIRED, version=2)
    clock.advance(16)
    await d.account(CONNECTION, "u1")  # stale, reload scheduled
    await asyncio.sleep(0.05)
    assert (await d.account(CONNECTION, "u1")).status == AccountStatus.EXPIRED
    reads = vault.account_reads
    await d.account(CONNECTION, "u1")
    assert vault.account_reads == reads + 1  # not cached: read every time until usable
    vault.account = None
    with pytest.raises(AccountNotFound):
        await d.account(CONNECTION, "u1")
