"""API tokens: issued by ``POST /oauth/token``, required by every ``/api/*`` and ``/proxy/*`` call.

**Format.** A JWT (RFC 7519) signed with HMAC-SHA256: header ``kid`` names the encryption key the
signing key came from; claims ``iss="tokenward"``, ``aud="tokenward-api"``, ``sub`` = the API
client id, ``scope`` (space-separated, see :mod:`tokenward.scopes`), ``iat``, ``exp`` (``iat +
settings.api_token_ttl_seconds``) and a random ``jti``. A token without ``scope`` (issued before
scopes existed, when every client had full access) counts as ``admin``.

**Scopes.** :func:`require_scopes` (used as ``Security(require_scopes, scopes=[...])`` on each
route, through :func:`scoped`) refuses a token whose scopes do not allow the route with ``403
INSUFFICIENT_SCOPE``; the OpenAPI document shows each route's scopes.

**Signing key.** For every vault encryption key ``(kid, k)``, the signing key is
``HKDF-SHA256(ikm=k, salt=b"", info=b"tokenward/api-token-signing/v1")`` (RFC 5869). This was
chosen over a stored secret because it needs nothing new to store, back up or protect: every
replica that can read the vault already holds the same keys, so a token issued by one replica is
accepted by all of them and by the same process after a restart. HKDF with its own ``info`` label
gives a key that is independent of the AES key (knowing one reveals nothing about the other).
Rotation (``tokenward keys rotate``) makes the new key sign new tokens, while tokens signed under
an older key stay valid for as long as that key is still in the keyring.

**Checking is cheap.** No database access per request: the signature and claims are checked in
memory, and a verified token is remembered (bounded map, token → client id and expiry), so a
repeat call costs a dictionary lookup and a time comparison. Time comes from the injected clock.

**Deleted clients.** :class:`ApiClientDirectory` keeps the set of existing client ids in memory,
re-read from the vault every :data:`CLIENT_LIST_TTL` seconds (30). A token whose client is not in
the set is refused, so a deleted client's tokens stop working within 30 seconds on every replica
(``ApiAuth.forget_client`` makes it immediate in-process; with Redis, ``tokenward api-clients
delete`` announces the deletion and every replica forgets the client at once). A validly signed
token naming a client the set does not know makes the set re-read at once only if the token was
issued after the set was last read (give or take :data:`CLOCK_SKEW` seconds between replicas):
such a client may have been created moments ago, perhaps on another replica. A token issued
earlier than the last read names a client that existed then and is gone now, so it is refused
without touching the database.

**Throttling failed logins** (:class:`FailedAttempts`). Failures are counted per (client id,
address) and per address, never per client id alone: an attacker guessing one client's secret
from one address cannot lock that client out for its legitimate callers elsewhere. The address is
the socket peer, or, when the peer is one of ``TOKENWARD_TRUSTED_PROXIES``, the nearest
untrusted hop in ``X-Forwarded-For`` (:class:`AddressResolver`); IPv6 addresses count per /64.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import re
import secrets
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import unquote_plus

import jwt
from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.params import Security as SecurityParam
from fastapi.security import OAuth2, SecurityScopes

from tokenward.clock import Clock
from tokenward.config import Settings
from tokenward.errors import (
    AuthenticationError,
    ConfigError,
    InsufficientScope,
    RateLimited,
    TokenwardError,
)
from tokenward.scopes import ADMIN, SCOPES, format_scopes, missing_scopes, parse_scopes
from tokenward.vault.actor import set_request_actor
from tokenward.vault.crypto import DerivedKeys, derive_key
from tokenward.vault.repository import Vault

__all__ = [
    "AddressResolver",
    "ApiAuth",
    "ApiAuthError",
    "ApiClientDirectory",
    "ApiPrincipal",
    "FailedAttempts",
    "api_token_scheme",
    "require_api_client",
    "require_scopes",
    "scoped",
]

log = logging.getLogger("tokenward.auth")

ISSUER: Final = "tokenward"
AUDIENCE: Final = "tokenward-api"
HKDF_INFO: Final = b"tokenward/api-token-signing/v1"
CLIENT_LIST_TTL: Final = 30.0
CLOCK_SKEW: Final = 5.0
MAX_TOKEN_LENGTH: Final = 4096
_VERIFIED_CACHE_MAX: Final = 10_000
_TOKEN_CHARS: Final = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


class ApiAuthError(AuthenticationError):
    """A 401 from the API-token layer; ``headers`` go on the response."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "INVALID_TOKEN",
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.headers: dict[str, str] = dict(headers or {})


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """Who is calling: the API client a valid bearer token was issued to, and what the token
    allows."""

    client_id: str
    token_expires_at: float
    scopes: frozenset[str] = frozenset({ADMIN})

    def require(self, *needed: str, action: str | None = None) -> None:
        """:class:`InsufficientScope` (403) unless the token allows every scope in ``needed``."""
        missing = missing_scopes(self.scopes, needed)
        if not missing:
            return
        what = f" for {action}" if action else ""
        raise InsufficientScope(
            f"this API client lacks the scope {missing[0]!r} needed{what}; create an API client "
            f"with it (tokenward api-clients create --scopes {','.join(needed)})",
            details={
                "required_scope": missing[0],
                "required_scopes": list(needed),
                "granted_scopes": format_scopes(self.scopes).split(),
            },
        )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    expires_at: float
    scopes: frozenset[str] = frozenset({ADMIN})


