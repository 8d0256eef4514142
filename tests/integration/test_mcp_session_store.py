"""MCP sessions on record, SQLite and PostgreSQL, with the clock moved by hand: listing by user,
revocation, and the purge of sessions a day past their expiry."""

from __future__ import annotations

import pytest

from tokenward.clock import ManualClock
from tokenward.errors import NotFoundError
from tokenward.mcp.sessions import McpSession
from tokenward.vault.mcp_sessions import KEEP_EXPIRED_SECONDS, McpSessionStore
from tokenward.vault.repository import Vault


def _session(clock: ManualClock, session_id: str, identifier: str, ttl: float) -> McpSession:
    return McpSession(
        "discord", identifier, ("discord_get_my_user",), clock.time() + ttl, session_id
    )


async def test_sessions_are_listed_revoked_and_purged(vault: Vault) -> None:
    clock = vault.clock
    assert isinstance(clock, ManualClock)
    store = McpSessionStore(vault)
    await store.record(_session(clock, "short", "ada", 60))
    clock.advance(1)
    await store.record(_session(clock, "long", "ada", 7 * 86400))
    await store.record(_session(clock, "other", "grace", 3600))

    assert [r.id for r in await store.list(identifier="ada")] == ["long", "short"]
    assert [r.id for r in await store.list(connection_name="nowhere")] == []
    revoked = await store.revoke("long")
    assert revoked.revoked_at == clock.time()
    assert await store.is_revoked("long")
    assert not await store.is_revoked("short")
    assert not await store.is_revoked("never-recorded")
    assert (await store.revoke("long")).revoked_at == revoked.revoked_at  # again: no change
    assert await vault.count_events("mcp_session.revoked") == 1
    with pytest.raises(NotFoundError):
        await store.revoke("nope")

    assert [r.id for r in await store.list(identifier="ada")] == ["short"]
    clock.advance(120)  # "short" has expired: listed only with include_inactive
    assert await store.list(identifier="ada") == []
    assert {r.id for r in await store.list(identifier="ada", include_inactive=True)} == {
        "long",
        "short",
    }
    assert await store.purge_expired() == 0  # expired less than a day ago: kept
    clock.advance(KEEP_EXPIRED_SECONDS)
    assert await store.purge_expired() == 1
    assert {r.id for r in await store.list(include_inactive=True)} == {"long", "other"}
