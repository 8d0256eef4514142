"""``tokenward serve``, ``connections``, ``link``, ``accounts``: the local vault from a shell."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tokenward.cli.app import app
from tokenward.cli.output import (
    JSON_OPTION,
    database_caption,
    err_console,
    fail,
    local_container,
    print_json,
    print_table,
    run_command,
)
from tokenward.clock import isoformat

if TYPE_CHECKING:
    from tokenward.oauth.service import ConnectionDeleteOutcome
    from tokenward.server.container import Container
    from tokenward.vault.repository import ConnectionRecord

PROGRESS_THRESHOLD = 5
"""From this many grants to revoke, ``connections delete`` shows a progress bar."""

connections_app = typer.Typer(help="Discord applications tokenward acts for.", no_args_is_help=True)
accounts_app = typer.Typer(help="End users' connected Discord accounts.", no_args_is_help=True)
app.add_typer(connections_app, name="connections")
app.add_typer(accounts_app, name="accounts")


def _connection_doc(container: Container, record: ConnectionRecord) -> dict[str, Any]:
    """A connection as the API shows it (``GET /api/v1/connections``): same keys and values."""
    from tokenward.server.api.models import Connection

    view = Connection.of(
        record, container.oauth.redirect_uri(record.id), container.discord_urls(record.id)
    )
    doc: dict[str, Any] = view.model_dump(mode="json")
    return doc


def _when(ts: float | None) -> str:
    return isoformat(ts) if ts is not None else "-"


# -- connections -----------------------------------------------------------------------------


@connections_app.command("create")
@run_command
async def connections_create(
    name: str = typer.Option(..., "--name", help="Unique name applications use (connection_name)."),
    provider: str = typer.Option(
        "discord",
        "--provider",
        help="'discord' (users link through OAuth2; needs --client-id and a secret) or "
        "'discordbot' (each account holds a bot token; no OAuth client).",
    ),
    client_id: str | None = typer.Option(
        None, "--client-id", help="The Discord application's client id (discord)."
    ),
    client_secret: str | None = typer.Option(
        None,
        "--client-secret",
        help="The client secret. Prefer --client-secret-stdin or TOKENWARD_CLIENT_SECRET: "
        "a secret on the command line lands in shell history.",
    ),
    client_secret_stdin: bool = typer.Option(
        False, "--client-secret-stdin", help="Read the client secret from standard input."
    ),
    scopes: str | None = typer.Option(
        None,
        "--scopes",
        help="Comma- or space-separated OAuth2 scopes to request (discord; default: the whole "
        "catalog's: identify,email,guilds,guilds.members.read,connections,openid).",
    ),
    bot_token: str | None = typer.Option(
        None,
        "--bot-token",
        envvar="TOKENWARD_BOT_TOKEN",
        help="Optional bot token (for discord_get_user on other users); also TOKENWARD_BOT_TOKEN.",
    ),
    require_user_verification: bool = typer.Option(
        False,
        "--require-user-verification",
        help="Every link needs a user_verify_url: after consent your application confirms the "
        "user before the account becomes ACTIVE (see the README).",
    ),
    allowed_tools: str | None = typer.Option(
        None,
        "--allowed-tools",
        help="Comma-separated tool patterns this connection may run; '!' denies, the last match "
        "decides (e.g. '*,!*_ban*'). Default: every tool.",
    ),
    public_key: str | None = typer.Option(
        None,
        "--public-key",
        help="The Discord application's public key (64 hex characters, Developer Portal → "
        "General Information): tokenward then serves its Interactions Endpoint URL and Webhook "
        "Events URL.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a Discord application and print the redirect URI to add in Discord's portal, or
    (``--provider discordbot``) a connection whose accounts each hold a bot token."""
    from tokenward.server.api.connections import create_connection_record

    secret = client_secret
    if client_secret_stdin:
        secret = sys.stdin.readline().strip()
        if not secret:
            fail(
                "--client-secret-stdin: standard input was empty; pipe the client secret in",
                code="VALIDATION_ERROR",
                as_json=as_json,
            )
    if not secret and client_id is not None:
        secret = os.environ.get("TOKENWARD_CLIENT_SECRET")
    scope_list = None if scopes is None else [s for s in scopes.replace(",", " ").split() if s]
    async with local_container() as container:
        oauth = container.connectors.provider(provider).uses_oauth
        if oauth and not secret and client_id is not None:
            fail(
                "no client secret: pass --client-secret-stdin, set TOKENWARD_CLIENT_SECRET, "
                "or use --client-secret",
                code="VALIDATION_ERROR",
                as_json=as_json,
            )
            return
        connection = await create_connection_record(
            container,
            name=name,
            provider=provider,
            client_id=client_id,
            client_secret=secret or None,
            scopes=scope_list,
            bot_token=bot_token or None,
            require_user_verification=require_user_verification,
            allowed_tools=_patterns(allowed_tools),
            public_key=public_key,
        )
        doc = _connection_doc(container, connection)
    if as_json:
        print_json(doc)
        return
    typer.echo(f"Created connection {doc['name']!r} (id {doc['id']}, provider {provider}).")
    if doc["redirect_uri"] is not None:
        typer.echo("Add this redirect URI in Discord's Developer Portal (OAuth2 → Redirects):")
        typer.echo(f"  {doc['redirect_uri']}")
    else:
        typer.echo(
            "Give it accounts with their bot tokens: tokenward accounts create "
            f"--connection {doc['name']} --identifier ID --bot-token-stdin"
        )
    _echo_discord_urls(doc)