def derive_signing_key(encryption_key: bytes) -> bytes:
    return derive_key(encryption_key, HKDF_INFO)


class ApiClientDirectory:
    """The set of existing API client ids, kept fresh enough (see the module docstring)."""

    def __init__(
        self, vault: Vault, clock: Clock, *, ttl: float = CLIENT_LIST_TTL, skew: float = CLOCK_SKEW
    ) -> None:
        self._vault = vault
        self._clock = clock
        self.ttl = ttl
        self.skew = skew
        self._ids: frozenset[str] = frozenset()
        self._loaded_at: float | None = None  # monotonic
        self._loaded_wall = float("-inf")  # wall time of the same read
        self._lock = asyncio.Lock()

    async def _reload(self, loaded_before: float | None) -> None:
        async with self._lock:
            if self._loaded_at != loaded_before:  # another task reloaded meanwhile
                return
            wall = self._clock.time()
            clients = await self._vault.list_api_clients()
            self._ids = frozenset(c.client_id for c in clients)
            self._loaded_at = self._clock.monotonic()
            self._loaded_wall = wall

    async def exists(self, client_id: str, issued_at: float) -> bool:
        """Whether the client a token issued at ``issued_at`` names still exists."""
        loaded_at = self._loaded_at
        if loaded_at is None or self._clock.monotonic() - loaded_at >= self.ttl:
            await self._reload(loaded_at)
        if client_id in self._ids:
            return True
        if issued_at + self.skew >= self._loaded_wall:
            await self._reload(self._loaded_at)
            return client_id in self._ids
        return False

    def add(self, client_id: str) -> None:
        self._ids = self._ids | {client_id}

    def expire(self) -> None:
        """Re-read the set on next use."""
        self._loaded_at = None

    def discard(self, client_id: str) -> None:
        self._ids = self._ids - {client_id}


