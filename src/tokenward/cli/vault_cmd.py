"""``tokenward db upgrade`` and ``tokenward keys rotate``."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from tokenward.cli.app import app
from tokenward.cli.output import fail_with
from tokenward.config import Settings
from tokenward.errors import TokenwardError

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


def _database_error(exc: SQLAlchemyError) -> TokenwardError:
    # The driver's message can quote SQL parameters; keep only the error's class.
    kind = type(getattr(exc, "orig", None) or exc).__name__
    return TokenwardError(
        f"database error ({kind}); check TOKENWARD_DATABASE_URL and run `tokenward db upgrade`",
        code="DATABASE_ERROR",
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Option("head", help="Target revision."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Apply the schema migrations to the configured database."""
    from tokenward.vault.db import current_revision, normalize_database_url, upgrade

    try:
        settings = Settings()
        url = normalize_database_url(settings.effective_database_url)
        before = current_revision(url)
        after = upgrade(url, revision)
    except SQLAlchemyError as exc:
        fail_with(_database_error(exc), as_json=as_json)
    except TokenwardError as exc:
        fail_with(exc, as_json=as_json)
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    if as_json:
        typer.echo(json.dumps({"backend": backend, "from": before, "revision": after}))
    elif before == after:
        typer.echo(f"Database ({backend}) already at revision {after}.")
    else:
        typer.echo(f"Database ({backend}) upgraded from {before or 'empty'} to revision {after}.")


@keys_app.command("rotate")
def keys_rotate(
    batch_size: int = typer.Option(200, min=1, max=10_000, help="Rows per batch."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Make a new key active and re-encrypt every stored secret under it, online."""
    from tokenward.vault.crypto import Keyring
    from tokenward.vault.db import create_engine, current_revision
    from tokenward.vault.rotation import RotationReport, prepare_active_key, rotate

    async def _run(
        settings: Settings, keyring: Keyring, added: bool, progress: Progress | None
    ) -> RotationReport:
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

    try:
        settings = Settings()
        if current_revision(settings.effective_database_url) is None:
            raise TokenwardError(
                "the database has no schema yet; run `tokenward db upgrade` first",
                code="DATABASE_NOT_MIGRATED",
            )
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
    except SQLAlchemyError as exc:
        fail_with(_database_error(exc), as_json=as_json)
    except TokenwardError as exc:
        fail_with(exc, as_json=as_json)
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
