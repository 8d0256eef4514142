"""In-memory state of the Discord sandbox.

One :class:`SandboxState` per sandbox app. Routes in ``oauth.py`` (authorize, token, revoke),
``api.py`` (REST) and ``control.py`` (``/_sandbox/*``) all work on it; nothing is shared with the
gateway. Every token value is random (``secrets``); everything else is deterministic.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tokenward.clock import Clock, SystemClock
from tokenward.sandbox.keys import SigningKey
from tokenward.sandbox.settings import SandboxSettings

# The first application is fixed so that a person can paste its id from the docs.
DEFAULT_CLIENT_ID = "1300000000000000001"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass
class Application:
    client_id: str
    client_secret: str
    bot_token: str
    name: str
    redirect_uris: list[str]
    bot_user_id: str
    description: str = "An application registered in the tokenward Discord sandbox."
    public_client: bool = False
    # The Ed25519 key that signs what the sandbox sends to the application's endpoints
    # (interactions and webhook events); its public half is the application's ``verify_key``.
    interaction_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    # Where the sandbox delivers interactions and webhook events (loopback URLs only).
    interactions_endpoint_url: str | None = None
    event_webhooks_url: str | None = None
    event_webhooks_status: int = (
        1  # 1 disabled, 2 enabled (Discord's ApplicationEventWebhooksStatus)
    )
    event_webhooks_types: list[str] | None = None
    # Every n-th interaction delivery is preceded by a probe with a bad signature (0 = never).
    bad_signature_every: int = 0
    deliveries: int = 0  # interaction deliveries so far (counts towards bad_signature_every)

    @property
    def verify_key(self) -> str:
        """The public key as Discord shows it: 64 hex digits of the raw Ed25519 key."""
        raw = self.interaction_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return raw.hex()

    def clear_endpoints(self) -> None:
        self.interactions_endpoint_url = None
        self.event_webhooks_url = None
        self.event_webhooks_status = 1
        self.event_webhooks_types = None
        self.bad_signature_every = 0
        self.deliveries = 0

    def public_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "bot_token": self.bot_token,
            "name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "verify_key": self.verify_key,
            "interactions_endpoint_url": self.interactions_endpoint_url,
            "event_webhooks_url": self.event_webhooks_url,
            "event_webhooks_status": self.event_webhooks_status,
            "event_webhooks_types": self.event_webhooks_types,
            "bad_signature_every": self.bad_signature_every,
        }


@dataclass
class AuthCode:
    code: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    redirect_uri: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    """One user↔application authorization; revoking any of its tokens kills all of them."""

    id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class AccessToken:
    value: str
    grant_id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    value: str
    grant_id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    issued_at: float
    used: bool = False
    revoked: bool = False


@dataclass
class FaultRule:
    """An injected failure. ``route`` is a path prefix such as ``/api/v10/users/@me`` or ``*``."""

    route: str
    status: int | None = None
    probability: float = 1.0
    latency_ms: float = 0.0
    drop_connection: bool = False
    remaining: int | None = None  # how many more times it fires; None = until deleted
    statuses: tuple[int, ...] = ()  # instead of status: each firing answers one, drawn at random
    method: str | None = None  # only requests with this method; None = any
    # Let the request be handled (its effects happen), then drop or replace the answer.
    after_handler: bool = False

    def matches(self, path: str, method: str | None = None) -> bool:
        if self.method is not None and method is not None and method != self.method:
            return False
        return (
            self.route == "*" or path == self.route or path.startswith(self.route.rstrip("/") + "/")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "status": self.status,
            "probability": self.probability,
            "latency_ms": self.latency_ms,
            "drop_connection": self.drop_connection,
            "remaining": self.remaining,
            "statuses": list(self.statuses),
            "method": self.method,
            "after_handler": self.after_handler,
        }


@dataclass
class Stats:
    authorization_code_grants: int = 0
    refresh_token_grants: int = 0
    revocations: int = 0
    requests_total: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_token: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    rate_limited_global: int = 0
    unauthorized: int = 0
    forbidden: int = 0
    token_errors: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "grants": {
                "authorization_code": self.authorization_code_grants,
                "refresh_token": self.refresh_token_grants,
            },
            "revocations": self.revocations,
            "requests": {
                "total": self.requests_total,
                "by_route": dict(self.by_route),
                "by_token": dict(self.by_token),
            },
            "rate_limited": self.rate_limited,
            "rate_limited_global": self.rate_limited_global,
            "unauthorized": self.unauthorized,
            "forbidden": self.forbidden,
            "token_errors": dict(self.token_errors),
        }


def token_label(value: str) -> str:
    """A short, non-secret label for a token, used as the key of ``stats.requests.by_token``."""
    import hashlib

    return "tok_" + hashlib.sha256(value.encode()).hexdigest()[:12]


class SandboxState:
    def __init__(self, settings: SandboxSettings | None = None, clock: Clock | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self.clock: Clock = clock or SystemClock()
        self._signing_key: SigningKey | None = None
        self.reset()

    @property
    def signing_key(self) -> SigningKey:
        """The ID-token signing key: made on first use, kept across :meth:`reset`."""
        if self._signing_key is None:
            self._signing_key = SigningKey.generate()
        return self._signing_key

    def reset(self) -> None:
        """Forget everything but the default application (whose credentials stay the same)."""
        default = getattr(self, "applications", {}).get(DEFAULT_CLIENT_ID)
        self.applications: dict[str, Application] = {}
        self._next_app = 2
        if default is None:
            default = Application(
                client_id=DEFAULT_CLIENT_ID,
                client_secret=new_token(24),
                bot_token=new_token(32),
                name="Sandbox App",
                # The second is the sandbox's own landing page (``/_sandbox/callback``), for a
                # person walking the flow by hand with ``tokenward sandbox``.
                redirect_uris=[
                    "http://127.0.0.1:8080/sso/v1/oauth/callback",
                    f"http://{_host(self.settings.host)}:{self.settings.port}/_sandbox/callback",
                ],
                bot_user_id="1300000000000000901",
            )
        default.clear_endpoints()  # the key pair stays, the endpoints are forgotten
        self.applications[default.client_id] = default
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        # (user_id, client_id) -> scopes the user approved (for prompt=none)
        self.approvals: dict[tuple[str, str], frozenset[str]] = {}
        self.faults: list[FaultRule] = []
        self.stats = Stats()
        self.extra: dict[str, Any] = {}  # room for route modules (e.g. rate-limit buckets)
        from tokenward.sandbox.world import World

        self.world = World(self)  # guilds, channels, messages…: rebuilt from the fixtures

    # -- applications -------------------------------------------------------------------------
    @property
    def default_application(self) -> Application:
        return self.applications[DEFAULT_CLIENT_ID]

    def register_application(
        self, redirect_uris: list[str], name: str | None = None
    ) -> Application:
        number = self._next_app
        self._next_app += 1
        client_id = str(int(DEFAULT_CLIENT_ID) + number - 1)
        app = Application(
            client_id=client_id,
            client_secret=new_token(24),
            bot_token=new_token(32),
            name=name or f"Sandbox App {number}",
            redirect_uris=list(redirect_uris),
            bot_user_id=str(int("1300000000000000900") + number),
        )
        self.applications[client_id] = app
        return app

    def application_by_bot_token(self, token: str) -> Application | None:
        for app in self.applications.values():
            if secrets.compare_digest(app.bot_token, token):
                return app
        return None

    # -- tokens -------------------------------------------------------------------------------
    def valid_access_token(self, value: str) -> AccessToken | None:
        """The access token if it exists, is not revoked and has not expired."""
        token = self.access_tokens.get(value)
        if token is None or token.revoked or token.expires_at <= self.clock.time():
            return None
        grant = self.grants.get(token.grant_id)
        if grant is None or grant.revoked:
            return None
        return token

    def expire_access_tokens(self, user_id: str | None = None, client_id: str | None = None) -> int:
        """Make matching access tokens expire now; returns how many were live."""
        now = self.clock.time()
        count = 0
        for token in self.access_tokens.values():
            if user_id is not None and token.user_id != user_id:
                continue
            if client_id is not None and token.client_id != client_id:
                continue
            if token.expires_at > now:
                count += 1
            token.expires_at = min(token.expires_at, now)
        return count

    def all_token_values(self) -> dict[str, list[str]]:
        """Every secret the sandbox handed out, for leak tests."""
        return {
            "access_tokens": list(self.access_tokens),
            "refresh_tokens": list(self.refresh_tokens),
            "codes": list(self.codes),
            "client_secrets": [a.client_secret for a in self.applications.values()],
            "bot_tokens": [a.bot_token for a in self.applications.values()],
        }