class FailedAttempts:
    """Failed client authentications per key in a sliding window.

    A brute-force brake for ``POST /oauth/token``: past ``limit`` failures within ``window``
    seconds a key is refused with ``RATE_LIMITED`` (and its ``retry_after``) before any secret is
    hashed, which also caps the CPU an attacker can make the server spend on scrypt. At most
    ``max_keys`` keys are remembered; past that the oldest are forgotten first (never all at
    once, so flooding new keys cannot wipe an attacker's own record in one go).
    """

    def __init__(
        self, clock: Clock, *, limit: int = 10, window: float = 60.0, max_keys: int = 10_000
    ) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until every key may try again, or ``None`` when none is blocked."""
        now = self.clock.monotonic()
        waits = [
            times[-self.limit] + self.window - now
            for key in keys
            if len(times := self._recent(key, now)) >= self.limit
        ]
        return max(waits) if waits else None

    def record(self, *keys: str) -> None:
        now = self.clock.monotonic()
        if len(self._failures) + len(keys) > self.max_keys:
            for key in list(self._failures):
                self._recent(key, now)
            excess = len(self._failures) + len(keys) - self.max_keys
            if excess > 0:
                # The oldest first (dicts keep insertion order), plus a tenth for headroom.
                for key in list(self._failures)[: excess + self.max_keys // 10]:
                    del self._failures[key]
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=max(self.limit, 1))).append(now)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


def _networks(text: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not text:
        return ()
    networks = []
    for item in text.replace(" ", ",").split(","):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"TOKENWARD_TRUSTED_PROXIES: {item[:64]!r} is not an IP address or CIDR range",
                details={"field": "trusted_proxies", "reason": "not an IP address or CIDR"},
            ) from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class AddressResolver:
    """The caller's address, for throttling: the socket peer, unless the peer is a trusted
    reverse proxy (``TOKENWARD_TRUSTED_PROXIES``), in which case ``X-Forwarded-For`` is read
    from the right and the first address that is not itself a trusted proxy is the caller's
    (the left part of the header is whatever the client sent, so it is never believed).

    :meth:`key` turns the address into a throttling key: IPv4 as is, IPv6 by its /64 (one
    host usually owns a whole /64, so counting single v6 addresses would be no brake)."""

    def __init__(self, trusted_proxies: str | None = None) -> None:
        self.trusted = _networks(trusted_proxies)

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str | None:
        if peer is None:
            return None
        peer_ip = _ip(peer)
        if peer_ip is None or not self.trusted or not self._is_trusted(peer_ip):
            return str(peer_ip) if peer_ip is not None else peer[:64]
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        nearest: ipaddress.IPv4Address | ipaddress.IPv6Address = peer_ip
        for hop in reversed(hops):
            address = _ip(hop)
            if address is None:
                break  # garbage left of a trusted hop: the trusted hop is the best we know
            nearest = address
            if not self._is_trusted(address):
                break
        return str(nearest)

    @staticmethod
    def key(address: str) -> str:
        parsed = _ip(address)
        if isinstance(parsed, ipaddress.IPv6Address):
            return str(ipaddress.IPv6Network((parsed, 64), strict=False))
        return str(parsed) if parsed is not None else address[:64]


class ApiAuth:
    """Issues and checks API tokens. One per app, on ``app.state.api_auth``."""

    def __init__(self, vault: Vault, settings: Settings, clock: Clock) -> None:
        self.vault = vault
        self.settings = settings
        self.clock = clock
        self.ttl = int(settings.api_token_ttl_seconds)
        self.keys = DerivedKeys(
            settings.encryption_keys, vault.keyring, info=HKDF_INFO, purpose="API-token signing"
        )
        self.clients = ApiClientDirectory(vault, clock)
        self._verified: dict[str, tuple[str, float, float, frozenset[str]]] = {}
        window = float(settings.auth_failure_window_seconds)
        # Per (client id, address) and per address; never per client id alone (see above).
        self.failures = FailedAttempts(
            clock, limit=settings.auth_failures_per_client_address, window=window
        )
        self.address_failures = FailedAttempts(
            clock, limit=settings.auth_failures_per_address, window=window
        )
        self.addresses = AddressResolver(settings.trusted_proxies)

    # -- issuing --------------------------------------------------------------------------------

    async def issue(
        self,
        client_id: str,
        client_secret: str,
        *,
        source: str | None = None,
        scope: str | None = None,
    ) -> IssuedToken:
        """A token for valid client credentials; :class:`ApiAuthError` (``INVALID_CLIENT``)
        otherwise, with the same answer whether the id or the secret was wrong.

        ``source`` is the caller's address (:class:`AddressResolver`); failures are throttled
        per (client id, source) and per source. ``scope`` (RFC 6749 §3.3) asks for a token with
        fewer scopes than the client has; asking for more is ``400 INVALID_SCOPE``."""
        pair_key = f"{client_id[:64]}|{AddressResolver.key(source) if source else '-'}"
        address_key = AddressResolver.key(source) if source else None
        wait = self.failures.retry_after(pair_key)
        if address_key is not None:
            address_wait = self.address_failures.retry_after(address_key)
            if address_wait is not None:
                wait = max(wait or 0.0, address_wait)
        if wait is not None:
            raise RateLimited(
                "too many failed authentication attempts from this address; wait before "
                "trying again",
                retry_after=wait,
                scope="authentication",
            )
        requested = parse_scopes(scope, field="scope") if scope is not None else None
        record = None
        if 0 < len(client_id) <= 64 and 0 < len(client_secret) <= 512:
            record = await self.vault.verify_api_client(client_id, client_secret)
        if record is None:
            self.failures.record(pair_key)
            if address_key is not None:
                self.address_failures.record(address_key)
            raise ApiAuthError(
                "client authentication failed: unknown client_id or wrong client_secret",
                code="INVALID_CLIENT",
            )
        self.failures.clear(pair_key)
        self.clients.add(record.client_id)
        granted = record.scopes
        if requested is not None:
            beyond = missing_scopes(granted, sorted(requested))
            if beyond:
                raise TokenwardError(
                    f"scope {beyond[0]!r} is not granted to this API client (it has: "
                    f"{format_scopes(granted) or 'none'})",
                    code="INVALID_SCOPE",
                    status=400,
                    details={
                        "fields": {"scope": f"{beyond[0]!r} is not granted to this client"},
                        "granted_scopes": format_scopes(granted).split(),
                    },
                )
            granted = requested
        return self.sign(record.client_id, granted)

    def sign(self, client_id: str, scopes: Iterable[str] = (ADMIN,)) -> IssuedToken:
        now = self.clock.time()
        iat = int(now)
        exp = iat + self.ttl
        kid, key = self.keys.active()
        granted = frozenset(scopes)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": client_id,
            "scope": format_scopes(granted),
            "iat": iat,
            "exp": exp,
            "jti": secrets.token_urlsafe(12),
        }
        token = jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})
        return IssuedToken(token, self.ttl, float(exp), granted)

    # -- checking -------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> ApiPrincipal:
        """Check an ``Authorization`` header value; :class:`ApiAuthError` (401) when it is
        missing (``UNAUTHENTICATED``) or not a valid, unexpired token of an existing API client
        (``INVALID_TOKEN``)."""
        if not authorization:
            raise ApiAuthError(
                "this endpoint needs an API token: send 'Authorization: Bearer <token>' "
                "(get one from POST /oauth/token)",
                code="UNAUTHENTICATED",
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiAuthError(
                "the Authorization header must be 'Bearer <token>'",
                details={"reason": "malformed"},
            )
        now = self.clock.time()
        cached = self._verified.get(token)
        if cached is None:
            cached = self._verify(token)
            if len(self._verified) >= _VERIFIED_CACHE_MAX:
                self._verified.clear()
            self._verified[token] = cached
        client_id, iat, exp, scopes = cached
        if exp <= now:
            self._verified.pop(token, None)
            raise ApiAuthError(
                "the API token has expired; get a new one from POST /oauth/token",
                details={"reason": "expired"},
                headers={
                    "WWW-Authenticate": 'Bearer realm="tokenward", error="invalid_token", '
                    'error_description="the token has expired"'
                },
            )
        if not await self.clients.exists(client_id, iat):
            self._verified.pop(token, None)
            raise ApiAuthError(
                "the API client this token was issued to no longer exists",
                details={"reason": "client_deleted"},
            )
        # The events this request causes (tool calls, proxied requests, changes) name the client.
        set_request_actor(f"api_client:{client_id}")
        return ApiPrincipal(client_id, exp, scopes)

    def _verify(self, token: str) -> tuple[str, float, float, frozenset[str]]:
        """``(client_id, iat, exp, scopes)`` of a token whose signature and claims check out."""
        invalid = ApiAuthError(
            "the API token is not valid (malformed, forged or issued by another server)",
            details={"reason": "invalid"},
            headers={"WWW-Authenticate": 'Bearer realm="tokenward", error="invalid_token"'},
        )
        if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(token):
            raise invalid
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid from None
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
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
                    "require": ["exp", "iat", "sub", "aud", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise invalid from None
        sub, iat, exp = claims.get("sub"), claims.get("iat"), claims.get("exp")
        if not isinstance(sub, str) or not isinstance(iat, int) or not isinstance(exp, int):
            raise invalid
        scope = claims.get("scope", ADMIN)  # tokens from before scopes: every client was admin
        if not isinstance(scope, str):
            raise invalid
        # Unknown names (a scope a newer replica knows) grant nothing here.
        scopes = frozenset(name for name in scope.split() if name in SCOPES)
        return sub, float(iat), float(exp), scopes

    def forget_client(self, client_id: str) -> None:
        """Refuse this client's tokens from now on (in this process)."""
        self.clients.discard(client_id)
        for token in [t for t, entry in self._verified.items() if entry[0] == client_id]:
            del self._verified[token]


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from an HTTP Basic header (RFC 6749 §2.3.1 encoding), or
    ``None`` when the header is not Basic. Raises ``ValueError`` for a malformed Basic value."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not base64 of UTF-8 text") from None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        raise ValueError("missing ':' between client_id and client_secret")
    return unquote_plus(client_id), unquote_plus(client_secret)


