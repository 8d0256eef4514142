"""The ``tokenward`` Typer application; command modules register themselves on it.

Start-up matters for a command people type: modules here import only Typer at load time and
everything heavy (settings, SQLAlchemy, the server, the SDK) inside the commands that need it.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tokenward",
    help="Self-hosted agent-auth gateway for Discord.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        from tokenward import __version__

        typer.echo(f"tokenward {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Self-hosted agent-auth gateway for Discord."""
