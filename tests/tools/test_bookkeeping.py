"""Tool calls leave an audit event and a ``last_used_at``, written off the request path."""

from __future__ import annotations

import pytest

from tokenward.errors import ValidationError
from tokenward.server.container import Container

from .env import WITH_BOT


async def test_tool_calls_are_recorded_in_the_background(container: Container) -> None:
    account = await container.vault.find_account(
        (await container.vault.get_connection_by_name(WITH_BOT)).id, "ada"
    )
    assert account is not None
    before = await container.vault.count_events("tool.executed")

    await container.runner.execute(
        "discord_get_my_user", {}, connection_name=WITH_BOT, identifier="ada"
    )
    with pytest.raises(ValidationError):
        await container.runner.execute(
            "discord_get_my_user", {"bogus": 1}, connection_name=WITH_BOT, identifier="ada"
        )
    # Nothing was written on the request path...
    assert await container.vault.count_events("tool.executed") == before
    await container.bookkeeper.flush()
    # ...and everything once the bookkeeper has flushed.
    events = (await container.vault.list_events(kind="tool.executed", limit=1000))[before:]
    assert [e.data["status"] for e in events] == ["ok", "VALIDATION_ERROR"]
    assert all(e.data["tool"] == "discord_get_my_user" for e in events)
    assert all(isinstance(e.data["latency_ms"], float) for e in events)
    assert events[0].account_id == account.id
    used = await container.vault.get_account(account.id)
    assert used.last_used_at is not None
    assert account.last_used_at is None or used.last_used_at > account.last_used_at
