"""Online key rotation: every secret ends up under the new key, still decrypts, and a token
refresh that lands in the middle of the rotation is never overwritten."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tokenward.cli import app
from tokenward.clock import ManualClock
from tokenward.config import Settings
from tokenward.vault.crypto import KEY_FILE_NAME, Keyring, aad, envelope_kid, generate_key
from tokenward.vault.db import create_engine, head_revision
from tokenward.vault.keys import prepare_keys
from tokenward.vault.repository import Vault
from tokenward.vault.rotation import count_stale, rotate

from .test_vault_repository import BOT_TOKEN, CLIENT_SECRET, link_account, make_connection

SECRET_COLUMNS = {
    "connections": ("client_secret_enc", "bot_token_enc"),
    "connected_accounts": ("access_token_enc", "refresh_token_enc"),
    "auth_requests": ("code_verifier_enc",),
}


async def envelopes(vault: Vault) -> list[tuple[str, str, str, str]]:
    """(table, column, id, envelope) for every stored secret."""
    found = []
    async with vault.engine.connect() as conn:
        for table, columns in SECRET_COLUMNS.items():
            rows = await conn.execute(text(f"SELECT id, {', '.join(columns)} FROM {table}"))
            for row in rows:
                for column, value in zip(columns, row[1:], strict=True):
                    if value is not None:
                        found.append((table, column, row[0], value))
    return found


async def populate(vault: Vault, accounts: int) -> dict[str, tuple[str, str]]:
    conn = await make_connection(vault)
    await make_connection(vault, "second")
    tokens = {}
    for i in range(accounts):
        access, refresh = f"access-{i}-xxxxxxxx", f"refresh-{i}-yyyyyyyy"
        account = await link_account(vault, conn, f"user-{i}", access=access, refresh=refresh)
        tokens[account.id] = (access, refresh)
    # A pending auth request too, so its verifier is rotated as well.
    pending = await vault.get_or_create_account(conn.id, "pending")
    await vault.create_auth_request(
        connection_id=conn.id,
        account_id=pending.id,
        identifier="pending",
        state="p" * 43,
        code_verifier="v" * 50,
        redirect_uri="http://127.0.0.1/cb",
        ttl_seconds=600,
    )
    return tokens


async def test_rotation_leaves_nothing_under_the_old_key(
    vault: Vault, database_url: str, keyring: Keyring, key_pair: tuple[str, bytes]
) -> None:
    tokens = await populate(vault, 12)
    old_kid = keyring.active_kid
    before = await envelopes(vault)
    assert {envelope_kid(e[3]) for e in before} == {old_kid}

    new_only = generate_key()
    rotated_ring = Keyring.from_keys([("test-b", new_only), key_pair])
    assert await count_stale(vault.engine, rotated_ring) == 12 + 2 + 13

    seen: list[tuple[int, int]] = []
    report = await rotate(
        vault.engine, rotated_ring, batch_size=5, progress=lambda d, t: seen.append((d, t))
    )
    assert report.failed == []
    assert report.remaining == 0
    assert report.rows_updated == 12 + 2 + 13  # accounts, connections, auth requests
    assert report.values_reencrypted == len(before)
    assert seen[-1][0] == seen[-1][1] == report.rows_updated

    after = await envelopes(vault)
    assert len(after) == len(before)
    assert {envelope_kid(e[3]) for e in after} == {"test-b"}

    # Every secret opens with the new key alone, and is unchanged.
    only_new = Vault(
        create_engine(database_url), Keyring.from_keys([("test-b", new_only)]), vault.clock
    )
    try:
        for account_id, (access, refresh) in tokens.items():
            account = await only_new.get_account(account_id)
            assert account.access_token is not None
            assert account.access_token.get_secret_value() == access
            assert account.refresh_token is not None
            assert account.refresh_token.get_secret_value() == refresh
            assert account.version == 1, "rotation does not count as a credential write"
        main = await only_new.get_connection_by_name("discord-main")
        assert main.client_secret.get_secret_value() == CLIENT_SECRET
        assert main.bot_token is not None
        assert main.bot_token.get_secret_value() == BOT_TOKEN
        pending = await only_new.inspect_auth_request("p" * 43)
        assert pending is not None
        assert pending.code_verifier.get_secret_value() == "v" * 50
    finally:
        await only_new.close()

    again = await rotate(vault.engine, rotated_ring)
    assert again.rows_updated == 0


async def test_rotation_does_not_clobber_a_concurrent_refresh(
    vault: Vault, database_url: str, keyring: Keyring, key_pair: tuple[str, bytes]
) -> None:
    """A server refreshes an account (under the old key) after rotation read the row and before
    it wrote it back: rotation's compare-and-swap fails, it re-reads, and the refreshed tokens
    survive — re-encrypted under the new key."""
    tokens = await populate(vault, 3)
    target = sorted(tokens)[1]

    def concurrent_refresh() -> None:
        async def run() -> None:
            server = Vault(create_engine(database_url), keyring, ManualClock())
            try:
                assert await server.acquire_refresh_lease(target, "server", ttl=30)
                stored = await server.store_refreshed_tokens(
                    target,
                    "server",
                    access_token="refreshed-access",
                    refresh_token="refreshed-refresh",
                    expires_at=1.0,
                )
                assert stored is not None
            finally:
                await server.close()

        asyncio.run(run())

    class RacingKeyring(Keyring):
        fired = False

        def decrypt(self, envelope: str, associated: str) -> str:
            if not self.fired and associated == aad(
                "connected_accounts", "access_token_enc", target
            ):
                self.fired = True
                worker = threading.Thread(target=concurrent_refresh)
                worker.start()
                worker.join()
            return super().decrypt(envelope, associated)

    racing = RacingKeyring([("test-b", generate_key()), key_pair])
    report = await rotate(vault.engine, racing, batch_size=2)
    assert racing.fired
    assert report.cas_retries >= 1
    assert report.failed == []
    assert report.remaining == 0

    reader = Vault(vault.engine, racing, vault.clock)
    account = await reader.get_account(target)
    assert account.access_token is not None
    assert account.access_token.get_secret_value() == "refreshed-access"
    assert account.refresh_token is not None
    assert account.refresh_token.get_secret_value() == "refreshed-refresh"
    assert account.version == 2
    assert {envelope_kid(e[3]) for e in await envelopes(vault)} == {"test-b"}


async def test_rotation_reports_values_it_cannot_decrypt(vault: Vault, keyring: Keyring) -> None:
    await populate(vault, 1)
    stranger = Keyring.from_keys([("test-c", generate_key())])
    report = await rotate(vault.engine, stranger)
    assert report.rows_updated == 0
    assert report.remaining == 5  # 2 connections, 1 linked account, 2 auth requests
    assert len(report.failed) == 5
    assert all("not configured" in item for item in report.failed)
    assert all("access-0" not in item for item in report.failed)


# -- the command line ----------------------------------------------------------------------


def _env(data_dir: Path, **extra: str | None) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        "TOKENWARD_DATA_DIR": str(data_dir),
        "TOKENWARD_DATABASE_URL": None,
        "TOKENWARD_ENCRYPTION_KEYS": None,
    }
    env.update(extra)
    return env


def test_cli_db_upgrade_and_keys_rotate_with_a_key_file(tmp_path: Path) -> None:
    runner = CliRunner()
    env = _env(tmp_path)
    first = runner.invoke(app, ["db", "upgrade", "--json"], env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {
        "backend": "sqlite",
        "from": None,
        "revision": head_revision(),
    }
    again = runner.invoke(app, ["db", "upgrade"], env=env)
    assert again.exit_code == 0
    assert f"already at revision {head_revision()}" in again.stdout

    settings = Settings(data_dir=tmp_path, database_url=None, encryption_keys=None)

    async def setup() -> tuple[Vault, str]:
        server = Vault.from_settings(settings, ManualClock())
        # What a server's start-up does: the database is empty, so the key file is created.
        assert await prepare_keys(server.engine, server.keyring) is True
        conn = await make_connection(server)
        await link_account(server, conn, "u")
        return server, server.keyring.active_kid

    loop = asyncio.new_event_loop()
    try:
        server, old_kid = loop.run_until_complete(setup())
        result = runner.invoke(app, ["keys", "rotate", "--json"], env=env)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["key_added"] is True
        assert report["active_kid"] != old_kid
        assert report["rows_updated"] == 3
        assert report["remaining"] == 0
        key_file = tmp_path / KEY_FILE_NAME
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        kids = [k["kid"] for k in json.loads(key_file.read_text())["keys"]]
        assert kids == [report["active_kid"], old_kid]

        async def check() -> None:
            # The running server's keyring follows the key file: reads work, writes use the new key.
            account = (await server.list_accounts(with_tokens=True)).items[0]
            assert account.access_token is not None
            assert server.keyring.active_kid == report["active_kid"]
            await server.close()

        loop.run_until_complete(check())
    finally:
        loop.close()

    human = runner.invoke(app, ["keys", "rotate"], env=env)
    assert human.exit_code == 0, human.output
    assert "new key added to the key file" in human.stdout
    assert "3 rows" in human.stdout


def test_cli_keys_rotate_with_env_keys_reencrypts_without_editing(tmp_path: Path) -> None:
    import base64

    old, new = generate_key(), generate_key()
    old_env = f"old:{base64.b64encode(old).decode()}"
    both_env = f"new:{base64.b64encode(new).decode()},{old_env}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"], env=_env(tmp_path)).exit_code == 0

    async def setup() -> None:
        vault = Vault.from_settings(
            Settings(data_dir=tmp_path, database_url=None, encryption_keys=old_env), ManualClock()
        )
        await make_connection(vault)
        await vault.close()

    asyncio.run(setup())
    result = runner.invoke(
        app, ["keys", "rotate", "--json"], env=_env(tmp_path, TOKENWARD_ENCRYPTION_KEYS=both_env)
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["key_added"] is False
    assert report["active_kid"] == "new"
    assert report["rows_updated"] == 1
    assert not (tmp_path / KEY_FILE_NAME).exists()
    assert new.hex() not in result.output
    assert base64.b64encode(new).decode() not in result.output


def test_cli_reports_bad_env_keys_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"], env=_env(tmp_path)).exit_code == 0
    result = runner.invoke(
        app, ["keys", "rotate"], env=_env(tmp_path, TOKENWARD_ENCRYPTION_KEYS="k1:c2hvcnQ=")
    )
    assert result.exit_code == 1
    assert "'k1' decodes to 5 bytes" in result.output
    assert "c2hvcnQ=" not in result.output


def test_cli_rotate_on_an_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "rotate", "--json"], env=_env(tmp_path))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "DATABASE_NOT_MIGRATED"
    assert "tokenward db upgrade" in result.stdout
    assert not (tmp_path / KEY_FILE_NAME).exists(), "no key is added when nothing can rotate"


@pytest.mark.postgres
def test_cli_db_upgrade_on_postgres(postgres_server_url: str, tmp_path: Path) -> None:
    plain = postgres_server_url.replace("postgresql+asyncpg://", "postgres://")
    result = CliRunner().invoke(
        app, ["db", "upgrade", "--json"], env=_env(tmp_path, TOKENWARD_DATABASE_URL=plain)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "backend": "postgresql",
        "from": head_revision(),
        "revision": head_revision(),
    }


async def test_sealed_event_data_is_rotated_and_still_opens_for_delivery(
    vault: Vault, database_url: str, key_pair: tuple[str, bytes]
) -> None:
    """A ``discord.interaction`` keeps its data (the interaction's token) sealed in the outbox;
    rotation re-seals it like any secret, and a delivery still sends the data in clear."""
    from tokenward.vault.webhooks import WebhookStore

    store = WebhookStore(vault)
    await store.create_endpoint("https://app.example.com/hook", "", "whsec_" + "A" * 43)
    data = {"connection_id": "c", "interaction": {"id": "1", "token": "interaction-token-x"}}
    [claim] = await store.emit_claimed("discord.interaction", data, "me", 60, sealed=True)
    assert json.loads(claim.body)["data"] == data
    async with vault.engine.connect() as conn:
        payload, sealed = (
            await conn.execute(text("SELECT payload, data_enc FROM outbox_events"))
        ).one()
    assert "interaction-token-x" not in str(payload) + sealed
    assert envelope_kid(sealed) == vault.keyring.active_kid

    new_only = generate_key()
    report = await rotate(vault.engine, Keyring.from_keys([("test-b", new_only), key_pair]))
    assert report.failed == []
    async with vault.engine.connect() as conn:
        resealed = (await conn.execute(text("SELECT data_enc FROM outbox_events"))).scalar_one()
    assert envelope_kid(resealed) == "test-b"
    only_new = Vault(
        create_engine(database_url), Keyring.from_keys([("test-b", new_only)]), vault.clock
    )
    try:
        await WebhookStore(only_new).release_claims_of(["me"])
        [again] = await WebhookStore(only_new).claim_due("worker", 60)
        assert json.loads(again.body)["data"] == data
        assert again.event_id == claim.event_id
    finally:
        await only_new.close()
