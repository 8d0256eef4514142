"""``tokenward db upgrade`` and ``tokenward keys list|rotate|retire``."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import typer

from tokenward.cli.app import app
from tokenward.cli.output import JSON_OPTION, fail_with, load_settings, print_json, print_table
from tokenward.errors import ConfigError, TokenwardError

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tokenward.config import Settings
    from tokenward.vault.crypto import Keyring
    from tokenward.vault.rotation import RotationReport

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


def _database_failure(settings: Settings | None, exc: Exception) -> TokenwardError:
    """Database failures of these commands as one line (they open their own engines)."""
    from sqlalchemy.exc import SQLAlchemyError

    from tokenward.vault.db import database_error

    if settings is not None and isinstance(exc, SQLAlchemyError | OSError):
        return database_error(settings, exc)
    from tokenward.cli.output import as_tokenward_error

    return as_tokenward_error(exc)


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Option("head", help="Target revision."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Apply the schema migrations to the configured database (PostgreSQL needs this once per
    new database and after each tokenward upgrade; SQLite is migrated on every start)."""
    from tokenward.vault.db import current_revision, normalize_database_url, upgrade

    settings: Settings | None = None
    try:
        settings = load_settings()
        url = normalize_database_url(settings.effective_database_url)
        before = current_revision(url)
        after = upgrade(url, revision)
    except TokenwardError as exc:
        fail_with(exc, as_json=as_json)
    except Exception as exc:
        fail_with(_database_failure(settings, exc), as_json=as_json)
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    if as_json:
        typer.echo(json.dumps({"backend": backend, "from": before, "revision": after}))
    elif before == after:
        typer.echo(f"Database ({backend}) already at revision {after}.")
    else:
        typer.echo(f"Database ({backend}) upgraded from {before or 'empty'} to revision {after}.")


async def _checked_engine(settings: Settings) -> tuple[AsyncEngine, Keyring]:
    """An engine on a reachable, migrated database, and the keyring after the same key checks
    every command runs (a missing key file or key id is refused here too)."""
    from tokenward.vault.crypto import load_keyring
    from tokenward.vault.db import (
        create_engine,
        head_revision,
        not_migrated_error,
        read_revision,
        unreachable_error,
    )
    from tokenward.vault.keys import prepare_keys

    engine = create_engine(settings)
    try:
        try:
            current = await read_revision(engine)
        except Exception as exc:
            raise unreachable_error(settings, exc) from None
        if current != head_revision():
            raise not_migrated_error(settings, current)
        keyring = load_keyring(settings.encryption_keys, settings.data_dir)
        await prepare_keys(engine, keyring)
    except BaseException:
        await engine.dispose()
        raise
    return engine, keyring


def _run_keys_command(as_json: bool, body: Any) -> Any:
    settings: Settings | None = None
    try:
        settings = load_settings()
        return asyncio.run(body(settings))
    except TokenwardError as exc:
        fail_with(exc, as_json=as_json)
    except Exception as exc:
        fail_with(_database_failure(settings, exc), as_json=as_json)


@keys_app.command("list")
def keys_list(as_json: bool = JSON_OPTION) -> None:
    """List the encryption keys: which one is active and how many rows use each."""
    from tokenward.vault.crypto import key_file_created
    from tokenward.vault.keys import key_usage, source_of

    async def body(settings: Settings) -> dict[str, Any]:
        engine, keyring = await _checked_engine(settings)
        try:
            usage = await key_usage(engine)
        finally:
            await engine.dispose()
        source = source_of(keyring)
        created = key_file_created(keyring.key_file) if keyring.key_file is not None else {}
        kids = keyring.kids
        return {
            "source": "env" if source.from_env else "file",
            "key_file": source.key_file,
            "keys": [
                {
                    "kid": kid,
                    "active": kid == kids[0],
                    "rows": usage.get(kid, 0),
                    "created_at": created.get(kid) or None,
                }
                for kid in kids
            ],
        }

    doc = _run_keys_command(as_json, body)
    if as_json:
        print_json(doc)
        return
    where = doc["key_file"] or "TOKENWARD_ENCRYPTION_KEYS"
    print_table(
        "Encryption keys",
        ["kid", "active", "rows", "created"],
        [
            [k["kid"], "yes" if k["active"] else "", k["rows"], k["created_at"] or "-"]
            for k in doc["keys"]
        ],
        caption=f"keys from {where}",
    )


