"""Migrations and engines: the migrated schema is exactly the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from tokenward.config import Settings
from tokenward.errors import ConfigError
from tokenward.vault.db import (
    MIGRATIONS_DIR,
    _alembic_config,
    _revision_graph,
    create_engine,
    current_revision,
    current_revision_async,
    downgrade,
    head_revision,
    known_revisions,
    normalize_database_url,
    read_revision,
    upgrade,
    upgrade_async,
)
from tokenward.vault.models import Base


async def _diff(url: str) -> list[object]:
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    assert await _diff(database_url) == []
    assert await current_revision_async(database_url) == head_revision() == "0008"


async def test_upgrade_is_idempotent_and_callable_from_async_code(database_url: str) -> None:
    assert await upgrade_async(database_url) == head_revision()
    assert await upgrade_async(database_url) == head_revision()


def test_revisions_read_without_alembic_are_alembics() -> None:
    """``head_revision``/``known_revisions`` read the migration files themselves (start-up
    time); they must agree with Alembic's own reading of the scripts."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    assert _revision_graph() is not None  # the plain reading applies, no fallback
    assert head_revision() == script.get_current_head()
    assert known_revisions() == {rev.revision for rev in script.walk_revisions()}


async def test_read_revision_answers_what_alembic_answers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tw.db'}"
    engine = create_engine(url, null_pool=True)

    async def both() -> tuple[str | None, str | None]:
        ours = await read_revision(engine)
        async with engine.connect() as conn:
            theirs = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
        return ours, theirs

    try:
        assert await both() == (None, None)  # no alembic_version table yet
        await upgrade_async(url, "0003")
        assert await both() == ("0003", "0003")
        await upgrade_async(url)
        assert await both() == (head_revision(), head_revision())
    finally:
        await engine.dispose()


def test_fresh_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'tw.db'}"
    assert current_revision(url) is None
    assert upgrade(url) == head_revision()
    assert downgrade(url, "base") is None

    async def tables() -> set[str]:
        engine = create_engine(url, null_pool=True)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda s: inspect(s).get_table_names()))
        finally:
            await engine.dispose()

    assert asyncio.run(tables()) == {"alembic_version"}
    assert upgrade(url) == head_revision()
    assert {t.name for t in Base.metadata.sorted_tables} <= asyncio.run(tables())


async def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 30000
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await engine.dispose()


def test_engine_for_settings_uses_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    engine = create_engine(settings)
    try:
        assert engine.url.drivername == "sqlite+aiosqlite"
        assert engine.url.database == str(tmp_path / "data" / "tokenward.db")
        assert (tmp_path / "data").is_dir()
    finally:
        asyncio.run(engine.dispose())


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u:p@h:5433/db", "postgresql+asyncpg://u:p@h:5433/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        ("sqlite+aiosqlite:///rel.db", "sqlite+aiosqlite:///rel.db"),
    ],
)
def test_database_url_spellings_are_normalised(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_unsupported_database_url_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="TOKENWARD_DATABASE_URL: unsupported database scheme"):
        normalize_database_url("mysql://u@h/db")


def test_migrations_ship_inside_the_package() -> None:
    """``pip install`` must carry env.py and the versions (they are package modules)."""
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "__init__.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "__init__.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()


def test_upgrade_from_0001_keeps_rows_and_gives_old_api_clients_full_access(
    tmp_path: Path,
) -> None:
    """Regression guard for migration 0002: rows written under 0001 survive the upgrade."""
    url = f"sqlite:///{tmp_path / 'tw.db'}"
    assert upgrade(url, "0001") == "0001"

    async def seed_then_read() -> tuple[str, bool, object]:
        engine = create_engine(url, null_pool=True)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO api_clients (client_id, secret_hash, name, created_at)"
                        " VALUES ('twc_old', 'x', 'old', 1.0)"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO connections (id, name, provider, client_id,"
                        " client_secret_enc, scopes, created_at, updated_at)"
                        " VALUES ('c1', 'discord', 'discord', '1', 'x', 'identify', 1.0, 1.0)"
                    )
                )
            await asyncio.to_thread(upgrade, url)
            async with engine.connect() as conn:
                scopes = (await conn.execute(text("SELECT scopes FROM api_clients"))).scalar_one()
                verify = (
                    await conn.execute(text("SELECT require_user_verification FROM connections"))
                ).scalar_one()
                started = (
                    await conn.execute(
                        text("SELECT count(refresh_started_at) FROM connected_accounts")
                    )
                ).scalar_one()
            return scopes, bool(verify), started
        finally:
            await engine.dispose()

    assert asyncio.run(seed_then_read()) == ("admin", False, 0)


