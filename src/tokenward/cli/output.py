"""Shared CLI output: tables for people, one JSON document with ``--json``, one-line errors.

Every failure, expected or not, ends as one line on stderr (or one JSON error document with
``--json``) and a non-zero exit: :func:`run_command` wraps the async commands, and
``tokenward.cli.main`` catches whatever a synchronous command lets through. ``TOKENWARD_DEBUG=1``
re-raises unexpected errors, for their traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tokenward.errors import ConfigError, TokenwardError

if TYPE_CHECKING:
    from tokenward.config import Settings
    from tokenward.server.container import Container

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
T = TypeVar("T")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str | None = None,
) -> None:
    # Ids and redirect URIs are copied from this table: fold long cells instead of eliding them,
    # and when the output is piped (no terminal width to respect) print the table at full width.
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    out = console if console.is_terminal else Console(width=10_000)
    if caption:  # above the table, where it is read first (the data dir or database in use)
        out.print(escape(caption), highlight=False, soft_wrap=True)
    out.print(table)


def fail(message: str, *, code: str = "ERROR", as_json: bool = False, exit_code: int = 1) -> None:
    """One clear line (or one JSON error document) and a non-zero exit."""
    fail_with(TokenwardError(message, code=code), as_json=as_json, exit_code=exit_code)


def fail_with(
    exc: TokenwardError, *, as_json: bool = False, line: str | None = None, exit_code: int = 1
) -> NoReturn:
    """Report ``exc``: its envelope (details included) with ``--json``, else ``error: <line>``
    (the message unless a command words it itself) on one stderr line; then exit non-zero."""
    if as_json:
        print_json(exc.to_dict())
    else:
        err_console.print(
            f"[bold red]error:[/] {escape(line if line is not None else exc.message)}",
            highlight=False,
            markup=True,
            soft_wrap=True,
        )
    raise typer.Exit(exit_code)


def settings_error(exc: Exception) -> ConfigError:
    """A pydantic validation error of :class:`Settings`, named by its ``TOKENWARD_*`` variable."""
    problems: list[str] = []
    fields: dict[str, str] = {}
    for item in getattr(exc, "errors", lambda: [])():
        name = "TOKENWARD_" + "_".join(str(part) for part in item.get("loc", ())).upper()
        fields[name] = str(item.get("msg", "invalid"))
        problems.append(f"{name}: {fields[name]}")
    return ConfigError(
        "invalid setting: " + ("; ".join(problems) or str(exc).splitlines()[0]),
        details={"fields": fields},
    )


def as_tokenward_error(exc: BaseException) -> TokenwardError:
    """Any failure as a :class:`TokenwardError` whose message is one line and holds no secret."""
    if isinstance(exc, TokenwardError):
        return exc
    from pydantic import ValidationError as PydanticValidationError

    if isinstance(exc, PydanticValidationError):
        return settings_error(exc)
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        # The driver's message can quote SQL parameters; keep only the error's class.
        kind = type(getattr(exc, "orig", None) or exc).__name__
        return TokenwardError(f"database error ({kind})", code="DATABASE_ERROR")
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        reason = exc.strerror or type(exc).__name__
        return TokenwardError(f"{reason}{where}", code="OS_ERROR")
    return TokenwardError(
        f"unexpected {type(exc).__name__}; this is a bug — set TOKENWARD_DEBUG=1 to see where",
        code="INTERNAL_ERROR",
    )


def report_failure(exc: BaseException, *, as_json: bool = False, exit_code: int = 1) -> NoReturn:
    """One line (or one JSON document) for ``exc`` and exit; the traceback only on request."""
    if not isinstance(exc, TokenwardError) and os.environ.get("TOKENWARD_DEBUG", "").lower() in {
        "1",
        "true",
        "yes",
    }:
        raise exc
    try:
        fail_with(as_tokenward_error(exc), as_json=as_json, exit_code=exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)


def run_command(
    func: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, T | None]:
    """Run an async command; any failure becomes one clear line and exit 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | None:
        as_json = bool(kwargs.get("as_json", False))
        try:
            return asyncio.run(func(*args, **kwargs))
        except TokenwardError as exc:
            fail_with(exc, as_json=as_json)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            report_failure(exc, as_json=as_json)

    return wrapper


JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document.")


def load_settings() -> Settings:
    """``Settings()`` from the environment; a bad value is one line naming its variable."""
    from pydantic import ValidationError as PydanticValidationError

    from tokenward.config import Settings

    try:
        return Settings()
    except PydanticValidationError as exc:
        raise settings_error(exc) from None


def database_caption(settings: Settings) -> str:
    """Which vault a listing comes from (shown above tables, never in ``--json``)."""
    from tokenward.vault.db import database_label

    return f"{database_label(settings)} (data dir {settings.data_dir})"


@asynccontextmanager
async def local_container() -> AsyncIterator[Container]:
    """The services over the local vault, as ``TOKENWARD_*`` describes it (imported lazily:
    commands that do not need the database start faster).

    Start-up refuses, in one line, a database that is unreachable or not migrated and keys that
    cannot open it; a database failure later is one line too.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from tokenward.server.container import Container
    from tokenward.vault.db import database_error

    settings = load_settings()
    container = Container(settings)
    try:
        await container.start()
        yield container
    except SQLAlchemyError as exc:
        raise database_error(settings, exc) from None
    finally:
        await container.close()
