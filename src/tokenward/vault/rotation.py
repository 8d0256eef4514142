"""Online key rotation: re-encrypt every secret column under the active key while serving.

Design
------
Rotation has two steps. First the new key becomes active: ``tokenward keys rotate`` writes a new
key at the head of ``encryption-keys.json`` (with ``TOKENWARD_ENCRYPTION_KEYS`` set it cannot edit
the environment, so the operator puts the new key first there and restarts the servers; the
command then only re-encrypts). A key-file keyring notices that the file changed, so running
servers seal every value they write from then on under the new key, and they can still open
values under the old keys, which stay in the file.

Then every row is walked in id order, a batch at a time, and each secret column whose envelope
names another key is decrypted and sealed again under the active key, with the same associated
data (table, column, row id). The servers keep reading and writing meanwhile, so a row may change
between the moment rotation read it and the moment it writes it back — the typical case is a
token refresh storing new tokens. Writing back blindly would put the *old* tokens back and lose
the refreshed ones (and Discord's refresh tokens are single-use, so the grant would be gone).
Each row is therefore written with a compare-and-swap: ``UPDATE ... WHERE id = ? AND col = <the
ciphertext we read>`` for every secret column, plus ``version = <the version we read>`` for
accounts. If another writer got there first the update matches no row; rotation re-reads that
row and tries again (the concurrent write is usually already under the new key, and then there
is nothing left to do). Rotation never bumps ``version``: the plaintext is unchanged.

A server that sealed a value under the old key just before it noticed the new key can commit it
after rotation passed that row. So rotation repeats its pass until a pass finds nothing under an
old key (bounded by ``max_passes``), and reports what remains. A value that does not decrypt (its
key is gone or it was tampered with) is reported by table, column and row id — never by value —
and left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tokenward.config import Settings
from tokenward.errors import ConfigError, CryptoError
from tokenward.vault.crypto import (
    ENVELOPE_PREFIX,
    Keyring,
    aad,
    add_key_to_file,
    key_file_path,
)
from tokenward.vault.db import write_engine
from tokenward.vault.models import SECRET_COLUMNS

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(rows_done, rows_total)`` after each batch."""

MAX_ROW_ATTEMPTS = 8


@dataclass
class RotationReport:
    active_kid: str
    key_added: bool
    rows_scanned: int = 0
    rows_updated: int = 0
    values_reencrypted: int = 0
    cas_retries: int = 0
    passes: int = 0
    remaining: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "active_kid": self.active_kid,
            "key_added": self.key_added,
            "rows_scanned": self.rows_scanned,
            "rows_updated": self.rows_updated,
            "values_reencrypted": self.values_reencrypted,
            "cas_retries": self.cas_retries,
            "passes": self.passes,
            "remaining": self.remaining,
            "failed": list(self.failed),
        }


def prepare_active_key(settings: Settings, *, now: float | None = None) -> tuple[Keyring, bool]:
    """Make a new key active in the key file (unless keys come from the environment).

    Returns the keyring to rotate with and whether a key was added.
    """
    if settings.encryption_keys is not None and settings.encryption_keys.strip():
        return Keyring.from_env_value(settings.encryption_keys), False
    path = key_file_path(settings.data_dir)
    if not path.exists():  # prepare_keys runs first and creates it for an empty database
        raise ConfigError(
            f"key file {path} is missing; nothing to rotate from",
            code="KEY_FILE_MISSING",
            details={"path": str(path)},
        )
    add_key_to_file(path, now=now)
    return Keyring.from_key_file(path), True


def _stale(columns: Sequence[Any], prefix: str) -> ColumnElement[bool]:
    return or_(
        *(and_(col.is_not(None), ~col.startswith(prefix, autoescape=True)) for col in columns)
    )


async def count_stale(engine: AsyncEngine, keyring: Keyring) -> int:
    """How many rows hold at least one secret not sealed under the active key."""
    prefix = f"{ENVELOPE_PREFIX}.{keyring.active_kid}."
    total = 0
    async with engine.connect() as conn:
        for model, names in SECRET_COLUMNS:
            table: Table = model.__table__  # type: ignore[assignment]
            cols = [table.c[n] for n in names]
            stmt = select(func.count()).select_from(table).where(_stale(cols, prefix))
            total += int((await conn.execute(stmt)).scalar_one())
    return total


