"""Alembic environment: runs the vault's migrations over tokenward's own async engine.

The database URL arrives in ``config.attributes["tokenward_url"]`` (see
:func:`tokenward.vault.db.upgrade`), so SQLite connections get the same pragmas as the server's.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from tokenward.vault.db import create_engine
from tokenward.vault.models import Base

config = context.config
target_metadata = Base.metadata


def _do_run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration on SQLite copies a table into a new one and drops the old one; with
        # foreign keys on, that drop would cascade (ON DELETE CASCADE) and delete every row of
        # the tables pointing at it (accounts, deliveries). The pragma only works outside a
        # transaction, so it goes straight to the driver before anything begins; the result is
        # checked afterwards.
        _pragma(connection, "PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows without their parent: {broken[:5]}")


def _pragma(connection: Connection, statement: str) -> None:
    """Run ``statement`` on the driver's connection, outside SQLAlchemy's transaction."""
    raw = connection.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("the migration connection has no driver connection")
    cursor = raw.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


async def _run_online() -> None:
    url = config.attributes.get("tokenward_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migration environment")
    engine = create_engine(str(url), null_pool=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_do_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("tokenward migrations run online only (tokenward db upgrade)")
asyncio.run(_run_online())
