"""``/api/v1/connections``: the Discord applications tokenward acts for.

Responses never carry the client secret or the bot token (only ``has_bot_token``); they do carry
``redirect_uri``, the callback to register in Discord's Developer Portal (null for a
``discordbot`` connection, whose accounts hold bot tokens and are not linked through OAuth2),
and, once the connection has the application's ``public_key``, ``interactions_endpoint_url`` and
``event_webhooks_url``, the two URLs Discord sends interactions and webhook events to.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import SecretStr

from tokenward.errors import ValidationError
from tokenward.oauth.service import ConnectionDeleteOutcome
from tokenward.server.api.auth import scoped
from tokenward.server.api.errors import error_responses
from tokenward.server.api.models import (
    Connection,
    ConnectionCreate,
    ConnectionDeleted,
    ConnectionList,
    ConnectionResponse,
    ConnectionUpdate,
    RevokeFailureView,
)
from tokenward.server.container import Container
from tokenward.tools.policy import check_patterns
from tokenward.vault.repository import ConnectionRecord

router = APIRouter(prefix="/api/v1/connections", tags=["connections"])

NamePath = Path(min_length=1, max_length=64, description="The connection's name.")


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _view(container: Container, record: ConnectionRecord) -> Connection:
    return Connection.of(
        record, container.oauth.redirect_uri(record.id), container.discord_urls(record.id)
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConnectionResponse,
    summary="Create a connection",
    responses=error_responses(400, 401, 409),
    dependencies=[scoped("connections:write")],
)
async def create_connection(body: ConnectionCreate, request: Request) -> ConnectionResponse:
    """Register a Discord application (`provider: discord`; add the returned `redirect_uri` in
    Discord's portal), or a connection whose accounts each hold a bot token (`provider:
    discordbot`; no OAuth client, no redirect URI)."""
    container = _container(request)
    record = await create_connection_record(
        container,
        name=body.name,
        provider=body.provider,
        client_id=body.client_id,
        client_secret=None if body.client_secret is None else body.client_secret.get_secret_value(),
        scopes=body.scopes,
        bot_token=None if body.bot_token is None else body.bot_token.get_secret_value(),
        require_user_verification=body.require_user_verification,
        allowed_tools=body.allowed_tools,
        public_key=body.public_key,
    )
    return ConnectionResponse(connection=_view(container, record))


async def create_connection_record(
    container: Container,
    *,
    name: str,
    provider: str,
    client_id: str | None,
    client_secret: str | None,
    scopes: list[str] | None,
    bot_token: str | None,
    require_user_verification: bool,
    allowed_tools: list[str] | None,
    public_key: str | None = None,
) -> ConnectionRecord:
    """Check the fields against the provider (an OAuth client or none, tool patterns that match
    its tools), then store the connection. Shared by the API and the CLI."""
    connector = container.connectors.provider(provider)
    connector.check_connection(
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        bot_token=bot_token,
        require_user_verification=require_user_verification,
    )
    patterns = check_patterns(allowed_tools, connector.catalog.names())
    if scopes is None and connector.uses_oauth:
        scopes = list(connector.spec.default_scopes)
    return await container.vault.create_connection(
        name=name,
        provider=provider,
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes or [],
        bot_token=bot_token,
        require_user_verification=require_user_verification,
        allowed_tools=patterns,
        public_key=public_key,
    )


@router.get(
    "",
    response_model=ConnectionList,
    summary="List connections",
    responses=error_responses(401),
    dependencies=[scoped("connections:read")],
)
async def list_connections(request: Request) -> ConnectionList:
    container = _container(request)
    records = await container.vault.list_connections()
    return ConnectionList(connections=[_view(container, r) for r in records])


@router.get(
    "/{name}",
    response_model=ConnectionResponse,
    summary="Get a connection",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("connections:read")],
)
async def get_connection(request: Request, name: str = NamePath) -> ConnectionResponse:
    container = _container(request)
    record = await container.vault.get_connection_by_name(name)
    return ConnectionResponse(connection=_view(container, record))


@router.patch(
    "/{name}",
    response_model=ConnectionResponse,
    summary="Change a connection",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("connections:write")],
)
async def update_connection(
    body: ConnectionUpdate, request: Request, name: str = NamePath
) -> ConnectionResponse:
    """Change `client_secret`, `scopes`, `bot_token` (`null` removes the bot token),
    `require_user_verification` (links made before it was turned on can no longer be used;
    accounts already linked stay as they are), `allowed_tools` (`null`: every tool) or
    `public_key` (`null` removes it: requests from Discord are refused again)."""
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    for field in given:
        value = getattr(body, field)
        changes[field] = value.get_secret_value() if isinstance(value, SecretStr) else value
    record = await update_connection_record(_container(request), name, changes)
    return ConnectionResponse(connection=_view(_container(request), record))


UPDATABLE = (
    "client_secret",
    "scopes",
    "bot_token",
    "require_user_verification",
    "allowed_tools",
    "public_key",
)


async def update_connection_record(
    container: Container, name: str, changes: dict[str, Any]
) -> ConnectionRecord:
    """Change the fields named in ``changes`` (plain values; ``bot_token: None`` removes it,
    ``allowed_tools: None`` allows every tool, ``public_key: None`` removes it), checked against
    the provider. Shared by the API and the dashboard."""
    if not changes:
        raise ValidationError(
            "nothing to change: give client_secret, scopes, bot_token, require_user_verification, "
            "allowed_tools or public_key",
            fields={"body": "give at least one of " + ", ".join(UPDATABLE)},
        )
    nulls: dict[str, str] = {
        field: "must not be null (omit it to keep the current value)"
        for field in ("client_secret", "scopes", "require_user_verification")
        if field in changes and changes[field] is None
    }
    if nulls:
        raise ValidationError(f"{', '.join(nulls)} must not be null", fields=nulls)
    current = await container.vault.get_connection_by_name(name)
    connector = container.connector(current)
    if not connector.uses_oauth:
        connector.check_connection(
            client_id=None,
            client_secret=changes.get("client_secret"),
            scopes=changes.get("scopes"),
            bot_token=changes.get("bot_token"),
            require_user_verification=bool(changes.get("require_user_verification")),
        )
    if "allowed_tools" in changes:
        changes = {
            **changes,
            "allowed_tools": check_patterns(changes["allowed_tools"], connector.catalog.names()),
        }
    record = await container.vault.update_connection(current.id, **changes)
    container.announce("connection", name)
    return record


async def delete_connection_named(
    container: Container, name: str, *, revoke: bool = True
) -> ConnectionDeleteOutcome:
    """Revoke every account's grant at Discord (unless ``revoke`` is false), then delete the
    connection and its accounts. Shared by the API, the CLI and the dashboard."""
    outcome = await container.oauth.delete_connection(name, revoke=revoke)
    container.announce("connection", name)
    return outcome


@router.delete(
    "/{name}",
    response_model=ConnectionDeleted,
    summary="Delete a connection (revokes its accounts' grants at Discord)",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("connections:write")],
)
async def delete_connection(
    request: Request,
    name: str = NamePath,
    revoke: bool = Query(
        True,
        description="Revoke each connected account's grant at Discord first. `false` deletes "
        "here only (the grants stay alive at Discord).",
    ),
) -> ConnectionDeleted:
    """Revoke every connected account's grant at Discord, then delete the connection and all
    its accounts. A grant Discord could not revoke does not stop the deletion: it is listed in
    `revoke_failed` (and logged as a warning), so you can revoke it by hand in Discord."""
    outcome = await delete_connection_named(_container(request), name, revoke=revoke)
    return ConnectionDeleted(
        id=outcome.connection.id,
        name=outcome.connection.name,
        accounts_deleted=outcome.accounts,
        revoked=outcome.revoked,
        revoke_failed=[
            RevokeFailureView(account_id=f.account_id, identifier=f.identifier, error=f.error)
            for f in outcome.failures
        ],
    )