def test_upgrade_from_0002_to_0003_keeps_connections_and_allows_bot_connections(
    tmp_path: Path,
) -> None:
    """Migration 0003 (issue 10): client id and secret become optional (a discordbot connection
    has neither), allowed_tools is added (NULL: every tool), the unused base_url is dropped; a
    downgrade refuses while connections without an OAuth client exist."""
    url = f"sqlite:///{tmp_path / 'tw.db'}"
    assert upgrade(url, "0002") == "0002"

    async def seed_upgrade_read() -> tuple[object, ...]:
        engine = create_engine(url, null_pool=True)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO connections (id, name, provider, client_id,"
                        " client_secret_enc, scopes, base_url, created_at, updated_at)"
                        " VALUES ('c1', 'discord', 'discord', '1', 'x', 'identify',"
                        " 'https://example.test', 1.0, 1.0)"
                    )
                )
            await asyncio.to_thread(upgrade, url, "0003")
            async with engine.begin() as conn:
                kept = (
                    await conn.execute(
                        text("SELECT name, client_id, scopes, allowed_tools FROM connections")
                    )
                ).one()
                columns = {
                    c["name"]
                    for c in await conn.run_sync(
                        lambda sync: inspect(sync).get_columns("connections")
                    )
                }
                await conn.execute(
                    text(
                        "INSERT INTO connections (id, name, provider, scopes, allowed_tools,"
                        " created_at, updated_at) VALUES ('c2', 'bots', 'discordbot', '',"
                        ' \'["*", "!*_ban*"]\', 1.0, 1.0)'
                    )
                )
            return tuple(kept), "base_url" in columns
        finally:
            await engine.dispose()

    kept, has_base_url = asyncio.run(seed_upgrade_read())
    assert kept == ("discord", "1", "identify", None)
    assert has_base_url is False
    with pytest.raises(RuntimeError, match="no OAuth client"):
        downgrade(url, "0002")
    assert current_revision(url) == "0003"
    assert upgrade(url) == head_revision()


def test_upgrade_to_0005_adds_the_public_key_and_sealed_event_data_and_downgrade_drops_them(
    tmp_path: Path,
) -> None:
    """Migration 0005 (Discord in): connections gain a nullable ``public_key`` (kept in clear:
    it is public) and events a nullable ``data_enc``; rows written under 0004 survive both ways,
    and a downgrade deletes only the events whose data was sealed (with their deliveries)."""
    url = f"sqlite:///{tmp_path / 'tw.db'}"
    assert upgrade(url, "0004") == "0004"
    key = "ab" * 32

    def columns(sync: object, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync).get_columns(table)}

    async def run() -> tuple[object, ...]:
        engine = create_engine(url, null_pool=True)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO connections (id, name, provider, client_id,"
                        " client_secret_enc, scopes, created_at, updated_at)"
                        " VALUES ('c1', 'discord', 'discord', '1', 'x', 'identify', 1.0, 1.0)"
                    )
                )
                await conn.execute(text(ACCOUNT_ROW))
                await conn.execute(
                    text(
                        "INSERT INTO webhook_endpoints (id, url, events, secret_enc, status,"
                        " created_at, updated_at) VALUES ('w1', 'https://x.test/h', '', 'x',"
                        " 'enabled', 1.0, 1.0)"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO outbox_events (id, type, payload, created_at) VALUES"
                        " ('msg_plain', 'connected_account.created', '{}', 1.0)"
                    )
                )
            await asyncio.to_thread(upgrade, url, "0005")
            async with engine.begin() as conn:
                added = (
                    "public_key" in await conn.run_sync(columns, "connections"),
                    "data_enc" in await conn.run_sync(columns, "outbox_events"),
                )
                before = (
                    await conn.execute(text("SELECT name, public_key FROM connections"))
                ).one()
                await conn.execute(text(f"UPDATE connections SET public_key = '{key}'"))
                await conn.execute(
                    text(
                        "INSERT INTO outbox_events (id, type, payload, data_enc, created_at)"
                        " VALUES ('msg_sealed', 'discord.interaction', '{}', 'v1.k1.x', 2.0)"
                    )
                )
                for event in ("msg_plain", "msg_sealed"):
                    await conn.execute(
                        text(
                            "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status,"
                            " attempts, next_attempt_at, created_at, updated_at) VALUES"
                            f" ('d_{event}', '{event}', 'w1', 'pending', 0, 1.0, 1.0, 1.0)"
                        )
                    )
                    await conn.execute(
                        text(
                            "INSERT INTO webhook_attempts (delivery_id, endpoint_id, attempt, at,"
                            f" latency_ms) VALUES ('d_{event}', 'w1', 1, 1.0, 1.0)"
                        )
                    )
            await asyncio.to_thread(downgrade, url, "0004")
            async with engine.connect() as conn:
                gone = (
                    "public_key" not in await conn.run_sync(columns, "connections"),
                    "data_enc" not in await conn.run_sync(columns, "outbox_events"),
                )
                kept = (
                    (await conn.execute(text("SELECT name FROM connections"))).scalar_one(),
                    (await conn.execute(text("SELECT id FROM connected_accounts"))).scalar_one(),
                    (await conn.execute(text("SELECT id FROM outbox_events"))).scalars().all(),
                    (await conn.execute(text("SELECT event_id FROM webhook_deliveries")))
                    .scalars()
                    .all(),
                    (await conn.execute(text("SELECT delivery_id FROM webhook_attempts")))
                    .scalars()
                    .all(),
                )
            return added, tuple(before), gone, kept
        finally:
            await engine.dispose()

    added, before, gone, kept = asyncio.run(run())
    assert added == (True, True)
    assert before == ("discord", None)
    assert gone == (True, True)
    # The tables rebuilt on SQLite do not take the rows that point at them along (the accounts
    # and deliveries would be deleted by ON DELETE CASCADE if foreign keys stayed on).
    assert kept == ("discord", "a1", ["msg_plain"], ["msg_plain"], ["d_msg_plain"])
    assert current_revision(url) == "0004"
    assert upgrade(url) == head_revision() == "0008"


