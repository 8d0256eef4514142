"""Is this process ready to serve? The database, its schema and the key material.

Three things must hold before a request can be served: the database answers, its schema is the
revision this version needs, and the encryption keys can open what the database holds
(:mod:`tokenward.vault.keys`; a fresh database gets its key file here).

A command line run (``strict``) needs all three at once and otherwise stops with one line
saying what is wrong. ``tokenward serve`` distinguishes what can heal from what cannot:

- a database that is down, unreachable or not migrated yet heals without a restart (it comes
  back; an operator runs ``tokenward db upgrade``). ``serve`` starts anyway, answers
  ``/healthz`` (liveness) but not ``/readyz`` (503 naming what is wrong), and retries in the
  background every few seconds until everything holds;
- settings that are wrong (an unsupported database URL, malformed keys) and keys that cannot
  open the stored secrets (key file missing in front of ciphertext, a key id missing) make
  ``serve`` refuse to start: a restart with the same settings cannot succeed, and starting would
  only hide the mistake behind a load balancer's retries. If such a problem only shows once the
  database comes back, the process stays up, not ready, and logs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from tokenward.config import Settings
from tokenward.errors import ConfigError, TokenwardError
from tokenward.tasks import cancel_and_wait
from tokenward.vault.db import (
    database_label,
    head_revision,
    known_revisions,
    not_migrated_error,
    read_revision,
    unreachable_error,
    upgrade_async,
)
from tokenward.vault.keys import prepare_keys
from tokenward.vault.repository import Vault

if TYPE_CHECKING:
    from tokenward.shared import SharedRedis

log = logging.getLogger("tokenward.readiness")

PROBE_TIMEOUT_S = 5.0
RETRY_INTERVAL_S = 2.0


@dataclass
class ReadinessReport:
    """What ``/readyz`` answers: ``ready`` and one entry per check (``ok`` plus details)."""

    ready: bool
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not_ready", "checks": self.checks}


class Readiness:
    def __init__(
        self, settings: Settings, vault: Vault, *, shared: SharedRedis | None = None
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.shared = shared
        self.migrate = settings.is_sqlite
        self.prepared = False
        self._database: TokenwardError | None = None
        self._schema: TokenwardError | None = None
        self._keys: TokenwardError | None = None
        self._revision: str | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._hooks: list[Callable[[], Awaitable[None]]] = []

    def on_ready(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` once, when the process first becomes ready (for start-up work that needs
        the database, such as recovering interrupted refreshes)."""
        self._hooks.append(hook)

    # -- start-up ------------------------------------------------------------------------------

    async def start(self, *, serving: bool) -> None:
        """Prepare; a CLI run (``serving=False``) raises the first problem. ``serve`` raises only
        what cannot heal (:class:`ConfigError`) and keeps retrying the rest in the background."""
        ready = await self.prepare(strict=not serving)
        if not ready and serving and self._task is None:
            for problem in (self._database, self._schema):
                if problem is not None:
                    log.warning("not ready: %s", problem.message)
            self._task = asyncio.get_running_loop().create_task(self._retry())

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _retry(self) -> None:
        last: str | None = None
        while not self.prepared:
            await asyncio.sleep(RETRY_INTERVAL_S)  # real waiting; a ManualClock must not move
            try:
                await self.prepare(strict=False)
            except ConfigError as exc:
                if exc.message != last:
                    log.error("not ready: %s", exc.message)
                last = exc.message
            except Exception:  # keep trying; the failure is in the readiness report
                log.exception("readiness check failed")
        log.info("ready: %s", database_label(self.settings))

    async def prepare(self, *, strict: bool) -> bool:
        """Reach the database, migrate it where allowed (SQLite), load and check the keys.

        Returns whether everything holds. With ``strict`` a problem raises
        (:class:`DatabaseUnavailable`, :class:`DatabaseNotMigrated`); key problems
        (:class:`ConfigError`) always raise.
        """
        async with self._lock:
            if self.prepared:
                return True
            if not await self._reach_and_migrate():
                problem = self._database or self._schema
                if strict and problem is not None:
                    raise problem
                return False
            try:
                created = await prepare_keys(self.vault.engine, self.vault.keyring)
            except ConfigError as exc:
                self._keys = exc
                raise
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                self._database = unreachable_error(self.settings, exc)
                if strict:
                    raise self._database from None
                return False
            if created:
                log.info("created the encryption key file %s", self.vault.keyring.key_file)
            self._keys = None
            self.prepared = True
        for hook in self._hooks:
            await hook()
        return True

    async def _reach_and_migrate(self) -> bool:
        if not await self._probe():
            return False
        current = self._revision
        if current != head_revision() and self.migrate and self._migratable(current):
            try:
                await upgrade_async(self.settings.effective_database_url)
            except (SQLAlchemyError, OSError) as exc:
                self._database = unreachable_error(self.settings, exc)
                return False
            if not await self._probe():
                return False
        return self._schema is None

    @staticmethod
    def _migratable(current: str | None) -> bool:
        return current is None or current in known_revisions()

    async def _probe(self) -> bool:
        """Read the schema revision (which proves the database reachable); record problems.
        Returns whether the database answered."""
        try:
            current = await asyncio.wait_for(read_revision(self.vault.engine), PROBE_TIMEOUT_S)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            self._database = unreachable_error(self.settings, exc)
            self._schema = None
            return False
        self._database = None
        self._revision = current
        self._schema = (
            None if current == head_revision() else not_migrated_error(self.settings, current)
        )
        return True

    # -- /readyz -------------------------------------------------------------------------------

    async def report(self) -> ReadinessReport:
        """A live check: the database answers now, at the right revision, with keys loaded."""
        if not self.prepared:
            with contextlib.suppress(TokenwardError):
                await self.prepare(strict=False)
        if self.prepared:
            await self._probe()
        label = database_label(self.settings)
        database: dict[str, Any] = {"ok": self._database is None, "database": label}
        if self._database is not None:
            database["error"] = self._database.message
        schema: dict[str, Any] = {"head": head_revision()}
        if self._database is not None:
            schema.update(ok=False, current=None, error="not checked: the database is unreachable")
        else:
            schema.update(ok=self._schema is None, current=self._revision)
            if self._schema is not None:
                schema["error"] = self._schema.message
        keys: dict[str, Any] = {"ok": self.prepared and self._keys is None}
        if self._keys is not None:
            keys["error"] = self._keys.message
        elif not self.prepared:
            keys["error"] = (
                "encryption key material is not loaded: it is checked against the database "
                "once the database is reachable and migrated"
            )
        checks = {"database": database, "schema": schema, "keys": keys}
        if self.shared is not None:
            # Reported, never failing: without Redis calls still work on per-process limits.
            await self.shared.ping()
            checks["redis"] = self.shared.report()
        return ReadinessReport(all(c["ok"] for c in checks.values()), checks)
