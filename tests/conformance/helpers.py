"""Helpers for conformance tests against the Discord sandbox.

``issue_token(target, user_id, scopes)`` gives a user access token:

* ``target`` a base URL: walks the real OAuth2 flow over HTTP, as a person and a client would
  (``GET /_sandbox/applications`` → authorize page → consent form "Authorize" → PKCE code
  exchange with HTTP Basic client auth, via ``tests/conformance/__init__.py``);
* ``target`` a :class:`SandboxState` (a sandbox the test started itself and holds): writes a
  grant and a token straight into the state; for tests that must not depend on the OAuth
  routes (or that run a frozen clock).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from tokenward.sandbox.state import AccessToken, Grant, SandboxState, new_token

from . import loopback_client, tokens_for

DEFAULT_CLIENT_ID = "1300000000000000001"
ADA = "1100000000000000001"
GRACE = "1100000000000000002"
LINUS = "1100000000000000003"
CATALOG_SCOPES = ("identify", "email", "guilds", "guilds.members.read", "connections", "openid")


def default_application(base_url: str) -> dict[str, object]:
    """The default application's record from ``GET /_sandbox/applications``."""
    apps = httpx.get(f"{base_url}/_sandbox/applications", verify=False).raise_for_status().json()
    for app in apps:
        if app["client_id"] == DEFAULT_CLIENT_ID:
            return dict(app)
    raise AssertionError("the sandbox lists no default application")


def bot_token(base_url: str) -> str:
    return str(default_application(base_url)["bot_token"])


def issue_token(
    target: SandboxState | str,
    user_id: str,
    scopes: Iterable[str],
    client_id: str = DEFAULT_CLIENT_ID,
) -> str:
    scopes = tuple(scopes)
    if isinstance(target, SandboxState):
        return _issue_direct(target, user_id, scopes, client_id)
    return _issue_by_flow(target, user_id, scopes, client_id)


def _issue_direct(
    state: SandboxState, user_id: str, scopes: tuple[str, ...], client_id: str
) -> str:
    grant = Grant(id=new_token(12), client_id=client_id, user_id=user_id, scopes=scopes)
    state.grants[grant.id] = grant
    now = state.clock.time()
    token = AccessToken(
        value=new_token(24),
        grant_id=grant.id,
        client_id=client_id,
        user_id=user_id,
        scopes=scopes,
        issued_at=now,
        expires_at=now + state.settings.token_lifetime,
    )
    state.access_tokens[token.value] = token
    return token.value


def _issue_by_flow(base_url: str, user_id: str, scopes: tuple[str, ...], client_id: str) -> str:
    with loopback_client(base_url) as client:
        apps = client.get("/_sandbox/applications").raise_for_status().json()
        app = next(a for a in apps if a["client_id"] == client_id)
        body = tokens_for(client, app, scope=" ".join(scopes), user_id=user_id)
    assert set(body["scope"].split()) == set(scopes)
    return str(body["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bot(token: str) -> dict[str, str]:
    return {"Authorization": f"Bot {token}"}


# -- PNG ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PngImage:
    width: int
    height: int
    bit_depth: int
    color_type: int
    pixels: bytes  # the decompressed IDAT stream (filter byte + scanline per row)


def parse_png(data: bytes) -> PngImage:
    """Check a PNG's signature and chunk CRCs, read IHDR and inflate IDAT (PNG spec, ISO 15948)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    offset = 8
    chunks: list[tuple[bytes, bytes]] = []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1][0] == b"IEND"
    width, height, depth, color_type, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    stream = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    return PngImage(width, height, depth, color_type, stream)
