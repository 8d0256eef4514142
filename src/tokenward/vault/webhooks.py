"""Webhook endpoints, the outbox and its deliveries (the database side of ``tokenward.events``).

**The outbox.** :func:`emit` runs inside the transaction of the change it reports (an account
expiring, being linked, deleted…): it writes the event and one pending delivery per enabled
endpoint that wants its type, or nothing at all when no endpoint does. So an event exists exactly
when its change committed, and survives any crash after that.

**Claiming.** A delivery worker claims due rows with one conditional statement (``UPDATE ... SET
claimed_by = me, claimed_until = now + lease WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``;
on SQLite the write lock serialises claimers), so with several replicas each row goes to one
worker at a time. A claim runs out after its lease, or at once when its holder is a dead process
on this host (the names of :mod:`tokenward.oauth.holder`), and the row is claimed again: at least
once, never lost.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Row, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tokenward.clock import isoformat
from tokenward.errors import NotFoundError, ValidationError
from tokenward.vault.models import Base, new_id

if TYPE_CHECKING:
    from tokenward.vault.repository import Vault

ENDPOINTS: Final[Table] = Base.metadata.tables["webhook_endpoints"]
OUTBOX: Final[Table] = Base.metadata.tables["outbox_events"]
DELIVERIES: Final[Table] = Base.metadata.tables["webhook_deliveries"]
ATTEMPTS: Final[Table] = Base.metadata.tables["webhook_attempts"]
_CONNECTIONS: Final[Table] = Base.metadata.tables["connections"]
_AUTH_REQUESTS: Final[Table] = Base.metadata.tables["auth_requests"]

EVENT_TYPES: Final[dict[str, str]] = {
    "connected_account.created": "an account was created (an authorization link was made for a "
    "new identifier, or a bot account was added)",
    "connected_account.status_updated": "an account's status changed (with old and new status, "
    "the reason and, when the user must authorize again, an authorization link)",
    "connected_account.deleted": "an account was deleted",
    "connected_account.token_refresh_failed": "a refresh failed for a passing reason (the account "
    "stays ACTIVE; with the attempt count)",
    "webhook_endpoint.status_updated": "an endpoint was disabled after failing for too long, or "
    "enabled again",
    "discord.interaction": "Discord sent an interaction (a slash command, a button) to the "
    "connection's Interactions Endpoint URL",
    "discord.event": "Discord sent a webhook event to the connection's Webhook Events URL",
}
"""Every event type tokenward sends, and when."""

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
ENABLED, DISABLED = "enabled", "disabled"
MAX_PAGE: Final = 200


@dataclass(frozen=True, slots=True)
class EventLinks:
    """How :func:`emit` makes the authorization link of a status event (the same links as
    ``OAuthService.create_link``; they live ``ttl`` seconds)."""

    public_base: str
    ttl: float


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: str
    url: str
    events: tuple[str, ...]
    status: str
    disabled_reason: str | None
    failing_since: float | None
    created_at: float
    updated_at: float

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "status": self.status,
            "disabled_reason": self.disabled_reason,
            "failing_since": None if self.failing_since is None else isoformat(self.failing_since),
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: str
    event_id: str
    endpoint_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: float
    last_status_code: int | None
    last_error: str | None
    delivered_at: float | None
    created_at: float

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "endpoint_id": self.endpoint_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": isoformat(self.next_attempt_at) if self.status == PENDING else None,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "delivered_at": None if self.delivered_at is None else isoformat(self.delivered_at),
            "created_at": isoformat(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt: int
    at: float
    status_code: int | None
    latency_ms: float
    error: str | None

    def public(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "at": isoformat(self.at),
            "status_code": self.status_code,
            "latency_ms": round(self.latency_ms, 1),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this worker holds: what to send, where, signed with which secret."""

    id: str
    event_id: str
    endpoint_id: str
    url: str
    secret: str
    body: bytes
    attempts: int

    def __repr__(self) -> str:
        return f"ClaimedDelivery(id={self.id!r}, attempts={self.attempts})"


def parse_event_types(value: str | Iterable[str] | None, *, field: str = "events") -> str:
    """Stored form of an endpoint's event list ('' = every type); unknown types are refused."""
    if value is None:
        return ""
    names = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    unknown = sorted({n for n in names if n not in EVENT_TYPES})
    if unknown:
        reason = f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        raise ValidationError(f"{field}: {reason}", fields={field: reason})
    return " ".join(dict.fromkeys(names))


