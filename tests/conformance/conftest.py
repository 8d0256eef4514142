"""Fixtures of the conformance tests that act as the sandbox's bot (see ``bot.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .bot import Bot, serve


@pytest.fixture(scope="module")
def bot_server() -> Iterator[Bot]:
    """One sandbox per module, rate limits off."""
    yield from serve()


@pytest.fixture
def bot(bot_server: Bot) -> Bot:
    """The module's sandbox, reset, with ``GET /_sandbox/fixtures`` read."""
    bot_server.client.post("/_sandbox/reset").raise_for_status()
    bot_server.fixtures = bot_server.client.get("/_sandbox/fixtures").json()
    return bot_server
