"""Database fixtures: a migrated SQLite file per test, and one PostgreSQL database per run; and a
gateway on the sandbox (``gateway``) with the same services in the test's own process
(``container``), for the modules that drive the product end to end.

PostgreSQL comes from ``TOKENWARD_TEST_POSTGRES_URL`` or ``127.0.0.1:5432`` (database ``test``,
user ``$PGUSER`` or ``postgres``). A fresh database ``tw_test_<random>`` is created for the run,
migrated once, emptied before each test that uses it and dropped at the end. Where PostgreSQL is
down the PostgreSQL cases skip, except in CI, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from conftest import require_service
from tokenward.clock import ManualClock
from tokenward.server.container import Container
from tokenward.vault.crypto import Keyring, generate_key
from tokenward.vault.db import create_engine, normalize_database_url, upgrade
from tokenward.vault.models import Base
from tokenward.vault.repository import Vault

from .gateway_env import Gateway, gateway_settings, local_container, start_gateway

PG_BASE_URL = os.environ.get("TOKENWARD_TEST_POSTGRES_URL") or (
    f"postgresql://{os.environ.get('PGUSER', 'postgres')}@127.0.0.1:5432/test"
)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    url = make_url(normalize_database_url(PG_BASE_URL))
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "test",
        timeout=3,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_available() -> bool:
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception:  # any failure to connect means the service is down
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A migrated, run-private PostgreSQL database (asyncpg URL)."""
    where = make_url(PG_BASE_URL).render_as_string(hide_password=True)
    require_service(_pg_available(), f"PostgreSQL is not reachable at {where}")
    name = f"tw_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(normalize_database_url(PG_BASE_URL)).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        upgrade(rendered)
        yield rendered
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.begin() as conn:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file in the test's temporary directory."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'tokenward.db'}"
    upgrade(url)
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    """The run's PostgreSQL database, emptied."""
    asyncio.run(_truncate(postgres_server_url))
    return postgres_server_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def key_pair() -> tuple[str, bytes]:
    """The test keyring's (kid, key), for tests that build a rotated keyring around it."""
    return ("test-a", generate_key())


@pytest.fixture
def keyring(key_pair: tuple[str, bytes]) -> Keyring:
    return Keyring.from_keys([key_pair])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def vault(database_url: str, keyring: Keyring, clock: ManualClock) -> AsyncIterator[Vault]:
    v = Vault(create_engine(database_url), keyring, clock)
    try:
        yield v
    finally:
        await v.close()


@pytest.fixture
def gateway(tmp_path: Path, sandbox_url: str) -> Iterator[Gateway]:
    """A gateway (uvicorn on loopback, its background workers running) on the sandbox."""
    gw = start_gateway(gateway_settings(tmp_path, sandbox_url), sandbox_url)
    try:
        yield gw
    finally:
        gw.server.stop()


@pytest.fixture
async def container(gateway: Gateway) -> AsyncIterator[Container]:
    """The gateway's vault and services, opened again in the test's process (as a CLI command or
    a second replica would)."""
    async with local_container(gateway.settings) as c:
        yield c
