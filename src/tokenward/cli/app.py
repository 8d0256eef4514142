"""The ``tokenward`` Typer application; command modules register themselves on it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tokenward",
    help="Self-hosted agent-auth gateway for Discord.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Self-hosted agent-auth gateway for Discord."""
