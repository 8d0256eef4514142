"""Races the vault must win on SQLite and PostgreSQL: single-use state, one refresh lease holder
(in one process and across OS processes), and get-or-create under contention."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from pathlib import Path

from tokenward.vault.crypto import Keyring, generate_key
from tokenward.vault.db import create_engine
from tokenward.vault.repository import Vault

from .test_vault_repository import VERIFIER, link_account, make_connection


async def test_consume_auth_request_is_single_use_under_50_concurrent_attempts(
    vault: Vault, database_url: str, keyring: Keyring
) -> None:
    conn = await make_connection(vault)
    account = await vault.get_or_create_account(conn.id, "u")
    state = "s" * 43
    await vault.create_auth_request(
        connection_id=conn.id,
        account_id=account.id,
        identifier="u",
        state=state,
        code_verifier=VERIFIER,
        redirect_uri="http://127.0.0.1/cb",
        ttl_seconds=600,
    )
    # Two engines (two pools) so the attempts really race on the database.
    second = Vault(create_engine(database_url), keyring, vault.clock)
    try:
        results = await asyncio.gather(
            *((vault if i % 2 else second).consume_auth_request(state, conn.id) for i in range(50))
        )
    finally:
        await second.close()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].code_verifier.get_secret_value() == VERIFIER
    assert len(await vault.list_events(kind="auth_request.consumed")) == 1


async def test_exactly_one_of_20_concurrent_lease_acquirers_wins(
    vault: Vault, database_url: str, keyring: Keyring
) -> None:
    conn = await make_connection(vault)
    account = await link_account(vault, conn, "u")
    second = Vault(create_engine(database_url), keyring, vault.clock)
    try:
        results = await asyncio.gather(
            *(
                (vault if i % 2 else second).acquire_refresh_lease(account.id, f"w{i}", ttl=30)
                for i in range(20)
            )
        )
    finally:
        await second.close()
    assert results.count(True) == 1
    winner = f"w{results.index(True)}"
    assert (await vault.get_account(account.id)).refresh_lease_owner == winner


async def test_get_or_create_account_races_to_one_row(
    vault: Vault, database_url: str, keyring: Keyring
) -> None:
    conn = await make_connection(vault)
    second = Vault(create_engine(database_url), keyring, vault.clock)
    try:
        results = await asyncio.gather(
            *(
                (vault if i % 2 else second).get_or_create_account(conn.id, "same")
                for i in range(20)
            )
        )
    finally:
        await second.close()
    assert len({r.id for r in results}) == 1
    assert len((await vault.list_accounts()).items) == 1
    assert len(await vault.list_events(kind="account.created")) == 1


# Each worker process opens its own engine, signals readiness, waits for "go", then lets five
# tasks (distinct owners) try to take the lease at once.
WORKER = r"""
import asyncio, sys
from pathlib import Path
from tokenward.clock import SystemClock
from tokenward.vault.crypto import Keyring
from tokenward.vault.db import create_engine
from tokenward.vault.repository import Vault

async def main(url, account_id, name, sync_dir):
    vault = Vault(create_engine(url), Keyring.from_env_value(sys.argv[5]), SystemClock())
    try:
        async with vault.engine.connect():
            pass
        Path(sync_dir, "ready-" + name).touch()
        go = Path(sync_dir, "go")
        while not go.exists():
            await asyncio.sleep(0.002)
        results = await asyncio.gather(
            *(vault.acquire_refresh_lease(account_id, f"{name}-{i}", 60) for i in range(5))
        )
        for i, won in enumerate(results):
            print(f"{name}-{i} {'WON' if won else 'LOST'}", flush=True)
    finally:
        await vault.close()

asyncio.run(main(*sys.argv[1:5]))
"""


async def test_exactly_one_lease_holder_across_4_processes(
    vault: Vault, database_url: str, tmp_path: Path
) -> None:
    conn = await make_connection(vault)
    account = await link_account(vault, conn, "u")
    sync_dir = tmp_path / "sync"
    sync_dir.mkdir()
    keys = f"w:{base64.b64encode(generate_key()).decode()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, database_url, account.id, f"p{n}", str(sync_dir), keys],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(4)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(sync_dir.glob("ready-*"))) < 4:
            failed = [p for p in procs if p.poll() not in (None, 0)]
            assert not failed, failed[0].communicate()[1]
            assert time.monotonic() < deadline, "workers did not start"
            await asyncio.sleep(0.02)
        (sync_dir / "go").touch()
        outputs = []
        for p in procs:
            out, err = await asyncio.to_thread(p.communicate, timeout=60)
            assert p.returncode == 0, err
            outputs.extend(out.split("\n"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    lines = [line for line in outputs if line.strip()]
    assert len(lines) == 20
    winners = [line.split()[0] for line in lines if line.endswith("WON")]
    assert len(winners) == 1, lines
    assert (await vault.get_account(account.id)).refresh_lease_owner == winners[0]
