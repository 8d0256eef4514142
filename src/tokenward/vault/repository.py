"""The vault: every read and write of connections, accounts, auth requests, API clients, events.

:class:`Vault` composes an async engine, a :class:`~tokenward.vault.crypto.Keyring` and a
:class:`~tokenward.clock.Clock`. It hands out frozen records whose secrets are decrypted into
:class:`pydantic.SecretStr` (their ``repr`` is redacted); ciphertext never leaves this module.

Concurrency rules, identical on SQLite and PostgreSQL because each one is a single conditional
statement whose outcome is read from its row count:

- ``consume_auth_request``: ``UPDATE ... SET consumed_at WHERE state_hash = ? AND connection_id = ?
  AND consumed_at IS NULL AND expires_at > now`` — one caller gets the row, a replay gets nothing.
- ``acquire_refresh_lease``: ``UPDATE ... SET lease WHERE id = ? AND (no lease OR lease expired OR
  already mine)``; ``release_refresh_lease`` and ``store_refreshed_tokens`` only act while the
  caller still owns the lease (compare-and-delete), so a worker whose lease ran out and was taken
  over can never overwrite the newer tokens. ``mark_expired`` can be made conditional on the
  lease owner and on the version read, for the same reason.
- a refresh records its intent (``refresh_started_at``) before the refresh token is sent and
  clears it in the transaction that stores the answer (:class:`RefreshWriter`).
- ``get_or_create_account`` relies on the ``UNIQUE(connection_id, identifier)`` constraint and
  re-reads after losing the insert race.

Every state change writes an event in the same transaction; events never carry a secret.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, NamedTuple

import orjson
from pydantic import SecretStr
from sqlalchemy import (
    Row,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from tokenward.clock import Clock, SystemClock
from tokenward.config import Settings
from tokenward.errors import (
    AccountNotFound,
    ConflictError,
    ConnectionNotFound,
    NotFoundError,
    ValidationError,
)
from tokenward.events.discord import parse_public_key
from tokenward.scopes import ADMIN as ADMIN_SCOPE
from tokenward.scopes import format_scopes, parse_scopes
from tokenward.vault.actor import current_actor
from tokenward.vault.crypto import Keyring, aad, load_keyring
from tokenward.vault.db import create_engine, write_engine
from tokenward.vault.models import AccountStatus, Base, new_id
from tokenward.vault.webhooks import EventLinks, account_data, emit, emit_status

CONNECTIONS: Final[Table] = Base.metadata.tables["connections"]
ACCOUNTS: Final[Table] = Base.metadata.tables["connected_accounts"]
AUTH_REQUESTS: Final[Table] = Base.metadata.tables["auth_requests"]
API_CLIENTS: Final[Table] = Base.metadata.tables["api_clients"]
EVENTS: Final[Table] = Base.metadata.tables["events"]

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PROVIDER_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
MAX_PAGE_SIZE = 200
# Accounts whose tokens a revocation at Discord would end (the others hold none that work).
GRANT_HOLDING_STATUSES: Final = (
    AccountStatus.ACTIVE.value,
    AccountStatus.PENDING_VERIFICATION.value,
)
# Keys an event's data may never carry, whatever the caller meant.
FORBIDDEN_EVENT_KEYS: Final = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "bot_token",
        "code_verifier",
        "verifier",
        "code",
        "state",
        "secret",
        "token",
        "password",
        "authorization",
    }
)

# scrypt parameters for API-client secrets (RFC 7914; n=2**14, r=8 is the interactive setting).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks an ``update_connection`` argument that should stay as it is (``None`` clears)."""


# ---------------------------------------------------------------------------------------------
# Records


def _split_scopes(text: str | None) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    id: str
    name: str
    provider: str
    client_id: str | None
    """The OAuth client's id; None for a provider without OAuth (``discordbot``)."""
    client_secret: SecretStr | None
    scopes: tuple[str, ...]
    bot_token: SecretStr | None
    created_at: float
    updated_at: float
    require_user_verification: bool = False
    allowed_tools: tuple[str, ...] | None = None
    """Tool policy patterns (see :mod:`tokenward.tools.policy`); None: every tool."""
    public_key: str | None = None
    """The Discord application's Ed25519 public key (hex) for requests from Discord; public."""

    def public(self) -> dict[str, Any]:
        """A JSON-safe view without secrets."""
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "client_id": self.client_id,
            "scopes": list(self.scopes),
            "has_bot_token": self.bot_token is not None,
            "require_user_verification": self.require_user_verification,
            "allowed_tools": None if self.allowed_tools is None else list(self.allowed_tools),
            "public_key": self.public_key,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: str
    connection_id: str
    identifier: str
    status: AccountStatus
    status_reason: str | None
    granted_scopes: tuple[str, ...]
    provider_user_id: str | None
    access_token: SecretStr | None
    refresh_token: SecretStr | None
    expires_at: float | None
    version: int
    refresh_lease_owner: str | None
    refresh_lease_until: float | None
    last_used_at: float | None
    created_at: float
    updated_at: float
    refresh_started_at: float | None = None

    @property
    def can_call(self) -> bool:
        """ACTIVE and holding an access token: calls to the provider may use it."""
        return self.status == AccountStatus.ACTIVE and self.access_token is not None

    def public(self) -> dict[str, Any]:
        """A JSON-safe view without secrets."""
        return {
            "id": self.id,
            "connection_id": self.connection_id,
            "identifier": self.identifier,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "granted_scopes": list(self.granted_scopes),
            "provider_user_id": self.provider_user_id,
            "has_tokens": self.access_token is not None,
            "expires_at": self.expires_at,
            "version": self.version,
            "last_used_at": self.last_used_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class AccountPage:
    items: tuple[AccountRecord, ...]
    next_page_token: str | None


@dataclass(frozen=True, slots=True)
class AuthRequestRecord:
    id: str
    connection_id: str
    account_id: str
    identifier: str
    code_verifier: SecretStr
    user_verify_url: str | None
    app_state: str | None
    redirect_uri: str
    expires_at: float
    consumed_at: float | None
    completed_at: float | None
    created_at: float
    browser_hash: str | None = None
    allow_user_change: bool = False


@dataclass(frozen=True, slots=True)
class GrantSibling:
    """Another account holding the same Discord grant (same Discord user and application)."""

    id: str
    identifier: str
    connection_id: str
    connection_name: str
    status: AccountStatus

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "identifier": self.identifier,
            "connection_name": self.connection_name,
            "status": self.status.value,
        }


@dataclass(frozen=True, slots=True)
class ApiClientRecord:
    client_id: str
    name: str
    created_at: float
    scopes: frozenset[str] = frozenset({ADMIN_SCOPE})
    """What the client may do (see :mod:`tokenward.scopes`)."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    at: float
    kind: str
    connection_id: str | None
    account_id: str | None
    data: dict[str, Any]


class _AccountView(NamedTuple):
    """The fields of an account row that status events read."""

    id: str
    connection_id: str
    identifier: str
    status: str


# ---------------------------------------------------------------------------------------------
# Helpers


def state_hash(state: str) -> str:
    """How an OAuth ``state`` is stored: its SHA-256, hex."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def _hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        dklen=_SCRYPT_LEN,
        maxmem=64 * 1024 * 1024,
    )


def hash_api_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _hash_secret(secret, salt)
    b64 = base64.b64encode
    return (
        f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
        f"{b64(salt).decode('ascii')}${b64(digest).decode('ascii')}"
    )


