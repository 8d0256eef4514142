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
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


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
