"""``tokenward admins create|list|delete``: the operators who sign in to the dashboard.

The password is read from standard input (``--password-stdin``), never from an argument (it
would show in the process list and the shell's history); the vault keeps only its scrypt hash.
Deleting an operator ends their sessions at once.
"""

from __future__ import annotations

import sys

import typer

from tokenward.cli.app import app
from tokenward.cli.output import JSON_OPTION, local_container, print_json, print_table, run_command
from tokenward.clock import isoformat
from tokenward.errors import ValidationError

admins_app = typer.Typer(
    help="Operators: the people who sign in to the dashboard (/dashboard).",
    no_args_is_help=True,
)
app.add_typer(admins_app, name="admins")


def _read_password() -> str:
    text = sys.stdin.read()
    # One trailing line break is the terminal's or echo's, not the password's.
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise ValidationError(
            'no password on standard input (e.g. `printf %s "$PW" | tokenward admins create '
            "--username alice --password-stdin`)",
            fields={"password": "empty"},
        )
    return text


@admins_app.command("create")
@run_command
async def admins_create(
    username: str = typer.Option(..., "--username", help="The name to sign in with."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (required)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an operator; the password (at least 12 characters) comes from standard input."""
    if not password_stdin:
        raise ValidationError(
            "give the password on standard input with --password-stdin",
            fields={"password": "read from standard input with --password-stdin"},
        )
    password = _read_password()
    async with local_container() as container:
        record = await container.admins.create(username, password)
    if as_json:
        print_json({"username": record.username, "created_at": isoformat(record.created_at)})
        return
    typer.echo(f"Created operator {record.username!r}; sign in at /dashboard.")


@admins_app.command("list")
@run_command
async def admins_list(as_json: bool = JSON_OPTION) -> None:
    """List operators (never their passwords)."""
    async with local_container() as container:
        records = await container.admins.list()
    docs = [
        {
            "username": r.username,
            "created_at": isoformat(r.created_at),
            "last_sign_in_at": None if r.last_sign_in_at is None else isoformat(r.last_sign_in_at),
        }
        for r in records
    ]
    if as_json:
        print_json({"admins": docs})
        return
    print_table(
        "Operators",
        ["username", "created", "last sign-in"],
        [[d["username"], d["created_at"], d["last_sign_in_at"] or "never"] for d in docs],
    )


@admins_app.command("delete")
@run_command
async def admins_delete(
    username: str = typer.Argument(..., help="The operator to delete."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete an operator and end their sessions."""
    async with local_container() as container:
        await container.admins.delete(username)
    if as_json:
        print_json({"deleted": True, "username": username})
    else:
        typer.echo(f"Deleted operator {username!r}; their sessions have ended.")
