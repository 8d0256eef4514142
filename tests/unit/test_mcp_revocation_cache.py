"""The revocation cache in front of ``mcp_sessions``: a live id is trusted for ``ttl`` seconds, a
revoked one for good, and an announced revocation needs no lookup."""

from __future__ import annotations

from tokenward.clock import ManualClock
from tokenward.mcp.sessions import RevocationCache


async def test_a_live_id_is_asked_again_after_the_ttl_and_a_revoked_one_never() -> None:
    clock = ManualClock()
    revoked: set[str] = set()
    asked: list[str] = []

    async def lookup(session_id: str) -> bool:
        asked.append(session_id)
        return session_id in revoked

    cache = RevocationCache(lookup, clock, ttl=5.0)
    assert await cache.revoked("a") is False
    assert await cache.revoked("a") is False
    assert asked == ["a"]  # the second answer came from the cache
    revoked.add("a")
    clock.advance(4.9)
    assert await cache.revoked("a") is False  # still trusted within the ttl
    clock.advance(0.2)
    assert await cache.revoked("a") is True
    assert await cache.revoked("a") is True
    assert asked == ["a", "a"]


async def test_an_announced_revocation_is_refused_without_asking() -> None:
    clock = ManualClock()
    asked: list[str] = []

    async def lookup(session_id: str) -> bool:
        asked.append(session_id)
        return False

    cache = RevocationCache(lookup, clock, ttl=300.0, max_entries=2)
    assert await cache.revoked("b") is False
    cache.mark_revoked("b")
    assert await cache.revoked("b") is True
    assert asked == ["b"]
    cache.mark_revoked("c")
    cache.mark_revoked("d")  # over max_entries: the oldest revoked id is forgotten
    assert await cache.revoked("d") is True
    assert await cache.revoked("b") is False
    assert asked == ["b", "b"]
