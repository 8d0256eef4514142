"""Engines and migrations.

SQLite (``aiosqlite``) is the embedded default; PostgreSQL (``asyncpg``) when the database URL
says so. On SQLite every connection runs in WAL mode with a 30 s busy timeout and foreign keys
on, and the driver's implicit transactions are replaced by explicit ``BEGIN``: sessions made from
:func:`write_engine` start with ``BEGIN IMMEDIATE`` so a read-then-write transaction takes the
write lock up front (waiting on the busy timeout) instead of failing with ``SQLITE_BUSY`` when it
tries to upgrade a read lock that another writer has overtaken.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, pool, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tokenward.config import Settings
from tokenward.errors import ConfigError, DatabaseNotMigrated, DatabaseUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10.0
_IMMEDIATE = "tokenward_sqlite_immediate"


def normalize_database_url(url: str) -> str:
    """Map the spellings people use onto the async drivers tokenward ships with."""
    url = url.strip()
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    scheme = url.split(":", 1)[0]
    raise ConfigError(
        f"TOKENWARD_DATABASE_URL: unsupported database scheme {scheme!r} "
        "(use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db)",
        details={"field": "TOKENWARD_DATABASE_URL", "scheme": scheme},
    )


def _url_of(target: Settings | str) -> URL:
    raw = target.effective_database_url if isinstance(target, Settings) else target
    return make_url(normalize_database_url(raw))


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; "begin" below issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(target: Settings | str, *, null_pool: bool = False, **kwargs: Any) -> AsyncEngine:
    """An async engine for the configured database (Settings or a URL)."""
    url = _url_of(target)
    options: dict[str, Any] = dict(kwargs)
    if null_pool:
        options["poolclass"] = pool.NullPool
    if url.get_backend_name() == "sqlite":
        database = url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        options.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_async_engine(url, **options)
        _install_sqlite_hooks(engine)
        return engine
    options.setdefault("pool_pre_ping", True)
    # asyncpg waits 60 s for an unreachable host by default; a wrong host should say so sooner.
    options.setdefault("connect_args", {}).setdefault("timeout", PG_CONNECT_TIMEOUT_S)
    return create_async_engine(url, **options)


def write_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions take SQLite's write lock at BEGIN."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{_IMMEDIATE: True})


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


# ---------------------------------------------------------------------------------------------
# Migrations


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["tokenward_url"] = normalize_database_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision`` (synchronous; not from inside a running loop)."""
    from alembic import command

    command.upgrade(_alembic_config(url), revision)
    return current_revision(url)


def downgrade(url: str, revision: str) -> str | None:
    """Revert migrations down to ``revision`` (``"base"`` drops every table)."""
    from alembic import command

    command.downgrade(_alembic_config(url), revision)
    return current_revision(url)


async def upgrade_async(url: str, revision: str = "head") -> str | None:
    """:func:`upgrade` for async callers (runs Alembic in a worker thread)."""
    return await asyncio.to_thread(upgrade, url, revision)


# The revisions are read from the migration files' ``revision`` / ``down_revision`` lines
# rather than through Alembic: importing Alembic costs about 0.1 s, and ``tokenward serve``
# needs these (and the database's revision) before it is ready, while Alembic itself is only
# needed to migrate. A layout this reading does not understand falls back to Alembic.


@functools.cache
def _revision_graph() -> dict[str, tuple[str, ...]] | None:
    """Each revision → the revisions it revises, from ``migrations/versions/*.py``; ``None``
    when a file does not state them as plain literals (then Alembic reads them)."""
    graph: dict[str, tuple[str, ...]] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values: dict[str, Any] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets: list[ast.expr]
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            elif isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            else:
                continue
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    try:
                        values[target.id] = ast.literal_eval(value)
                    except ValueError:
                        return None
        if path.name == "__init__.py" and not values:
            continue
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str) or revision in graph:
            return None
        downs = (down,) if isinstance(down, str) else tuple(down or ())
        if not all(isinstance(d, str) for d in downs):
            return None
        graph[revision] = downs
    return graph


