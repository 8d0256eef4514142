"""Which encryption keys the database needs, and whether the configured keys can open it.

Every secret column holds an envelope ``tw1.{kid}.{data}`` (:mod:`tokenward.vault.crypto`), so
the key ids the database depends on can be read without decrypting anything. Two mistakes are
caught here, before a process touches a secret:

- the key file is missing (and ``TOKENWARD_ENCRYPTION_KEYS`` unset) while the database holds
  ciphertext: the file was lost, moved, or ``TOKENWARD_DATA_DIR`` points elsewhere. Generating a
  fresh key — what a first start does — would let the process write new secrets that no backup
  of the old key can read, and nothing old would open. So this refuses and says how to restore.
- the configured keys lack a key id that stored values use (a key dropped from the variable or
  retired too early): refused, naming the ids.

Only a database without any ciphertext (a fresh install, or one whose secrets were all deleted)
gets a generated key file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, and_, func, literal, or_, select, union
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokenward.errors import ConfigError
from tokenward.vault.crypto import ENVELOPE_PREFIX, Keyring, ensure_key_file
from tokenward.vault.models import SECRET_COLUMNS

_PREFIX = f"{ENVELOPE_PREFIX}."


def _tables() -> list[tuple[Table, list[str]]]:
    return [(model.__table__, list(names)) for model, names in SECRET_COLUMNS]  # type: ignore[misc]


def _kid_of(column: ColumnElement[str], dialect: str) -> ColumnElement[str]:
    """SQL for the key id inside an envelope ``tw1.{kid}.{data}``."""
    if dialect == "postgresql":
        return func.split_part(column, ".", 2)
    rest = func.substr(column, len(_PREFIX) + 1)  # SQLite: after "tw1."
    return func.substr(rest, 1, func.instr(rest, ".") - 1)


async def _tables_exist(conn: AsyncConnection) -> bool:
    def check(sync_conn: object) -> bool:
        from sqlalchemy import inspect

        inspector = inspect(sync_conn)
        return all(inspector.has_table(table.name) for table, _ in _tables())

    return await conn.run_sync(check)


async def key_usage(engine: AsyncEngine) -> dict[str, int]:
    """How many rows use each key id (a row with two secrets under one key counts once)."""
    usage: dict[str, int] = {}
    async with engine.connect() as conn:
        if not await _tables_exist(conn):
            return usage
        for table, names in _tables():
            parts = [
                select(table.c.id, _kid_of(table.c[name], engine.dialect.name).label("kid")).where(
                    table.c[name].startswith(_PREFIX)
                )
                for name in names
            ]
            rows = union(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
            stmt = select(rows.c.kid, func.count()).group_by(rows.c.kid)
            for kid, count in (await conn.execute(stmt)).all():
                usage[str(kid)] = usage.get(str(kid), 0) + int(count)
    return usage


async def holds_ciphertext(engine: AsyncEngine) -> bool:
    """Whether any secret column of any row is set (stops at the first one)."""
    async with engine.connect() as conn:
        if not await _tables_exist(conn):
            return False
        for table, names in _tables():
            condition = or_(*(table.c[n].is_not(None) for n in names))
            found = (await conn.execute(select(literal(1)).where(condition).limit(1))).first()
            if found is not None:
                return True
    return False


async def uses_unknown_keys(engine: AsyncEngine, kids: Sequence[str]) -> bool:
    """Whether any stored value is sealed under a key id outside ``kids`` (stops at the first)."""
    async with engine.connect() as conn:
        if not await _tables_exist(conn):
            return False
        for table, names in _tables():
            for name in names:
                column = table.c[name]
                known = [column.startswith(f"{_PREFIX}{kid}.", autoescape=True) for kid in kids]
                condition: ColumnElement[bool] = column.is_not(None)
                if known:
                    condition = and_(condition, ~or_(*known))
                found = (await conn.execute(select(literal(1)).where(condition).limit(1))).first()
                if found is not None:
                    return True
    return False


@dataclass(frozen=True)
class KeySource:
    """Where the keys come from, for messages: the variable, or the key file's path."""

    from_env: bool
    key_file: str | None

    def describe(self) -> str:
        return "TOKENWARD_ENCRYPTION_KEYS" if self.from_env else f"key file {self.key_file}"


def source_of(keyring: Keyring) -> KeySource:
    path = keyring.key_file
    return KeySource(from_env=path is None, key_file=None if path is None else str(path))


def _summary(usage: Mapping[str, int]) -> str:
    return ", ".join(
        f"{kid!r} ({rows} row{'' if rows == 1 else 's'})" for kid, rows in usage.items()
    )


def missing_key_file_error(keyring: Keyring, usage: Mapping[str, int]) -> ConfigError:
    path = str(keyring.key_file)
    return ConfigError(
        f"encryption key file {path} is missing and TOKENWARD_ENCRYPTION_KEYS is unset, but the "
        f"database holds encrypted secrets (key ids {_summary(usage) or 'unknown'}); restore the "
        "key file from your backup (or set TOKENWARD_ENCRYPTION_KEYS, or point "
        "TOKENWARD_DATA_DIR at the directory that has it) — tokenward will not generate a new key, "
        "which could not decrypt them",
        code="KEY_FILE_MISSING",
        details={"path": path, "kids": dict(usage)},
    )


def unknown_keys_error(keyring: Keyring, usage: Mapping[str, int]) -> ConfigError:
    configured = list(keyring.kids)
    missing = {kid: rows for kid, rows in usage.items() if kid not in configured}
    source = source_of(keyring).describe()
    return ConfigError(
        f"the database holds secrets encrypted with key id(s) {_summary(missing)}, which are not "
        f"configured ({source} has {', '.join(map(repr, configured))}); add the missing key(s) "
        "back (from your backup) before starting tokenward",
        code="KEY_MISSING",
        details={"missing": missing, "configured": configured, "source": source},
    )


async def prepare_keys(engine: AsyncEngine, keyring: Keyring) -> bool:
    """Make sure ``keyring`` can open everything the database holds (see the module docstring).

    Creates the key file for a database without ciphertext; returns whether it did. Raises
    :class:`ConfigError` (``KEY_FILE_MISSING`` or ``KEY_MISSING``) for the two mistakes. The
    database must be reachable and migrated (or empty).
    """
    created = False
    if not keyring.loaded:
        path = keyring.key_file
        if path is None:  # pragma: no cover - an env keyring always has keys
            raise ConfigError("no encryption keys configured")
        if await holds_ciphertext(engine):
            raise missing_key_file_error(keyring, await key_usage(engine))
        created = ensure_key_file(path)
        if not keyring.loaded:  # pragma: no cover - the file exists now
            raise ConfigError(f"key file {path} could not be loaded")
    if await uses_unknown_keys(engine, keyring.kids):
        raise unknown_keys_error(keyring, await key_usage(engine))
    return created
