"""Operators and dashboard sessions in the vault, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tokenward.clock import ManualClock
from tokenward.errors import ConflictError, NotFoundError, ValidationError
from tokenward.server.dashboard.security import SignInThrottle
from tokenward.vault.actor import acting_as
from tokenward.vault.admins import AdminStore
from tokenward.vault.repository import Vault

PASSWORD = "twelve chars at least"


async def test_sessions_live_until_sign_out_expiry_or_the_operator_goes(
    vault: Vault, clock: ManualClock
) -> None:
    admins = AdminStore(vault, session_ttl=3600)
    alice = await admins.create("alice", PASSWORD)
    with pytest.raises(ConflictError):
        await admins.create("alice", PASSWORD)
    with pytest.raises(ValidationError) as short:
        await admins.create("bob", "short")
    assert "password" in short.value.fields
    assert [a.username for a in await admins.list()] == ["alice"]

    assert await admins.verify("alice", "wrong password!") is None
    assert await admins.verify("nobody", PASSWORD) is None
    signed = await admins.verify("alice", PASSWORD)
    assert signed is not None
    assert signed.id == alice.id

    token, session = await admins.start_session(signed)
    again = await admins.session(token)
    assert again is not None
    assert again.admin.username == "alice"
    assert again.csrf_token == session.csrf_token
    other_token, other = await admins.start_session(signed)
    assert other.csrf_token != session.csrf_token  # one CSRF token per session
    assert token not in repr(session)
    assert session.csrf_token not in repr(session)

    # Sign-out ends exactly that session.
    assert await admins.end_session(token)
    assert await admins.session(token) is None
    assert await admins.session(other_token) is not None
    assert not await admins.end_session(token)

    # Expiry: the session is refused at once and purged later.
    clock.advance(3601)
    assert await admins.session(other_token) is None
    assert await admins.purge_expired() == 1

    # Deleting the operator ends their sessions.
    token3, _ = await admins.start_session(signed)
    await admins.delete("alice")
    assert await admins.session(token3) is None
    with pytest.raises(NotFoundError):
        await admins.delete("alice")


async def test_events_written_while_acting_carry_the_operator(vault: Vault) -> None:
    with acting_as("operator:alice"):
        await vault.create_api_client("made-by-alice", "accounts:read")
    await vault.create_api_client("made-by-the-cli", "accounts:read")
    created = await vault.list_events(kind="api_client.created")
    assert created[0].data["actor"] == "operator:alice"
    assert "actor" not in created[1].data


def test_the_throttle_counts_per_username_and_forgets_after_the_window() -> None:
    clock = ManualClock()
    throttle = SignInThrottle(clock, limit=3, window=60)
    for _ in range(3):
        assert throttle.retry_after("Alice") is None
        throttle.failed("Alice")
    wait = throttle.retry_after("alice")
    assert wait is not None
    assert 0 < wait <= 60
    assert throttle.retry_after("bob") is None
    clock.advance(61)
    assert throttle.retry_after("alice") is None
    throttle.failed("alice")
    throttle.succeeded("alice")
    assert throttle.retry_after("alice") is None
