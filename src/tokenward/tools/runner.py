"""Executes catalog tools for a connected account through the proxy core.

``ToolRunner.execute`` validates the input (nothing is sent when it is bad), resolves the
credential the tool needs (the account's bearer token, the connection's bot token, or none),
checks granted scopes before spending a request Discord would refuse, sends through
``ProviderClient`` (so refresh, rate limiting, retries and the path guard all apply), turns an
error answer into a structured error with a hint, and applies the tool's result hook. Events
(tool executed, with status and latency) are recorded off the request path.
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
from tokenward.errors import (
    ProviderError,
    ReauthorizationRequired,
    TokenwardError,
    UpstreamUnavailable,
)
from tokenward.oauth.refresh import TokenManager
from tokenward.proxy.accounts import AccountCredentials, AccountDirectory, BotCredentials
from tokenward.proxy.client import CredentialSource, ProviderClient, error_from_response
from tokenward.tools.catalog import Catalog, PreparedRequest
from tokenward.tools.results import ImageResult

log = logging.getLogger("tokenward.tools")

LinkFactory = Callable[[str, str], Awaitable[str]]
REFUSED_AFTER_REFRESH = "Discord rejected the account's token even after a refresh"
EventHook = Callable[[str, str | None, str | None, dict[str, Any]], None]


@dataclass(frozen=True)
class ToolResult:
    tool_name: str
    execution_id: str
    data: Any
    latency_ms: float
    image: ImageResult | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def data_json(self) -> Any:
        """The result as JSON-safe data (an image as ``{type, media_type, data}``)."""
        return self.image.to_dict() if self.image is not None else self.data


def new_execution_id() -> str:
    return "exec_" + secrets.token_hex(10)


class ToolRunner:
    def __init__(
        self,
        *,
        catalog: Catalog,
        client: ProviderClient,
        directory: AccountDirectory,
        tokens: TokenManager,
        clock: Clock,
        link_factory: LinkFactory,
        on_event: EventHook | None = None,
        on_result: Callable[[str, str, float], None] | None = None,
        on_used: Callable[[str], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.client = client
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
    ) -> ToolResult:
        started = time.perf_counter()
        execution_id = new_execution_id()
        status = "error"
        connection_id: str | None = None
        account_id: str | None = None
        try:
            connection = await self.directory.connection(connection_name)
            connection_id = connection.id
            prepared = self.catalog.prepare(
                tool_name, tool_input, bot_token_available=connection.bot_token is not None
            )
            credentials: CredentialSource
            if prepared.auth == "user":
                account = await self.directory.account(connection, identifier)
                account_id = account.id
                await self.tokens.require_active(account)
                missing = prepared.missing_scopes(account.granted_scopes)
                if missing:
                    raise await self._missing_scopes(prepared, missing, connection_name, identifier)
                credentials = AccountCredentials(self.tokens, self.directory, account)
            else:
                credentials = BotCredentials(connection, required=prepared.auth == "bot")
            result = await self._send(
                prepared, credentials, connection_name, identifier, account_id
            )
            status = "ok"
            if account_id is not None and self.on_used is not None:
                self.on_used(account_id)
            latency = (time.perf_counter() - started) * 1000
            return ToolResult(
                tool_name=prepared.tool,
                execution_id=execution_id,
                data=result if not isinstance(result, ImageResult) else None,
                image=result if isinstance(result, ImageResult) else None,
                latency_ms=latency,
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

    async def _send(
        self,
        prepared: PreparedRequest,
        credentials: CredentialSource,
        connection_name: str,
        identifier: str,
        account_id: str | None,
    ) -> Any:
        try:
            response = await self.client.request(
                prepared.method, prepared.path, query=prepared.query, credentials=credentials
            )
        except ReauthorizationRequired as exc:
            if account_id is not None:
                await self.refused_after_refresh(exc, account_id, connection_name, identifier)
            raise
        if response.status >= 400:
            link = None
            if response.status in (401, 403) and account_id is not None:
                link = await self.link_factory(connection_name, identifier)
            raise error_from_response(
                response,
                path=prepared.path,
                required_scopes=prepared.scopes,
                authorization_link=link,
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
        try:
            data = json.loads(body) if body else None
        except ValueError as exc:
            raise UpstreamUnavailable(
                "Discord answered with a body that is not JSON", details={"status": response.status}
            ) from exc
        return self.catalog.finish(prepared, data, clock=self.clock)
