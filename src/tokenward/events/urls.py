"""Which webhook URLs tokenward will send to.

An endpoint URL is ``https://``; plain ``http://`` only to a loopback address and only when
``TOKENWARD_WEBHOOKS_ALLOW_INSECURE`` is set (the demo and the tests). Without that setting no
delivery ever reaches a loopback, private, link-local, multicast, reserved or unspecified
address, so a webhook cannot be pointed at the gateway's own network (a cloud metadata service,
an internal admin page). The address rule is checked twice: on the URL when the endpoint is
created (an IP literal, or ``localhost``), and on every address the host name resolves to when a
delivery connects (:class:`SafeResolver`, so a name that later resolves elsewhere is refused too).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from tokenward.errors import ValidationError

MAX_URL_LENGTH = 2048
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def _reason(field: str, reason: str) -> ValidationError:
    return ValidationError(f"{field} {reason}", fields={field: reason})


def address_allowed(address: str, *, allow_loopback: bool) -> bool:
    """Whether a delivery may connect to this IP address."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            address.split("%", 1)[0]
        )
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow_loopback
    return not (
        ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def _is_loopback_host(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str, *, allow_insecure: bool, field: str = "url") -> str:
    """The URL as it will be used, or a :class:`ValidationError` naming ``field`` and why."""
    if not isinstance(url, str) or not url.strip():
        raise _reason(field, "must be an absolute https URL")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _reason(field, f"must be at most {MAX_URL_LENGTH} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise _reason(field, "must not contain spaces or control characters")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise _reason(field, "must be an absolute https URL")
    if parts.username or parts.password:
        raise _reason(field, "must not carry a user name or password")
    if parts.fragment:
        raise _reason(field, "must not have a fragment")
    try:
        parts.port  # noqa: B018  (raises for a bad port)
    except ValueError:
        raise _reason(field, "has an invalid port") from None
    loopback = _is_loopback_host(host)
    if parts.scheme == "http" and not (allow_insecure and loopback):
        raise _reason(
            field,
            "must use https (plain http is allowed only to a loopback address, with "
            "TOKENWARD_WEBHOOKS_ALLOW_INSECURE set)",
        )
    if loopback and not allow_insecure:
        raise _reason(
            field, "must not point at a loopback address (unless TOKENWARD_WEBHOOKS_ALLOW_INSECURE)"
        )
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not address_allowed(str(literal), allow_loopback=allow_insecure):
        raise _reason(field, "must not point at a private, link-local or reserved address")
    return url


class SafeResolver(AbstractResolver):
    """Resolves like aiohttp's threaded resolver, then drops every address a delivery may not
    reach; a host left with none fails to connect."""

    def __init__(self, *, allow_loopback: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if address_allowed(r["host"], allow_loopback=self._allow_loopback)]
        if not kept:
            raise OSError(f"{host} resolves only to addresses webhooks may not reach")
        return kept

    async def close(self) -> None:
        await self._inner.close()