@keys_app.command("retire")
def keys_retire(
    kid: str = typer.Argument(..., help="The key id to remove from the key file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove a key that no stored value uses any more (after `tokenward keys rotate`)."""
    from tokenward.vault.crypto import retire_key_from_file
    from tokenward.vault.keys import key_usage

    async def body(settings: Settings) -> dict[str, Any]:
        engine, keyring = await _checked_engine(settings)
        try:
            rows = (await key_usage(engine)).get(kid, 0)
        finally:
            await engine.dispose()
        path = keyring.key_file
        kids = keyring.kids
        where = "TOKENWARD_ENCRYPTION_KEYS" if path is None else f"key file {path}"
        if kid not in kids:
            raise ConfigError(
                f"{where} has no key {kid!r} (it holds {', '.join(map(repr, kids))})",
                code="KEY_NOT_FOUND",
                details={"kid": kid, "kids": list(kids)},
            )
        if kid == kids[0]:
            raise ConfigError(
                f"{kid!r} is the active key ({rows} row(s) use it); run `tokenward keys rotate` "
                "to make a new key active and re-encrypt everything, then retire this one",
                code="KEY_ACTIVE",
                details={"kid": kid, "rows": rows},
            )
        if path is None:
            step = (
                f"{rows} row(s) still use it, so run `tokenward keys rotate` first; then "
                if rows
                else "no row uses it: "
            )
            raise ConfigError(
                f"keys come from TOKENWARD_ENCRYPTION_KEYS, which tokenward cannot edit; {step}"
                f"remove {kid!r} from that variable and restart the servers",
                code="KEYS_FROM_ENVIRONMENT",
                details={"kid": kid, "rows": rows},
            )
        if rows:
            raise ConfigError(
                f"{rows} row(s) still use key {kid!r}; run `tokenward keys rotate` first "
                "(it re-encrypts them under the active key), then retire it",
                code="KEY_IN_USE",
                details={"kid": kid, "rows": rows},
            )
        remaining = retire_key_from_file(path, kid)
        return {"retired": kid, "key_file": str(path), "keys": remaining}

    doc = _run_keys_command(as_json, body)
    if as_json:
        print_json(doc)
    else:
        typer.echo(
            f"Retired key {doc['retired']!r}; {doc['key_file']} now holds "
            f"{', '.join(map(repr, doc['keys']))}. Back up the key file again."
        )


@keys_app.command("rotate")
def keys_rotate(
    batch_size: int = typer.Option(200, min=1, max=10_000, help="Rows per batch."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a new key active and re-encrypt every stored secret under it, online."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tokenward.vault.rotation import prepare_active_key, rotate

    async def _run(
        settings: Settings, keyring: Keyring, added: bool, progress: Progress | None
    ) -> RotationReport:
        from tokenward.vault.db import create_engine

        engine = create_engine(settings)
        task = None
        if progress is not None:
            task = progress.add_task(f"re-encrypting under {keyring.active_kid}", total=None)

        def on_progress(done: int, total: int) -> None:
            if progress is not None and task is not None:
                total = max(total, done)
                if total == 0:  # nothing to re-encrypt: a full bar, not one stuck at 0/0
                    progress.update(task, completed=1, total=1)
                else:
                    progress.update(task, completed=done, total=total)

        try:
            return await rotate(
                engine, keyring, key_added=added, batch_size=batch_size, progress=on_progress
            )
        finally:
            await engine.dispose()

    async def check(settings: Settings) -> None:
        engine, _keyring = await _checked_engine(settings)  # never rotate from a broken state
        await engine.dispose()

    settings: Settings | None = None
    try:
        settings = load_settings()
        asyncio.run(check(settings))
        keyring, added = prepare_active_key(settings)
        if as_json:
            report = asyncio.run(_run(settings, keyring, added, None))
        else:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            ) as progress:
                report = asyncio.run(_run(settings, keyring, added, progress))
    except TokenwardError as exc:
        fail_with(exc, as_json=as_json)
    except Exception as exc:
        fail_with(_database_failure(settings, exc), as_json=as_json)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        note = "new key added to the key file; " if report.key_added else ""
        typer.echo(
            f"Active key {report.active_kid}: {note}{report.rows_updated} rows, "
            f"{report.values_reencrypted} values re-encrypted in {report.passes} pass(es); "
            f"{report.remaining} rows still under older keys."
        )
        for item in report.failed:
            typer.echo(f"failed: {item}", err=True)
    if report.failed or report.remaining:
        raise typer.Exit(1)
