"""Buckets of the bot routes (``discord-api.md`` §3, §6.4): per route, counted per major
parameter (channel, guild, webhook id + token), with ``X-RateLimit-Bucket`` on every answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tokenward.clock import ManualClock
from tokenward.sandbox import SandboxSettings

from .bot import CREW, GENERAL, HUB, NEWS, Bot, serve


@pytest.fixture
def limited() -> Iterator[Bot]:
    settings = SandboxSettings(bucket_limit=2, bucket_window=60.0, global_limit=1000)
    for bot in serve(settings, ManualClock()):
        bot.fixtures = bot.client.get("/_sandbox/fixtures").json()
        yield bot


def test_channel_is_the_major_parameter(limited: Bot) -> None:
    bot = limited
    first = bot.post(f"/channels/{GENERAL}/messages", json={"content": "1"})
    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    bucket = first.headers["x-ratelimit-bucket"]
    assert bot.post(f"/channels/{GENERAL}/messages", json={"content": "2"}).status_code == 200
    refused = bot.post(f"/channels/{GENERAL}/messages", json={"content": "3"})
    assert refused.status_code == 429
    assert refused.json()["global"] is False
    # Another channel: the same bucket, its own counter.
    other = bot.post(f"/channels/{NEWS}/messages", json={"content": "1"})
    assert other.status_code == 200
    assert other.headers["x-ratelimit-bucket"] == bucket
    # Another route of the same channel has a bucket of its own.
    listing = bot.get(f"/channels/{GENERAL}/messages")
    assert listing.status_code == 200
    assert listing.headers["x-ratelimit-bucket"] != bucket
    # The refused request created nothing.
    assert [m["content"] for m in bot.messages(GENERAL)][-2:] == ["1", "2"]


def test_guild_is_the_major_parameter(limited: Bot) -> None:
    bot = limited
    for _ in range(2):
        assert bot.get(f"/guilds/{HUB}/roles").status_code == 200
    assert bot.get(f"/guilds/{HUB}/roles").status_code == 429
    assert bot.get(f"/guilds/{CREW}/roles").status_code == 200


def test_webhook_id_and_token_are_the_major_parameter(limited: Bot) -> None:
    bot = limited
    hook = bot.fixtures["webhook"]
    url = f"/webhooks/{hook['id']}/{hook['token']}"
    other = bot.ok(bot.post(f"/channels/{NEWS}/webhooks", json={"name": "Second"}))
    other_url = f"/webhooks/{other['id']}/{other['token']}"
    for _ in range(2):
        assert bot.post(url, json={"content": "x"}, headers={}).status_code == 204
    limited_answer = bot.post(url, json={"content": "x"}, headers={})
    assert limited_answer.status_code == 429
    assert "x-ratelimit-bucket" in limited_answer.headers
    assert bot.post(other_url, json={"content": "x"}, headers={}).status_code == 204