ACCOUNT_ROW = (
    "INSERT INTO connected_accounts (id, connection_id, identifier, status, version,"
    " created_at, updated_at) VALUES ('a1', 'c1', 'user_1', 'ACTIVE', 0, 1.0, 1.0)"
)


def test_rebuilding_the_connections_table_on_sqlite_keeps_its_accounts(tmp_path: Path) -> None:
    """Regression guard: migration 0003 rebuilds ``connections`` on SQLite (copy, drop, rename);
    with foreign keys on during the migration, the drop cascaded and deleted every connected
    account. The migration environment turns them off and checks the result instead."""
    url = f"sqlite:///{tmp_path / 'tw.db'}"
    assert upgrade(url, "0002") == "0002"

    async def seed_upgrade_count() -> int:
        engine = create_engine(url, null_pool=True)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO connections (id, name, provider, client_id,"
                        " client_secret_enc, scopes, created_at, updated_at)"
                        " VALUES ('c1', 'discord', 'discord', '1', 'x', 'identify', 1.0, 1.0)"
                    )
                )
                await conn.execute(text(ACCOUNT_ROW))
            await asyncio.to_thread(upgrade, url)
            async with engine.connect() as conn:
                fk = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
                count = (
                    await conn.execute(text("SELECT count(*) FROM connected_accounts"))
                ).scalar_one()
                return int(count) * 10 + int(fk)
        finally:
            await engine.dispose()

    # One account kept, and the server's connections still enforce foreign keys.
    assert asyncio.run(seed_upgrade_count()) == 11


@pytest.mark.postgres
async def test_accounts_are_found_by_identifier_alone_through_an_index(
    postgres_url: str,
) -> None:
    """Migration 0008: ``?identifier=`` without a connection, and keyset pages of one connection
    or one status, are index reads on PostgreSQL, not scans of a million rows."""
    engine = create_engine(postgres_url, null_pool=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plans = {}
            for name, sql in {
                "identifier": "SELECT id FROM connected_accounts WHERE identifier = 'u'",
                "connection page": "SELECT id FROM connected_accounts WHERE connection_id = 'c'"
                " AND id > 'a' ORDER BY id LIMIT 101",
                "status page": "SELECT id FROM connected_accounts WHERE status = 'ACTIVE'"
                " AND id > 'a' ORDER BY id LIMIT 101",
            }.items():
                rows = (await conn.execute(text(f"EXPLAIN {sql}"))).scalars().all()
                plans[name] = "\n".join(rows)
    finally:
        await engine.dispose()
    assert "ix_connected_accounts_identifier" in plans["identifier"], plans["identifier"]
    assert "ix_connected_accounts_connection_id_id" in plans["connection page"], plans
    assert "ix_connected_accounts_status_id" in plans["status page"], plans