class _Rotator:
    def __init__(
        self,
        engine: AsyncEngine,
        keyring: Keyring,
        report: RotationReport,
        batch_size: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.engine = engine
        self.writer = write_engine(engine)
        self.keyring = keyring
        self.report = report
        self.batch_size = batch_size
        self.progress = progress
        self.done = 0
        self.total = 0
        self.broken: set[tuple[str, str]] = set()

    def _reseal(self, table: Table, row: Any, names: Sequence[str]) -> dict[str, str] | None:
        """New envelopes for the row's stale columns; ``None`` if one does not decrypt."""
        values: dict[str, str] = {}
        for name in names:
            old = row._mapping[name]
            if old is None or self.keyring.is_current(old):
                continue
            binding = aad(table.name, name, row.id)
            try:
                plain = self.keyring.decrypt(old, binding)
            except CryptoError as exc:
                self.report.failed.append(f"{table.name}.{name}:{row.id} ({exc.message})")
                self.broken.add((table.name, row.id))
                return None
            values[name] = self.keyring.encrypt(plain, binding)
        return values

    async def _swap(self, table: Table, row: Any, names: Sequence[str]) -> bool | None:
        """CAS one row. True: written; False: lost the race; None: nothing to do / broken."""
        values = self._reseal(table, row, names)
        if not values:
            return None
        guards = [table.c.id == row.id]
        for name in names:
            old = row._mapping[name]
            guards.append(table.c[name].is_(None) if old is None else table.c[name] == old)
        if "version" in table.c:
            guards.append(table.c.version == row.version)
        async with self.writer.begin() as conn:
            result = await conn.execute(update(table).where(*guards).values(**values))
        if result.rowcount == 1:
            self.report.rows_updated += 1
            self.report.values_reencrypted += len(values)
            return True
        return False

    async def _retry_row(self, table: Table, names: Sequence[str], row_id: str) -> None:
        cols = [table.c.id, *(table.c[n] for n in names)]
        if "version" in table.c:
            cols.append(table.c.version)
        for _ in range(MAX_ROW_ATTEMPTS):
            self.report.cas_retries += 1
            async with self.engine.connect() as conn:
                row = (await conn.execute(select(*cols).where(table.c.id == row_id))).first()
            if row is None:
                return  # deleted meanwhile
            outcome = await self._swap(table, row, names)
            if outcome is not False:
                return
        self.report.failed.append(f"{table.name}:{row_id} (kept changing; run rotate again)")

    async def table_pass(self, table: Table, names: Sequence[str]) -> int:
        prefix = f"{ENVELOPE_PREFIX}.{self.keyring.active_kid}."
        cols = [table.c.id, *(table.c[n] for n in names)]
        if "version" in table.c:
            cols.append(table.c.version)
        stale = _stale([table.c[n] for n in names], prefix)
        last_id = ""
        handled = 0
        while True:
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(*cols)
                        .where(stale, table.c.id > last_id)
                        .order_by(table.c.id)
                        .limit(self.batch_size)
                    )
                ).all()
            if not rows:
                return handled
            last_id = rows[-1].id
            for row in rows:
                if (table.name, row.id) in self.broken:
                    continue
                self.report.rows_scanned += 1
                handled += 1
                if await self._swap(table, row, names) is False:
                    await self._retry_row(table, names, row.id)
                self.done += 1
            self.total = max(self.total, self.done)
            if self.progress is not None:
                self.progress(self.done, self.total)


async def rotate(
    engine: AsyncEngine,
    keyring: Keyring,
    *,
    key_added: bool = False,
    batch_size: int = 200,
    max_passes: int = 5,
    progress: ProgressCallback | None = None,
) -> RotationReport:
    """Re-encrypt every secret under ``keyring``'s active key (see the module docstring)."""
    report = RotationReport(active_kid=keyring.active_kid, key_added=key_added)
    rotator = _Rotator(engine, keyring, report, batch_size, progress)
    rotator.total = await count_stale(engine, keyring)
    if progress is not None:
        progress(0, rotator.total)
    for _ in range(max_passes):
        report.passes += 1
        handled = 0
        for model, names in SECRET_COLUMNS:
            table: Table = model.__table__  # type: ignore[assignment]
            handled += await rotator.table_pass(table, names)
        if handled == 0:
            break
    report.remaining = await count_stale(engine, keyring)
    if progress is not None:
        progress(rotator.done, max(rotator.total, rotator.done))
    return report
