"""MCP session tokens: stateless, signed, bound to one (connection, identifier, tools) context.

**Format.** A JWT (RFC 7519), HMAC-SHA256, header ``kid`` naming the vault encryption key the
signing key came from. Claims: ``iss="tokenward"``, ``aud="tokenward-mcp"``, ``sub`` = the
application's user identifier, ``conn`` = the connection name, ``tools`` = the allowed tool
names (absent: every tool of the connection's provider), ``ro`` = true for a read-only session
(only tools annotated read-only run), ``iat``, ``exp`` and a random ``jti``.

**Signing key.** ``HKDF-SHA256(ikm=encryption key, salt=b"", info=b"tokenward/mcp-session-
signing/v1")`` (RFC 5869), the same construction as the API tokens' with its own label, so the two
kinds of token can never stand in for each other and neither key reveals the AES key. Every
replica that reads the vault holds the same encryption keys, so a session minted by one replica is
accepted by all of them and survives restarts. Rotation keeps older sessions valid for as long as
their key stays in the keyring.

**Revocation.** Each minted session is also kept on record (``mcp_sessions``, by its ``jti``;
never the token), so an operator can list a user's sessions and revoke one. Every request is
checked against :class:`RevocationCache`: a revoked id is remembered for good, a live one for a
few seconds before the database is asked again, and a revocation is announced to every process
sharing Redis, which forgets nothing but marks the id revoked at once.

A session token is a bearer credential for one user's tools: whoever holds the URL acts as that
user, within the session's tools, until ``exp``. The claims are signed, not encrypted: the holder
can read the connection name, identifier and tool names (none of them a secret).
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt

from tokenward.clock import Clock
from tokenward.config import Settings
from tokenward.errors import AuthenticationError, ValidationError
from tokenward.vault.crypto import DerivedKeys, Keyring

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "MAX_TTL_SECONDS",
    "MIN_TTL_SECONDS",
    "McpSession",
    "RevocationCache",
    "SessionTokenError",
    "SessionTokens",
    "check_tool_names",
]

ISSUER: Final = "tokenward"
AUDIENCE: Final = "tokenward-mcp"
HKDF_INFO: Final = b"tokenward/mcp-session-signing/v1"
MIN_TTL_SECONDS: Final = 60
MAX_TTL_SECONDS: Final = 30 * 24 * 3600
DEFAULT_TTL_SECONDS: Final = 24 * 3600
MAX_TOKEN_LENGTH: Final = 8192
_TOKEN_CHARS: Final = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


class SessionTokenError(AuthenticationError):
    """A 401: the MCP session token is missing, malformed, forged or expired."""

    def __init__(self, message: str, *, reason: str, code: str = "INVALID_TOKEN") -> None:
        super().__init__(message, code=code, details={"reason": reason})
        self.reason = reason


@dataclass(frozen=True, slots=True)
class McpSession:
    """What a verified session token grants."""

    connection_name: str
    identifier: str
    tools: tuple[str, ...] | None
    """The allowed tool names; ``None`` means every tool of the connection's provider."""
    expires_at: float
    session_id: str
    read_only: bool = False
    """Only tools annotated read-only run (the others are refused with TOOL_NOT_ALLOWED)."""

    def allows(self, tool_name: str) -> bool:
        return self.tools is None or tool_name in self.tools


