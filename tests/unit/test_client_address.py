"""Whose address a login failure counts against (``AddressResolver``) and how failures are
kept (``FailedAttempts``), without a server."""

from __future__ import annotations

import pytest

from tokenward.clock import ManualClock
from tokenward.errors import ConfigError
from tokenward.server.api.auth import AddressResolver, FailedAttempts


def test_without_trusted_proxies_the_socket_peer_is_the_address() -> None:
    resolver = AddressResolver(None)
    assert resolver.resolve("192.0.2.1", ["203.0.113.5"]) == "192.0.2.1"
    assert resolver.resolve("::ffff:192.0.2.1") == "192.0.2.1"
    assert resolver.resolve(None) is None


def test_behind_trusted_proxies_the_nearest_untrusted_hop_is_the_address() -> None:
    resolver = AddressResolver("10.0.0.0/8, 192.0.2.1")
    # client-supplied junk, the real client, then two trusted hops
    header = ["6.6.6.6, 203.0.113.5", "10.1.1.1"]
    assert resolver.resolve("192.0.2.1", header) == "203.0.113.5"
    # every hop trusted: the leftmost one known
    assert resolver.resolve("192.0.2.1", ["10.2.2.2, 10.1.1.1"]) == "10.2.2.2"
    # no header: the proxy itself
    assert resolver.resolve("10.9.9.9", []) == "10.9.9.9"
    # garbage written next to a trusted hop: stop at the last address a trusted hop vouched for
    assert resolver.resolve("192.0.2.1", ["not-an-ip, 10.1.1.1"]) == "10.1.1.1"
    # ports and brackets as some proxies write them
    assert resolver.resolve("192.0.2.1", ["[2001:db8::1]:443"]) == "2001:db8::1"
    assert resolver.resolve("192.0.2.1", ["203.0.113.5:1234"]) == "203.0.113.5"
    # an untrusted peer's header is ignored
    assert resolver.resolve("198.51.100.1", ["203.0.113.5"]) == "198.51.100.1"


def test_ipv6_addresses_count_per_64() -> None:
    assert AddressResolver.key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert AddressResolver.key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert AddressResolver.key("192.0.2.1") == "192.0.2.1"


def test_a_bad_trusted_proxies_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        AddressResolver("10.0.0.0/8,proxy.internal")
    assert "TOKENWARD_TRUSTED_PROXIES" in info.value.message
    assert "proxy.internal" in info.value.message


def test_failures_slide_out_of_the_window() -> None:
    clock = ManualClock(start=1000.0)
    failures = FailedAttempts(clock, limit=2, window=60.0)
    failures.record("a")
    clock.advance(30)
    failures.record("a")
    wait = failures.retry_after("a")
    assert wait == pytest.approx(30.0)
    assert failures.retry_after("b") is None
    clock.advance(31)
    assert failures.retry_after("a") is None


def test_a_full_table_forgets_the_oldest_keys_not_all_of_them() -> None:
    clock = ManualClock(start=0.0)
    failures = FailedAttempts(clock, limit=1, window=60.0, max_keys=100)
    failures.record("attacker")
    for index in range(100):  # one more key than the table holds
        failures.record(f"flood-{index}")
    assert 80 <= len(failures) <= 100  # a few of the oldest went, not the whole table
    assert failures.retry_after("flood-99") is not None
    assert failures.retry_after("flood-50") is not None
    assert failures.retry_after("attacker") is None  # the oldest is the first to go
