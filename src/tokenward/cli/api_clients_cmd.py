"""``tokenward api-clients create|list|delete``: the credentials applications use for the API.

The secret is printed once, at creation; the vault keeps only its scrypt hash. A running server
stops accepting a deleted client's API tokens within 30 seconds (it re-reads the client list).
``--scopes`` limits what the client may do (see :mod:`tokenward.scopes`); without it the client
gets ``admin`` (everything).
"""

from __future__ import annotations

import typer

from tokenward.cli.app import app
from tokenward.cli.output import JSON_OPTION, local_container, print_json, print_table, run_command
from tokenward.clock import isoformat
from tokenward.scopes import ADMIN, SCOPES, format_scopes

api_clients_app = typer.Typer(
    help="API clients: the credentials applications exchange for API tokens.",
    no_args_is_help=True,
)
app.add_typer(api_clients_app, name="api-clients")


@api_clients_app.command("create")
@run_command
async def api_clients_create(
    name: str = typer.Option(..., "--name", help="A label for the application using it."),
    scopes: str = typer.Option(
        ADMIN,
        "--scopes",
        help="What the client may do, comma-separated: " + ", ".join(SCOPES) + ". "
        "For an agent: tools:execute,accounts:read.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API client and print its client_id and client_secret (shown only once)."""
    async with local_container() as container:
        record, secret = await container.vault.create_api_client(name, scopes)
    doc = {
        "client_id": record.client_id,
        "client_secret": secret.get_secret_value(),
        "name": record.name,
        "scopes": format_scopes(record.scopes).split(),
        "created_at": isoformat(record.created_at),
    }
    if as_json:
        print_json(doc)
        return
    typer.echo(f"Created API client {record.name!r}.")
    typer.echo(f"  client_id:     {doc['client_id']}")
    typer.echo(f"  client_secret: {doc['client_secret']}")
    typer.echo(f"  scopes:        {format_scopes(record.scopes)}")
    typer.echo(
        "Store the secret now: it is not shown again (tokenward keeps only a hash). "
        "Exchange both at POST /oauth/token for an API token.",
        err=True,
    )


@api_clients_app.command("list")
@run_command
async def api_clients_list(as_json: bool = JSON_OPTION) -> None:
    """List API clients (never their secrets)."""
    async with local_container() as container:
        records = await container.vault.list_api_clients()
    docs = [
        {
            "client_id": r.client_id,
            "name": r.name,
            "scopes": format_scopes(r.scopes).split(),
            "created_at": isoformat(r.created_at),
        }
        for r in records
    ]
    if as_json:
        print_json({"api_clients": docs})
        return
    print_table(
        "API clients",
        ["name", "client id", "scopes", "created"],
        [[d["name"], d["client_id"], " ".join(d["scopes"]), d["created_at"]] for d in docs],
    )


@api_clients_app.command("delete")
@run_command
async def api_clients_delete(
    client_id: str = typer.Argument(..., help="The client_id to delete."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete an API client; servers refuse its API tokens at once with TOKENWARD_REDIS_URL
    (they are told through Redis), otherwise within 30 seconds."""
    async with local_container() as container:
        await container.vault.delete_api_client(client_id)
        container.announce("api_client", client_id)
    if as_json:
        print_json({"deleted": True, "client_id": client_id})
    else:
        typer.echo(f"Deleted API client {client_id}.")
