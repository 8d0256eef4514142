"""Bookkeeping off the request path: audit events of tool calls and proxied requests (with the
API client that made them), and ``last_used_at``.

A proxied call or a tool call must not wait for a database write (the open-source peer spends a
SQL write per call on a "last fetched" timestamp). Calls note what happened in memory; a
background task writes it in one transaction every ``interval`` seconds, or sooner when
``max_pending`` notes pile up. On shutdown everything pending is written. If the database is
unavailable, the notes are kept (up to a bound) and written later; the bound drops the oldest
events first, and a warning says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from tokenward.clock import Clock
from tokenward.tasks import cancel_and_wait
from tokenward.vault.actor import current_actor
from tokenward.vault.repository import Vault

log = logging.getLogger("tokenward.bookkeeping")

PendingEvent = tuple[float, str, str | None, str | None, Mapping[str, Any]]


class Bookkeeper:
    def __init__(
        self,
        vault: Vault,
        clock: Clock,
        *,
        interval: float = 1.0,
        max_pending: int = 5000,
        max_backlog: int = 100_000,
    ) -> None:
        self.vault = vault
        self.clock = clock
        self.interval = interval
        self.max_pending = max_pending
        self._events: deque[PendingEvent] = deque(maxlen=max_backlog)
        self._last_used: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def note_event(
        self,
        kind: str,
        connection_id: str | None,
        account_id: str | None,
        data: Mapping[str, Any],
    ) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        noted = dict(data)
        actor = current_actor()  # read now: the flush runs in another task
        if actor is not None:
            noted.setdefault("actor", actor)
        self._events.append((self.clock.time(), kind, connection_id, account_id, noted))
        if len(self._events) >= self.max_pending:
            self._wake.set()

    def note_used(self, account_id: str) -> None:
        self._last_used[account_id] = self.clock.time()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending now (also called on shutdown)."""
        if not self._events and not self._last_used:
            return
        events = list(self._events)
        used = self._last_used
        self._events.clear()
        self._last_used = {}
        try:
            await self.vault.record_usage(events, used)
        except Exception as exc:  # the database may be briefly unavailable: keep the notes
            log.warning(
                "could not write %d usage events (%s); will retry", len(events), type(exc).__name__
            )
            self._events.extendleft(reversed(events))
            for account_id, at in used.items():
                self._last_used[account_id] = max(at, self._last_used.get(account_id, at))
        if self.dropped:
            log.warning("usage backlog full: dropped %d oldest events", self.dropped)
            self.dropped = 0

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.flush()