def _echo_discord_urls(doc: dict[str, Any]) -> None:
    if doc["interactions_endpoint_url"] is None:
        return
    typer.echo("In Discord's Developer Portal, set the Interactions Endpoint URL (General")
    typer.echo(f"Information) to:\n  {doc['interactions_endpoint_url']}")
    typer.echo(f"and the Webhook Events URL (Webhooks) to:\n  {doc['event_webhooks_url']}")


def _patterns(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [p for p in text.replace(",", " ").split() if p]


@connections_app.command("update")
@run_command
async def connections_update(
    name: str = typer.Argument(..., help="The connection's name."),
    allowed_tools: str | None = typer.Option(
        None,
        "--allowed-tools",
        help="Comma-separated tool patterns this connection may run ('!' denies, the last match "
        "decides), replacing the current ones.",
    ),
    all_tools: bool = typer.Option(
        False, "--all-tools", help="Remove the tool policy: every tool may run."
    ),
    public_key: str | None = typer.Option(
        None,
        "--public-key",
        help="The Discord application's public key (64 hex characters, Developer Portal → "
        "General Information), replacing the current one.",
    ),
    no_public_key: bool = typer.Option(
        False,
        "--no-public-key",
        help="Remove the public key: requests from Discord to this connection are refused.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change a connection's tool policy or public key (as PATCH /api/v1/connections/{name})."""
    from tokenward.errors import ValidationError
    from tokenward.tools.policy import check_patterns
    from tokenward.vault.repository import UNSET

    if allowed_tools is not None and all_tools:
        raise ValidationError(
            "give --allowed-tools PATTERNS or --all-tools, not both",
            fields={"allowed_tools": "give --allowed-tools or --all-tools (not both)"},
        )
    if public_key is not None and no_public_key:
        raise ValidationError(
            "give --public-key HEX or --no-public-key, not both",
            fields={"public_key": "give --public-key or --no-public-key (not both)"},
        )
    policy_given = allowed_tools is not None or all_tools
    key_given = public_key is not None or no_public_key
    if not (policy_given or key_given):
        raise ValidationError(
            "nothing to change: give --allowed-tools, --all-tools, --public-key or --no-public-key",
            fields={
                "allowed_tools": "give --allowed-tools or --all-tools",
                "public_key": "or give --public-key or --no-public-key",
            },
        )
    async with local_container() as container:
        current = await container.vault.get_connection_by_name(name)
        connector = container.connector(current)
        checked: Any = UNSET
        if policy_given:
            patterns = None if all_tools else _patterns(allowed_tools)
            checked = check_patterns(patterns, connector.catalog.names())
        record = await container.vault.update_connection(
            current.id,
            allowed_tools=checked,
            public_key=(None if no_public_key else public_key) if key_given else UNSET,
        )
        container.announce("connection", name)  # running servers re-read it now (with Redis)
        doc = _connection_doc(container, record)
    if as_json:
        print_json(doc)
        return
    if policy_given:
        shown = (
            ", ".join(doc["allowed_tools"]) if doc["allowed_tools"] is not None else "every tool"
        )
        typer.echo(f"Connection {name!r} may run: {shown}")
    if key_given:
        if doc["public_key"] is None:
            typer.echo(f"Connection {name!r} has no public key: requests from Discord are refused.")
        else:
            typer.echo(f"Connection {name!r} checks Discord's signatures with {doc['public_key']}.")
            _echo_discord_urls(doc)


@connections_app.command("list")
@run_command
async def connections_list(as_json: bool = JSON_OPTION) -> None:
    """List connections."""
    async with local_container() as container:
        docs = [_connection_doc(container, c) for c in await container.vault.list_connections()]
        caption = database_caption(container.settings)
    if as_json:
        print_json({"connections": docs})
        return
    print_table(
        "Connections",
        [
            "name",
            "provider",
            "id",
            "client id",
            "scopes",
            "bot",
            "user verification",
            "tools",
            "redirect URI",
            "Discord in",
        ],
        [
            [
                d["name"],
                d["provider"],
                d["id"],
                d["client_id"] or "-",
                " ".join(d["scopes"]) or "-",
                "yes" if d["has_bot_token"] else "no",
                "required" if d["require_user_verification"] else "no",
                ",".join(d["allowed_tools"]) if d["allowed_tools"] is not None else "all",
                d["redirect_uri"] or "-",
                "public key set" if d["public_key"] else "-",
            ]
            for d in docs
        ],
        caption=caption,
    )


def _confirm(question: str) -> bool:
    """Ask on stderr (stdout stays for results); only y/yes is yes, no answer (end of input, as
    in a script) is no."""
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        sys.stderr.write("\n")
    return answer.strip().lower() in {"y", "yes"}


@connections_app.command("delete")
@run_command
async def connections_delete(
    name: str = typer.Argument(..., help="Connection name."),
    force: bool = typer.Option(
        False, "--force", "-f", help="Do not ask for confirmation (for scripts)."
    ),
    no_revoke: bool = typer.Option(
        False,
        "--no-revoke",
        help="Do not revoke the accounts' grants at Discord (they stay alive there).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete a connection and every account under it, revoking each account's grant at Discord
    first. Asks for confirmation when the connection has accounts (--force skips it)."""
    from tokenward.errors import ConflictError

    async with local_container() as container:
        connection = await container.vault.get_connection_by_name(name)
        accounts = await container.oauth.connection_accounts(connection.id)
        holding = sum(1 for a in accounts if a.access_token is not None)
        if accounts and not force:
            if not holding:
                what = "none of them holds a Discord grant"
            elif no_revoke:
                what = f"their {holding} Discord grant(s) are NOT revoked (--no-revoke)"
            else:
                what = f"the {holding} Discord grant(s) among them are revoked at Discord first"
            question = (
                f"Delete connection {name!r} and its {len(accounts)} connected account(s)? ({what})"
            )
            if as_json or not _confirm(question):
                raise ConflictError(
                    f"connection {name!r} has {len(accounts)} connected account(s); nothing was "
                    "deleted (confirm, or pass --force)",
                    code="CONFIRMATION_REQUIRED",
                    details={"name": name, "accounts": len(accounts)},
                )
        outcome = await _delete_connection_with_progress(
            container, name, revoke=not no_revoke, holding=holding, quiet=as_json
        )
    doc = {
        "deleted": True,
        "id": outcome.connection.id,
        "name": outcome.connection.name,
        "accounts_deleted": outcome.accounts,
        "revoked": outcome.revoked,
        "revoke_failed": [
            {"account_id": f.account_id, "identifier": f.identifier, "error": f.error}
            for f in outcome.failures
        ],
    }
    if as_json:
        print_json(doc)
        return
    if outcome.revoke_attempted and outcome.with_tokens:
        typer.echo(
            f"Revoked {outcome.revoked} of {outcome.with_tokens} grant(s) at Discord"
            + (f"; {len(outcome.failures)} failed:" if outcome.failures else ".")
        )
        for failure in outcome.failures:
            typer.echo(
                f"  warning: {failure.identifier!r} ({failure.account_id}): {failure.error}",
                err=True,
            )
    elif not outcome.revoke_attempted and outcome.with_tokens:
        typer.echo(f"Not revoked at Discord: {outcome.with_tokens} grant(s) (--no-revoke).")
    suffix = f" and its {outcome.accounts} account(s)" if outcome.accounts else ""
    typer.echo(f"Deleted connection {outcome.connection.name!r}{suffix}.")


async def _delete_connection_with_progress(
    container: Container, name: str, *, revoke: bool, holding: int, quiet: bool
) -> ConnectionDeleteOutcome:
    """Revoke, then delete; a progress bar on stderr when there are many grants to revoke.
    Running servers are told (with Redis) to forget the connection."""
    if quiet or not revoke or holding < PROGRESS_THRESHOLD:
        outcome = await container.oauth.delete_connection(name, revoke=revoke)
        container.announce("connection", name)
        return outcome
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("Revoking grants at Discord", total=holding)
        outcome = await container.oauth.delete_connection(
            name,
            revoke=revoke,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    container.announce("connection", name)
    return outcome


# -- link ------------------------------------------------------------------------------------


@app.command("link")
@run_command
async def link(
    connection: str = typer.Option(..., "--connection", help="Connection name."),
    identifier: str = typer.Option(..., "--identifier", help="Your application's user id."),
    user_verify_url: str | None = typer.Option(
        None, "--user-verify-url", help="Send the browser here to confirm the user after consent."
    ),
    state: str | None = typer.Option(None, "--state", help="Your own state, given back to you."),
    allow_user_change: bool = typer.Option(
        False,
        "--allow-user-change",
        help="Allow re-linking the identifier to a different Discord user than the one it is "
        "linked to now (refused otherwise).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print an authorization link for one end user."""
    async with local_container() as container:
        result = await container.oauth.create_link(
            connection,
            identifier,
            user_verify_url=user_verify_url,
            state=state,
            allow_user_change=allow_user_change,
        )
    if as_json:
        print_json({"link": result.link, "expires_at": isoformat(result.expires_at)})
    else:
        typer.echo(result.link)
        typer.echo(f"(valid until {isoformat(result.expires_at)}; send it to the user)", err=True)


# -- accounts --------------------------------------------------------------------------------


async def _select_account(
    container: Container, account_id: str | None, connection: str | None, identifier: str | None
) -> Any:
    if account_id:
        return await container.vault.get_account(account_id)
    if connection and identifier:
        return await container.oauth.find_account(connection, identifier)
    from tokenward.errors import ValidationError

    raise ValidationError(
        "select an account with --id, or with --connection and --identifier",
        fields={"id": "or --connection with --identifier"},
    )


@accounts_app.command("create")
@run_command
async def accounts_create(
    connection: str = typer.Option(..., "--connection", help="A discordbot connection's name."),
    identifier: str = typer.Option(..., "--identifier", help="Your key for this account."),
    bot_token_stdin: bool = typer.Option(
        False,
        "--bot-token-stdin",
        help="Read the bot token from standard input (or set TOKENWARD_ACCOUNT_BOT_TOKEN).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a connected account holding a bot token (a discordbot connection). The token is
    checked with Discord (GET /users/@me) before anything is stored; it is never printed."""
    from tokenward.server.api.models import ConnectedAccount

    token: str | None = None
    if bot_token_stdin:
        token = sys.stdin.readline().strip()
        if not token:
            fail(
                "--bot-token-stdin: standard input was empty; pipe the bot token in",
                code="VALIDATION_ERROR",
                as_json=as_json,
            )
    else:
        token = os.environ.get("TOKENWARD_ACCOUNT_BOT_TOKEN")
    if not token:
        fail(
            "no bot token: pipe it into --bot-token-stdin or set TOKENWARD_ACCOUNT_BOT_TOKEN",
            code="VALIDATION_ERROR",
            as_json=as_json,
        )
        return
    async with local_container() as container:
        account, created = await container.bot_accounts.create(connection, identifier, token)
        if not created:  # running servers drop the old token now (with Redis)
            container.announce("account_key", f"{account.connection_id}\n{account.identifier}")
        doc = ConnectedAccount.of(account, connection).model_dump(mode="json")
    if as_json:
        print_json({"connected_account": doc, "created": created})
        return
    verb = "Created" if created else "Replaced the bot token of"
    typer.echo(
        f"{verb} account {identifier!r} on {connection!r} (id {doc['id']}, bot user "
        f"{doc['provider_user_id']}, {doc['status']})."
    )


@accounts_app.command("list")
@run_command
async def accounts_list(
    connection: str | None = typer.Option(None, "--connection", help="Only this connection."),
    status: str | None = typer.Option(None, "--status", help="Only this status."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List connected accounts (``--json``: the same document as GET /api/v1/connected-accounts,
    every page at once)."""
    from tokenward.server.api.models import ConnectedAccount

    async with local_container() as container:
        names = {c.id: c.name for c in await container.vault.list_connections()}
        connection_id = None
        if connection:
            connection_id = (await container.vault.get_connection_by_name(connection)).id
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await container.vault.list_accounts(
                connection_id=connection_id, status=status, page_size=200, page_token=token
            )
            items.extend(
                ConnectedAccount.of(a, names.get(a.connection_id, "")).model_dump(mode="json")
                for a in page.items
            )
            token = page.next_page_token
            if not token:
                break
        caption = database_caption(container.settings)
    if as_json:
        print_json({"connected_accounts": items, "next_page_token": None})
        return
    print_table(
        "Connected accounts",
        ["id", "connection", "identifier", "status", "discord user", "scopes", "token expires"],
        [
            [
                a["id"],
                a["connection_name"],
                a["identifier"],
                a["status"],
                a["provider_user_id"] or "-",
                " ".join(a["granted_scopes"]),
                a["token_expires_at"] or "-",
            ]
            for a in items
        ],
        caption=caption,
    )


@accounts_app.command("show")
@run_command
async def accounts_show(
    account_id: str | None = typer.Option(None, "--id", help="Account id."),
    connection: str | None = typer.Option(None, "--connection", help="Connection name."),
    identifier: str | None = typer.Option(None, "--identifier", help="Your user id."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one connected account (never its tokens)."""
    async with local_container() as container:
        account = await _select_account(container, account_id, connection, identifier)
        doc = account.public()
    if as_json:
        print_json(doc)
        return
    for key, value in doc.items():
        shown: Any = value
        if key.endswith("_at"):
            shown = _when(value)
        elif isinstance(value, list):
            shown = " ".join(str(v) for v in value) or "-"
        elif isinstance(value, bool):
            shown = "yes" if value else "no"
        elif value is None:
            shown = "-"
        typer.echo(f"{key:>18}: {shown}")


@accounts_app.command("delete")
@run_command
async def accounts_delete(
    account_id: str | None = typer.Option(None, "--id", help="Account id."),
    connection: str | None = typer.Option(None, "--connection", help="Connection name."),
    identifier: str | None = typer.Option(None, "--identifier", help="Your user id."),
    force: bool = typer.Option(
        False, "--force", help="Delete even when revoking at Discord fails (the failure is shown)."
    ),
    yes: bool = typer.Option(
        False,
        "--yes",
        "-y",
        help="Revoke even when other identifiers share the Discord grant (they become "
        "DISCONNECTED); do not ask.",
    ),
    no_revoke: bool = typer.Option(
        False,
        "--no-revoke",
        help="Delete here only: the grant stays alive at Discord (other identifiers of the same "
        "Discord user keep working).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke the grant at Discord, then delete the account and its tokens.

    Revoking ends the grant of every identifier linked to the same Discord user: when there are
    such identifiers, they are listed and you are asked first (--yes answers yes; with --json
    the command refuses instead of asking)."""
    async with local_container() as container:
        account = await _select_account(container, account_id, connection, identifier)
        revoke_siblings = yes
        if not (yes or no_revoke or as_json) and account.access_token is not None:
            siblings = await container.vault.grant_siblings(account.id)
            if siblings:
                typer.echo(
                    f"Revoking the grant of {account.identifier!r} at Discord ends the whole "
                    f"grant of its Discord user ({account.provider_user_id}), so these "
                    f"{len(siblings)} other account(s) stop working too and become DISCONNECTED:",
                    err=True,
                )
                for sibling in siblings:
                    typer.echo(
                        f"  {sibling.identifier!r} on {sibling.connection_name!r} ({sibling.id})",
                        err=True,
                    )
                typer.echo("(--no-revoke deletes this account here only.)", err=True)
                revoke_siblings = _confirm("Revoke anyway?")
                if not revoke_siblings:
                    fail("nothing was changed", code="SIBLINGS_AFFECTED")
        outcome = await container.oauth.delete_account(
            account.id, force=force, revoke=not no_revoke, revoke_siblings=revoke_siblings
        )
        container.announce("account", outcome.account_id)  # running servers forget it now
        for sibling in outcome.siblings_disconnected:
            container.announce("account", sibling.id)
    siblings_doc = [{**s.public(), "status": "DISCONNECTED"} for s in outcome.siblings_disconnected]
    doc = {
        "deleted": True,
        "id": outcome.account_id,
        "revoked": outcome.revoked,
        "revoke_error": outcome.revoke_error,
        "siblings_disconnected": siblings_doc,
    }
    if as_json:
        print_json(doc)
        return
    typer.echo(f"Deleted account {outcome.account_id}.")
    if outcome.revoked:
        typer.echo("The grant was revoked at Discord.")
    elif outcome.revoke_error:
        typer.echo(f"warning: {outcome.revoke_error}", err=True)
    elif no_revoke:
        typer.echo("Not revoked at Discord (--no-revoke): the grant is still alive there.")
    for sibling in outcome.siblings_disconnected:
        typer.echo(f"Disconnected {sibling.identifier!r} ({sibling.id}): same Discord grant.")


# -- serve -----------------------------------------------------------------------------------


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, "--host", help="Interface (default TOKENWARD_HOST)."),
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535, help="Port (default TOKENWARD_PORT); 0 picks a free one."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        max=64,
        help="Worker processes on the one port (default TOKENWARD_WORKERS, 1); more than 1 "
        "needs TOKENWARD_REDIS_URL so that they share rate limits.",
    ),
    compat_port: int | None = typer.Option(
        None,
        "--compat-port",
        min=0,
        max=65535,
        help="Also serve the hosted platform's SDKs (gRPC + REST) on this port (default "
        "TOKENWARD_COMPAT_PORT; unset: off).",
    ),
    tls_cert: Path | None = typer.Option(
        None,
        "--tls-cert",
        help="PEM certificate chain for TLS on --compat-port (TOKENWARD_TLS_CERT).",
    ),
    tls_key: Path | None = typer.Option(
        None, "--tls-key", help="PEM private key of --tls-cert (TOKENWARD_TLS_KEY)."
    ),
) -> None:
    """Run the gateway's HTTP server.

    Without TOKENWARD_PUBLIC_URL, links and the redirect URI use http://HOST:PORT (it says so).
    The server starts while the database is down or not migrated, answering /healthz but not
    /readyz until it is; settings or keys that can never work stop it at once.
    """
    from tokenward.cli.serving import run_serve

    run_serve(
        host=host,
        port=port,
        workers=workers,
        compat_port=compat_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
