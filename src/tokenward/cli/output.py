"""Shared CLI output: tables for people, one JSON document with ``--json``, one-line errors."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tokenward.errors import TokenwardError

if TYPE_CHECKING:
    from tokenward.server.container import Container

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
T = TypeVar("T")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    # Ids and redirect URIs are copied from this table: fold long cells instead of eliding them,
    # and when the output is piped (no terminal width to respect) print the table at full width.
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    (console if console.is_terminal else Console(width=10_000)).print(table)


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


def run_command(
    func: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, T | None]:
    """Run an async command; a :class:`TokenwardError` becomes one clear line and exit 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | None:
        as_json = bool(kwargs.get("as_json", False))
        try:
            return asyncio.run(func(*args, **kwargs))
        except TokenwardError as exc:
            fail_with(exc, as_json=as_json)

    return wrapper


JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document.")


@asynccontextmanager
async def local_container() -> AsyncIterator[Container]:
    """The services over the local vault, as ``TOKENWARD_*`` describes it (imported lazily:
    commands that do not need the database start faster)."""
    from tokenward.config import Settings
    from tokenward.server.container import Container

    container = Container(Settings())
    await container.start()
    try:
        yield container
    finally:
        await container.close()
