"""``/api/v1/connected-accounts``: end users' Discord accounts (their links and verification), and
accounts holding a bot token (``discordbot`` connections)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request, Response

from tokenward.clock import utc_datetime
from tokenward.errors import TokenwardError
from tokenward.oauth.service import DeleteOutcome
from tokenward.server.api.auth import scoped
from tokenward.server.api.errors import error_responses
from tokenward.server.api.models import (
    DEFAULT_PAGE_SIZE,
    AuthorizationLinkRequest,
    AuthorizationLinkResponse,
    ConnectedAccount,
    ConnectedAccountCreate,
    ConnectedAccountCreated,
    ConnectedAccountDeleted,
    ConnectedAccountList,
    ConnectedAccountResponse,
    GrantSiblingView,
    VerifyRequest,
)
from tokenward.server.container import Container
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import MAX_PAGE_SIZE, AccountRecord

router = APIRouter(prefix="/api/v1/connected-accounts", tags=["connected accounts"])

AccountIdPath = Path(min_length=1, max_length=64, description="The connected account's id.")


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def _view(container: Container, record: AccountRecord) -> ConnectedAccount:
    connection = await container.vault.get_connection(record.connection_id)
    return ConnectedAccount.of(record, connection.name)


@router.post(
    "",
    status_code=201,
    response_model=ConnectedAccountCreated,
    summary="Create a connected account holding a bot token",
    responses={
        200: {
            "model": ConnectedAccountCreated,
            "description": "The identifier already held a token of the same bot: replaced.",
        },
        **error_responses(400, 401, 404, 409, 502),
    },
    dependencies=[scoped("accounts:write")],
)
async def create_account(
    body: ConnectedAccountCreate, request: Request, response: Response
) -> ConnectedAccountCreated:
    """On a `discordbot` connection: store `credentials.bot_token` for `identifier`, after
    checking it with Discord (`GET /users/@me` as the bot). A token Discord refuses is a 400
    naming `credentials.bot_token` and nothing is written. The token is encrypted and never
    returned. An identifier that already holds a token of the same bot gets the new one (200);
    one holding another bot's token is refused (409 `BOT_CHANGE_REFUSED`)."""
    container = _container(request)
    record, created = await container.bot_accounts.create(
        body.connection_name, body.identifier, body.credentials.bot_token.get_secret_value()
    )
    if not created:
        response.status_code = 200
        # A new token for an existing account: other replicas drop the old one now.
        container.announce("account_key", f"{record.connection_id}\n{record.identifier}")
    return ConnectedAccountCreated(
        connected_account=ConnectedAccount.of(record, body.connection_name), created=created
    )


@router.post(
    "/authorization-link",
    response_model=AuthorizationLinkResponse,
    summary="Create an authorization link",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("accounts:write")],
)
async def authorization_link(
    body: AuthorizationLinkRequest, request: Request
) -> AuthorizationLinkResponse:
    """Create (or reuse) the account for `identifier` and return a single-use link that takes
    the user through Discord's consent. Send the link to the user."""
    container = _container(request)
    result = await container.oauth.create_link(
        body.connection_name,
        body.identifier,
        user_verify_url=body.user_verify_url,
        state=body.state,
        allow_user_change=body.allow_user_change,
    )
    return AuthorizationLinkResponse(
        link=result.link,
        expires_at=utc_datetime(result.expires_at),
        connected_account=ConnectedAccount.of(result.account, body.connection_name),
    )


@router.post(
    "/verify",
    response_model=ConnectedAccountResponse,
    summary="Confirm the user who linked",
    responses=error_responses(400, 401, 404, 409),
    dependencies=[scoped("accounts:write")],
)
async def verify(body: VerifyRequest, request: Request) -> ConnectedAccountResponse:
    """With a `user_verify_url` link, confirm that the person who consented is `identifier`;
    the account goes from PENDING_VERIFICATION to ACTIVE."""
    container = _container(request)
    record = await container.oauth.verify(body.auth_request_id, body.identifier)
    container.announce("account_key", f"{record.connection_id}\n{record.identifier}")
    return ConnectedAccountResponse(connected_account=await _view(container, record))


