"""Webhook URLs: https to public hosts; plain http and loopback only when allowed; never a
private, link-local or reserved address, also when a name resolves to one."""

from __future__ import annotations

import pytest

from tokenward.errors import ValidationError
from tokenward.events.urls import SafeResolver, address_allowed, check_webhook_url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/tokenward",
        "https://8.8.8.8:8443/x?y=1",
        "https://[2606:4700::1111]/",
    ],
)
def test_public_https_urls_are_accepted(url: str) -> None:
    assert check_webhook_url(url, allow_insecure=False) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://localhost/x", "loopback"),
        ("https://10.1.2.3/x", "private"),
        ("https://192.168.1.1/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[fe80::1]/x", "private"),
        ("https://0.0.0.0/x", "private"),
        ("https://user:pw@hooks.example.com/x", "user name"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("ftp://hooks.example.com/x", "absolute https"),
        ("hooks.example.com/x", "absolute https"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://hooks.example.com:99999/x", "port"),
        ("https://hooks.example.com/" + "x" * 2048, "2048"),
    ],
)
def test_other_urls_are_refused_naming_the_field(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        check_webhook_url(url, allow_insecure=False)
    assert reason in info.value.details["fields"]["url"]


def test_loopback_and_plain_http_need_the_insecure_setting() -> None:
    assert check_webhook_url("http://127.0.0.1:9/hook", allow_insecure=True)
    assert check_webhook_url("http://localhost:9/hook", allow_insecure=True)
    with pytest.raises(ValidationError):
        check_webhook_url("http://10.0.0.1/hook", allow_insecure=True)
    with pytest.raises(ValidationError):
        check_webhook_url("http://hooks.example.com/hook", allow_insecure=True)


def test_addresses() -> None:
    assert address_allowed("203.0.113.9", allow_loopback=False) is False  # TEST-NET: reserved
    assert address_allowed("8.8.8.8", allow_loopback=False)
    assert not address_allowed("::ffff:10.0.0.1", allow_loopback=False)
    assert address_allowed("::1", allow_loopback=True)
    assert not address_allowed("::1", allow_loopback=False)
    assert not address_allowed("not an address", allow_loopback=True)


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time() -> None:
    refusing = SafeResolver(allow_loopback=False)
    try:
        with pytest.raises(OSError, match="may not reach"):
            await refusing.resolve("localhost", 80)
    finally:
        await refusing.close()
    allowing = SafeResolver(allow_loopback=True)
    try:
        found = await allowing.resolve("localhost", 80)
    finally:
        await allowing.close()
    assert found
    assert all(address_allowed(r["host"], allow_loopback=True) for r in found)