def _wants(events: str, event_type: str) -> bool:
    return not events or event_type in events.split()


# -- the outbox ---------------------------------------------------------------------------------


async def emit(
    vault: Vault,
    conn: AsyncConnection,
    event_type: str,
    data: Mapping[str, Any],
    *,
    sealed: bool = False,
    claim: tuple[str, float] | None = None,
) -> str | None:
    """Write ``event_type`` for every enabled endpoint that wants it, in ``conn``'s transaction.
    Returns the event id (``msg_…``, the ``webhook-id``), or ``None`` when no endpoint wants it.
    ``data`` must hold no secret (an authorization link is not one: it only starts a consent),
    unless ``sealed``: then it is stored encrypted (``data_enc``) and opened only to be sent.
    ``claim`` (owner, until): the deliveries start claimed by that owner, who sends them now
    (the worker takes them over if the claim runs out unsettled)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    rows = (
        await conn.execute(
            select(ENDPOINTS.c.id, ENDPOINTS.c.events).where(ENDPOINTS.c.status == ENABLED)
        )
    ).all()
    targets = [row.id for row in rows if _wants(row.events, event_type)]
    if not targets:
        return None
    now = vault.clock.time()
    event_id = "msg_" + new_id(now)
    payload: dict[str, Any] = {"type": event_type, "timestamp": isoformat(now)}
    data_enc: str | None = None
    if sealed:
        data_enc = vault.seal(OUTBOX, "data_enc", event_id, json.dumps(dict(data)))
    else:
        payload["data"] = dict(data)
    await conn.execute(
        insert(OUTBOX).values(
            id=event_id, type=event_type, payload=payload, data_enc=data_enc, created_at=now
        )
    )
    owner, until = claim if claim is not None else (None, None)
    await conn.execute(
        insert(DELIVERIES),
        [
            {
                "id": new_id(now),
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "claimed_by": owner,
                "claimed_until": until,
                "created_at": now,
                "updated_at": now,
            }
            for endpoint_id in targets
        ],
    )
    vault.note_outbox()
    return event_id


async def wanted(conn: AsyncConnection, event_type: str) -> bool:
    """Whether any enabled endpoint wants ``event_type`` (to skip building costly data)."""
    rows = (
        await conn.execute(select(ENDPOINTS.c.events).where(ENDPOINTS.c.status == ENABLED))
    ).all()
    return any(_wants(row.events, event_type) for row in rows)


async def reauthorization_link(vault: Vault, conn: AsyncConnection, account: Any) -> str | None:
    """A fresh authorization link for ``account``, created in ``conn``'s transaction (the state and
    verifier are placeholders: opening the link mints new ones). ``None`` when the vault has no
    link settings, the connection has no OAuth client (bot accounts), or it requires user
    verification and no ``user_verify_url`` was ever given for this account."""
    links = vault.event_links
    if links is None:
        return None
    connection = (
        await conn.execute(
            select(_CONNECTIONS.c.require_user_verification, _CONNECTIONS.c.client_id).where(
                _CONNECTIONS.c.id == account.connection_id
            )
        )
    ).first()
    if connection is None or connection.client_id is None:
        return None  # no OAuth client (a bot connection): a link cannot help, a new token can
    needs_verification = connection.require_user_verification
    verify_url: str | None = None
    if needs_verification:
        verify_url = (
            await conn.execute(
                select(_AUTH_REQUESTS.c.user_verify_url)
                .where(
                    _AUTH_REQUESTS.c.account_id == account.id,
                    _AUTH_REQUESTS.c.user_verify_url.is_not(None),
                )
                .order_by(_AUTH_REQUESTS.c.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if verify_url is None:
            return None
    now = vault.clock.time()
    rid = new_id(now)
    await vault.insert_auth_request(
        conn,
        rid,
        connection_id=account.connection_id,
        account_id=account.id,
        identifier=account.identifier,
        state=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(48),
        redirect_uri=f"{links.public_base}/sso/v1/oauth/{account.connection_id}/callback",
        ttl_seconds=links.ttl,
        user_verify_url=verify_url,
        app_state=None,
        allow_user_change=False,
    )
    return f"{links.public_base}/connect/{rid}"


async def emit_status(
    vault: Vault,
    conn: AsyncConnection,
    before: Any,
    new_status: str,
    reason: str | None,
) -> str | None:
    """``connected_account.status_updated`` for ``before`` (the row as it was) moving to
    ``new_status``; with an authorization link when the user must authorize again."""
    if before.status == new_status or not await wanted(conn, "connected_account.status_updated"):
        return None
    name = (
        await conn.execute(
            select(_CONNECTIONS.c.name).where(_CONNECTIONS.c.id == before.connection_id)
        )
    ).scalar_one_or_none()
    data: dict[str, Any] = {
        "id": before.id,
        "connection_name": name,
        "identifier": before.identifier,
        "old_status": before.status,
        "new_status": new_status,
        "reason": reason,
    }
    if new_status in ("EXPIRED", "DISCONNECTED"):
        link = await reauthorization_link(vault, conn, before)
        if link is not None:
            data["authorization_link"] = link
    return await emit(vault, conn, "connected_account.status_updated", data)


async def account_data(conn: AsyncConnection, row: Row[Any]) -> dict[str, Any]:
    """The common fields of the ``connected_account.*`` events."""
    name = (
        await conn.execute(
            select(_CONNECTIONS.c.name).where(_CONNECTIONS.c.id == row.connection_id)
        )
    ).scalar_one_or_none()
    return {
        "id": row.id,
        "connection_name": name,
        "identifier": row.identifier,
        "status": row.status,
    }


# -- endpoints and deliveries ---------------------------------------------------------------------


class WebhookStore:
    """Endpoints (their secrets encrypted like every secret), deliveries and attempts."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def _endpoint(self, row: Row[Any]) -> EndpointRecord:
        return EndpointRecord(
            id=row.id,
            url=row.url,
            events=tuple(row.events.split()) if row.events else (),
            status=row.status,
            disabled_reason=row.disabled_reason,
            failing_since=row.failing_since,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def create_endpoint(self, url: str, events: str, secret: str) -> EndpointRecord:
        now = self.vault.clock.time()
        eid = new_id(now)
        async with self.vault.write() as conn:
            await conn.execute(
                insert(ENDPOINTS).values(
                    id=eid,
                    url=url,
                    events=events,
                    secret_enc=self.vault.seal(ENDPOINTS, "secret_enc", eid, secret),
                    status=ENABLED,
                    created_at=now,
                    updated_at=now,
                )
            )
            await self.vault.audit(
                conn, "webhook_endpoint.created", data={"endpoint_id": eid, "url": url}
            )
        return await self.get_endpoint(eid)

    async def get_endpoint(self, endpoint_id: str) -> EndpointRecord:
        async with self.vault.engine.connect() as conn:
            row = (
                await conn.execute(select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))
            ).first()
        if row is None:
            raise NotFoundError(
                f"webhook endpoint {endpoint_id!r} does not exist",
                code="WEBHOOK_NOT_FOUND",
                details={"id": endpoint_id},
            )
        return self._endpoint(row)

    async def list_endpoints(self) -> list[EndpointRecord]:
        async with self.vault.engine.connect() as conn:
            rows = (await conn.execute(select(ENDPOINTS).order_by(ENDPOINTS.c.id))).all()
        return [self._endpoint(row) for row in rows]

    async def delete_endpoint(self, endpoint_id: str) -> None:
        async with self.vault.write() as conn:
            result = await conn.execute(delete(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))
            if result.rowcount != 1:
                raise NotFoundError(
                    f"webhook endpoint {endpoint_id!r} does not exist",
                    code="WEBHOOK_NOT_FOUND",
                    details={"id": endpoint_id},
                )
            await self.vault.audit(
                conn, "webhook_endpoint.deleted", data={"endpoint_id": endpoint_id}
            )

    async def rotate_secret(self, endpoint_id: str, secret: str) -> EndpointRecord:
        now = self.vault.clock.time()
        async with self.vault.write() as conn:
            result = await conn.execute(
                update(ENDPOINTS)
                .where(ENDPOINTS.c.id == endpoint_id)
                .values(
                    secret_enc=self.vault.seal(ENDPOINTS, "secret_enc", endpoint_id, secret),
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                raise NotFoundError(
                    f"webhook endpoint {endpoint_id!r} does not exist",
                    code="WEBHOOK_NOT_FOUND",
                    details={"id": endpoint_id},
                )
            await self.vault.audit(
                conn, "webhook_endpoint.secret_rotated", data={"endpoint_id": endpoint_id}
            )
        return await self.get_endpoint(endpoint_id)

    async def set_enabled(self, endpoint_id: str, enabled: bool, reason: str | None) -> bool:
        """Enable or disable an endpoint (with its status event); ``False`` if it already was."""
        now = self.vault.clock.time()
        async with self.vault.write() as conn:
            row = (
                await conn.execute(select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))
            ).first()
            if row is None:
                raise NotFoundError(
                    f"webhook endpoint {endpoint_id!r} does not exist",
                    code="WEBHOOK_NOT_FOUND",
                    details={"id": endpoint_id},
                )
            status = ENABLED if enabled else DISABLED
            if row.status == status:
                return False
            await conn.execute(
                update(ENDPOINTS)
                .where(ENDPOINTS.c.id == endpoint_id)
                .values(
                    status=status,
                    disabled_reason=None if enabled else reason,
                    failing_since=None,
                    updated_at=now,
                )
            )
            await emit(
                self.vault,
                conn,
                "webhook_endpoint.status_updated",
                {
                    "id": endpoint_id,
                    "url": row.url,
                    "old_status": row.status,
                    "new_status": status,
                    "reason": reason,
                },
            )
            await self.vault.audit(
                conn,
                f"webhook_endpoint.{status}",
                data={"endpoint_id": endpoint_id, "reason": reason},
            )
        return True

    # -- deliveries -------------------------------------------------------------------------------

    def _delivery(self, row: Row[Any]) -> DeliveryRecord:
        return DeliveryRecord(
            id=row.id,
            event_id=row.event_id,
            endpoint_id=row.endpoint_id,
            event_type=row.type,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )

    async def list_deliveries(
        self,
        endpoint_id: str,
        *,
        status: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[tuple[DeliveryRecord, list[AttemptRecord]]]:
        """An endpoint's deliveries, newest first, each with its attempts (oldest first)."""
        await self.get_endpoint(endpoint_id)
        if not 1 <= limit <= MAX_PAGE:
            reason = f"must be between 1 and {MAX_PAGE}"
            raise ValidationError(f"limit {reason}", fields={"limit": reason})
        if status is not None and status not in (PENDING, SUCCEEDED, FAILED):
            reason = f"must be one of {PENDING}, {SUCCEEDED}, {FAILED}"
            raise ValidationError(f"status {reason}", fields={"status": reason})
        stmt = (
            select(DELIVERIES, OUTBOX.c.type)
            .join(OUTBOX, OUTBOX.c.id == DELIVERIES.c.event_id)
            .where(DELIVERIES.c.endpoint_id == endpoint_id)
        )
        if status is not None:
            stmt = stmt.where(DELIVERIES.c.status == status)
        if before is not None:
            stmt = stmt.where(DELIVERIES.c.id < before)
        stmt = stmt.order_by(DELIVERIES.c.id.desc()).limit(limit)
        async with self.vault.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
            ids = [row.id for row in rows]
            attempts: dict[str, list[AttemptRecord]] = {i: [] for i in ids}
            if ids:
                for a in (
                    await conn.execute(
                        select(ATTEMPTS)
                        .where(ATTEMPTS.c.delivery_id.in_(ids))
                        .order_by(ATTEMPTS.c.id)
                    )
                ).all():
                    attempts[a.delivery_id].append(
                        AttemptRecord(a.attempt, a.at, a.status_code, a.latency_ms, a.error)
                    )
        return [(self._delivery(row), attempts[row.id]) for row in rows]

    async def resend(self, endpoint_id: str, delivery_id: str) -> DeliveryRecord:
        """Send a delivery's event to its endpoint again, as a new delivery (due now)."""
        now = self.vault.clock.time()
        async with self.vault.write() as conn:
            row = (
                await conn.execute(
                    select(DELIVERIES).where(
                        DELIVERIES.c.id == delivery_id, DELIVERIES.c.endpoint_id == endpoint_id
                    )
                )
            ).first()
            if row is None:
                raise NotFoundError(
                    f"delivery {delivery_id!r} of webhook endpoint {endpoint_id!r} does not exist",
                    code="DELIVERY_NOT_FOUND",
                    details={"endpoint_id": endpoint_id, "delivery_id": delivery_id},
                )
            new = new_id(now)
            await conn.execute(
                insert(DELIVERIES).values(
                    id=new,
                    event_id=row.event_id,
                    endpoint_id=endpoint_id,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            await self.vault.audit(
                conn,
                "webhook_delivery.resent",
                data={"endpoint_id": endpoint_id, "delivery_id": delivery_id, "new": new},
            )
        self.vault.note_outbox()
        async with self.vault.engine.connect() as conn:
            created = (
                await conn.execute(
                    select(DELIVERIES, OUTBOX.c.type)
                    .join(OUTBOX, OUTBOX.c.id == DELIVERIES.c.event_id)
                    .where(DELIVERIES.c.id == new)
                )
            ).one()
        return self._delivery(created)

    async def claim_due(self, owner: str, lease: float, limit: int = 20) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries for ``owner`` (one worker per row; see module)."""
        now = self.vault.clock.time()
        due = (
            select(DELIVERIES.c.id)
            .where(
                DELIVERIES.c.status == PENDING,
                DELIVERIES.c.next_attempt_at <= now,
                or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until < now),
            )
            .order_by(DELIVERIES.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.vault.write() as conn:
            claimed = (
                (
                    await conn.execute(
                        update(DELIVERIES)
                        .where(DELIVERIES.c.id.in_(due.scalar_subquery()))
                        .values(claimed_by=owner, claimed_until=now + lease)
                        .returning(DELIVERIES.c.id)
                    )
                )
                .scalars()
                .all()
            )
            if not claimed:
                return []
            rows = (
                await conn.execute(
                    select(
                        DELIVERIES.c.id,
                        DELIVERIES.c.event_id,
                        DELIVERIES.c.endpoint_id,
                        DELIVERIES.c.attempts,
                        ENDPOINTS.c.url,
                        ENDPOINTS.c.secret_enc,
                        OUTBOX.c.payload,
                        OUTBOX.c.data_enc,
                    )
                    .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
                    .join(OUTBOX, OUTBOX.c.id == DELIVERIES.c.event_id)
                    .where(DELIVERIES.c.id.in_(list(claimed)), DELIVERIES.c.claimed_by == owner)
                )
            ).all()
        return [self._claimed(row) for row in rows]

    def _claimed(self, row: Any) -> ClaimedDelivery:
        payload = dict(row.payload)
        if row.data_enc is not None:
            opened = self.vault.open(OUTBOX, "data_enc", row.event_id, row.data_enc)
            payload["data"] = json.loads(opened.get_secret_value())
        return ClaimedDelivery(
            id=row.id,
            event_id=row.event_id,
            endpoint_id=row.endpoint_id,
            url=row.url,
            secret=self.vault.open(
                ENDPOINTS, "secret_enc", row.endpoint_id, row.secret_enc
            ).get_secret_value(),
            body=json.dumps(payload, separators=(",", ":")).encode("utf-8"),
            attempts=row.attempts,
        )

    async def publish(self, event_type: str, data: Mapping[str, Any]) -> str | None:
        """Write an event in a transaction of its own (for events no stored change causes, such
        as a webhook event from Discord); its id, or ``None`` when no endpoint wants it."""
        async with self.vault.write() as conn:
            return await emit(self.vault, conn, event_type, data)

    async def emit_claimed(
        self,
        event_type: str,
        data: Mapping[str, Any],
        owner: str,
        lease: float,
        *,
        sealed: bool = False,
    ) -> list[ClaimedDelivery]:
        """Write an event (in a transaction of its own) with its deliveries already claimed by
        ``owner`` for ``lease`` seconds, and return them to be sent now: a synchronous delivery
        that still lands in the outbox, so the worker sends it again if this one fails (at
        least once). Empty when no endpoint wants ``event_type``."""
        now = self.vault.clock.time()
        async with self.vault.write() as conn:
            event_id = await emit(
                self.vault, conn, event_type, data, sealed=sealed, claim=(owner, now + lease)
            )
            if event_id is None:
                return []
            rows = (
                await conn.execute(
                    select(
                        DELIVERIES.c.id,
                        DELIVERIES.c.event_id,
                        DELIVERIES.c.endpoint_id,
                        DELIVERIES.c.attempts,
                        ENDPOINTS.c.url,
                        ENDPOINTS.c.secret_enc,
                        OUTBOX.c.payload,
                        OUTBOX.c.data_enc,
                    )
                    .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
                    .join(OUTBOX, OUTBOX.c.id == DELIVERIES.c.event_id)
                    .where(DELIVERIES.c.event_id == event_id)
                    .order_by(DELIVERIES.c.id)
                )
            ).all()
        return [self._claimed(row) for row in rows]

    async def release_claims_of(self, holders: Sequence[str]) -> int:
        """Free the claims of holders known to be gone (a crashed process on this host)."""
        if not holders:
            return 0
        async with self.vault.write() as conn:
            result = await conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.status == PENDING, DELIVERIES.c.claimed_by.in_(list(holders)))
                .values(claimed_by=None, claimed_until=None)
            )
            return int(result.rowcount)

    async def claim_holders(self) -> list[str]:
        """Who holds a claim on a pending delivery now."""
        now = self.vault.clock.time()
        async with self.vault.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(DELIVERIES.c.claimed_by)
                    .where(
                        DELIVERIES.c.status == PENDING,
                        DELIVERIES.c.claimed_by.is_not(None),
                        DELIVERIES.c.claimed_until >= now,
                    )
                    .distinct()
                )
            ).all()
        return [str(row.claimed_by) for row in rows]

    async def record_attempt(
        self,
        claim: ClaimedDelivery,
        owner: str,
        *,
        status_code: int | None,
        latency_ms: float,
        error: str | None,
        next_attempt_at: float | None,
        disable_after: float,
    ) -> bool:
        """Log one attempt and settle the delivery: delivered (2xx), due again at
        ``next_attempt_at``, or given up (``None``). Tracks how long the endpoint has been
        failing; returns ``True`` when it has failed for longer than ``disable_after`` seconds
        (the caller disables it). Only the claim's owner can settle it."""
        now = self.vault.clock.time()
        ok = status_code is not None and 200 <= status_code < 300
        attempt = claim.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempt,
            "last_status_code": status_code,
            "last_error": error,
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": now,
        }
        if ok:
            values.update(status=SUCCEEDED, delivered_at=now)
        elif next_attempt_at is None:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = next_attempt_at
        too_long = False
        async with self.vault.write() as conn:
            settled = await conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == claim.id, DELIVERIES.c.claimed_by == owner)
                .values(**values)
            )
            if settled.rowcount != 1:
                return False  # the claim ran out and someone else has it now
            await conn.execute(
                insert(ATTEMPTS).values(
                    delivery_id=claim.id,
                    endpoint_id=claim.endpoint_id,
                    attempt=attempt,
                    at=now,
                    status_code=status_code,
                    latency_ms=latency_ms,
                    error=error,
                )
            )
            if ok:
                await conn.execute(
                    update(ENDPOINTS)
                    .where(ENDPOINTS.c.id == claim.endpoint_id)
                    .values(failing_since=None)
                )
            else:
                since = (
                    await conn.execute(
                        select(ENDPOINTS.c.failing_since).where(ENDPOINTS.c.id == claim.endpoint_id)
                    )
                ).scalar_one_or_none()
                if since is None:
                    await conn.execute(
                        update(ENDPOINTS)
                        .where(ENDPOINTS.c.id == claim.endpoint_id)
                        .values(failing_since=now)
                    )
                else:
                    too_long = now - since >= disable_after
        return too_long

    async def backlog(self) -> dict[str, int]:
        """Deliveries per status (``pending`` is the backlog still to send)."""
        stmt = select(DELIVERIES.c.status, func.count()).group_by(DELIVERIES.c.status)
        async with self.vault.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {str(status): int(n) for status, n in rows}

    async def purge(self, *, older_than: float) -> int:
        """Delete events older than ``older_than`` whose deliveries are all settled."""
        async with self.vault.write() as conn:
            open_events = select(DELIVERIES.c.event_id).where(DELIVERIES.c.status == PENDING)
            result = await conn.execute(
                delete(OUTBOX).where(
                    and_(OUTBOX.c.created_at < older_than, OUTBOX.c.id.not_in(open_events))
                )
            )
            return int(result.rowcount)
