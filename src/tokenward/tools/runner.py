"""Executes catalog tools for a connected account through the proxy core.

``ToolRunner.execute`` resolves the connection and its provider (:mod:`tokenward.connectors`),
applies the tool policy (the connection's ``allowed_tools``, a read-only session:
:mod:`tokenward.tools.policy`), validates the input (nothing is sent when any of these refuse),
picks the credential, sends through ``ProviderClient`` (so refresh, rate limiting, retries and the
path guard all apply), turns an error answer into a structured error with a hint from the
provider's error mapping, and applies the tool's result hook. Events (tool executed, with status
and latency) are recorded off the request path.

**Which credential.** The tool's ``auth`` (after its route hook) and the connection's provider
decide:

===========  ========================================  ========================================
auth         provider with OAuth accounts (discord)    provider with bot accounts (discordbot)
===========  ========================================  ========================================
``user``     the account's access token (refreshed)    the account's bot token
``bot``      the connection's bot token                the account's bot token
``none``     the connection's bot token if it has one  the account's bot token; nothing on a
                                                       webhook-token or interaction route
===========  ========================================  ========================================

**Writes.** The request carries the body, ``Content-Type`` and headers (``X-Audit-Log-Reason``)
the catalog prepared. A non-idempotent call is never resent once it may have reached Discord; a
call the catalog marks ``retry_safe`` (a message with a ``nonce`` and ``enforce_nonce``) is retried
like a read, since Discord answers the repeat with the message it already created.

**Results.** ``ToolResult.data`` is the provider's answer (``None`` for an empty 204; an image or
a text answer is ``ToolResult.image`` or ``ToolResult.text`` instead);
``ToolResult.notes`` are the catalog's remarks on the call (e.g. a parameter Discord ignores now),
returned beside the data over HTTP (``{"data", "execution_id", "notes"}``), the SDK and MCP.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tokenward.clock import Clock
from tokenward.connectors import Connector, Connectors
from tokenward.errors import (
    ProviderError,
    ReauthorizationRequired,
    TokenwardError,
    UpstreamUnavailable,
    ValidationError,
)
from tokenward.oauth.refresh import TokenManager
from tokenward.proxy.accounts import (
    AccountCredentials,
    AccountDirectory,
    BotAccountCredentials,
    BotCredentials,
)
from tokenward.proxy.client import (
    CredentialSource,
    ProviderClient,
    StaticCredentials,
    error_from_response,
)
from tokenward.proxy.ratelimit import route_of
from tokenward.tools import policy
from tokenward.tools.catalog import PreparedRequest
from tokenward.tools.results import ImageResult, TextResult
from tokenward.vault.repository import AccountRecord, ConnectionRecord

log = logging.getLogger("tokenward.tools")

LinkFactory = Callable[[str, str], Awaitable[str]]
ClientFactory = Callable[[Connector], ProviderClient]
REFUSED_AFTER_REFRESH = "Discord rejected the account's token even after a refresh"
EventHook = Callable[[str, str | None, str | None, dict[str, Any]], None]


@dataclass(frozen=True)
class ToolResult:
    tool_name: str
    execution_id: str
    data: Any
    latency_ms: float
    image: ImageResult | None = None
    text: TextResult | None = None
    """The answer of a tool whose ``output`` is ``text`` (e.g. CSV); ``data`` is then None."""
    meta: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    """Remarks on the call for the caller (e.g. an input Discord no longer honours)."""

    def data_json(self) -> Any:
        """The result as JSON-safe data (an image as ``{type, media_type, data}``, a text as
        ``{type, media_type, text}``)."""
        if self.image is not None:
            return self.image.to_dict()
        if self.text is not None:
            return self.text.to_dict()
        return self.data


@dataclass(frozen=True)
class WriteFields:
    """What a write adds to a :class:`PreparedRequest` (issue 10, contract 3): its body,
    headers, whether a retry is safe, and the notes for the result."""

    body: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    retry_safe: bool = False
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, prepared: PreparedRequest) -> WriteFields:
        content_type = prepared.content_type
        if prepared.body is not None and content_type is None:
            content_type = "application/json"
        return cls(
            body=prepared.body,
            content_type=content_type,
            headers=tuple(prepared.headers),
            retry_safe=prepared.retry_safe,
            notes=tuple(prepared.notes),
        )

    def request_headers(self) -> list[tuple[str, str]]:
        headers = list(self.headers)
        if self.body is not None and self.content_type is not None:
            headers.append(("Content-Type", self.content_type))
        return headers


def new_execution_id() -> str:
    return "exec_" + secrets.token_hex(10)


class ToolRunner:
    def __init__(
        self,
        *,
        connectors: Connectors,
        clients: ClientFactory,
        directory: AccountDirectory,
        tokens: TokenManager,
        clock: Clock,
        link_factory: LinkFactory,
        on_event: EventHook | None = None,
        on_result: Callable[[str, str, float], None] | None = None,
        on_used: Callable[[str], None] | None = None,
    ) -> None:
        self.connectors = connectors
        self.clients = clients
        self.directory = directory
        self.tokens = tokens
        self.clock = clock
        self.link_factory = link_factory
        self.on_event = on_event
        self.on_result = on_result
        self.on_used = on_used

    async def execute(
        self,
        tool_name: str,
        tool_input: object,
        *,
        connection_name: str,
        identifier: str,
        read_only: bool = False,
    ) -> ToolResult:
        """Run ``tool_name`` as (``connection_name``, ``identifier``). ``read_only``: refuse a
        tool that is not read-only (a read-only MCP session)."""
        started = time.perf_counter()
        execution_id = new_execution_id()
        status = "error"
        connection_id: str | None = None
        account_id: str | None = None
        try:
            connection = await self.directory.connection(connection_name)
            connection_id = connection.id
            connector = self.connector_for(connection, tool_name)
            self.check_policy(connection, connector, tool_name, read_only=read_only)
            prepared = connector.catalog.prepare(
                tool_name,
                tool_input,
                bot_token_available=connection.bot_token is not None or not connector.uses_oauth,
            )
            write = WriteFields.of(prepared)
            credentials, account = await self._credentials(
                connector, connection, prepared, identifier
            )
            account_id = account.id if account is not None else None
            result = await self._send(
                connector, prepared, write, credentials, connection_name, identifier, account
            )
            status = "ok"
            if account_id is not None and self.on_used is not None:
                self.on_used(account_id)
            latency = (time.perf_counter() - started) * 1000
            return ToolResult(
                tool_name=prepared.tool,
                execution_id=execution_id,
                data=result if not isinstance(result, ImageResult | TextResult) else None,
                image=result if isinstance(result, ImageResult) else None,
                text=result if isinstance(result, TextResult) else None,
                latency_ms=latency,
                notes=write.notes,
            )
        except TokenwardError as exc:
            status = exc.code
            raise
        finally:
            latency = (time.perf_counter() - started) * 1000
            if self.on_result is not None:
                self.on_result(tool_name, status, latency)
            if self.on_event is not None:
                self.on_event(
                    "tool.executed",
                    connection_id,
                    account_id,
                    {
                        "tool": tool_name[:64],
                        "status": status,
                        "latency_ms": round(latency, 2),
                        "execution_id": execution_id,
                    },
                )

    # -- provider and policy --------------------------------------------------------------------

    def connector_for(self, connection: ConnectionRecord, tool_name: str) -> Connector:
        """The connection's provider, which must be the tool's (a ``discordbot_*`` tool runs on a
        ``discordbot`` connection); ToolNotFound for an unknown tool."""
        connector = self.connectors.provider(connection.provider)
        owner = self.connectors.for_tool(tool_name)
        if owner.name != connector.name:
            reason = (
                f"{tool_name} is a {owner.name} tool and connection {connection.name!r} is a "
                f"{connector.name} connection; use a {connector.name}_* tool or a {owner.name} "
                "connection"
            )
            raise ValidationError(reason, fields={"tool_name": reason})
        return connector

    @staticmethod
    def check_policy(
        connection: ConnectionRecord,
        connector: Connector,
        tool_name: str,
        *,
        read_only: bool = False,
    ) -> None:
        """Raise ToolNotAllowed when the connection's policy or a read-only session refuses."""
        refused = policy.refusal(
            connection.allowed_tools, tool_name, connection_name=connection.name
        )
        if refused is None and read_only:
            tool = connector.catalog.get(tool_name)
            refused = policy.read_only_refusal(tool_name, read_only_tool=tool.annotations.read_only)
        if refused is not None:
            raise refused

    # -- credentials ----------------------------------------------------------------------------

    async def _credentials(
        self,
        connector: Connector,
        connection: ConnectionRecord,
        prepared: PreparedRequest,
        identifier: str,
    ) -> tuple[CredentialSource, AccountRecord | None]:
        """The credential for this call (see the module docstring) and the account it is."""
        if not connector.uses_oauth:
            account = await self.directory.account(connection, identifier)
            if prepared.auth == "none" and route_of(prepared.method, prepared.path).identity:
                # The token in the path authorises the call: no bot token goes with it.
                return StaticCredentials(), account
            source = BotAccountCredentials(
                self.directory.vault,
                self.directory,
                account,
                connection_name=connection.name,
                scheme=connector.account_scheme,
            )
            return source, account
        if prepared.auth == "user":
            account = await self.directory.account(connection, identifier)
            await self.tokens.require_active(account)
            missing = prepared.missing_scopes(account.granted_scopes)
            if missing:
                raise await self._missing_scopes(prepared, missing, connection.name, identifier)
            user = AccountCredentials(
                self.tokens, self.directory, account, scheme=connector.account_scheme
            )
            return user, account
        bot = BotCredentials(
            connection, required=prepared.auth == "bot", scheme=connector.bot_scheme
        )
        return bot, None

    async def _missing_scopes(
        self,
        prepared: PreparedRequest,
        missing: tuple[str, ...],
        connection_name: str,
        identifier: str,
    ) -> TokenwardError:
        link = await self.link_factory(connection_name, identifier)
        return ProviderError(
            f"{prepared.tool} needs the OAuth2 scope(s) {', '.join(missing)}, which the user "
            "did not grant",
            code="MISSING_SCOPE",
            status=403,
            details={
                "missing_scopes": list(missing),
                "authorization_link": link,
                "hint": "Add the scope(s) to the connection if needed, then send the user the "
                "authorization link to approve them.",
            },
        )

    async def refused_after_refresh(
        self, exc: ReauthorizationRequired, account_id: str, connection_name: str, identifier: str
    ) -> None:
        """Discord refused the account's token even after a refresh: stop using it (the account
        is marked unless the refresh already marked it with its real cause) and attach a link."""
        await self.tokens.mark_unusable(account_id, REFUSED_AFTER_REFRESH)
        self.directory.forget_by_id(account_id)
        exc.details.setdefault(
            "authorization_link", await self.link_factory(connection_name, identifier)
        )

    # -- the call -------------------------------------------------------------------------------

    async def _send(
        self,
        connector: Connector,
        prepared: PreparedRequest,
        write: WriteFields,
        credentials: CredentialSource,
        connection_name: str,
        identifier: str,
        account: AccountRecord | None,
    ) -> Any:
        oauth_account = account if connector.uses_oauth else None
        try:
            response = await self.clients(connector).request(
                prepared.method,
                prepared.path,
                query=prepared.query,
                credentials=credentials,
                headers=write.request_headers(),
                body=write.body,
                retry_safe=write.retry_safe,
            )
        except ReauthorizationRequired as exc:
            if oauth_account is not None:
                await self.refused_after_refresh(exc, oauth_account.id, connection_name, identifier)
            raise
        if response.status >= 400:
            link = None
            if response.status in (401, 403) and oauth_account is not None:
                link = await self.link_factory(connection_name, identifier)
            raise error_from_response(
                response,
                path=prepared.path,
                required_scopes=prepared.scopes,
                authorization_link=link,
                errors=connector.errors,
            )
        body = response.content
        if prepared.response == "image":
            media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
            if media_type != (prepared.media_type or "image/png"):
                raise UpstreamUnavailable(
                    f"Discord answered {media_type or 'no content type'} where an image was "
                    "expected",
                    details={"status": response.status},
                )
            return ImageResult(bytes(body), media_type)
        if prepared.response == "text":
            media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
            if media_type != prepared.media_type:
                raise UpstreamUnavailable(
                    f"Discord answered {media_type or 'no content type'} where "
                    f"{prepared.media_type} text was expected",
                    details={"status": response.status},
                )
            return TextResult.decode(bytes(body), media_type)
        try:
            data = json.loads(body) if body else None
        except ValueError as exc:
            raise UpstreamUnavailable(
                "Discord answered with a body that is not JSON", details={"status": response.status}
            ) from exc
        return connector.catalog.finish(prepared, data, clock=self.clock)