def verify_api_secret(secret: str, encoded: str) -> bool:
    """Constant-time check of ``secret`` against :func:`hash_api_secret`'s output."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        actual = hashlib.scrypt(
            secret.encode("utf-8"),
            salt=salt,
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


_DUMMY_HASH: Final = (
    f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
    + base64.b64encode(b"\0" * 16).decode()
    + "$"
    + base64.b64encode(b"\0" * 32).decode()
)
DUMMY_SECRET_HASH: Final = _DUMMY_HASH
"""A well-formed hash no secret matches: checking a secret against it costs what a real check
costs (for unknown names, so that timing does not tell whether a name exists)."""


def _validate_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError(
            "connection name must be 1-64 characters of A-Z a-z 0-9 _ -",
            fields={"name": "must be 1-64 characters of A-Z a-z 0-9 _ -"},
        )


def _api_client(row: Row[Any]) -> ApiClientRecord:
    # A stored value that no longer parses (hand-edited, or a scope since renamed) grants
    # nothing rather than failing every request of that client.
    try:
        scopes = parse_scopes(row.scopes or ADMIN_SCOPE)
    except ValidationError:
        scopes = frozenset()
    return ApiClientRecord(row.client_id, row.name, row.created_at, scopes)


def _validate_text(field: str, value: str, *, max_len: int = 255) -> None:
    if not value or not value.strip():
        raise ValidationError(f"{field} must not be empty", fields={field: "must not be empty"})
    if len(value) > max_len:
        reason = f"must be at most {max_len} characters"
        raise ValidationError(f"{field} {reason}", fields={field: reason})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        reason = "must not contain control characters"
        raise ValidationError(f"{field} {reason}", fields={field: reason})


def _validate_scopes(field: str, scopes: Sequence[str]) -> str:
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    cleaned: list[str] = []
    for scope in scopes:
        if not scope or any(ch.isspace() for ch in scope) or any(ord(c) < 33 for c in scope):
            reason = f"scope {scope!r} is empty or contains whitespace"
            raise ValidationError(f"{field}: {reason}", fields={field: reason})
        if scope not in cleaned:
            cleaned.append(scope)
    return " ".join(cleaned)


def _validate_url(field: str, url: str) -> None:
    if not re.match(r"^https?://[^\s/?#]+", url) or len(url) > 2048:
        reason = "must be an absolute http(s) URL"
        raise ValidationError(f"{field} {reason}", fields={field: reason})


def _stored_patterns(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):  # a driver that hands JSON back as text
        value = json.loads(value)
    return tuple(str(item) for item in value)


# Event data keys already found clean, remembered (up to a bound) so that the hot path's events,
# which repeat a handful of keys, are checked with one set lookup per key.
_CLEAN_EVENT_KEYS: set[str] = set()
_CLEAN_EVENT_KEYS_MAX: Final = 1024


def _check_event_keys(data: Mapping[str, Any]) -> None:
    if _CLEAN_EVENT_KEYS.issuperset(data):
        return
    bad = sorted(k for k in data if k.lower() in FORBIDDEN_EVENT_KEYS)
    if bad:
        raise ValueError(f"event data may not carry secret-bearing keys: {bad}")
    if len(_CLEAN_EVENT_KEYS) < _CLEAN_EVENT_KEYS_MAX:
        _CLEAN_EVENT_KEYS.update(data)


def _check_event_data(data: Mapping[str, Any]) -> dict[str, Any]:
    _check_event_keys(data)
    checked = dict(data)
    actor = current_actor()
    if actor is not None:
        checked.setdefault("actor", actor)
    return checked


# Subclasses of builtins (enums), dataclasses and dates go to json.dumps, as they did.
_ORJSON_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _event_json(data: Mapping[str, Any], actor: str | None) -> str:
    """An event's ``data`` (with ``actor`` unless it names one) as the JSON text the ``data``
    column stores: orjson's, which reads back as the same value as the column's own
    ``json.dumps`` at a tenth of the cost. Whatever orjson would spell differently goes through
    ``json.dumps`` as before: what it refuses (big integers, non-string keys, subclasses),
    ``null`` (orjson also writes NaN and infinities so) and non-ASCII text (stored escaped)."""
    if actor is not None and "actor" not in data:
        data = {**data, "actor": actor}
    try:
        raw = orjson.dumps(data, option=_ORJSON_OPTIONS)
    except TypeError:
        return json.dumps(dict(data))
    if b"null" in raw or not raw.isascii():
        return json.dumps(dict(data))
    return raw.decode("ascii")


_EVENT_COLUMNS: Final = ("at", "kind", "connection_id", "account_id", "data")


def _insert_events_sql(dialect: Dialect) -> str:
    """The statement SQLAlchemy sends for ``insert(EVENTS)`` of many rows, with positional
    parameters in the order of ``_EVENT_COLUMNS``: executed with plain tuples, it skips the
    per-row bind processing (for ``data``, a ``json.dumps``)."""
    compiled = insert(EVENTS).compile(
        dialect=dialect, column_keys=list(_EVENT_COLUMNS), for_executemany=True
    )
    if not compiled.positional or tuple(compiled.positiontup or ()) != _EVENT_COLUMNS:
        raise RuntimeError(f"unexpected events INSERT for {dialect.name}: {compiled.string}")
    return compiled.string


def _encode_page_token(last_id: str) -> str:
    raw = json.dumps({"after": last_id}).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_page_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        after = json.loads(raw)["after"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValidationError(
            "page_token is not a token this server issued",
            fields={"page_token": "malformed"},
        ) from None
    if not isinstance(after, str):
        raise ValidationError(
            "page_token is not a token this server issued", fields={"page_token": "malformed"}
        )
    return after


# ---------------------------------------------------------------------------------------------
# The vault


class Vault:
    """The encrypted store. One per process; safe to share between tasks."""

    def __init__(self, engine: AsyncEngine, keyring: Keyring, clock: Clock) -> None:
        self.engine = engine
        self.keyring = keyring
        self.clock = clock
        self._writer = write_engine(engine)
        self._refresh_engine: AsyncEngine | None = None
        self._insert_events = _insert_events_sql(engine.dialect)
        # Set by the composition root: how status events build their authorization links, and
        # what to wake when an event is written (the delivery worker).
        self.event_links: EventLinks | None = None
        self.on_outbox: Callable[[], None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Vault:
        """Engine and keyring as the settings describe (the key file is created if needed)."""
        keyring = load_keyring(settings.encryption_keys, settings.data_dir)
        return cls(create_engine(settings), keyring, clock or SystemClock())

    async def close(self) -> None:
        if self._refresh_engine is not None and self._refresh_engine is not self._writer:
            await self._refresh_engine.dispose()
        self._refresh_engine = None
        await self.engine.dispose()

    # -- plumbing ------------------------------------------------------------------------------

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction (SQLite: the write lock taken at BEGIN)."""
        return self._writer.begin()

    def seal(self, table: Table, column: str, row_id: str, value: str) -> str:
        """Encrypt ``value`` for ``table.column`` of row ``row_id``."""
        return self._seal(table, column, row_id, value)

    def open(self, table: Table, column: str, row_id: str, value: str) -> SecretStr:
        """Decrypt what :meth:`seal` wrote there."""
        return self._open(table, column, row_id, value)

    async def audit(
        self, conn: AsyncConnection, kind: str, *, data: Mapping[str, Any] | None = None
    ) -> None:
        """An audit event in ``conn``'s transaction."""
        await self._event(conn, kind, data=data)

    def note_outbox(self) -> None:
        """An event was written: wake the delivery worker (it also polls)."""
        if self.on_outbox is not None:
            self.on_outbox()

    def _now(self) -> float:
        return self.clock.time()

    def _seal(self, table: Table, column: str, row_id: str, value: str) -> str:
        return self.keyring.encrypt(value, aad(table.name, column, row_id))

    def _open(self, table: Table, column: str, row_id: str, value: str) -> SecretStr:
        return SecretStr(self.keyring.decrypt(value, aad(table.name, column, row_id)))

    def _open_opt(
        self, table: Table, column: str, row_id: str, value: str | None
    ) -> SecretStr | None:
        return None if value is None else self._open(table, column, row_id, value)

    def _connection(self, row: Row[Any]) -> ConnectionRecord:
        m = row._mapping
        rid = m["id"]
        return ConnectionRecord(
            id=rid,
            name=m["name"],
            provider=m["provider"],
            client_id=m["client_id"],
            client_secret=self._open_opt(
                CONNECTIONS, "client_secret_enc", rid, m["client_secret_enc"]
            ),
            scopes=_split_scopes(m["scopes"]),
            bot_token=self._open_opt(CONNECTIONS, "bot_token_enc", rid, m["bot_token_enc"]),
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            require_user_verification=bool(m["require_user_verification"]),
            allowed_tools=_stored_patterns(m["allowed_tools"]),
            public_key=m["public_key"],
        )

    def _account(self, row: Row[Any], *, tokens: bool = True) -> AccountRecord:
        """The account of ``row``; ``tokens=False`` leaves both tokens ``None`` instead of
        decrypting them (for listings that never return them)."""
        m = row._mapping
        rid = m["id"]
        return AccountRecord(
            id=rid,
            connection_id=m["connection_id"],
            identifier=m["identifier"],
            status=AccountStatus(m["status"]),
            status_reason=m["status_reason"],
            granted_scopes=_split_scopes(m["granted_scopes"]),
            provider_user_id=m["provider_user_id"],
            access_token=(
                self._open_opt(ACCOUNTS, "access_token_enc", rid, m["access_token_enc"])
                if tokens
                else None
            ),
            refresh_token=(
                self._open_opt(ACCOUNTS, "refresh_token_enc", rid, m["refresh_token_enc"])
                if tokens
                else None
            ),
            expires_at=m["expires_at"],
            version=m["version"],
            refresh_lease_owner=m["refresh_lease_owner"],
            refresh_lease_until=m["refresh_lease_until"],
            last_used_at=m["last_used_at"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            refresh_started_at=m["refresh_started_at"],
        )

    def _auth_request(self, row: Row[Any]) -> AuthRequestRecord:
        m = row._mapping
        rid = m["id"]
        return AuthRequestRecord(
            id=rid,
            connection_id=m["connection_id"],
            account_id=m["account_id"],
            identifier=m["identifier"],
            code_verifier=self._open(
                AUTH_REQUESTS, "code_verifier_enc", rid, m["code_verifier_enc"]
            ),
            user_verify_url=m["user_verify_url"],
            app_state=m["app_state"],
            redirect_uri=m["redirect_uri"],
            expires_at=m["expires_at"],
            consumed_at=m["consumed_at"],
            completed_at=m["completed_at"],
            created_at=m["created_at"],
            browser_hash=m["browser_hash"],
            allow_user_change=bool(m["allow_user_change"]),
        )

    async def _event(
        self,
        conn: AsyncConnection,
        kind: str,
        *,
        connection_id: str | None = None,
        account_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        await conn.execute(
            insert(EVENTS).values(
                at=self._now(),
                kind=kind,
                connection_id=connection_id,
                account_id=account_id,
                data=_check_event_data(data or {}),
            )
        )

    async def _account_row(self, conn: AsyncConnection, account_id: str) -> Row[Any] | None:
        result = await conn.execute(select(ACCOUNTS).where(ACCOUNTS.c.id == account_id))
        return result.first()

    async def _require_account(self, conn: AsyncConnection, account_id: str) -> Row[Any]:
        row = await self._account_row(conn, account_id)
        if row is None:
            raise AccountNotFound(
                f"connected account {account_id!r} does not exist", details={"id": account_id}
            )
        return row

    # -- connections ---------------------------------------------------------------------------

    async def create_connection(
        self,
        *,
        name: str,
        provider: str,
        client_id: str | None,
        client_secret: str | None,
        scopes: Sequence[str],
        bot_token: str | None = None,
        require_user_verification: bool = False,
        allowed_tools: Sequence[str] | None = None,
        public_key: str | None = None,
    ) -> ConnectionRecord:
        """A new connection. ``client_id`` and ``client_secret`` go together: both for a provider
        with OAuth, neither for one without (the caller knows which the provider is).
        ``public_key``: the Discord application's public key (64 hex characters), for requests
        Discord sends to the connection."""
        _validate_name(name)
        if not PROVIDER_RE.match(provider or ""):
            reason = "must be a provider name such as 'discord'"
            raise ValidationError(f"provider {reason}", fields={"provider": reason})
        if (client_id is None) != (client_secret is None):
            missing = "client_secret" if client_secret is None else "client_id"
            reason = "must be given together with " + (
                "client_id" if missing == "client_secret" else "client_secret"
            )
            raise ValidationError(f"{missing} is missing", fields={missing: reason})
        if client_id is not None and client_secret is not None:
            _validate_text("client_id", client_id)
            _validate_text("client_secret", client_secret, max_len=4096)
        scope_text = _validate_scopes("scopes", scopes)
        if bot_token is not None:
            _validate_text("bot_token", bot_token, max_len=4096)
        key = None if public_key is None else parse_public_key(public_key)
        now = self._now()
        cid = new_id(now)
        values = {
            "id": cid,
            "name": name,
            "provider": provider,
            "client_id": client_id,
            "client_secret_enc": None
            if client_secret is None
            else self._seal(CONNECTIONS, "client_secret_enc", cid, client_secret),
            "scopes": scope_text,
            "bot_token_enc": None
            if bot_token is None
            else self._seal(CONNECTIONS, "bot_token_enc", cid, bot_token),
            "require_user_verification": bool(require_user_verification),
            "allowed_tools": None if allowed_tools is None else list(allowed_tools),
            "public_key": key,
            "created_at": now,
            "updated_at": now,
        }
        conflict = ConflictError(
            f"a connection named {name!r} already exists",
            details={"field": "name", "name": name},
        )
        try:
            async with self._writer.begin() as conn:
                taken = await conn.execute(
                    select(CONNECTIONS.c.id).where(CONNECTIONS.c.name == name)
                )
                if taken.first() is not None:
                    raise conflict
                await conn.execute(insert(CONNECTIONS).values(**values))
                await self._event(
                    conn,
                    "connection.created",
                    connection_id=cid,
                    data={
                        "name": name,
                        "provider": provider,
                        "scopes": scope_text.split(),
                        "require_user_verification": bool(require_user_verification),
                        "allowed_tools": values["allowed_tools"],
                        "public_key": key,
                    },
                )
        except IntegrityError:
            raise conflict from None
        return await self.get_connection(cid)

    async def get_connection(self, connection_id: str) -> ConnectionRecord:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(CONNECTIONS).where(CONNECTIONS.c.id == connection_id))
            ).first()
        if row is None:
            raise ConnectionNotFound(
                f"connection {connection_id!r} does not exist", details={"id": connection_id}
            )
        return self._connection(row)

    async def get_connection_by_name(self, name: str) -> ConnectionRecord:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(CONNECTIONS).where(CONNECTIONS.c.name == name))
            ).first()
        if row is None:
            raise ConnectionNotFound(f"connection {name!r} does not exist", details={"name": name})
        return self._connection(row)

    async def list_connections(self) -> list[ConnectionRecord]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(CONNECTIONS).order_by(CONNECTIONS.c.name))).all()
        return [self._connection(row) for row in rows]

    async def update_connection(
        self,
        connection_id: str,
        *,
        client_id: str | _Unset = UNSET,
        client_secret: str | _Unset = UNSET,
        scopes: Sequence[str] | _Unset = UNSET,
        bot_token: str | _Unset | None = UNSET,
        require_user_verification: bool | _Unset = UNSET,
        allowed_tools: Sequence[str] | _Unset | None = UNSET,
        public_key: str | _Unset | None = UNSET,
    ) -> ConnectionRecord:
        """Change the given fields; ``None`` clears ``bot_token`` / ``allowed_tools`` (every
        tool allowed again) / ``public_key`` (requests from Discord are refused again)."""
        values: dict[str, Any] = {}
        if not isinstance(client_id, _Unset):
            _validate_text("client_id", client_id)
            values["client_id"] = client_id
        if not isinstance(client_secret, _Unset):
            _validate_text("client_secret", client_secret, max_len=4096)
            values["client_secret_enc"] = self._seal(
                CONNECTIONS, "client_secret_enc", connection_id, client_secret
            )
        if not isinstance(scopes, _Unset):
            values["scopes"] = _validate_scopes("scopes", scopes)
        if not isinstance(bot_token, _Unset):
            if bot_token is not None:
                _validate_text("bot_token", bot_token, max_len=4096)
            values["bot_token_enc"] = (
                None
                if bot_token is None
                else self._seal(CONNECTIONS, "bot_token_enc", connection_id, bot_token)
            )
        if not isinstance(require_user_verification, _Unset):
            values["require_user_verification"] = bool(require_user_verification)
        if not isinstance(allowed_tools, _Unset):
            values["allowed_tools"] = None if allowed_tools is None else list(allowed_tools)
        if not isinstance(public_key, _Unset):
            values["public_key"] = None if public_key is None else parse_public_key(public_key)
        changed = sorted(k.removesuffix("_enc") for k in values)
        if not changed:
            return await self.get_connection(connection_id)
        values["updated_at"] = self._now()
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(CONNECTIONS).where(CONNECTIONS.c.id == connection_id).values(**values)
            )
            if result.rowcount != 1:
                raise ConnectionNotFound(
                    f"connection {connection_id!r} does not exist", details={"id": connection_id}
                )
            await self._event(
                conn, "connection.updated", connection_id=connection_id, data={"fields": changed}
            )
        return await self.get_connection(connection_id)

    async def delete_connection(
        self, connection_id: str, *, summary: Mapping[str, Any] | None = None
    ) -> None:
        """Delete a connection and (by cascade) its accounts and auth requests. ``summary`` (no
        secrets) joins the event, e.g. how many grants were revoked at Discord first."""
        async with self._writer.begin() as conn:
            row = (
                await conn.execute(
                    select(CONNECTIONS.c.name).where(CONNECTIONS.c.id == connection_id)
                )
            ).first()
            if row is None:
                raise ConnectionNotFound(
                    f"connection {connection_id!r} does not exist", details={"id": connection_id}
                )
            await conn.execute(delete(CONNECTIONS).where(CONNECTIONS.c.id == connection_id))
            await self._event(
                conn,
                "connection.deleted",
                connection_id=connection_id,
                data={"name": row.name, **(summary or {})},
            )

    # -- connected accounts --------------------------------------------------------------------

    async def get_or_create_account(self, connection_id: str, identifier: str) -> AccountRecord:
        """The account for (connection, identifier), created in ``PENDING_AUTH`` if new."""
        _validate_text("identifier", identifier)
        for _attempt in range(3):
            try:
                async with self._writer.begin() as conn:
                    existing = (
                        await conn.execute(
                            select(ACCOUNTS).where(
                                ACCOUNTS.c.connection_id == connection_id,
                                ACCOUNTS.c.identifier == identifier,
                            )
                        )
                    ).first()
                    if existing is not None:
                        return self._account(existing)
                    aid = await self._insert_account(conn, connection_id, identifier, self._now())
                    row = await self._require_account(conn, aid)
                    await emit(
                        self, conn, "connected_account.created", await account_data(conn, row)
                    )
                    return self._account(row)
            except IntegrityError:
                # Another writer inserted the same (connection, identifier) first: read theirs.
                continue
        found = await self.find_account(connection_id, identifier)
        if found is None:
            raise ConflictError(
                "could not create the connected account (concurrent writes); try again",
                details={"connection_id": connection_id, "identifier": identifier},
            )
        return found

    async def get_account(self, account_id: str) -> AccountRecord:
        async with self.engine.connect() as conn:
            row = await self._account_row(conn, account_id)
        if row is None:
            raise AccountNotFound(
                f"connected account {account_id!r} does not exist", details={"id": account_id}
            )
        return self._account(row)

    async def find_account(self, connection_id: str, identifier: str) -> AccountRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(ACCOUNTS).where(
                        ACCOUNTS.c.connection_id == connection_id,
                        ACCOUNTS.c.identifier == identifier,
                    )
                )
            ).first()
        return None if row is None else self._account(row)

    async def list_accounts(
        self,
        *,
        connection_id: str | None = None,
        identifier: str | None = None,
        status: AccountStatus | str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
        with_tokens: bool = False,
    ) -> AccountPage:
        """Accounts in creation (id) order, ``page_size`` at a time (keyset pagination).
        Their tokens are decrypted only ``with_tokens`` (otherwise both are ``None``)."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            reason = f"must be between 1 and {MAX_PAGE_SIZE}"
            raise ValidationError(f"page_size {reason}", fields={"page_size": reason})
        stmt = select(ACCOUNTS)
        if connection_id is not None:
            stmt = stmt.where(ACCOUNTS.c.connection_id == connection_id)
        if identifier is not None:
            stmt = stmt.where(ACCOUNTS.c.identifier == identifier)
        if status is not None:
            try:
                status_value = AccountStatus(status).value
            except ValueError:
                reason = f"must be one of {', '.join(s.value for s in AccountStatus)}"
                raise ValidationError(f"status {reason}", fields={"status": reason}) from None
            stmt = stmt.where(ACCOUNTS.c.status == status_value)
        if page_token is not None:
            stmt = stmt.where(ACCOUNTS.c.id > _decode_page_token(page_token))
        stmt = stmt.order_by(ACCOUNTS.c.id).limit(page_size + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        items = tuple(self._account(row, tokens=with_tokens) for row in rows[:page_size])
        more = len(rows) > page_size
        return AccountPage(items, _encode_page_token(items[-1].id) if more else None)

    async def count_accounts(
        self, *, connection_ids: Sequence[str] | None = None, identifier: str | None = None
    ) -> int:
        """How many accounts :meth:`list_accounts` would page through: of these connections
        (``None``: every connection), with this identifier (``None``: any)."""
        stmt = select(func.count()).select_from(ACCOUNTS)
        if connection_ids is not None:
            stmt = stmt.where(ACCOUNTS.c.connection_id.in_(list(connection_ids)))
        if identifier is not None:
            stmt = stmt.where(ACCOUNTS.c.identifier == identifier)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def set_account_status(
        self, account_id: str, status: AccountStatus | str, reason: str | None = None
    ) -> AccountRecord:
        new_status = AccountStatus(status)
        async with self._writer.begin() as conn:
            row = await self._require_account(conn, account_id)
            await conn.execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.id == account_id)
                .values(status=new_status.value, status_reason=reason, updated_at=self._now())
            )
            await self._event(
                conn,
                "account.status_changed",
                connection_id=row.connection_id,
                account_id=account_id,
                data={"from": row.status, "to": new_status.value, "reason": reason},
            )
            await emit_status(self, conn, row, new_status.value, reason)
            return self._account(await self._require_account(conn, account_id))

    async def disconnect_provider_user(
        self,
        connection_id: str,
        provider_user_id: str,
        reason: str,
        *,
        raised_at: float | None = None,
    ) -> list[AccountRecord]:
        """The user removed the application in Discord: every account of that Discord user
        (``provider_user_id``) through this connection's Discord application (this connection,
        and any other with the same provider and client id: the grant is the application's)
        becomes ``DISCONNECTED`` with ``reason``, its dead tokens and any refresh in flight
        dropped, with an audit event and a ``connected_account.status_updated`` event each, all
        in one transaction. Accounts already ``DISCONNECTED`` are left alone (a repeated event
        changes nothing), and so is an account linked again after ``raised_at`` (when Discord
        raised the event: a late delivery must not end the grant the user gave since). Returns
        the accounts changed."""
        _validate_text("provider_user_id", provider_user_id, max_len=64)
        async with self._writer.begin() as conn:
            connection = (
                await conn.execute(
                    select(CONNECTIONS.c.provider, CONNECTIONS.c.client_id).where(
                        CONNECTIONS.c.id == connection_id
                    )
                )
            ).first()
            if connection is None:
                raise ConnectionNotFound(
                    f"connection {connection_id!r} does not exist", details={"id": connection_id}
                )
            same_app = CONNECTIONS.c.id == connection_id
            if connection.client_id is not None:
                same_app = or_(
                    same_app,
                    and_(
                        CONNECTIONS.c.provider == connection.provider,
                        CONNECTIONS.c.client_id == connection.client_id,
                    ),
                )
            rows = (
                await conn.execute(
                    select(ACCOUNTS)
                    .join(CONNECTIONS, CONNECTIONS.c.id == ACCOUNTS.c.connection_id)
                    .where(
                        same_app,
                        ACCOUNTS.c.provider_user_id == provider_user_id,
                        ACCOUNTS.c.status != AccountStatus.DISCONNECTED.value,
                        true()
                        if raised_at is None
                        else ~exists().where(
                            AUTH_REQUESTS.c.account_id == ACCOUNTS.c.id,
                            AUTH_REQUESTS.c.completed_at > raised_at,
                        ),
                    )
                    .order_by(ACCOUNTS.c.id)
                    .with_for_update(of=ACCOUNTS)
                )
            ).all()
            changed: list[AccountRecord] = []
            for row in rows:
                await self._disconnect(
                    conn,
                    _AccountView(row.id, row.connection_id, row.identifier, row.status),
                    reason,
                )
                changed.append(self._account(await self._require_account(conn, row.id)))
            return changed

    async def _insert_account(
        self, conn: AsyncConnection, connection_id: str, identifier: str, now: float
    ) -> str:
        """Within ``conn``'s transaction: a new ``PENDING_AUTH`` account row with its history
        entry; its id. ``ConnectionNotFound`` for an unknown connection; a concurrent insert of
        the same (connection, identifier) surfaces as ``IntegrityError``."""
        known = await conn.execute(
            select(CONNECTIONS.c.id).where(CONNECTIONS.c.id == connection_id)
        )
        if known.first() is None:
            raise ConnectionNotFound(
                f"connection {connection_id!r} does not exist", details={"id": connection_id}
            )
        aid = new_id(now)
        await conn.execute(
            insert(ACCOUNTS).values(
                id=aid,
                connection_id=connection_id,
                identifier=identifier,
                status=AccountStatus.PENDING_AUTH.value,
                version=0,
                created_at=now,
                updated_at=now,
            )
        )
        await self._event(
            conn,
            "account.created",
            connection_id=connection_id,
            account_id=aid,
            data={"identifier": identifier},
        )
        return aid

    async def _disconnect(
        self,
        conn: AsyncConnection,
        account: _AccountView,
        reason: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Within ``conn``'s transaction: ``account`` becomes ``DISCONNECTED`` (its tokens and
        any refresh lease dropped), with its history entry and status event."""
        await conn.execute(
            update(ACCOUNTS)
            .where(ACCOUNTS.c.id == account.id)
            .values(
                status=AccountStatus.DISCONNECTED.value,
                status_reason=reason,
                access_token_enc=None,
                refresh_token_enc=None,
                expires_at=None,
                refresh_lease_owner=None,
                refresh_lease_until=None,
                refresh_started_at=None,
                version=ACCOUNTS.c.version + 1,
                updated_at=self._now(),
            )
        )
        await self._event(
            conn,
            "account.status_changed",
            connection_id=account.connection_id,
            account_id=account.id,
            data={
                "from": account.status,
                "to": AccountStatus.DISCONNECTED.value,
                "reason": reason,
                **(extra or {}),
            },
        )
        await emit_status(self, conn, account, AccountStatus.DISCONNECTED.value, reason)

    async def store_tokens_after_callback(
        self,
        account_id: str,
        *,
        auth_request_id: str,
        access_token: str,
        refresh_token: str | None,
        expires_at: float | None,
        granted_scopes: Sequence[str],
        provider_user_id: str | None,
        status: AccountStatus = AccountStatus.ACTIVE,
        allow_user_change: bool = False,
        username: str | None = None,
    ) -> AccountRecord:
        """Persist a completed code exchange and mark its auth request completed, atomically.

        Refused (:class:`ConflictError`, nothing written) unless the auth request belongs to the
        account, was consumed and is not yet completed. Refused too, with the code
        ``USER_CHANGE_REFUSED``, when the account is already linked to another Discord user
        (``provider_user_id`` differs) and ``allow_user_change`` is false; when it is true the
        change is recorded as an ``account.user_changed`` event. ``username`` (the Discord display
        name) goes into the ``account.linked`` event, for the result page.
        """
        scope_text = _validate_scopes("granted_scopes", granted_scopes)
        now = self._now()
        async with self._writer.begin() as conn:
            row = await self._require_account(conn, account_id)
            previous_user = row.provider_user_id
            user_changed = (
                previous_user is not None
                and provider_user_id is not None
                and previous_user != provider_user_id
            )
            if user_changed and not allow_user_change:
                raise ConflictError(
                    "this identifier is linked to another Discord user; the application did not "
                    "allow changing it",
                    code="USER_CHANGE_REFUSED",
                    details={
                        "account_id": account_id,
                        "provider_user_id": previous_user,
                        "new_provider_user_id": provider_user_id,
                    },
                )
            done = await conn.execute(
                update(AUTH_REQUESTS)
                .where(
                    AUTH_REQUESTS.c.id == auth_request_id,
                    AUTH_REQUESTS.c.account_id == account_id,
                    AUTH_REQUESTS.c.consumed_at.is_not(None),
                    AUTH_REQUESTS.c.completed_at.is_(None),
                )
                .values(completed_at=now)
            )
            if done.rowcount != 1:
                raise ConflictError(
                    "authorization request is not pending for this account",
                    details={"auth_request_id": auth_request_id, "account_id": account_id},
                )
            await conn.execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.id == account_id)
                .values(
                    access_token_enc=self._seal(
                        ACCOUNTS, "access_token_enc", account_id, access_token
                    ),
                    refresh_token_enc=None
                    if refresh_token is None
                    else self._seal(ACCOUNTS, "refresh_token_enc", account_id, refresh_token),
                    expires_at=expires_at,
                    granted_scopes=scope_text,
                    provider_user_id=provider_user_id,
                    status=AccountStatus(status).value,
                    status_reason=None,
                    version=ACCOUNTS.c.version + 1,
                    refresh_lease_owner=None,
                    refresh_lease_until=None,
                    updated_at=now,
                )
            )
            if user_changed:
                await self._event(
                    conn,
                    "account.user_changed",
                    connection_id=row.connection_id,
                    account_id=account_id,
                    data={
                        "auth_request_id": auth_request_id,
                        "from_provider_user_id": previous_user,
                        "to_provider_user_id": provider_user_id,
                    },
                )
            await self._event(
                conn,
                "account.linked",
                connection_id=row.connection_id,
                account_id=account_id,
                data={
                    "auth_request_id": auth_request_id,
                    "status": AccountStatus(status).value,
                    "scopes": scope_text.split(),
                    "provider_user_id": provider_user_id,
                    "username": username,
                },
            )
            await emit_status(self, conn, row, AccountStatus(status).value, None)
            return self._account(await self._require_account(conn, account_id))

    async def store_bot_account(
        self,
        connection_id: str,
        identifier: str,
        *,
        bot_token: str,
        provider_user_id: str,
        username: str | None = None,
    ) -> tuple[AccountRecord, bool]:
        """Create the account for (connection, identifier) holding ``bot_token`` (already checked
        with the provider), ``ACTIVE``; or give an existing account of the same bot its new token
        (after a token reset), ``ACTIVE`` again. Returns ``(account, created)``.

        Refused (:class:`ConflictError` ``BOT_CHANGE_REFUSED``, nothing written) when the
        identifier already holds another bot's token: which bot acts for an identifier changes
        only by deleting the account first.
        """
        _validate_text("identifier", identifier)
        _validate_text("bot_token", bot_token, max_len=4096)
        now = self._now()
        for _attempt in range(3):
            try:
                async with self._writer.begin() as conn:
                    row = (
                        await conn.execute(
                            select(ACCOUNTS).where(
                                ACCOUNTS.c.connection_id == connection_id,
                                ACCOUNTS.c.identifier == identifier,
                            )
                        )
                    ).first()
                    if row is not None and row.provider_user_id not in (None, provider_user_id):
                        raise ConflictError(
                            f"identifier {identifier!r} already holds the token of another bot "
                            f"(user {row.provider_user_id}); delete the account first to give "
                            "it another bot",
                            code="BOT_CHANGE_REFUSED",
                            details={
                                "account_id": row.id,
                                "provider_user_id": row.provider_user_id,
                                "new_provider_user_id": provider_user_id,
                            },
                        )
                    created = row is None
                    if row is None:
                        aid = await self._insert_account(conn, connection_id, identifier, now)
                    else:
                        aid = row.id
                    await conn.execute(
                        update(ACCOUNTS)
                        .where(ACCOUNTS.c.id == aid)
                        .values(
                            access_token_enc=self._seal(
                                ACCOUNTS, "access_token_enc", aid, bot_token
                            ),
                            refresh_token_enc=None,
                            expires_at=None,
                            granted_scopes="",
                            provider_user_id=provider_user_id,
                            status=AccountStatus.ACTIVE.value,
                            status_reason=None,
                            version=ACCOUNTS.c.version + 1,
                            refresh_lease_owner=None,
                            refresh_lease_until=None,
                            refresh_started_at=None,
                            updated_at=now,
                        )
                    )
                    await self._event(
                        conn,
                        "account.linked",
                        connection_id=connection_id,
                        account_id=aid,
                        data={
                            "credential": "bot_token",
                            "provider_user_id": provider_user_id,
                            "username": username,
                            "replaced": not created,
                            "status": AccountStatus.ACTIVE.value,
                        },
                    )
                    stored = await self._require_account(conn, aid)
                    if created:
                        await emit(
                            self,
                            conn,
                            "connected_account.created",
                            await account_data(conn, stored),
                        )
                    else:
                        await emit_status(self, conn, row, AccountStatus.ACTIVE.value, None)
                    return self._account(stored), created
            except IntegrityError:
                continue  # another writer created the same identifier first: update theirs
        raise ConflictError(
            "could not store the connected account (concurrent writes); try again",
            details={"connection_id": connection_id, "identifier": identifier},
        )

    @staticmethod
    def _grant_holders_query(
        provider_user_id: str, connection: Row[Any], exclude_id: str | None
    ) -> Any:
        query = (
            select(
                ACCOUNTS.c.id,
                ACCOUNTS.c.identifier,
                ACCOUNTS.c.connection_id,
                ACCOUNTS.c.status,
                CONNECTIONS.c.name.label("connection_name"),
            )
            .join(CONNECTIONS, CONNECTIONS.c.id == ACCOUNTS.c.connection_id)
            .where(
                ACCOUNTS.c.provider_user_id == provider_user_id,
                ACCOUNTS.c.status.in_(GRANT_HOLDING_STATUSES),
                CONNECTIONS.c.provider == connection.provider,
                CONNECTIONS.c.client_id == connection.client_id,
            )
            .order_by(ACCOUNTS.c.id)
        )
        if exclude_id is not None:
            query = query.where(ACCOUNTS.c.id != exclude_id)
        return query

    async def _grant_holders(
        self,
        conn: AsyncConnection,
        connection_id: str,
        provider_user_id: str | None,
        exclude_id: str | None,
    ) -> list[GrantSibling]:
        if provider_user_id is None:
            return []
        connection = (
            await conn.execute(select(CONNECTIONS).where(CONNECTIONS.c.id == connection_id))
        ).one()
        query = self._grant_holders_query(provider_user_id, connection, exclude_id)
        return [
            GrantSibling(
                r.id, r.identifier, r.connection_id, r.connection_name, AccountStatus(r.status)
            )
            for r in (await conn.execute(query)).all()
        ]

    async def _siblings(self, conn: AsyncConnection, row: Row[Any]) -> list[GrantSibling]:
        return await self._grant_holders(conn, row.connection_id, row.provider_user_id, row.id)

    async def grant_holders(self, connection_id: str, provider_user_id: str) -> list[GrantSibling]:
        """Accounts holding a live grant of ``provider_user_id`` for this connection's Discord
        application (on any connection with the same client id)."""
        async with self.engine.connect() as conn:
            return await self._grant_holders(conn, connection_id, provider_user_id, None)

    async def grant_siblings(self, account_id: str) -> list[GrantSibling]:
        """The other accounts a revocation of this account's grant would end: linked to the same
        Discord user (``provider_user_id``) through the same Discord application (same client id
        on any connection), and still holding tokens (``ACTIVE`` or ``PENDING_VERIFICATION``).
        Discord's revocation ends every token of that user↔application authorization."""
        async with self.engine.connect() as conn:
            row = await self._require_account(conn, account_id)
            return await self._siblings(conn, row)

    async def delete_account(
        self,
        account_id: str,
        *,
        revoked: bool | None = None,
        disconnect_siblings: bool = False,
    ) -> list[GrantSibling]:
        """Remove the account and its credentials (revoke at the provider first).

        With ``disconnect_siblings`` (the grant was revoked at Discord), every account sharing the
        grant (:meth:`grant_siblings`, read again in this transaction) becomes ``DISCONNECTED``,
        its dead tokens dropped, with a reason and an event each; they are returned.
        """
        async with self._writer.begin() as conn:
            row = await self._require_account(conn, account_id)
            siblings = await self._siblings(conn, row) if disconnect_siblings else []
            reason = (
                f"the Discord grant was revoked when account {row.id} "
                f"(identifier {row.identifier!r}) was deleted; send a new authorization link"
            )
            for sibling in siblings:
                await self._disconnect(
                    conn,
                    _AccountView(
                        sibling.id, sibling.connection_id, sibling.identifier, sibling.status.value
                    ),
                    reason,
                    {"revoked_with_account_id": row.id},
                )
            await conn.execute(delete(ACCOUNTS).where(ACCOUNTS.c.id == account_id))
            data: dict[str, Any] = {"identifier": row.identifier}
            if revoked is not None:
                data["revoked"] = revoked
            if siblings:
                data["siblings_disconnected"] = [s.id for s in siblings]
            await self._event(
                conn,
                "account.deleted",
                connection_id=row.connection_id,
                account_id=account_id,
                data=data,
            )
            await emit(
                self,
                conn,
                "connected_account.deleted",
                {**await account_data(conn, row), "revoked": revoked},
            )
            return siblings

    async def note_authorization_failure(
        self, account_id: str, reason: str, kind: str, data: Mapping[str, Any]
    ) -> None:
        """Record why an authorization attempt failed: ``status_reason`` (the status stays as it
        is: an ``ACTIVE`` account keeps working) and an event ``kind`` with ``data``."""
        async with self._writer.begin() as conn:
            row = await self._account_row(conn, account_id)
            if row is None:
                return
            await conn.execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.id == account_id)
                .values(status_reason=reason, updated_at=self._now())
            )
            await self._event(
                conn,
                kind,
                connection_id=row.connection_id,
                account_id=account_id,
                data={**data, "status": row.status, "reason": reason},
            )

    async def touch_last_used(self, account_id: str) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(
                update(ACCOUNTS).where(ACCOUNTS.c.id == account_id).values(last_used_at=self._now())
            )

    # -- refresh lease -------------------------------------------------------------------------

    async def acquire_refresh_lease(
        self, account_id: str, owner: str, ttl: float, *, take_over: str | None = None
    ) -> bool:
        """Take the account's refresh lease for ``ttl`` seconds if free, expired or already ours,
        or held by ``take_over`` (a holder the caller found gone)."""
        now = self._now()
        free = [
            ACCOUNTS.c.refresh_lease_owner.is_(None),
            ACCOUNTS.c.refresh_lease_until.is_(None),
            ACCOUNTS.c.refresh_lease_until < now,
            ACCOUNTS.c.refresh_lease_owner == owner,
        ]
        if take_over is not None:
            free.append(ACCOUNTS.c.refresh_lease_owner == take_over)
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.id == account_id, or_(*free))
                .values(refresh_lease_owner=owner, refresh_lease_until=now + ttl)
            )
            return result.rowcount == 1

    async def release_refresh_lease(
        self, account_id: str, owner: str, *, clear_intent: bool = False
    ) -> bool:
        """Drop the lease only if ``owner`` still holds it (compare-and-delete). The refresh
        intent stays unless ``clear_intent``: a refresh that may have reached Discord is in doubt
        until someone re-checks it."""
        values: dict[str, Any] = {"refresh_lease_owner": None, "refresh_lease_until": None}
        if clear_intent:
            values["refresh_started_at"] = None
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.id == account_id, ACCOUNTS.c.refresh_lease_owner == owner)
                .values(**values)
            )
            return result.rowcount == 1

    async def list_interrupted_refreshes(self, limit: int = 500) -> list[AccountRecord]:
        """Accounts with a refresh intent on record (in flight, or interrupted by a crash)."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(ACCOUNTS)
                    .where(ACCOUNTS.c.refresh_started_at.is_not(None))
                    .order_by(ACCOUNTS.c.refresh_started_at)
                    .limit(limit)
                )
            ).all()
        return [self._account(row) for row in rows]

    def refresh_writer(self) -> RefreshWriter:
        """A connection set aside for one refresh (see :class:`RefreshWriter`)."""
        return RefreshWriter(self)

    def _refresh_pool(self) -> AsyncEngine:
        if self._refresh_engine is None:
            url = self.engine.url
            if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
                self._refresh_engine = self._writer  # one in-memory database: share its engine
            else:
                self._refresh_engine = write_engine(
                    create_engine(
                        url.render_as_string(hide_password=False),
                        pool_size=REFRESH_POOL_SIZE,
                        max_overflow=0,
                        pool_timeout=REFRESH_POOL_TIMEOUT,
                    )
                )
        return self._refresh_engine

    def _stored_tokens_values(
        self,
        account_id: str,
        *,
        access_token: str,
        refresh_token: str | None,
        expires_at: float | None,
        granted_scopes: Sequence[str] | None,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            "access_token_enc": self._seal(ACCOUNTS, "access_token_enc", account_id, access_token),
            "expires_at": expires_at,
            "version": ACCOUNTS.c.version + 1,
            "refresh_lease_owner": None,
            "refresh_lease_until": None,
            "refresh_started_at": None,
            "updated_at": self._now(),
        }
        if refresh_token is not None:
            values["refresh_token_enc"] = self._seal(
                ACCOUNTS, "refresh_token_enc", account_id, refresh_token
            )
        if granted_scopes is not None:
            values["granted_scopes"] = _validate_scopes("granted_scopes", granted_scopes)
        return values

    async def _store_refreshed(
        self, conn: AsyncConnection, account_id: str, owner: str, values: dict[str, Any]
    ) -> AccountRecord | None:
        result = await conn.execute(
            update(ACCOUNTS)
            .where(ACCOUNTS.c.id == account_id, ACCOUNTS.c.refresh_lease_owner == owner)
            .values(**values)
        )
        if result.rowcount != 1:
            return None
        row = await self._require_account(conn, account_id)
        await self._event(
            conn,
            "account.refreshed",
            connection_id=row.connection_id,
            account_id=account_id,
            data={
                "version": row.version,
                "refresh_token_rotated": "refresh_token_enc" in values,
                "expires_at": values["expires_at"],
            },
        )
        return self._account(row)

    async def store_refreshed_tokens(
        self,
        account_id: str,
        owner: str,
        *,
        access_token: str,
        refresh_token: str | None,
        expires_at: float | None,
        granted_scopes: Sequence[str] | None = None,
    ) -> AccountRecord | None:
        """Persist refreshed tokens if ``owner`` still holds the lease; release it and the
        refresh intent; bump version.

        ``refresh_token=None`` keeps the stored one (the provider omitted a new one);
        ``granted_scopes=None`` keeps the stored scopes. Returns ``None`` (nothing written) when
        the lease was lost.
        """
        values = self._stored_tokens_values(
            account_id,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=expires_at,
            granted_scopes=granted_scopes,
        )
        async with self._writer.begin() as conn:
            return await self._store_refreshed(conn, account_id, owner, values)

    async def _expire(
        self,
        conn: AsyncConnection,
        account_id: str,
        reason: str,
        *,
        owner: str | None,
        expected_version: int | None,
        data: Mapping[str, Any] | None = None,
        active_only: bool = False,
    ) -> AccountRecord | None:
        row = await self._require_account(conn, account_id)
        conditions = [ACCOUNTS.c.id == account_id]
        if owner is not None:
            conditions.append(ACCOUNTS.c.refresh_lease_owner == owner)
        if expected_version is not None:
            conditions.append(ACCOUNTS.c.version == expected_version)
        if active_only:
            conditions.append(ACCOUNTS.c.status == AccountStatus.ACTIVE.value)
        values: dict[str, Any] = {
            "status": AccountStatus.EXPIRED.value,
            "status_reason": reason,
            "updated_at": self._now(),
        }
        if owner is None or row.refresh_lease_owner == owner:
            values["refresh_lease_owner"] = None
            values["refresh_lease_until"] = None
            values["refresh_started_at"] = None
        result = await conn.execute(update(ACCOUNTS).where(*conditions).values(**values))
        if result.rowcount != 1:
            return None
        await self._event(
            conn,
            "account.expired",
            connection_id=row.connection_id,
            account_id=account_id,
            data={"from": row.status, "reason": reason, **(data or {})},
        )
        await emit_status(self, conn, row, AccountStatus.EXPIRED.value, reason)
        return self._account(await self._require_account(conn, account_id))

    async def mark_expired(
        self,
        account_id: str,
        reason: str,
        *,
        owner: str | None = None,
        expected_version: int | None = None,
        active_only: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> AccountRecord | None:
        """Set ``EXPIRED`` with a reason (and its event), dropping the lease and refresh intent.

        With ``owner``, only while that owner still holds the lease; with ``expected_version``,
        only while the credentials are still the ones read at that version; with
        ``active_only``, only an ``ACTIVE`` account (so concurrent callers record one event).
        Returns ``None`` (nothing written) when a condition no longer holds: someone else
        refreshed or re-linked meanwhile, and their good tokens must not be overwritten.
        """
        async with self._writer.begin() as conn:
            return await self._expire(
                conn,
                account_id,
                reason,
                owner=owner,
                expected_version=expected_version,
                data=data,
                active_only=active_only,
            )

    # -- auth requests -------------------------------------------------------------------------

    async def create_auth_request(
        self,
        *,
        connection_id: str,
        account_id: str,
        identifier: str,
        state: str,
        code_verifier: str,
        redirect_uri: str,
        ttl_seconds: float,
        user_verify_url: str | None = None,
        app_state: str | None = None,
        allow_user_change: bool = False,
    ) -> AuthRequestRecord:
        """Store a pending authorization: ``state`` only as its hash, the verifier encrypted."""
        if len(state) < 16:
            raise ValidationError(
                "state is too short to be unguessable", fields={"state": "at least 16 characters"}
            )
        if user_verify_url is not None:
            _validate_url("user_verify_url", user_verify_url)
        now = self._now()
        rid = new_id(now)
        async with self._writer.begin() as conn:
            owner = (
                await conn.execute(
                    select(ACCOUNTS.c.connection_id, ACCOUNTS.c.identifier).where(
                        ACCOUNTS.c.id == account_id
                    )
                )
            ).first()
            if owner is None:
                raise AccountNotFound(
                    f"connected account {account_id!r} does not exist", details={"id": account_id}
                )
            if owner.connection_id != connection_id or owner.identifier != identifier:
                raise ValidationError(
                    "account does not belong to this connection and identifier",
                    fields={"account_id": "belongs to another connection or identifier"},
                )
            await self.insert_auth_request(
                conn,
                rid,
                connection_id=connection_id,
                account_id=account_id,
                identifier=identifier,
                state=state,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
                ttl_seconds=ttl_seconds,
                user_verify_url=user_verify_url,
                app_state=app_state,
                allow_user_change=allow_user_change,
            )
            row = (await conn.execute(select(AUTH_REQUESTS).where(AUTH_REQUESTS.c.id == rid))).one()
            return self._auth_request(row)

    async def insert_auth_request(
        self,
        conn: AsyncConnection,
        rid: str,
        *,
        connection_id: str,
        account_id: str,
        identifier: str,
        state: str,
        code_verifier: str,
        redirect_uri: str,
        ttl_seconds: float,
        user_verify_url: str | None,
        app_state: str | None,
        allow_user_change: bool,
    ) -> None:
        """Write a pending authorization request (and its event) in ``conn``'s transaction."""
        now = self._now()
        await conn.execute(
            insert(AUTH_REQUESTS).values(
                id=rid,
                state_hash=state_hash(state),
                connection_id=connection_id,
                account_id=account_id,
                identifier=identifier,
                code_verifier_enc=self._seal(
                    AUTH_REQUESTS, "code_verifier_enc", rid, code_verifier
                ),
                user_verify_url=user_verify_url,
                app_state=app_state,
                redirect_uri=redirect_uri,
                expires_at=now + ttl_seconds,
                created_at=now,
                allow_user_change=bool(allow_user_change),
            )
        )
        await self._event(
            conn,
            "auth_request.created",
            connection_id=connection_id,
            account_id=account_id,
            data={
                "auth_request_id": rid,
                "expires_at": now + ttl_seconds,
                "allow_user_change": bool(allow_user_change),
            },
        )

    async def consume_auth_request(
        self, state: str, connection_id: str
    ) -> AuthRequestRecord | None:
        """Atomically claim the pending request for ``state`` on ``connection_id``.

        Returns it once; a replay, an expired or unknown state, or another connection's state
        returns ``None`` and changes nothing.
        """
        now = self._now()
        digest = state_hash(state)
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(AUTH_REQUESTS)
                .where(
                    AUTH_REQUESTS.c.state_hash == digest,
                    AUTH_REQUESTS.c.connection_id == connection_id,
                    AUTH_REQUESTS.c.consumed_at.is_(None),
                    AUTH_REQUESTS.c.expires_at > now,
                )
                .values(consumed_at=now)
            )
            if result.rowcount != 1:
                return None
            row = (
                await conn.execute(
                    select(AUTH_REQUESTS).where(AUTH_REQUESTS.c.state_hash == digest)
                )
            ).one()
            await self._event(
                conn,
                "auth_request.consumed",
                connection_id=connection_id,
                account_id=row.account_id,
                data={"auth_request_id": row.id},
            )
            return self._auth_request(row)

    async def restate_auth_request(
        self,
        auth_request_id: str,
        *,
        state: str,
        code_verifier: str,
        browser_hash: str | None = None,
    ) -> AuthRequestRecord | None:
        """Give a pending request a fresh ``state`` and PKCE verifier (when its link is opened),
        bound to the browser whose cookie hashes to ``browser_hash``.

        Only an unconsumed, unexpired request changes; otherwise ``None`` and nothing changes.
        The previous state (and the previous browser) stop working.
        """
        if len(state) < 16:
            raise ValidationError(
                "state is too short to be unguessable", fields={"state": "at least 16 characters"}
            )
        now = self._now()
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(AUTH_REQUESTS)
                .where(
                    AUTH_REQUESTS.c.id == auth_request_id,
                    AUTH_REQUESTS.c.consumed_at.is_(None),
                    AUTH_REQUESTS.c.expires_at > now,
                )
                .values(
                    state_hash=state_hash(state),
                    code_verifier_enc=self._seal(
                        AUTH_REQUESTS, "code_verifier_enc", auth_request_id, code_verifier
                    ),
                    browser_hash=browser_hash,
                )
            )
            if result.rowcount != 1:
                return None
            row = (
                await conn.execute(
                    select(AUTH_REQUESTS).where(AUTH_REQUESTS.c.id == auth_request_id)
                )
            ).one()
            await self._event(
                conn,
                "auth_request.opened",
                connection_id=row.connection_id,
                account_id=row.account_id,
                data={"auth_request_id": auth_request_id},
            )
            return self._auth_request(row)

    async def inspect_auth_request(self, state: str) -> AuthRequestRecord | None:
        """The request for ``state`` as stored, without consuming it (to explain a refusal)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(AUTH_REQUESTS).where(AUTH_REQUESTS.c.state_hash == state_hash(state))
                )
            ).first()
        return None if row is None else self._auth_request(row)

    async def get_auth_request(self, auth_request_id: str) -> AuthRequestRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(AUTH_REQUESTS).where(AUTH_REQUESTS.c.id == auth_request_id)
                )
            ).first()
        return None if row is None else self._auth_request(row)

    async def latest_user_verify_url(self, account_id: str) -> str | None:
        """The ``user_verify_url`` of the account's most recent auth request that had one."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(AUTH_REQUESTS.c.user_verify_url)
                    .where(
                        AUTH_REQUESTS.c.account_id == account_id,
                        AUTH_REQUESTS.c.user_verify_url.is_not(None),
                    )
                    .order_by(AUTH_REQUESTS.c.id.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else str(row.user_verify_url)

    async def auth_request_outcome(
        self, request: AuthRequestRecord, kinds: Sequence[str]
    ) -> EventRecord | None:
        """The newest event of one of ``kinds`` recorded for this auth request (its
        ``data.auth_request_id``): how its callback ended, for the result page."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(EVENTS)
                    .where(
                        EVENTS.c.account_id == request.account_id,
                        EVENTS.c.kind.in_(list(kinds)),
                        EVENTS.c.at >= request.created_at,
                    )
                    .order_by(EVENTS.c.id.desc())
                    .limit(100)
                )
            ).all()
        for r in rows:
            data = dict(r.data or {})
            if data.get("auth_request_id") == request.id:
                return EventRecord(r.id, r.at, r.kind, r.connection_id, r.account_id, data)
        return None

    async def purge_auth_requests(self, *, older_than: float) -> int:
        """Delete auth requests that expired before ``older_than``; returns how many."""
        async with self._writer.begin() as conn:
            result = await conn.execute(
                delete(AUTH_REQUESTS).where(AUTH_REQUESTS.c.expires_at < older_than)
            )
            return int(result.rowcount)

    # -- API clients ---------------------------------------------------------------------------

    async def create_api_client(
        self, name: str, scopes: str | Sequence[str] = ADMIN_SCOPE
    ) -> tuple[ApiClientRecord, SecretStr]:
        """A new API client and its secret; the secret is shown this once and stored hashed.
        ``scopes`` (comma- or space-separated, or a list) defaults to ``admin``: everything."""
        _validate_text("name", name, max_len=128)
        granted = parse_scopes(scopes)
        stored = format_scopes(granted)
        client_id = "twc_" + secrets.token_hex(12)
        secret = "tws_" + secrets.token_urlsafe(32)
        encoded = await asyncio.to_thread(hash_api_secret, secret)
        now = self._now()
        async with self._writer.begin() as conn:
            await conn.execute(
                insert(API_CLIENTS).values(
                    client_id=client_id,
                    secret_hash=encoded,
                    name=name,
                    created_at=now,
                    scopes=stored,
                )
            )
            await self._event(
                conn,
                "api_client.created",
                data={"client_id": client_id, "name": name, "scopes": stored},
            )
        return ApiClientRecord(client_id, name, now, granted), SecretStr(secret)

    async def verify_api_client(self, client_id: str, client_secret: str) -> ApiClientRecord | None:
        """The client if the secret matches; same work whether or not the client exists."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(API_CLIENTS).where(API_CLIENTS.c.client_id == client_id))
            ).first()
        encoded = _DUMMY_HASH if row is None else row.secret_hash
        ok = await asyncio.to_thread(verify_api_secret, client_secret, encoded)
        if row is None or not ok:
            return None
        return _api_client(row)

    async def list_api_clients(self) -> list[ApiClientRecord]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(API_CLIENTS).order_by(API_CLIENTS.c.created_at))
            ).all()
        return [_api_client(r) for r in rows]

    async def delete_api_client(self, client_id: str) -> None:
        async with self._writer.begin() as conn:
            result = await conn.execute(
                delete(API_CLIENTS).where(API_CLIENTS.c.client_id == client_id)
            )
            if result.rowcount != 1:
                raise NotFoundError(
                    f"API client {client_id!r} does not exist",
                    code="API_CLIENT_NOT_FOUND",
                    details={"client_id": client_id},
                )
            await self._event(conn, "api_client.deleted", data={"client_id": client_id})

    # -- events --------------------------------------------------------------------------------

    async def record_event(
        self,
        kind: str,
        *,
        connection_id: str | None = None,
        account_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an audit event (e.g. ``tool.executed``); ``data`` must hold no secret."""
        async with self._writer.begin() as conn:
            await self._event(
                conn, kind, connection_id=connection_id, account_id=account_id, data=data
            )

    async def record_usage(
        self,
        events: Sequence[tuple[float, str, str | None, str | None, Mapping[str, Any]]],
        last_used: Mapping[str, float],
    ) -> None:
        """Append many events ``(at, kind, connection_id, account_id, data)`` and set
        ``last_used_at`` of many accounts, in one transaction: the hot path's bookkeeping,
        written in the background. ``data`` must hold no secret.

        Thousands of events a second come this way (a proxied request is one), so the rows go
        to the driver as tuples, ``data`` serialized once (see ``_event_json``): the same rows
        as ``insert(EVENTS)`` would write, without SQLAlchemy's per-row work."""
        actor = current_actor()
        rows: list[tuple[float, str, str | None, str | None, str]] = []
        for at, kind, connection_id, account_id, data in events:
            _check_event_keys(data)
            rows.append((at, kind, connection_id, account_id, _event_json(data, actor)))
        if not rows and not last_used:
            return
        async with self._writer.begin() as conn:
            if rows:
                await conn.exec_driver_sql(self._insert_events, rows)
            if last_used:
                # One statement executed for many rows (the driver batches it), not one
                # round trip per account.
                await conn.execute(
                    update(ACCOUNTS)
                    .where(
                        ACCOUNTS.c.id == bindparam("used_id"),
                        or_(
                            ACCOUNTS.c.last_used_at.is_(None),
                            ACCOUNTS.c.last_used_at < bindparam("used_at"),
                        ),
                    )
                    .values(last_used_at=bindparam("used_at")),
                    [{"used_id": k, "used_at": at} for k, at in last_used.items()],
                )

    async def list_events(
        self,
        *,
        kind: str | None = None,
        connection_id: str | None = None,
        account_id: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """Events oldest first (``after_id`` continues from a previous page)."""
        conditions = []
        if kind is not None:
            conditions.append(EVENTS.c.kind == kind)
        if connection_id is not None:
            conditions.append(EVENTS.c.connection_id == connection_id)
        if account_id is not None:
            conditions.append(EVENTS.c.account_id == account_id)
        if after_id is not None:
            conditions.append(EVENTS.c.id > after_id)
        stmt = select(EVENTS).where(and_(true(), *conditions)).order_by(EVENTS.c.id).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            EventRecord(r.id, r.at, r.kind, r.connection_id, r.account_id, dict(r.data or {}))
            for r in rows
        ]

    async def recent_events(
        self,
        *,
        kinds: Sequence[str] = (),
        connection_id: str | None = None,
        account_id: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[EventRecord]:
        """Events newest first (``before_id`` continues from a previous page): the activity
        pages read the trail from its end."""
        conditions: list[ColumnElement[bool]] = []
        if kinds:
            conditions.append(EVENTS.c.kind.in_(list(kinds)))
        if connection_id is not None:
            conditions.append(EVENTS.c.connection_id == connection_id)
        if account_id is not None:
            conditions.append(EVENTS.c.account_id == account_id)
        if before_id is not None:
            conditions.append(EVENTS.c.id < before_id)
        stmt = (
            select(EVENTS)
            .where(and_(true(), *conditions))
            .order_by(EVENTS.c.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            EventRecord(r.id, r.at, r.kind, r.connection_id, r.account_id, dict(r.data or {}))
            for r in rows
        ]

    async def event_counts(self, kinds: Sequence[str], *, since: float) -> dict[str, int]:
        """How many events of each kind were written since ``since``."""
        stmt = (
            select(EVENTS.c.kind, func.count())
            .where(EVENTS.c.kind.in_(list(kinds)), EVENTS.c.at >= since)
            .group_by(EVENTS.c.kind)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {str(kind): int(n) for kind, n in rows}

    async def tool_call_statuses(self, *, since: float) -> dict[str, int]:
        """Tool calls since ``since`` by their status (``ok`` or an error code)."""
        status = EVENTS.c.data["status"].as_string()
        stmt = (
            select(status, func.count())
            .where(EVENTS.c.kind == "tool.executed", EVENTS.c.at >= since)
            .group_by(status)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {str(value or "unknown"): int(n) for value, n in rows}

    async def account_counts(self) -> dict[tuple[str, str], int]:
        """Accounts per (connection id, status)."""
        stmt = select(ACCOUNTS.c.connection_id, ACCOUNTS.c.status, func.count()).group_by(
            ACCOUNTS.c.connection_id, ACCOUNTS.c.status
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {(str(cid), str(status)): int(n) for cid, status, n in rows}

    async def count_events(self, kind: str | None = None) -> int:
        stmt = select(func.count()).select_from(EVENTS)
        if kind is not None:
            stmt = stmt.where(EVENTS.c.kind == kind)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())


# ---------------------------------------------------------------------------------------------
# Refresh writes

REFRESH_POOL_SIZE: Final = 8
REFRESH_POOL_TIMEOUT: Final = 30.0


class RefreshWriter:
    """The writes of one refresh, on a database connection checked out *before* Discord is
    called, from a small pool that serves nothing else.

    Between Discord's answer and the commit of the new tokens, a crash loses the grant (the old
    refresh token is already spent). That window is kept as short as it can be: the connection
    is already open and idle, so storing is one short transaction that never waits for the
    general pool or for other callers' work. ``begin_attempt`` records the refresh *intent*
    (``refresh_started_at``) before the refresh token leaves, so a crash inside the window is
    visible afterwards and the account is re-checked (``tokenward.oauth.refresh``).
    """

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> RefreshWriter:
        self._conn = await self._vault._refresh_pool().connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("use RefreshWriter in 'async with'")
        return self._conn

    async def begin_attempt(
        self, account_id: str, owner: str, version: int, *, lease_needed: float
    ) -> bool:
        """Record the intent to send the refresh token, if ``owner`` still holds the lease and
        the credentials are still at ``version``; make sure the lease outlasts the attempt by
        ``lease_needed`` seconds. ``False``: do not send (the lease or the row changed)."""
        vault = self._vault
        now = vault._now()
        async with self.conn.begin():
            row = (
                await self.conn.execute(
                    select(ACCOUNTS.c.refresh_lease_until).where(
                        ACCOUNTS.c.id == account_id,
                        ACCOUNTS.c.refresh_lease_owner == owner,
                        ACCOUNTS.c.version == version,
                    )
                )
            ).first()
            if row is None:
                return False
            until = max(row.refresh_lease_until or 0.0, now + lease_needed)
            result = await self.conn.execute(
                update(ACCOUNTS)
                .where(
                    ACCOUNTS.c.id == account_id,
                    ACCOUNTS.c.refresh_lease_owner == owner,
                    ACCOUNTS.c.version == version,
                )
                .values(refresh_started_at=now, refresh_lease_until=until)
            )
            return result.rowcount == 1

    async def store(
        self,
        account_id: str,
        owner: str,
        *,
        access_token: str,
        refresh_token: str | None,
        expires_at: float | None,
        granted_scopes: Sequence[str] | None = None,
    ) -> AccountRecord | None:
        """:meth:`Vault.store_refreshed_tokens` on this connection (encryption done first)."""
        values = self._vault._stored_tokens_values(
            account_id,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=expires_at,
            granted_scopes=granted_scopes,
        )
        async with self.conn.begin():
            return await self._vault._store_refreshed(self.conn, account_id, owner, values)

    async def expire(
        self,
        account_id: str,
        owner: str,
        version: int,
        reason: str,
        data: Mapping[str, Any] | None = None,
    ) -> AccountRecord | None:
        """:meth:`Vault.mark_expired`, conditional on the lease and version, on this connection;
        the final ``account.refresh_failed`` event is written in the same transaction."""
        async with self.conn.begin():
            expired = await self._vault._expire(
                self.conn, account_id, reason, owner=owner, expected_version=version, data=data
            )
            if expired is not None:
                await self._vault._event(
                    self.conn,
                    "account.refresh_failed",
                    connection_id=expired.connection_id,
                    account_id=account_id,
                    data={**(data or {}), "final": True},
                )
            return expired

    async def note_failure(
        self,
        account_id: str,
        connection_id: str,
        data: Mapping[str, Any],
        *,
        settle_owner: str | None = None,
        clear_intent: bool = False,
    ) -> None:
        """Record a failed attempt (``account.refresh_failed``); with ``settle_owner``, also
        release that owner's lease (and, with ``clear_intent``, the intent: Discord certainly
        did not use the refresh token)."""
        async with self.conn.begin():
            await self._vault._event(
                self.conn,
                "account.refresh_failed",
                connection_id=connection_id,
                account_id=account_id,
                data=data,
            )
            if not data.get("final"):
                row = await self._vault._require_account(self.conn, account_id)
                await emit(
                    self._vault,
                    self.conn,
                    "connected_account.token_refresh_failed",
                    {
                        **await account_data(self.conn, row),
                        "attempt": data.get("attempt"),
                        "error": data.get("error"),
                    },
                )
            if settle_owner is not None:
                values: dict[str, Any] = {"refresh_lease_owner": None, "refresh_lease_until": None}
                if clear_intent:
                    values["refresh_started_at"] = None
                await self.conn.execute(
                    update(ACCOUNTS)
                    .where(
                        ACCOUNTS.c.id == account_id,
                        ACCOUNTS.c.refresh_lease_owner == settle_owner,
                    )
                    .values(**values)
                )