# -- the FastAPI dependency ------------------------------------------------------------------------

api_token_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl="/oauth/token", scopes=dict(SCOPES))
    ),
    scheme_name="ApiToken",
    description="An API token from `POST /oauth/token` (client credentials), sent as "
    "`Authorization: Bearer <token>`. Each operation lists the scope it needs; `admin` allows "
    "everything, and `<resource>:write` includes `<resource>:read`.",
    auto_error=False,
)

_PRINCIPAL_STATE: Final = "tokenward_api_principal"


async def require_api_client(request: Request) -> ApiPrincipal:
    """FastAPI dependency: the calling API client, or a 401 envelope.

    ``app.include_router(router, dependencies=[Depends(require_api_client)])`` protects a whole
    router (authentication only; each route adds the scope it needs with :func:`scoped`). The
    principal is remembered on the request, so the scope check does not authenticate twice.
    """
    principal = getattr(request.state, _PRINCIPAL_STATE, None)
    if isinstance(principal, ApiPrincipal):
        return principal
    auth: ApiAuth = request.app.state.api_auth
    principal = await auth.authenticate(request.headers.get("authorization"))
    setattr(request.state, _PRINCIPAL_STATE, principal)
    return principal


async def require_scopes(
    security_scopes: SecurityScopes,
    request: Request,
    _header: Annotated[str | None, Depends(api_token_scheme)],
) -> ApiPrincipal:
    """FastAPI dependency: the calling API client if its token has every scope the route
    declares (``Security(require_scopes, scopes=[...])``); 401 or 403 envelope otherwise."""
    principal = await require_api_client(request)
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or request.url.path
    principal.require(*security_scopes.scopes, action=f"{request.method} {template}")
    return principal


def scoped(*scopes: str) -> SecurityParam:
    """``dependencies=[scoped("accounts:read")]``: the route needs these scopes (all of them)."""
    unknown = [name for name in scopes if name not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {unknown}")
    result: SecurityParam = Security(require_scopes, scopes=list(scopes))
    return result