@functools.cache
def head_revision() -> str | None:
    graph = _revision_graph()
    if graph is not None:
        revised = {d for downs in graph.values() for d in downs}
        heads = [r for r in graph if r not in revised]
        if len(heads) == 1 and revised <= graph.keys():
            return heads[0]
        if not graph:
            return None
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


@functools.cache
def known_revisions() -> frozenset[str]:
    graph = _revision_graph()
    if graph is not None:
        return frozenset(graph)
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revision(url: str) -> str | None:
    """The revision the database is at (``None`` before the first migration)."""

    async def _read() -> str | None:
        from alembic.runtime.migration import MigrationContext

        engine = create_engine(url, null_pool=True)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(_read())


async def current_revision_async(url: str) -> str | None:
    return await asyncio.to_thread(current_revision, url)


async def read_revision(engine: AsyncEngine) -> str | None:
    """The revision the engine's database is at (``None`` before the first migration); opens a
    connection, so it also proves the database reachable."""
    async with engine.connect() as conn:
        return await conn.run_sync(_read_version_table)


def _read_version_table(sync: Connection) -> str | None:
    """What Alembic's ``MigrationContext.get_current_revision`` answers, without importing
    Alembic (see :func:`head_revision`) unless the table holds more than one revision."""
    if not inspect(sync).has_table(VERSION_TABLE):
        return None
    rows = [str(r) for r in sync.execute(text("SELECT version_num FROM alembic_version")).scalars()]
    if len(rows) <= 1:
        return rows[0] if rows else None
    from alembic.runtime.migration import MigrationContext  # it says what is wrong

    return MigrationContext.configure(sync).get_current_revision()


# ---------------------------------------------------------------------------------------------
# Saying what is wrong, in one line


def database_label(target: Settings | str | URL) -> str:
    """The database for people: the SQLite file, or the URL without its password."""
    url = target if isinstance(target, URL) else _url_of(target)
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database or ':memory:'}"
    return f"PostgreSQL database {url.set(drivername='postgresql').render_as_string(True)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        # The driver's own words (e.g. 'database "x" does not exist'); only the first line, and
        # only for failures to connect, whose messages carry no SQL parameters.
        text = str(exc.orig.args[0] if exc.orig.args else exc.orig).strip().splitlines()
        return text[0] if text else type(exc.orig).__name__
    return type(exc).__name__


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or opened at all."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or _reason(exc).startswith(
            ("unable to open database file", 'database "', "password authentication", 'role "')
        )
    return False


def unreachable_error(target: Settings | str, exc: BaseException) -> DatabaseUnavailable:
    label = database_label(target)
    reason = _reason(exc)
    return DatabaseUnavailable(
        f"cannot reach the {label}: {reason}; check that it is running and "
        "TOKENWARD_DATABASE_URL (or TOKENWARD_DATA_DIR for SQLite)",
        details={"database": label, "reason": reason},
    )


def not_migrated_error(target: Settings | str, current: str | None) -> DatabaseNotMigrated:
    label = database_label(target)
    head = head_revision()
    if current is not None and current not in known_revisions():
        message = (
            f"the {label} is at schema revision {current}, which this version of tokenward "
            f"does not know (it needs {head}); upgrade tokenward"
        )
    else:
        shown = "no tokenward schema yet" if current is None else f"schema revision {current}"
        message = (
            f"the {label} has {shown}; this version needs revision {head}: run "
            "`tokenward db upgrade` (once per new database and after each tokenward upgrade; "
            "only SQLite is migrated automatically)"
        )
    return DatabaseNotMigrated(
        message, details={"database": label, "current": current, "head": head}
    )


def database_error(target: Settings | str, exc: SQLAlchemyError | OSError) -> DatabaseUnavailable:
    """A one-line error for a database failure in the middle of a command."""
    if is_unreachable(exc):
        return unreachable_error(target, exc)
    # The driver's message can quote SQL parameters; keep only the error's class.
    kind = type(getattr(exc, "orig", None) or exc).__name__
    return DatabaseUnavailable(
        f"database error ({kind}) on the {database_label(target)}",
        code="DATABASE_ERROR",
        details={"database": database_label(target), "kind": kind},
    )
