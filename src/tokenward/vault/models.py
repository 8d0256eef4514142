"""The vault's tables (SQLAlchemy 2 typed declarative).

Conventions that keep SQLite and PostgreSQL behaving alike:

- ids are 26-character ULIDs made in Python (time-ordered, so keyset pagination by id follows
  creation order);
- every time is an epoch float in seconds (``DOUBLE PRECISION`` on PostgreSQL, ``REAL`` on
  SQLite), read from the injected clock, never from the database server;
- every secret column ends in ``_enc`` and holds a :mod:`tokenward.vault.crypto` envelope whose
  associated data is ``aad(table, column, id)``;
- a connected account's credential is ``access_token_enc``: an OAuth2 access token (with its
  refresh token and expiry) for providers with OAuth, the bot token itself (no refresh token, no
  expiry) for providers whose accounts hold one (``discordbot``).

Migrations ``0001`` to the head create exactly these tables; a test compares the two.
"""

from __future__ import annotations

import enum
import os
import time
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: float | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, Crockford base32."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class AccountStatus(enum.StrEnum):
    PENDING_AUTH = "PENDING_AUTH"
    PENDING_VERIFICATION = "PENDING_VERIFICATION"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    DISCONNECTED = "DISCONNECTED"


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {float: Double(), dict[str, Any]: JSON()}


class ConnectionRow(Base):
    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    # Both NULL for a provider without OAuth (discordbot: each account holds a bot token).
    client_id: Mapped[str | None] = mapped_column(String(255))
    client_secret_enc: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text, default="")
    bot_token_enc: Mapped[str | None] = mapped_column(Text)
    require_user_verification: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # Tool policy: glob patterns, "!" for a deny rule, the last match wins; NULL: every tool.
    allowed_tools: Mapped[list[str] | None] = mapped_column(JSON)
    # The Discord application's Ed25519 public key (hex), for requests Discord sends to the
    # connection's Interactions Endpoint URL and Webhook Events URL; NULL: none. Public.
    public_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[float]
    updated_at: Mapped[float]


class AccountRow(Base):
    __tablename__ = "connected_accounts"
    __table_args__ = (
        UniqueConstraint("connection_id", "identifier"),
        Index(None, "status"),
        Index(None, "refresh_started_at"),
        # Listing and finding accounts at a million rows (migration 0008).
        Index(None, "identifier"),
        Index(None, "connection_id", "id"),
        Index(None, "status", "id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("connections.id", ondelete="CASCADE")
    )
    identifier: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(Text)
    granted_scopes: Mapped[str | None] = mapped_column(Text)
    provider_user_id: Mapped[str | None] = mapped_column(String(64))
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[float | None]
    version: Mapped[int] = mapped_column(Integer, default=0)
    refresh_lease_owner: Mapped[str | None] = mapped_column(String(255))
    refresh_lease_until: Mapped[float | None]
    # Set just before a refresh token is sent, cleared when the answer is stored: a refresh in
    # flight (or interrupted, if its process died).
    refresh_started_at: Mapped[float | None]
    last_used_at: Mapped[float | None]
    created_at: Mapped[float]
    updated_at: Mapped[float]


class AuthRequestRow(Base):
    __tablename__ = "auth_requests"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    connection_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("connected_accounts.id", ondelete="CASCADE"), index=True
    )
    identifier: Mapped[str] = mapped_column(String(255))
    code_verifier_enc: Mapped[str] = mapped_column(Text)
    user_verify_url: Mapped[str | None] = mapped_column(String(2048))
    app_state: Mapped[str | None] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    expires_at: Mapped[float]
    consumed_at: Mapped[float | None]
    completed_at: Mapped[float | None]
    created_at: Mapped[float]
    # SHA-256 of the cookie given to the browser that clicked through /connect.
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    allow_user_change: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ApiClientRow(Base):
    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float]
    scopes: Mapped[str] = mapped_column(Text, default="admin", server_default="admin")


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index(None, "account_id"),
        Index(None, "connection_id"),
        Index(None, "kind", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[float]
    kind: Mapped[str] = mapped_column(String(64))
    connection_id: Mapped[str | None] = mapped_column(String(26))
    account_id: Mapped[str | None] = mapped_column(String(26))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebhookEndpointRow(Base):
    """Where events are sent: a URL, the event types it wants ('' = all), its signing secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[str] = mapped_column(Text, default="")
    secret_enc: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # enabled | disabled
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[float | None]
    created_at: Mapped[float]
    updated_at: Mapped[float]


class OutboxEventRow(Base):
    """An event to deliver, written in the transaction of the change that caused it."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index(None, "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_<ULID>: the webhook-id
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The event's data, encrypted, when it carries a credential (an interaction's token); the
    # payload then has no "data".
    data_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float]


class WebhookDeliveryRow(Base):
    """One event for one endpoint: pending until delivered or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    event_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float]
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[float | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[float | None]
    created_at: Mapped[float]
    updated_at: Mapped[float]


class WebhookAttemptRow(Base):
    """Every delivery attempt: when, the answer's status, how long it took, what went wrong."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(String(26), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[float]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float]
    error: Mapped[str | None] = mapped_column(Text)


class AdminRow(Base):
    """An operator of the dashboard: a username and a scrypt hash of the password."""

    __tablename__ = "admins"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float]
    last_sign_in_at: Mapped[float | None]


class AdminSessionRow(Base):
    """A signed-in browser, keyed by the SHA-256 of its cookie (the cookie is never stored)."""

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("admins.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[float]
    last_seen_at: Mapped[float]
    expires_at: Mapped[float]


class McpSessionRow(Base):
    """An MCP session minted for a user: what it grants, until when, and whether it was revoked.

    The token itself is never stored; its ``jti`` claim is the id."""

    __tablename__ = "mcp_sessions"
    __table_args__ = (Index(None, "connection_name", "identifier"), Index(None, "expires_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    connection_name: Mapped[str] = mapped_column(String(64))
    identifier: Mapped[str] = mapped_column(String(255))
    tools: Mapped[list[str] | None] = mapped_column(JSON)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float]
    expires_at: Mapped[float]
    revoked_at: Mapped[float | None]


# Every secret column, per table (each keyed by its ``id`` primary key): rotation walks these.
SECRET_COLUMNS: tuple[tuple[type[Base], tuple[str, ...]], ...] = (
    (ConnectionRow, ("client_secret_enc", "bot_token_enc")),
    (AccountRow, ("access_token_enc", "refresh_token_enc")),
    (AuthRequestRow, ("code_verifier_enc",)),
    (WebhookEndpointRow, ("secret_enc",)),
    (OutboxEventRow, ("data_enc",)),
)