@router.get(
    "",
    response_model=ConnectedAccountList,
    summary="List connected accounts",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("accounts:read")],
)
async def list_accounts(
    request: Request,
    connection_name: str | None = Query(None, min_length=1, max_length=64),
    identifier: str | None = Query(None, min_length=1, max_length=255),
    status: AccountStatus | None = Query(None),
    page_size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    page_token: str | None = Query(None, min_length=1, max_length=512),
) -> ConnectedAccountList:
    """Accounts in creation order, `page_size` at a time; follow `next_page_token`."""
    container = _container(request)
    names = {c.id: c.name for c in await container.vault.list_connections()}
    connection_id = None
    if connection_name is not None:
        connection_id = (await container.vault.get_connection_by_name(connection_name)).id
    page = await container.vault.list_accounts(
        connection_id=connection_id,
        identifier=identifier,
        status=status,
        page_size=page_size,
        page_token=page_token,
    )
    return ConnectedAccountList(
        connected_accounts=[
            ConnectedAccount.of(a, names.get(a.connection_id, "")) for a in page.items
        ],
        next_page_token=page.next_page_token,
    )


@router.get(
    "/{account_id}",
    response_model=ConnectedAccountResponse,
    summary="Get a connected account",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("accounts:read")],
)
async def get_account(
    request: Request, account_id: str = AccountIdPath
) -> ConnectedAccountResponse:
    container = _container(request)
    record = await container.vault.get_account(account_id)
    return ConnectedAccountResponse(connected_account=await _view(container, record))


@router.delete(
    "/{account_id}",
    response_model=ConnectedAccountDeleted,
    summary="Delete a connected account (revokes at Discord)",
    responses=error_responses(400, 401, 404, 409, 502),
    dependencies=[scoped("accounts:write")],
)
async def delete_account(
    request: Request,
    account_id: str = AccountIdPath,
    force: bool = Query(
        False, description="Delete even when revoking at Discord fails (the failure is reported)."
    ),
    revoke: bool = Query(
        True,
        description="Revoke the grant at Discord first. `false` deletes here only: the grant "
        "stays alive at Discord, and other identifiers of the same Discord user keep working.",
    ),
    revoke_siblings: bool = Query(
        False,
        description="Revoke even though other identifiers are linked to the same Discord user "
        "(a revocation ends the whole grant of that user and application): they become "
        "DISCONNECTED.",
    ),
) -> ConnectedAccountDeleted:
    """Revoke the grant at Discord, then delete the account and its tokens.

    Discord ends the *whole* grant of that Discord user and application, so when other
    identifiers are linked to the same Discord user the answer is 409 `SIBLINGS_AFFECTED`
    (nothing changed; `details.siblings` lists them) unless `revoke_siblings=true` (they become
    DISCONNECTED) or `revoke=false`. When Discord cannot revoke, nothing is deleted and the
    answer is 502 `REVOKE_FAILED`, unless `force=true`."""
    try:
        outcome = await delete_account_by_id(
            _container(request),
            account_id,
            force=force,
            revoke=revoke,
            revoke_siblings=revoke_siblings,
        )
    except TokenwardError as exc:
        if exc.code == "REVOKE_FAILED":
            raise TokenwardError(
                exc.message, code="REVOKE_FAILED", status=502, details=exc.details
            ) from exc
        raise
    return ConnectedAccountDeleted(
        id=outcome.account_id,
        revoked=outcome.revoked,
        revoke_error=outcome.revoke_error,
        siblings_disconnected=[
            GrantSiblingView(
                id=s.id,
                identifier=s.identifier,
                connection_name=s.connection_name,
                status=AccountStatus.DISCONNECTED,
            )
            for s in outcome.siblings_disconnected
        ],
    )


async def delete_account_by_id(
    container: Container,
    account_id: str,
    *,
    force: bool = False,
    revoke: bool = True,
    revoke_siblings: bool = False,
) -> DeleteOutcome:
    """Revoke at Discord, then delete the account (see the route's description); the proxy's
    cache forgets it and any sibling it disconnected. Shared by the API and the dashboard."""
    outcome = await container.oauth.delete_account(
        account_id, force=force, revoke=revoke, revoke_siblings=revoke_siblings
    )
    container.announce("account", outcome.account_id)
    for sibling in outcome.siblings_disconnected:
        container.announce("account", sibling.id)
    return outcome