class SessionTokens:
    """Mints and verifies MCP session tokens with keys derived from the vault's keyring."""

    def __init__(self, settings: Settings, keyring: Keyring, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._keys = DerivedKeys(
            settings.encryption_keys, keyring, info=HKDF_INFO, purpose="MCP session signing"
        )

    def _active(self) -> tuple[str, bytes]:
        return self._keys.active()

    def _key(self, kid: str) -> bytes | None:
        return self._keys.get(kid)

    def mint(
        self,
        *,
        connection_name: str,
        identifier: str,
        tools: Sequence[str] | None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        read_only: bool = False,
    ) -> tuple[str, McpSession]:
        """A signed token and the session it grants (``tools=None``: every tool)."""
        kid, key = self._active()
        iat = int(self._clock.time())
        exp = iat + int(ttl_seconds)
        jti = secrets.token_urlsafe(12)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": identifier,
            "conn": connection_name,
            "iat": iat,
            "exp": exp,
            "jti": jti,
        }
        allowed = None if tools is None else tuple(dict.fromkeys(tools))
        if allowed is not None:
            claims["tools"] = list(allowed)
        if read_only:
            claims["ro"] = True
        token = jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})
        return token, McpSession(connection_name, identifier, allowed, float(exp), jti, read_only)

    def verify(self, token: str) -> McpSession:
        """The session a token grants; :class:`SessionTokenError` when it is not a valid,
        unexpired session token signed by this deployment."""
        invalid = SessionTokenError(
            "the MCP session token is not valid (malformed, forged or issued by another "
            "server); mint a session with POST /api/v1/mcp/sessions",
            reason="invalid",
        )
        if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(token):
            raise invalid
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid from None
        kid = header.get("kid")
        key = self._key(kid) if isinstance(kid, str) else None
        if key is None or header.get("alg") != "HS256":
            raise invalid
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                # Expiry is checked against the injected clock below, not the system time.
                options={
                    "require": ["exp", "iat", "sub", "aud", "iss", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise invalid from None
        sub, conn, exp, jti = (
            claims.get("sub"),
            claims.get("conn"),
            claims.get("exp"),
            claims.get("jti"),
        )
        tools = claims.get("tools")
        read_only = claims.get("ro", False)
        if (
            not isinstance(read_only, bool)
            or not isinstance(sub, str)
            or not isinstance(conn, str)
            or not isinstance(exp, int)
            or not isinstance(jti, str)
            or (
                tools is not None
                and not (isinstance(tools, list) and all(isinstance(t, str) for t in tools))
            )
        ):
            raise invalid
        if exp <= self._clock.time():
            raise SessionTokenError(
                "the MCP session has expired; mint a new one with POST /api/v1/mcp/sessions",
                reason="expired",
            )
        return McpSession(
            conn, sub, None if tools is None else tuple(tools), float(exp), jti, read_only
        )


class RevocationCache:
    """Whether a session id was revoked, asking ``lookup`` (the database) at most once per
    ``ttl`` seconds for a live id; a revoked id stays revoked without asking again."""

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[bool]],
        clock: Clock,
        *,
        ttl: float = 5.0,
        max_entries: int = 50_000,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._revoked: OrderedDict[str, None] = OrderedDict()
        self._live: dict[str, float] = {}

    def mark_revoked(self, session_id: str) -> None:
        """A revocation announced by this or another process: refuse the id from now on."""
        self._live.pop(session_id, None)
        self._revoked[session_id] = None
        while len(self._revoked) > self._max:
            self._revoked.popitem(last=False)

    async def revoked(self, session_id: str) -> bool:
        if session_id in self._revoked:
            return True
        now = self._clock.time()
        checked = self._live.get(session_id)
        if checked is not None and now - checked < self._ttl:
            return False
        if await self._lookup(session_id):
            self.mark_revoked(session_id)
            return True
        if len(self._live) >= self._max:
            self._live = {k: t for k, t in self._live.items() if now - t < self._ttl}
            if len(self._live) >= self._max:
                self._live.clear()
        self._live[session_id] = now
        return False


def check_tool_names(known: Iterable[str], names: Sequence[str] | None) -> list[str] | None:
    """``names`` without duplicates, or a ValidationError naming every unknown tool
    (``None`` stays ``None``: every tool)."""
    if names is None:
        return None
    if not names:
        raise ValidationError(
            "tools must name at least one tool (leave it out for every tool)",
            fields={"tools": "empty list; leave it out for every tool"},
        )
    catalog = set(known)
    unknown = [name for name in dict.fromkeys(names) if name not in catalog]
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:10])
        raise ValidationError(
            f"unknown tool name(s): {shown}; GET /api/v1/tools lists the tools",
            fields={"tools": f"unknown tool name(s): {shown}"},
        )
    return list(dict.fromkeys(names))
