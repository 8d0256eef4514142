"""An unreachable, unmigrated or misconfigured database, as the CLI and ``serve`` report it
(issue 9, "Database"): one line and a non-zero exit for commands; ``serve`` stays up but not
ready (``/readyz`` 503 naming what is wrong, ``/healthz`` 200) and becomes ready once the
database is; settings that can never work stop ``serve`` at once."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from conftest import require_service
from tokenward._serving import free_port
from tokenward.vault.db import head_revision, normalize_database_url

from .conftest import Workspace, WorkspaceFactory
from .serving import Serve, run_serve

pytestmark = pytest.mark.slow  # one `tokenward` process per command

COMMANDS = [
    ("connections", "list"),
    ("accounts", "list"),
    ("api-clients", "list"),
    ("link", "--connection", "discord", "--identifier", "user_1"),
    ("keys", "list"),
    ("keys", "rotate"),
    ("db", "upgrade"),
]


def unreachable_url() -> str:
    """A PostgreSQL URL on a loopback port where nothing listens (with a password to hide)."""
    return f"postgresql://tokenward:hunter2-not-shown@127.0.0.1:{free_port()}/tokenward"


def test_an_unreachable_database_is_one_line_for_every_command(workspace: Workspace) -> None:
    url = unreachable_url()
    env = {"TOKENWARD_DATABASE_URL": url}
    port = make_url(url).port
    for command in COMMANDS:
        line = workspace.cli.error_line(*command, env=env)
        assert line.startswith(
            "error: cannot reach the PostgreSQL database "
            f"postgresql://tokenward:***@127.0.0.1:{port}/tokenward: "
        ), line
        assert "hunter2" not in line
        assert "TOKENWARD_DATABASE_URL" in line
        error = workspace.cli.json_error(*command, env=env)["error"]
        assert error["code"] == "DATABASE_UNAVAILABLE", error
    line = workspace.cli.error_line(
        "tools", "run", "discord_get_my_user", "--connection", "d", "--identifier", "u", env=env
    )
    assert "cannot reach the PostgreSQL database" in line
    assert not (workspace.data_dir / "encryption-keys.json").exists()


def test_serve_with_an_unreachable_database_is_live_but_not_ready(
    workspace: Workspace, tmp_path: Path
) -> None:
    env = {**workspace.cli.env, "TOKENWARD_DATABASE_URL": unreachable_url()}
    env.pop("TOKENWARD_ENCRYPTION_KEYS")  # key file mode: nothing may be generated blindly
    with Serve(env, tmp_path, "--port", "0") as served:
        assert "warning: not ready yet: cannot reach the PostgreSQL database" in served.stderr()
        assert httpx.get(f"{served.url}/healthz", trust_env=False).status_code == 200
        response = httpx.get(f"{served.url}/readyz", trust_env=False)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        checks = body["checks"]
        assert checks["database"]["ok"] is False
        assert "cannot reach the PostgreSQL database" in checks["database"]["error"]
        assert "hunter2" not in response.text
        assert checks["schema"]["ok"] is False
        assert checks["keys"]["ok"] is False
        assert "key material is not loaded" in checks["keys"]["error"]
    assert "Traceback" not in served.stderr()
    assert not (workspace.data_dir / "encryption-keys.json").exists()


def test_settings_that_can_never_work_are_one_line_and_stop_serve(workspace: Workspace) -> None:
    for env, expected in (
        ({"TOKENWARD_PORT": "eighty"}, "error: invalid setting: TOKENWARD_PORT: "),
        (
            {"TOKENWARD_DATABASE_URL": "mysql://db/tokenward"},
            "error: TOKENWARD_DATABASE_URL: unsupported database scheme 'mysql'",
        ),
        ({"TOKENWARD_ENCRYPTION_KEYS": "k1:short"}, "error: TOKENWARD_ENCRYPTION_KEYS: key 'k1'"),
    ):
        line = workspace.cli.error_line("accounts", "list", env=env)
        assert line.startswith(expected), line
        refused = run_serve({**workspace.cli.env, **env}, "--port", "0")
        assert refused.returncode == 1, refused
        assert refused.stdout == ""
        assert refused.stderr.strip().splitlines()[0].startswith(expected), refused.stderr
        assert "Traceback" not in refused.stderr


def test_a_data_dir_that_is_a_file_is_one_line(workspace: Workspace) -> None:
    blocker = workspace.data_dir.parent / "not-a-directory"
    blocker.write_text("")
    line = workspace.cli.error_line("accounts", "list", env={"TOKENWARD_DATA_DIR": str(blocker)})
    assert str(blocker) in line


# -- PostgreSQL without the schema ----------------------------------------------------------


async def _pg_admin(base: str, sql: str) -> None:
    import asyncpg

    url = make_url(normalize_database_url(base))
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


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A new, empty (unmigrated) PostgreSQL database for one test."""
    import os

    base = os.environ.get("TOKENWARD_TEST_POSTGRES_URL") or (
        f"postgresql://{os.environ.get('PGUSER', 'postgres')}@127.0.0.1:5432/test"
    )
    try:
        asyncio.run(_pg_admin(base, "SELECT 1"))
        available = True
    except Exception:  # any failure to connect means the service is down
        available = False
    require_service(available, "PostgreSQL is not reachable")
    name = f"tw_ops_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
def test_an_unmigrated_postgres_asks_for_db_upgrade_and_serve_becomes_ready_after_it(
    make_workspace: WorkspaceFactory, empty_postgres: str, tmp_path: Path
) -> None:
    ws = make_workspace(encryption_keys=None)
    env = {"TOKENWARD_DATABASE_URL": empty_postgres}
    for command in COMMANDS[:-1]:  # all but `db upgrade`
        line = ws.cli.error_line(*command, env=env)
        assert "has no tokenward schema yet" in line, line
        assert f"this version needs revision {head_revision()}" in line
        assert "run `tokenward db upgrade`" in line
        assert ws.cli.json_error(*command, env=env)["error"]["code"] == "DATABASE_NOT_MIGRATED"
    assert not (ws.data_dir / "encryption-keys.json").exists()

    served_env = {**ws.cli.env, **env}
    with Serve(served_env, tmp_path, "--port", "0") as served:
        assert "not ready yet: the PostgreSQL database" in served.stderr()
        assert httpx.get(f"{served.url}/healthz", trust_env=False).status_code == 200
        response = httpx.get(f"{served.url}/readyz", trust_env=False)
        assert response.status_code == 503
        schema = response.json()["checks"]["schema"]
        assert schema == {
            "ok": False,
            "current": None,
            "head": head_revision(),
            "error": schema["error"],
        }
        assert "tokenward db upgrade" in schema["error"]
        assert response.json()["checks"]["database"]["ok"] is True

        upgraded = ws.cli.json("db", "upgrade", env=env)
        assert upgraded["revision"] == head_revision()

        deadline = time.monotonic() + 20
        while (ready := httpx.get(f"{served.url}/readyz", trust_env=False)).status_code != 200:
            assert time.monotonic() < deadline, (ready.text, served.output())
            time.sleep(0.2)
        assert ready.json()["status"] == "ready"
    # The empty database got a key file, once it was known to hold no ciphertext.
    assert (ws.data_dir / "encryption-keys.json").exists()
    assert ws.cli.json("connections", "list", env=env) == {"connections": []}
