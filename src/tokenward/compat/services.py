"""The hosted platform's ``ConnectedAccountService`` and ``ToolService``, over tokenward's services.

Each handler authenticates the call like the HTTP API (an API token from ``POST /oauth/token``,
the scope the matching HTTP route needs), then does what that route does, through the same
services (:class:`~tokenward.oauth.service.OAuthService`, the vault, the tool runner), so the
two front doors cannot drift apart.

**Mapping.** The request field ``connector`` carries the connection's *name*; an account's ``id``
is tokenward's id behind the ``ca_`` prefix the hosted platform's ids have. Statuses map to the
SDKs' conventions: a missing account or connection is ``NOT_FOUND`` (which drives
``get_or_create_connected_account``), bad input ``INVALID_ARGUMENT`` naming the field, a missing
or refused API token ``UNAUTHENTICATED``, a missing scope ``PERMISSION_DENIED``, and a tool call
that Discord refused carries ``ErrorInfo.error_code = "TOOL_ERROR"`` with the provider's answer
in ``tool_error_info`` (the SDKs raise their tool exceptions for it and never retry or refresh
their token for it).

**Tokens.** ``GetConnectedAccountAuth`` returns the account's access token (refreshed first when
due) only to an API client with the ``admin`` scope, and never the refresh token: Discord's
refresh tokens are single-use, so a refresh made outside tokenward would end the grant
tokenward holds. Everything else (``GetConnectedAccountDetails``, the listings) carries no token.

**Authentication.** The Python SDK sends two ``authorization`` values once its token has been
renewed (the current one first, the one its channel was built with second): the first is used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from tokenward.compat.grpc_asgi import (
    ABORTED,
    ALREADY_EXISTS,
    FAILED_PRECONDITION,
    INTERNAL,
    INVALID_ARGUMENT,
    NOT_FOUND,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    CallContext,
    GrpcError,
    MethodTable,
)
from tokenward.compat.proto import connected_accounts_pb2 as ca
from tokenward.compat.proto import errdetails_pb2
from tokenward.compat.proto import tools_pb2 as tl
from tokenward.errors import (
    AccountNotActive,
    NotFoundError,
    ProviderError,
    RateLimited,
    ReauthorizationRequired,
    TokenwardError,
    UpstreamUnavailable,
)
from tokenward.scopes import ADMIN
from tokenward.server.api.accounts import delete_account_by_id
from tokenward.server.api.auth import ApiAuth, ApiPrincipal
from tokenward.server.container import Container
from tokenward.tools.catalog import agent_description
from tokenward.tools.schemas import input_schema
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import MAX_PAGE_SIZE, AccountRecord, ConnectionRecord

log = logging.getLogger("tokenward.compat")

CONNECTED_ACCOUNTS = "scalekit.v1.connected_accounts.ConnectedAccountService"
TOOLS = "scalekit.v1.tools.ToolService"

ACCOUNT_ID_PREFIX = "ca_"
TOOL_ID_PREFIX = "tol_"
TOOL_ERROR = "TOOL_ERROR"
DEFAULT_ACCOUNT_PAGE = 50
DEFAULT_TOOL_PAGE = 300
MAX_TOOL_PAGE = 1000

_CONNECTOR = re.compile(r"[a-zA-Z0-9_: -]*")
_MAX_CONNECTOR = 400
_MAX_IDENTIFIER = 100
_MAX_ACCOUNT_ID = 32
_VERIFY_URL = re.compile(r"https?://.*", re.DOTALL)

_STATUS = {
    AccountStatus.PENDING_AUTH: ca.PENDING_AUTH,
    AccountStatus.PENDING_VERIFICATION: ca.PENDING_VERIFICATION,
    AccountStatus.ACTIVE: ca.ACTIVE,
    AccountStatus.EXPIRED: ca.EXPIRED,
    AccountStatus.DISCONNECTED: ca.DISCONNECTED,
}

# tokenward's error codes whose answer is a conflict (the SDKs' ConflictException).
_CONFLICTS = frozenset({"CONFLICT", "BOT_CHANGE_REFUSED", "SIBLINGS_AFFECTED", "REVOKE_FAILED"})
_HTTP_TO_GRPC = {
    400: INVALID_ARGUMENT,
    401: UNAUTHENTICATED,
    403: PERMISSION_DENIED,
    404: NOT_FOUND,
    409: FAILED_PRECONDITION,
    429: RESOURCE_EXHAUSTED,
    502: UNAVAILABLE,
    503: UNAVAILABLE,
}


def grpc_error(exc: TokenwardError) -> GrpcError:
    """The gRPC answer for a tokenward error (outside a tool's call at the provider)."""
    if exc.code in _CONFLICTS:
        code = ABORTED
    elif exc.status == 401 and exc.code == "REAUTHORIZATION_REQUIRED":
        # Not the API client's fault: UNAUTHENTICATED would make the SDKs renew their token.
        code = FAILED_PRECONDITION
    else:
        code = _HTTP_TO_GRPC.get(exc.status, INTERNAL)
    return GrpcError(code, exc.message, error_code=exc.code)


def tool_error(exc: TokenwardError, execution_id: str = "") -> GrpcError:
    """A failure the tool met at the provider: ``TOOL_ERROR`` with the provider's status as the
    gRPC code (401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 429 → RESOURCE_EXHAUSTED, ...)."""
    discord = exc.details.get("discord") if isinstance(exc.details, dict) else None
    provider_code = ""
    if isinstance(discord, dict) and discord.get("code") is not None:
        provider_code = str(discord["code"])
    code = _HTTP_TO_GRPC.get(exc.status, UNAVAILABLE if exc.status >= 500 else INVALID_ARGUMENT)
    if exc.status == 409:
        code = ABORTED
    return GrpcError(
        code,
        exc.message,
        error_code=TOOL_ERROR,
        tool_error=errdetails_pb2.ToolErrorInfo(
            execution_id=execution_id,
            tool_error_message=exc.message,
            tool_error_code=provider_code or exc.code,
        ),
    )


def _is_provider_failure(exc: TokenwardError) -> bool:
    return isinstance(exc, ProviderError | ReauthorizationRequired | UpstreamUnavailable) or (
        isinstance(exc, RateLimited) and exc.details.get("scope") != "authentication"
    )


def _bad(field: str, reason: str) -> GrpcError:
    return GrpcError(INVALID_ARGUMENT, f"{field}: {reason}", error_code="VALIDATION_ERROR")


def timestamp(epoch: float) -> Timestamp:
    stamp = Timestamp()
    seconds = int(epoch)
    stamp.seconds = seconds
    stamp.nanos = int((epoch - seconds) * 1e9)
    return stamp


def account_id(record_id: str) -> str:
    return ACCOUNT_ID_PREFIX + record_id


def _plain_numbers(value: Any) -> Any:
    """Struct numbers are doubles: integral ones back to ints (Discord's ids, limits, flags)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    return value


def to_struct(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    data: dict[str, Any] = _plain_numbers(json_format.MessageToDict(struct))
    return data


MessageT = TypeVar("MessageT", bound=Message)
ResponseT = TypeVar("ResponseT", bound=Message)


@dataclass(frozen=True)
class AccountRef:
    """The account a request names: by ``id``, or by (connection name, identifier)."""

    id: str | None
    connection_name: str | None
    identifier: str | None


class CompatServices:
    """The handlers; :meth:`table` registers them under their gRPC paths."""

    def __init__(self, container: Container, api_auth: ApiAuth) -> None:
        self.container = container
        self.api_auth = api_auth
        self.loaded_at = container.clock.time()
        self._tools: dict[tuple[str, bool], tl.Tool] = {}

    # -- plumbing --------------------------------------------------------------------------------

    def table(self) -> MethodTable:
        table = MethodTable()
        cas = CONNECTED_ACCOUNTS
        table.add(
            cas,
            "GetMagicLinkForConnectedAccount",
            ca.GetMagicLinkForConnectedAccountRequest,
            self._guard(self.magic_link),
        )
        table.add(
            cas,
            "GetConnectedAccountAuth",
            ca.GetConnectedAccountByIdentifierRequest,
            self._guard(self.get_account_auth),
        )
        table.add(
            cas,
            "GetConnectedAccountDetails",
            ca.GetConnectedAccountByIdentifierRequest,
            self._guard(self.get_account_details),
        )
        table.add(
            cas,
            "ListConnectedAccounts",
            ca.ListConnectedAccountsRequest,
            self._guard(self.list_accounts),
        )
        table.add(
            cas,
            "CreateConnectedAccount",
            ca.CreateConnectedAccountRequest,
            self._guard(self.create_account),
        )
        table.add(
            cas,
            "UpdateConnectedAccount",
            ca.UpdateConnectedAccountRequest,
            self._guard(self.update_account),
        )
        table.add(
            cas,
            "DeleteConnectedAccount",
            ca.DeleteConnectedAccountRequest,
            self._guard(self.delete_account),
        )
        table.add(
            cas,
            "VerifyConnectedAccountUser",
            ca.VerifyConnectedAccountUserRequest,
            self._guard(self.verify_user),
        )
        table.add(TOOLS, "ListTools", tl.ListToolsRequest, self._guard(self.list_tools))
        table.add(
            TOOLS, "ListScopedTools", tl.ListScopedToolsRequest, self._guard(self.list_scoped)
        )
        table.add(TOOLS, "ExecuteTool", tl.ExecuteToolRequest, self._guard(self.execute_tool))
        return table

    @staticmethod
    def _guard(
        handler: Callable[[MessageT, CallContext], Awaitable[ResponseT]],
    ) -> Callable[[MessageT, CallContext], Awaitable[ResponseT]]:
        """Turn tokenward's errors into the SDKs' gRPC answers."""

        async def guarded(request: MessageT, context: CallContext) -> ResponseT:
            try:
                return await handler(request, context)
            except TokenwardError as exc:
                raise grpc_error(exc) from exc

        return guarded

    async def _principal(self, context: CallContext, *scopes: str, action: str) -> ApiPrincipal:
        values = context.values("authorization")
        principal = await self.api_auth.authenticate(values[0] if values else None)
        principal.require(*scopes, action=action)
        return principal

    # -- shared lookups --------------------------------------------------------------------------

    @staticmethod
    def _ref(request: Any, *, id_field: str | None = "id") -> AccountRef:
        connector = request.connector if request.HasField("connector") else None
        identifier = request.identifier if request.HasField("identifier") else None
        raw_id = None
        if id_field is not None and request.HasField(id_field):
            raw_id = getattr(request, id_field)
        if connector is not None and (
            len(connector) > _MAX_CONNECTOR or not _CONNECTOR.fullmatch(connector)
        ):
            raise _bad(
                "connector",
                f"must be at most {_MAX_CONNECTOR} letters, digits, '_', ':', '-' or spaces",
            )
        if identifier is not None and len(identifier) > _MAX_IDENTIFIER:
            raise _bad("identifier", f"must be at most {_MAX_IDENTIFIER} characters")
        record_id = None
        if raw_id:
            if len(raw_id) > _MAX_ACCOUNT_ID or not raw_id.startswith(ACCOUNT_ID_PREFIX):
                raise _bad(
                    id_field or "id",
                    f"must be a connected account id ('{ACCOUNT_ID_PREFIX}...', at most "
                    f"{_MAX_ACCOUNT_ID} characters)",
                )
            record_id = raw_id[len(ACCOUNT_ID_PREFIX) :]
        return AccountRef(record_id, connector or None, identifier or None)

    async def _account(self, ref: AccountRef) -> tuple[AccountRecord, ConnectionRecord]:
        vault = self.container.vault
        if ref.id is not None:
            try:
                record = await vault.get_account(ref.id)
            except NotFoundError:
                raise GrpcError(
                    NOT_FOUND,
                    f"connected account {account_id(ref.id)!r} does not exist",
                    error_code="ACCOUNT_NOT_FOUND",
                ) from None
            connection = await vault.get_connection(record.connection_id)
            return record, connection
        if ref.connection_name is None or ref.identifier is None:
            raise _bad(
                "connector",
                "name the account by id, or by connector (the connection name) and identifier",
            )
        record = await self.container.oauth.find_account(ref.connection_name, ref.identifier)
        connection = await vault.get_connection(record.connection_id)
        return record, connection

    def _provider_label(self, connection: ConnectionRecord) -> str:
        return connection.provider.upper()

    def _authorization_type(self, connection: ConnectionRecord) -> ca.ConnectorType:
        if self.container.connectors.provider(connection.provider).uses_oauth:
            return ca.OAUTH
        return ca.BEARER_TOKEN

    def _account_message(
        self, record: AccountRecord, connection: ConnectionRecord
    ) -> ca.ConnectedAccount:
        message = ca.ConnectedAccount(
            identifier=record.identifier,
            provider=self._provider_label(connection),
            status=_STATUS[record.status],
            authorization_type=self._authorization_type(connection),
            connector=connection.name,
            id=account_id(record.id),
            connection_id=connection.id,
        )
        self._times(message, record)
        return message

    @staticmethod
    def _times(message: ca.ConnectedAccount | ca.ConnectedAccountForList, record: Any) -> None:
        # An unset Timestamp reads as 1970 in the Python SDK: fall back to the last update.
        message.updated_at.CopyFrom(timestamp(record.updated_at))
        message.token_expires_at.CopyFrom(timestamp(record.expires_at or record.updated_at))
        message.last_used_at.CopyFrom(timestamp(record.last_used_at or record.updated_at))

    # -- ConnectedAccountService ---------------------------------------------------------------

    async def magic_link(
        self, request: ca.GetMagicLinkForConnectedAccountRequest, context: CallContext
    ) -> ca.GetMagicLinkForConnectedAccountResponse:
        await self._principal(context, "accounts:write", action="GetMagicLinkForConnectedAccount")
        ref = self._ref(request)
        state = request.state if request.HasField("state") else None
        verify_url = request.user_verify_url if request.HasField("user_verify_url") else None
        if verify_url is not None and verify_url and not _VERIFY_URL.fullmatch(verify_url):
            raise _bad("user_verify_url", "must be an http:// or https:// URL")
        if ref.id is not None:
            record, connection = await self._account(ref)
            name, identifier = connection.name, record.identifier
        else:
            if ref.connection_name is None:
                raise _bad("connector", "required: the connection name (or give id)")
            if ref.identifier is None:
                raise _bad("identifier", "required: your user's identifier (or give id)")
            name, identifier = ref.connection_name, ref.identifier
        link = await self.container.oauth.create_link(
            name, identifier, user_verify_url=verify_url or None, state=state
        )
        response = ca.GetMagicLinkForConnectedAccountResponse(link=link.link)
        response.expiry.CopyFrom(timestamp(link.expires_at))
        return response

    async def get_account_auth(
        self, request: ca.GetConnectedAccountByIdentifierRequest, context: CallContext
    ) -> ca.GetConnectedAccountByIdentifierResponse:
        principal = await self._principal(
            context, "accounts:read", action="GetConnectedAccountAuth"
        )
        record, connection = await self._account(self._ref(request))
        message = self._account_message(record, connection)
        connector = self.container.connectors.provider(connection.provider)
        if (
            ADMIN in principal.scopes
            and connector.uses_oauth
            and record.status == AccountStatus.ACTIVE
        ):
            try:
                grant = await self.container.tokens.grant(record)
            except (ReauthorizationRequired, AccountNotActive):
                # The refresh found the grant gone: the account as it is now (EXPIRED), no token.
                record = await self.container.vault.get_account(record.id)
                message = self._account_message(record, connection)
            else:
                token = message.authorization_details.oauth_token
                token.access_token = grant.access_token
                token.scopes.extend(grant.scopes)
                message.token_expires_at.CopyFrom(timestamp(grant.expires_at))
        return ca.GetConnectedAccountByIdentifierResponse(connected_account=message)

    async def get_account_details(
        self, request: ca.GetConnectedAccountByIdentifierRequest, context: CallContext
    ) -> ca.GetConnectedAccountByIdentifierResponse:
        await self._principal(context, "accounts:read", action="GetConnectedAccountDetails")
        record, connection = await self._account(self._ref(request))
        return ca.GetConnectedAccountByIdentifierResponse(
            connected_account=self._account_message(record, connection)
        )

    async def list_accounts(
        self, request: ca.ListConnectedAccountsRequest, context: CallContext
    ) -> ca.ListConnectedAccountsResponse:
        await self._principal(context, "accounts:read", action="ListConnectedAccounts")
        ref = self._ref(request, id_field=None)
        names = list(dict.fromkeys([*request.connection_names]))
        if ref.connection_name is not None:
            names = [ref.connection_name, *[n for n in names if n != ref.connection_name]]
        if len(names) > 1:
            raise _bad("connection_names", "give at most one connection name per listing")
        page_size = request.page_size or DEFAULT_ACCOUNT_PAGE
        if page_size > MAX_PAGE_SIZE:
            raise _bad("page_size", f"must be at most {MAX_PAGE_SIZE}")
        vault = self.container.vault
        connections = {c.id: c for c in await vault.list_connections()}
        connection_id = None
        if names:
            connection_id = (await vault.get_connection_by_name(names[0])).id
        provider = request.provider.strip().lower() or None
        if provider is not None and connection_id is None:
            matching = [c.id for c in connections.values() if c.provider == provider]
            if len(matching) == 1:
                connection_id = matching[0]
            elif not matching:
                return ca.ListConnectedAccountsResponse()
        page = await vault.list_accounts(
            connection_id=connection_id,
            identifier=ref.identifier,
            page_size=page_size,
            page_token=request.page_token or None,
        )
        response = ca.ListConnectedAccountsResponse(next_page_token=page.next_page_token or "")
        for item in page.items:
            connection = connections.get(item.connection_id)
            if connection is None:
                continue
            if provider is not None and connection.provider != provider:
                continue
            entry = response.connected_accounts.add(
                identifier=item.identifier,
                provider=self._provider_label(connection),
                status=_STATUS[item.status],
                authorization_type=self._authorization_type(connection),
                connector=connection.name,
                id=account_id(item.id),
                connection_id=connection.id,
            )
            self._times(entry, item)
        # Every matching account, not the page (the SDKs show it as the listing's size).
        scope: list[str] | None = None
        if connection_id is not None:
            scope = [connection_id]
        elif provider is not None:
            scope = [c.id for c in connections.values() if c.provider == provider]
        response.total_size = await vault.count_accounts(
            connection_ids=scope, identifier=ref.identifier
        )
        return response

    async def create_account(
        self, request: ca.CreateConnectedAccountRequest, context: CallContext
    ) -> ca.CreateConnectedAccountResponse:
        await self._principal(context, "accounts:write", action="CreateConnectedAccount")
        ref = self._ref(request, id_field=None)
        if ref.connection_name is None:
            raise _bad("connector", "required: the connection name")
        if ref.identifier is None:
            raise _bad("identifier", "required: your user's identifier")
        if not request.HasField("connected_account"):
            raise _bad("connected_account", "required")
        details = request.connected_account.authorization_details
        vault = self.container.vault
        connection = await vault.get_connection_by_name(ref.connection_name)
        connector = self.container.connectors.provider(connection.provider)
        if not connector.uses_oauth:
            bot_token = self._bot_token(details, "connected_account.authorization_details")
            record, created = await self.container.bot_accounts.create(
                connection.name, ref.identifier, bot_token
            )
            if not created:
                self._announce_key(record)
            return ca.CreateConnectedAccountResponse(
                connected_account=self._account_message(record, connection)
            )
        self._refuse_oauth_tokens(details, "connected_account.authorization_details")
        if await vault.find_account(connection.id, ref.identifier) is not None:
            raise GrpcError(
                ALREADY_EXISTS,
                f"connection {connection.name!r} already has an account for identifier "
                f"{ref.identifier!r}",
                error_code="ACCOUNT_EXISTS",
            )
        record = await vault.get_or_create_account(connection.id, ref.identifier)
        return ca.CreateConnectedAccountResponse(
            connected_account=self._account_message(record, connection)
        )

    async def update_account(
        self, request: ca.UpdateConnectedAccountRequest, context: CallContext
    ) -> ca.UpdateConnectedAccountResponse:
        await self._principal(context, "accounts:write", action="UpdateConnectedAccount")
        record, connection = await self._account(self._ref(request))
        if request.scope_selection.scopes or request.scope_selection.optional_scopes:
            raise _bad(
                "scope_selection",
                "an account's scopes come from its connection; change them with tokenward "
                "connections update and send the user a new authorization link",
            )
        details = request.connected_account.authorization_details
        field = "connected_account.authorization_details"
        connector = self.container.connectors.provider(connection.provider)
        if not connector.uses_oauth and details.WhichOneof("details") is not None:
            record, created = await self.container.bot_accounts.create(
                connection.name, record.identifier, self._bot_token(details, field)
            )
            if not created:
                self._announce_key(record)
        else:
            self._refuse_oauth_tokens(details, field)
        return ca.UpdateConnectedAccountResponse(
            connected_account=self._account_message(record, connection)
        )

    def _announce_key(self, record: AccountRecord) -> None:
        """Every process drops what it cached for the account (as the HTTP routes do)."""
        self.container.announce("account_key", f"{record.connection_id}\n{record.identifier}")

    @staticmethod
    def _bot_token(details: ca.AuthorizationDetails, field: str) -> str:
        kind = details.WhichOneof("details")
        if kind == "oauth_token" and details.oauth_token.access_token:
            return details.oauth_token.access_token
        if kind == "static_auth":
            value = from_struct(details.static_auth.details).get("bot_token")
            if isinstance(value, str) and value:
                return value
        raise _bad(
            field,
            "an account of a bot connection holds a bot token: give static_auth.details.bot_token",
        )

    @staticmethod
    def _refuse_oauth_tokens(details: ca.AuthorizationDetails, field: str) -> None:
        kind = details.WhichOneof("details")
        empty = kind is None or (
            kind == "oauth_token"
            and not details.oauth_token.access_token
            and not details.oauth_token.refresh_token
        )
        if not empty:
            raise _bad(
                field,
                "tokenward obtains an account's tokens only through its authorization link "
                "(GetMagicLinkForConnectedAccount); tokens cannot be imported",
            )

    async def delete_account(
        self, request: ca.DeleteConnectedAccountRequest, context: CallContext
    ) -> ca.DeleteConnectedAccountResponse:
        await self._principal(context, "accounts:write", action="DeleteConnectedAccount")
        record, _connection = await self._account(self._ref(request))
        try:
            await delete_account_by_id(self.container, record.id)
        except TokenwardError as exc:
            if exc.code != "SIBLINGS_AFFECTED":
                raise
            # Other identifiers hold the same Discord user's grant, which a revocation would end
            # for them too: the hosted platform's accounts are independent, so delete this one
            # here only and leave the grant to the others.
            await delete_account_by_id(self.container, record.id, revoke=False)
        return ca.DeleteConnectedAccountResponse()

    async def verify_user(
        self, request: ca.VerifyConnectedAccountUserRequest, context: CallContext
    ) -> ca.VerifyConnectedAccountUserResponse:
        await self._principal(context, "accounts:write", action="VerifyConnectedAccountUser")
        if not request.auth_request_id:
            raise _bad("auth_request_id", "required")
        if not request.identifier:
            raise _bad("identifier", "required")
        oauth = self.container.oauth
        record = await oauth.verify(request.auth_request_id, request.identifier)
        self._announce_key(record)
        auth_request = await self.container.vault.get_auth_request(request.auth_request_id)
        url = oauth.result_url(auth_request) if auth_request is not None else ""
        return ca.VerifyConnectedAccountUserResponse(post_user_verify_redirect_url=url)

    # -- ToolService -----------------------------------------------------------------------------

    def _tool_message(self, name: str, *, summary: bool = False) -> tl.Tool:
        """The tool as the SDKs read it (built once per process: the catalog does not change)."""
        cached = self._tools.get((name, summary))
        if cached is None:
            cached = self._tools[(name, summary)] = self._build_tool(name, summary=summary)
        return cached

    def _build_tool(self, name: str, *, summary: bool) -> tl.Tool:
        connectors = self.container.connectors
        connector = connectors.for_tool(name)
        spec = connector.catalog.get(name)
        annotations = spec.annotations
        definition: dict[str, Any] = {
            "name": spec.name,
            "description": agent_description(spec),
            "annotations": {
                "title": spec.title,
                "read_only_hint": annotations.read_only,
                "destructive_hint": annotations.destructive,
                "idempotent_hint": annotations.idempotent,
                "open_world_hint": annotations.open_world,
            },
        }
        if not summary:
            definition["input_schema"] = input_schema(spec)
        tool = tl.Tool(
            id=TOOL_ID_PREFIX + spec.name,
            provider=connector.name.upper(),
            definition=to_struct(definition),
            metadata=to_struct(
                {"scopes": list(spec.scopes), "auth": spec.auth, "output": spec.output}
            ),
            tags=list(spec.scopes),
        )
        tool.is_default.value = True
        tool.updated_at.CopyFrom(timestamp(self.loaded_at))
        return tool

    def _tool_names(
        self,
        *,
        providers: Iterable[str] = (),
        names: Iterable[str] = (),
        query: str | None = None,
    ) -> list[str]:
        connectors = self.container.connectors
        wanted_providers = {p.strip().lower() for p in providers if p.strip()}
        wanted_names = {n for n in names if n}
        needle = (query or "").strip().lower()
        result = []
        for connector in connectors.providers():
            if wanted_providers and connector.name not in wanted_providers:
                continue
            for spec in connector.catalog.tools():
                if wanted_names and spec.name not in wanted_names:
                    continue
                if needle and needle not in f"{spec.name} {spec.title} {spec.description}".lower():
                    continue
                result.append(spec.name)
        return result

    @staticmethod
    def _page(items: list[str], page_size: int, page_token: str) -> tuple[list[str], str, str]:
        """``(page, next_token, prev_token)``: tokens are offsets into the filtered list."""
        if page_size > MAX_TOOL_PAGE:
            raise _bad("page_size", f"must be at most {MAX_TOOL_PAGE}")
        size = page_size or DEFAULT_TOOL_PAGE
        start = 0
        if page_token:
            if not page_token.isdigit() or len(page_token) > 9:
                raise _bad("page_token", "not a page token of this listing")
            start = int(page_token)
        end = start + size
        next_token = str(end) if end < len(items) else ""
        prev_token = str(max(0, start - size)) if start > 0 else ""
        return items[start:end], next_token, prev_token

    async def list_tools(
        self, request: tl.ListToolsRequest, context: CallContext
    ) -> tl.ListToolsResponse:
        await self._principal(context, "tools:execute", action="ListTools")
        flt = request.filter
        providers = [flt.provider] if flt.provider else []
        if flt.HasField("connector") and flt.connector:
            connection = await self.container.vault.get_connection_by_name(flt.connector)
            providers.append(connection.provider)
            if len({p.lower() for p in providers}) > 1:
                return tl.ListToolsResponse()
        names = self._tool_names(
            providers=providers,
            names=flt.tool_name,
            query=flt.query if flt.HasField("query") else None,
        )
        page, next_token, prev_token = self._page(names, request.page_size, request.page_token)
        summary = flt.HasField("summary") and flt.summary.value
        return tl.ListToolsResponse(
            next_page_token=next_token,
            prev_page_token=prev_token,
            total_size=len(names),
            tool_names=page,
            tools=[self._tool_message(name, summary=summary) for name in page],
        )

    async def list_scoped(
        self, request: tl.ListScopedToolsRequest, context: CallContext
    ) -> tl.ListScopedToolsResponse:
        await self._principal(context, "tools:execute", "accounts:read", action="ListScopedTools")
        if not request.identifier:
            raise _bad("identifier", "required: the user whose connected accounts scope the tools")
        vault = self.container.vault
        wanted = set(request.filter.connection_names)
        scoped: list[tuple[str, str, str]] = []  # (tool, identifier, account id)
        for connection in await vault.list_connections():
            if wanted and connection.name not in wanted:
                continue
            record = await vault.find_account(connection.id, request.identifier)
            if record is None or record.status != AccountStatus.ACTIVE:
                continue
            if request.filter.providers and connection.provider not in {
                p.lower() for p in request.filter.providers
            }:
                continue
            names = self._tool_names(
                providers=[connection.provider], names=request.filter.tool_names
            )
            scoped.extend((name, record.identifier, account_id(record.id)) for name in names)
        keys = [str(i) for i in range(len(scoped))]
        page, next_token, prev_token = self._page(keys, request.page_size, request.page_token)
        response = tl.ListScopedToolsResponse(
            next_page_token=next_token, prev_page_token=prev_token, total_size=len(scoped)
        )
        for key in page:
            name, identifier, connected = scoped[int(key)]
            response.tools.add(
                tool=self._tool_message(name), identifier=identifier, connected_account_id=connected
            )
        return response

    async def execute_tool(
        self, request: tl.ExecuteToolRequest, context: CallContext
    ) -> tl.ExecuteToolResponse:
        await self._principal(context, "tools:execute", action="ExecuteTool")
        if not request.tool_name:
            raise _bad("tool_name", "required")
        connection_name, identifier = await self._tool_account(request)
        params = from_struct(request.params) if request.HasField("params") else {}
        try:
            result = await self.container.runner.execute(
                request.tool_name, params, connection_name=connection_name, identifier=identifier
            )
        except TokenwardError as exc:
            if _is_provider_failure(exc):
                raise tool_error(exc) from exc
            raise
        data = result.data_json()
        if data is None:
            payload: dict[str, Any] = {}
        elif isinstance(data, dict):
            payload = data
        else:
            # A Struct holds an object: a list (or a scalar) answer goes under "data".
            payload = {"data": data}
        return tl.ExecuteToolResponse(data=to_struct(payload), execution_id=result.execution_id)

    async def _tool_account(self, request: tl.ExecuteToolRequest) -> tuple[str, str]:
        """(connection name, identifier) of the account a tool call names."""
        if request.HasField("connected_account_id") and request.connected_account_id:
            named = self._ref(request, id_field="connected_account_id")
            record, connection = await self._account(AccountRef(named.id, None, None))
            return connection.name, record.identifier
        identifier = request.identifier if request.HasField("identifier") else ""
        if not identifier:
            raise _bad("identifier", "give identifier and connector, or connected_account_id")
        ref = self._ref(request, id_field="connected_account_id")
        if ref.connection_name is not None:
            return ref.connection_name, identifier
        # No connection named: the one connection of the tool's provider, if there is just one.
        provider = self.container.connectors.for_tool(request.tool_name).name
        candidates = [
            c for c in await self.container.vault.list_connections() if c.provider == provider
        ]
        if len(candidates) != 1:
            raise _bad(
                "connector",
                f"name the connection: {len(candidates)} {provider} connections could run "
                f"{request.tool_name}",
            )
        return candidates[0].name, identifier
