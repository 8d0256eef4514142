"""The janitor: periodic clean-up inside ``tokenward serve``.

- **Stale ``PENDING_AUTH`` accounts.** Every authorization link creates (or reuses) an account in
  ``PENDING_AUTH``; users who never finish leave it behind. An account is stale once it has not
  changed for ``TOKENWARD_PENDING_ACCOUNT_TTL_SECONDS`` (default a day; ``0`` keeps them) and has
  no live link: no auth request that is unexpired and unconsumed, and none consumed within the
  TTL (its callback may still be storing tokens). Stale accounts are deleted in batches, each
  batch in one transaction with one ``accounts.pending_deleted`` event naming what went.
- **Long-expired auth requests.** Their state and PKCE verifier are useless after expiry; they are
  deleted a day after it (``auth_requests.purged`` event per batch), except those whose account
  still waits for the application's ``verify`` call.

Each pass re-checks every condition inside its ``DELETE``, so a link created at the same moment
keeps its account. The janitor runs every ``TOKENWARD_JANITOR_INTERVAL_SECONDS`` (default 600;
``0`` disables it), only while the process is ready, and never stops on an error: a failed pass
is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, delete, exists, insert, or_, select

from tokenward.clock import Clock
from tokenward.tasks import cancel_and_wait
from tokenward.vault.db import write_engine
from tokenward.vault.models import AccountRow, AccountStatus, AuthRequestRow, EventRow
from tokenward.vault.repository import Vault

log = logging.getLogger("tokenward.janitor")

ACCOUNTS: Table = AccountRow.__table__  # type: ignore[assignment]
AUTH_REQUESTS: Table = AuthRequestRow.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]

AUTH_REQUEST_RETENTION_S = 86_400.0
FIRST_PASS_AFTER_S = 60.0
BATCH_SIZE = 500
MAX_BATCHES_PER_PASS = 20


@dataclass(frozen=True)
class JanitorReport:
    accounts_deleted: int
    auth_requests_deleted: int
    batches: int
    events_deleted: int = 0


class Janitor:
    def __init__(
        self,
        vault: Vault,
        clock: Clock,
        *,
        pending_ttl: float,
        interval: float,
        batch_size: int = BATCH_SIZE,
        ready: Callable[[], bool] = lambda: True,
        purge_events: Callable[[float], Awaitable[int]] | None = None,
        event_retention: float = 7 * 86400.0,
        purge_sessions: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.vault = vault
        self.clock = clock
        self.pending_ttl = pending_ttl
        self.interval = interval
        self.batch_size = batch_size
        self.ready = ready
        self.purge_events = purge_events
        self.event_retention = event_retention
        self.purge_sessions = purge_sessions
        self.passes = 0
        self._task: asyncio.Task[None] | None = None

    # -- one pass ------------------------------------------------------------------------------

    async def run_once(self) -> JanitorReport:
        """Delete what is stale now; returns how much went."""
        accounts = auth_requests = batches = 0
        for _ in range(MAX_BATCHES_PER_PASS):
            deleted = await self._delete_stale_accounts()
            if deleted:
                batches += 1
            accounts += deleted
            if deleted < self.batch_size:
                break
        for _ in range(MAX_BATCHES_PER_PASS):
            deleted = await self._purge_auth_requests()
            if deleted:
                batches += 1
            auth_requests += deleted
            if deleted < self.batch_size:
                break
        events = 0
        if self.purge_events is not None:
            # Webhook events whose deliveries are all settled, past their retention.
            events = await self.purge_events(self.clock.time() - self.event_retention)
        if self.purge_sessions is not None:
            await self.purge_sessions()  # dashboard sessions past their expiry
        self.passes += 1
        if accounts or auth_requests:
            log.info(
                "janitor: deleted %d stale PENDING_AUTH account(s), %d expired auth request(s)",
                accounts,
                auth_requests,
            )
        return JanitorReport(accounts, auth_requests, batches, events)

    async def _delete_stale_accounts(self) -> int:
        if self.pending_ttl <= 0:
            return 0
        now = self.clock.time()
        cutoff = now - self.pending_ttl
        a, r = ACCOUNTS.c, AUTH_REQUESTS.c
        live_link = exists().where(
            r.account_id == a.id,
            or_(and_(r.consumed_at.is_(None), r.expires_at > now), r.consumed_at >= cutoff),
        )
        stale = and_(
            a.status == AccountStatus.PENDING_AUTH.value,
            a.updated_at < cutoff,
            a.created_at < cutoff,
            ~live_link,
        )
        batch = select(a.id).where(stale).order_by(a.id).limit(self.batch_size)
        async with write_engine(self.vault.engine).begin() as conn:
            rows = (
                await conn.execute(
                    delete(ACCOUNTS)
                    .where(a.id.in_(batch.scalar_subquery()), stale)
                    .returning(a.id, a.connection_id, a.identifier)
                )
            ).all()
            if rows:
                await conn.execute(
                    insert(EVENTS).values(
                        at=now,
                        kind="accounts.pending_deleted",
                        data=_accounts_event(rows, self.pending_ttl),
                    )
                )
        return len(rows)

    async def _purge_auth_requests(self) -> int:
        now = self.clock.time()
        a, r = ACCOUNTS.c, AUTH_REQUESTS.c
        awaiting_verify = exists().where(
            a.id == r.account_id,
            a.status == AccountStatus.PENDING_VERIFICATION.value,
            r.completed_at.is_not(None),
        )
        expired = and_(r.expires_at < now - AUTH_REQUEST_RETENTION_S, ~awaiting_verify)
        batch = select(r.id).where(expired).order_by(r.id).limit(self.batch_size)
        async with write_engine(self.vault.engine).begin() as conn:
            rows = (
                await conn.execute(
                    delete(AUTH_REQUESTS)
                    .where(r.id.in_(batch.scalar_subquery()), expired)
                    .returning(r.id)
                )
            ).all()
            if rows:
                await conn.execute(
                    insert(EVENTS).values(
                        at=now,
                        kind="auth_requests.purged",
                        data={"count": len(rows), "expired_before": now - AUTH_REQUEST_RETENTION_S},
                    )
                )
        return len(rows)

    # -- in serve ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        delay = min(self.interval, FIRST_PASS_AFTER_S)
        while True:
            # Wait in real time, like the bookkeeper: a ManualClock's sleep would move the
            # clock that the rest of the process reads.
            await asyncio.sleep(delay)
            delay = self.interval
            if not self.ready():
                continue
            try:
                await self.run_once()
            except Exception as exc:  # never let the janitor die; the next pass tries again
                log.warning(
                    "janitor: pass failed (%s); next try in %g s", type(exc).__name__, delay
                )


def _accounts_event(rows: Any, ttl: float) -> dict[str, Any]:
    return {
        "count": len(rows),
        "ttl_seconds": ttl,
        "accounts": [
            {"id": row.id, "connection_id": row.connection_id, "identifier": row.identifier}
            for row in rows
        ],
    }
