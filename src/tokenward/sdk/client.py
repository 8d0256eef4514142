"""The tokenward SDK: ``AsyncClient`` (the one implementation) and ``Client`` (sync, wraps it).

Mirrors the hosted platform's ``actions.*`` calls::

    client = tokenward.Client("http://127.0.0.1:8080", client_id, client_secret)
    link = client.actions.get_authorization_link(connection_name="discord", identifier="user_123")
    me = client.actions.request(connection_name="discord", identifier="user_123",
                                path="/api/users/@me").json()
    guilds = client.actions.execute_tool(tool_name="discord_list_my_guilds", tool_input={},
                                         identifier="user_123", connection_name="discord").data

The client fetches its API token with the client-credentials grant and renews it before it
expires (and once more on a 401). Every failure is a :class:`tokenward.TokenwardError` carrying
the server's ``code``, ``message``, ``details`` and HTTP ``status``:

- the server's errors map by code (``ACCOUNT_NOT_FOUND`` → ``AccountNotFound``, a wrong client
  secret ``INVALID_CLIENT`` → ``AuthenticationError``, ``INSUFFICIENT_SCOPE`` →
  ``InsufficientScope``, …), unknown codes by status (400 → ``ValidationError``, 401 →
  ``AuthenticationError``, 404 → ``NotFoundError``, 409 → ``ConflictError``, 429 →
  ``RateLimited``; any other: ``TokenwardError`` itself);
- no answer at all (connection refused, name not resolved, timeout, connection dropped) →
  ``ServerUnreachable`` with ``details.reason``;
- an answer that is not tokenward's (a reverse proxy's HTML 502, a body that is not JSON) →
  ``UnexpectedResponse`` with the ``status`` received;
- bad arguments (``tool_input`` not a dict, values that are not JSON, an ``env_url`` that is not
  an http(s) URL) → ``ValidationError`` naming the argument, before anything is sent.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import math
import threading
import time
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from tokenward import errors
from tokenward.sdk import adapters
from tokenward.sdk.mcp import AsyncMcpActions, McpActions
from tokenward.sdk.models import (
    AuthorizationLink,
    ConnectedAccount,
    ConnectedAccountPage,
    Connection,
    ProxyResponse,
    ToolExecution,
    ToolInfo,
)
from tokenward.sdk.webhooks import AsyncWebhooks, Webhooks

if TYPE_CHECKING:
    from langchain_core.tools import StructuredTool

T = TypeVar("T")

_ERROR_CLASSES: tuple[type[errors.TokenwardError], ...] = (
    errors.ValidationError,
    errors.ConnectionNotFound,
    errors.AccountNotFound,
    errors.ToolNotFound,
    errors.ConflictError,
    errors.AuthenticationError,
    errors.InsufficientScope,
    errors.AccountNotActive,
    errors.ReauthorizationRequired,
    errors.PathRejected,
    errors.ProviderError,
    errors.UpstreamUnavailable,
    errors.BotTokenRequired,
    errors.ToolNotAllowed,
)
_ERRORS_BY_CODE: dict[str, type[errors.TokenwardError]] = {
    **{cls.code: cls for cls in _ERROR_CLASSES},
    "INVALID_CLIENT": errors.AuthenticationError,
    "INVALID_TOKEN": errors.AuthenticationError,
    "MISSING_SCOPE": errors.ProviderError,
    "REVOKE_FAILED": errors.UpstreamUnavailable,
}
_ERRORS_BY_STATUS: dict[int, type[errors.TokenwardError]] = {
    400: errors.ValidationError,
    401: errors.AuthenticationError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
}
# Conflicts with a code of their own (details say more): still a ConflictError.
_ERRORS_BY_CODE["SIBLINGS_AFFECTED"] = errors.ConflictError


def _build(
    cls: type[errors.TokenwardError],
    message: str,
    *,
    code: str,
    status: int,
    details: dict[str, Any],
) -> errors.TokenwardError:
    """An instance of ``cls`` with the server's code, status and details (bypassing the
    subclasses' own constructors, which take other arguments)."""
    exc = errors.TokenwardError.__new__(cls)
    errors.TokenwardError.__init__(exc, message, details=details, code=code, status=status)
    if isinstance(exc, errors.ValidationError):
        fields = details.get("fields")
        exc.fields = dict(fields) if isinstance(fields, dict) else {}
    return exc


def _unexpected(response: httpx.Response, what: str) -> errors.UnexpectedResponse:
    content_type = response.headers.get("content-type", "")[:100] or "none"
    exc = _build(
        errors.UnexpectedResponse,
        f"the server at {response.request.url.scheme}://{response.request.url.netloc.decode()} "
        f"answered HTTP {response.status_code} with {what} (Content-Type {content_type}); is "
        "something other than tokenward (a proxy, a load balancer) answering?",
        code=errors.UnexpectedResponse.code,
        status=response.status_code,
        details={"status": response.status_code, "content_type": content_type},
    )
    assert isinstance(exc, errors.UnexpectedResponse)
    return exc


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return None
    return error


def _error_from(response: httpx.Response) -> errors.TokenwardError:
    """The exception for an error answer (``status >= 400``) of the API."""
    err = _envelope(response)
    if err is None:
        return _unexpected(response, "a body that is not tokenward's error envelope")
    status = response.status_code
    code = str(err["code"])
    message = str(err.get("message") or f"HTTP {status}")
    details = err.get("details") if isinstance(err.get("details"), dict) else {}
    assert isinstance(details, dict)
    if code == "RATE_LIMITED" or (status == 429 and code not in _ERRORS_BY_CODE):
        retry_after = details.get("retry_after")
        if not isinstance(retry_after, int | float):
            header = response.headers.get("retry-after", "")
            retry_after = float(header) if header.isdigit() else 0.0
        limited = errors.RateLimited(message, retry_after=float(retry_after))
        limited.details = details
        limited.code = code  # type: ignore[misc]
        return limited
    cls = _ERRORS_BY_CODE.get(code) or _ERRORS_BY_STATUS.get(status) or errors.TokenwardError
    return _build(cls, message, code=code, status=status, details=details)


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if any(hint in text for hint in ("name or service", "nodename", "getaddrinfo", "resolve")):
            return "dns"
        return "connect"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return "protocol"
    return "network"


_REASONS = {
    "timeout": "timed out",
    "dns": "the host name could not be resolved",
    "connect": "the connection was refused or could not be made",
    "protocol": "the answer was not valid HTTP, or the connection closed mid-answer",
    "network": "the connection failed",
}


def _unreachable(env_url: str, exc: httpx.TransportError) -> errors.ServerUnreachable:
    reason = _reason(exc)
    nothing_sent = reason in {"dns", "connect"} or isinstance(exc, httpx.ConnectTimeout)
    return errors.ServerUnreachable(
        f"cannot reach the tokenward server at {env_url}: {_REASONS[reason]} "
        f"({type(exc).__name__})",
        details={"reason": reason, "url": env_url, "request_sent": not nothing_sent},
    )


def _check_env_url(env_url: object) -> str:
    if not isinstance(env_url, str):
        raise errors.ValidationError(
            "env_url must be a string such as 'http://127.0.0.1:8080'",
            fields={"env_url": f"must be a string, not {type(env_url).__name__}"},
        )
    parts = urlsplit(env_url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise errors.ValidationError(
            f"env_url {env_url[:100]!r} is not an http(s) URL with a host (e.g. "
            "'http://127.0.0.1:8080')",
            fields={"env_url": "must be an http:// or https:// URL with a host"},
        )
    return env_url.strip().rstrip("/")


def _check_text(**values: object) -> None:
    bad = {
        name: "must be a non-empty string"
        if isinstance(value, str)
        else f"must be a string, not {type(value).__name__}"
        for name, value in values.items()
        if not isinstance(value, str) or not value
    }
    if bad:
        raise errors.ValidationError(f"invalid {', '.join(bad)}", fields=bad)


def _check_json(name: str, value: object) -> None:
    """``value`` can be sent as JSON (no NaN, no objects JSON cannot carry)."""
    try:
        jsonlib.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        reason = "must be JSON-serializable (str, int, float, bool, None, list, dict)"
        if isinstance(exc, ValueError) and "out of range" in str(exc).lower():
            reason = "must not contain NaN or infinity"
        raise errors.ValidationError(f"{name} {reason}", fields={name: reason}) from None


def _tool_input(tool_input: object) -> dict[str, Any]:
    if tool_input is None:
        return {}
    if not isinstance(tool_input, Mapping):
        reason = f"must be a dict (a JSON object), not {type(tool_input).__name__}"
        raise errors.ValidationError(f"tool_input {reason}", fields={"tool_input": reason})
    keys = [key for key in tool_input if not isinstance(key, str)]
    if keys:
        reason = "keys must be strings"
        raise errors.ValidationError(f"tool_input {reason}", fields={"tool_input": reason})
    out = dict(tool_input)
    _check_json("tool_input", out)
    return out


class AsyncClient:
    """tokenward's API for applications, async."""

    def __init__(
        self,
        env_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        self.env_url = _check_env_url(env_url)
        _check_text(client_id=client_id, client_secret=client_secret)
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise errors.ValidationError(
                "timeout must be a positive number of seconds",
                fields={"timeout": "must be a positive number of seconds"},
            )
        self.client_id = client_id
        self._client_secret = client_secret
        self._http = httpx.AsyncClient(
            base_url=self.env_url,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=False,
        )
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.actions = AsyncActions(self)
        self.webhooks = AsyncWebhooks(self)

    def __repr__(self) -> str:
        return f"AsyncClient(env_url={self.env_url!r}, client_id={self.client_id!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _http_request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange; no answer at all is :class:`~tokenward.errors.ServerUnreachable`."""
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise _unreachable(self.env_url, exc) from exc
        except httpx.InvalidURL as exc:
            reason = "is not a valid URL path"
            raise errors.ValidationError(f"path {reason}", fields={"path": reason}) from exc

    async def _access_token(self, *, renew: bool = False) -> str:
        if not renew and self._token and time.monotonic() < self._token_expires:
            return self._token
        async with self._token_lock:
            if not renew and self._token and time.monotonic() < self._token_expires:
                return self._token
            response = await self._http_request(
                "POST",
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self._client_secret,
                },
            )
            if response.status_code != 200:
                raise _error_from(response)
            try:
                body = response.json()
                token = body["access_token"]
                lifetime = float(body.get("expires_in") or 300)
            except (ValueError, KeyError, TypeError, AttributeError):
                raise _unexpected(response, "a body that is not an API token") from None
            if not isinstance(token, str) or not token:
                raise _unexpected(response, "a body that is not an API token")
            self._token = token
            self._token_expires = time.monotonic() + max(1.0, lifetime - min(60.0, lifetime / 10))
            return self._token

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        renewed = False
        while True:
            token = await self._access_token(renew=renewed)
            response = await self._http_request(
                method,
                url,
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                content=content,
            )
            if response.status_code == 401 and not renewed and _is_api_auth_error(response):
                renewed = True
                continue
            return response

    async def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self._send(method, url, **kwargs)
        if response.status_code >= 400:
            raise _error_from(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise _unexpected(response, "a body that is not JSON") from None


def _is_api_auth_error(response: httpx.Response) -> bool:
    error = _envelope(response)
    return error is not None and error["code"] in {"UNAUTHENTICATED", "INVALID_TOKEN"}


class AsyncActions:
    """``client.actions``: the calls an application makes for its users."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client
        self.mcp = AsyncMcpActions(client)
        """``create_session(...)``: per-user MCP sessions (see :mod:`tokenward.sdk.mcp`)."""

    async def get_authorization_link(
        self,
        *,
        connection_name: str,
        identifier: str,
        state: str | None = None,
        user_verify_url: str | None = None,
        allow_user_change: bool = False,
    ) -> AuthorizationLink:
        """A single-use link to send to the user. ``allow_user_change=True`` lets the identifier
        be re-linked to a different Discord user than the one it is linked to now."""
        body: dict[str, Any] = {"connection_name": connection_name, "identifier": identifier}
        if state is not None:
            body["state"] = state
        if user_verify_url is not None:
            body["user_verify_url"] = user_verify_url
        if allow_user_change:
            body["allow_user_change"] = True
        data = await self._c._call(
            "POST", "/api/v1/connected-accounts/authorization-link", json=body
        )
        return AuthorizationLink.model_validate(data)

    async def request(
        self,
        *,
        connection_name: str,
        identifier: str,
        path: str,
        method: str = "GET",
        query_params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProxyResponse:
        """Call Discord's REST API as the user; Discord's status and body come back as they are
        (a 4xx from Discord is a response, not an exception)."""
        _check_text(
            connection_name=connection_name, identifier=identifier, path=path, method=method
        )
        if body is not None and not isinstance(body, bytes):
            _check_json("body", body)
        out_headers = {
            **(headers or {}),
            "connection_name": connection_name,
            "identifier": identifier,
        }
        response = await self._c._send(
            method.upper(),
            "/proxy/" + path.lstrip("/"),
            params=query_params,
            json=body if body is not None and not isinstance(body, bytes) else None,
            content=body if isinstance(body, bytes) else None,
            headers=out_headers,
        )
        if response.status_code >= 400 and _is_gateway_error(response):
            raise _error_from(response)
        return ProxyResponse(response.status_code, dict(response.headers), response.content)

    async def execute_tool(
        self,
        *,
        tool_name: str,
        tool_input: Mapping[str, Any] | None = None,
        identifier: str,
        connection_name: str,
    ) -> ToolExecution:
        _check_text(tool_name=tool_name, identifier=identifier, connection_name=connection_name)
        data = await self._c._call(
            "POST",
            "/api/v1/tools/execute",
            json={
                "tool_name": tool_name,
                "tool_input": _tool_input(tool_input),
                "identifier": identifier,
                "connection_name": connection_name,
            },
        )
        return ToolExecution.model_validate(data)

    async def create_connected_account(
        self, *, connection_name: str, identifier: str, bot_token: str
    ) -> ConnectedAccount:
        """On a ``discordbot`` connection: store ``bot_token`` for ``identifier`` (checked with
        Discord first; a refused token raises :class:`ValidationError` naming
        ``credentials.bot_token`` and nothing is stored). The token is never returned."""
        _check_text(connection_name=connection_name, identifier=identifier, bot_token=bot_token)
        data = await self._c._call(
            "POST",
            "/api/v1/connected-accounts",
            json={
                "connection_name": connection_name,
                "identifier": identifier,
                "credentials": {"bot_token": bot_token},
            },
        )
        return ConnectedAccount.model_validate(data["connected_account"])

    async def create_connection(
        self,
        *,
        name: str,
        provider: str = "discord",
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: Sequence[str] | None = None,
        bot_token: str | None = None,
        require_user_verification: bool = False,
        allowed_tools: Sequence[str] | None = None,
        public_key: str | None = None,
    ) -> Connection:
        """Create a connection: ``provider="discord"`` with the application's ``client_id`` and
        ``client_secret``, or ``provider="discordbot"`` (no OAuth client; its accounts hold bot
        tokens). ``allowed_tools``: tool patterns (``["*", "!*_ban*"]``), default every tool.
        ``public_key``: the application's public key (64 hex characters); the connection then
        has an ``interactions_endpoint_url`` and an ``event_webhooks_url`` for Discord."""
        body: dict[str, Any] = {"name": name, "provider": provider}
        optional = {
            "client_id": client_id,
            "client_secret": client_secret,
            "scopes": None if scopes is None else list(scopes),
            "bot_token": bot_token,
            "allowed_tools": None if allowed_tools is None else list(allowed_tools),
            "public_key": public_key,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if require_user_verification:
            body["require_user_verification"] = True
        data = await self._c._call("POST", "/api/v1/connections", json=body)
        return Connection.model_validate(data["connection"])

    async def update_connection(self, *, name: str, **changes: Any) -> Connection:
        """Change a connection's fields (``PATCH /api/v1/connections/{name}``), e.g.
        ``allowed_tools=["*", "!*_ban*"]``, ``allowed_tools=None`` (every tool again),
        ``public_key="<64 hex>"`` or ``public_key=None`` (remove it)."""
        if not changes:
            raise errors.ValidationError(
                "nothing to change", fields={"changes": "give at least one field to change"}
            )
        data = await self._c._call(
            "PATCH", f"/api/v1/connections/{quote(name, safe='')}", json=changes
        )
        return Connection.model_validate(data["connection"])

    async def get_connection(self, *, name: str) -> Connection:
        data = await self._c._call("GET", f"/api/v1/connections/{quote(name, safe='')}")
        return Connection.model_validate(data["connection"])

    async def list_tools(self) -> list[ToolInfo]:
        data = await self._c._call("GET", "/api/v1/tools")
        return [ToolInfo.model_validate(t) for t in data["tools"]]

    async def list_connected_accounts(
        self,
        *,
        connection_name: str | None = None,
        identifier: str | None = None,
        status: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ConnectedAccountPage:
        data = await self._c._call(
            "GET",
            "/api/v1/connected-accounts",
            params={
                "connection_name": connection_name,
                "identifier": identifier,
                "status": status,
                "page_size": page_size,
                "page_token": page_token,
            },
        )
        return ConnectedAccountPage.model_validate(data)

    async def _resolve_id(
        self, id: str | None, connection_name: str | None, identifier: str | None
    ) -> str:
        if id:
            return id
        if not (connection_name and identifier):
            raise errors.ValidationError(
                "pass id, or connection_name and identifier",
                fields={"id": "or connection_name with identifier"},
            )
        page = await self.list_connected_accounts(
            connection_name=connection_name, identifier=identifier, page_size=1
        )
        if not page.connected_accounts:
            raise errors.AccountNotFound(
                f"no connected account for identifier {identifier!r} on connection "
                f"{connection_name!r}",
                details={"connection_name": connection_name, "identifier": identifier},
            )
        return page.connected_accounts[0].id

    async def get_connected_account(
        self,
        *,
        id: str | None = None,
        connection_name: str | None = None,
        identifier: str | None = None,
    ) -> ConnectedAccount:
        account_id = await self._resolve_id(id, connection_name, identifier)
        data = await self._c._call(
            "GET", f"/api/v1/connected-accounts/{quote(account_id, safe='')}"
        )
        return ConnectedAccount.model_validate(data.get("connected_account", data))

    async def delete_connected_account(
        self,
        *,
        id: str | None = None,
        connection_name: str | None = None,
        identifier: str | None = None,
        force: bool = False,
        revoke: bool = True,
        revoke_siblings: bool = False,
    ) -> None:
        """Revoke the grant at Discord, then delete the account. Revoking ends the grant of every
        identifier linked to the same Discord user: then :class:`ConflictError`
        (``SIBLINGS_AFFECTED``, ``details["siblings"]``) unless ``revoke_siblings=True`` (they
        become DISCONNECTED) or ``revoke=False`` (delete here only, nothing revoked)."""
        account_id = await self._resolve_id(id, connection_name, identifier)
        params: dict[str, str] = {}
        if force:
            params["force"] = "true"
        if not revoke:
            params["revoke"] = "false"
        if revoke_siblings:
            params["revoke_siblings"] = "true"
        await self._c._call(
            "DELETE",
            f"/api/v1/connected-accounts/{quote(account_id, safe='')}",
            params=params or None,
        )

    async def verify_connected_account_user(
        self, *, auth_request_id: str, identifier: str
    ) -> ConnectedAccount:
        data = await self._c._call(
            "POST",
            "/api/v1/connected-accounts/verify",
            json={"auth_request_id": auth_request_id, "identifier": identifier},
        )
        return ConnectedAccount.model_validate(data.get("connected_account", data))

    # -- agent-framework adapters (see tokenward.sdk.adapters) ----------------------------------

    def tools_for_openai(
        self,
        tools: Sequence[str] | None = None,
        *,
        api: adapters.OpenAIApi = "chat",
        provider: str | None = None,
    ) -> list[dict[str, Any]]:
        """OpenAI function tools (strict mode) for ``tools`` (default: every tool, or every tool
        of ``provider``: ``"discord"``, ``"discordbot"``); built from the catalog, no request.
        ``api="responses"`` gives the Responses API's shape."""
        return adapters.openai_tools(tools, api=api, provider=provider)

    def tools_for_anthropic(
        self, tools: Sequence[str] | None = None, *, provider: str | None = None
    ) -> list[dict[str, Any]]:
        """Anthropic Messages API tools for ``tools`` (default: every tool, or every tool of
        ``provider``); no request."""
        return adapters.anthropic_tools(tools, provider=provider)

    async def execute_openai_tool_call(
        self, tool_call: Any, *, connection_name: str, identifier: str
    ) -> dict[str, Any]:
        """Run an OpenAI tool call as the user; the message to append (errors included, with
        their hint and authorization link, as the message content rather than an exception)."""
        return await adapters.execute_openai_tool_call(
            self, tool_call, connection_name=connection_name, identifier=identifier
        )

    async def execute_anthropic_tool_use(
        self, block: Any, *, connection_name: str, identifier: str
    ) -> dict[str, Any]:
        """Run an Anthropic ``tool_use`` block as the user; the ``tool_result`` block to send
        (``is_error`` with the structured error when it failed)."""
        return await adapters.execute_anthropic_tool_use(
            self, block, connection_name=connection_name, identifier=identifier
        )

    def tools_for_langchain(
        self,
        *,
        connection_name: str,
        identifier: str,
        tools: Sequence[str] | None = None,
        provider: str | None = None,
    ) -> list[StructuredTool]:
        """LangChain ``StructuredTool``s acting as the user (async: use ``ainvoke``). Needs the
        ``tokenward[langchain]`` extra."""

        async def run(name: str, arguments: dict[str, Any]) -> adapters.ToolOutcome:
            return await adapters.run_tool(
                self, name, arguments, connection_name=connection_name, identifier=identifier
            )

        return adapters.langchain_tools(tools, run=run, provider=provider)


def _is_gateway_error(response: httpx.Response) -> bool:
    """A proxied call's error is the gateway's own when it carries the envelope."""
    if "application/json" not in response.headers.get("content-type", ""):
        return False
    return _envelope(response) is not None


class _LoopThread:
    """A private event loop in a daemon thread: the sync client's engine room."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class Client:
    """tokenward's API for applications, synchronous (wraps :class:`AsyncClient`)."""

    def __init__(
        self, env_url: str, client_id: str, client_secret: str, *, timeout: float = 30.0
    ) -> None:
        _check_env_url(env_url)  # before a thread exists, so a bad argument leaks nothing
        self._loop = _LoopThread()

        async def make() -> AsyncClient:
            return AsyncClient(env_url, client_id, client_secret, timeout=timeout)

        try:
            self._async = self._loop.run(make())
        except BaseException:
            self._loop.stop()
            raise
        self.actions = Actions(self._async.actions, self._loop)
        self.webhooks = Webhooks(self._async.webhooks, self.actions._run)

    def __repr__(self) -> str:
        return f"Client(env_url={self._async.env_url!r}, client_id={self._async.client_id!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._loop.run(self._async.aclose())
        self._loop.stop()


class Actions:
    """Synchronous ``client.actions`` (see :class:`AsyncActions` for each call)."""

    def __init__(self, actions: AsyncActions, loop: _LoopThread) -> None:
        self._a = actions
        self._loop = loop
        self.mcp = McpActions(actions.mcp, self._run)

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def wrapper() -> T:
            return await awaitable

        return self._loop.run(wrapper())

    def create_connected_account(self, **kwargs: Any) -> ConnectedAccount:
        return self._run(self._a.create_connected_account(**kwargs))

    def create_connection(self, **kwargs: Any) -> Connection:
        return self._run(self._a.create_connection(**kwargs))

    def update_connection(self, **kwargs: Any) -> Connection:
        return self._run(self._a.update_connection(**kwargs))

    def get_connection(self, **kwargs: Any) -> Connection:
        return self._run(self._a.get_connection(**kwargs))

    def get_authorization_link(self, **kwargs: Any) -> AuthorizationLink:
        return self._run(self._a.get_authorization_link(**kwargs))

    def request(self, **kwargs: Any) -> ProxyResponse:
        return self._run(self._a.request(**kwargs))

    def execute_tool(self, **kwargs: Any) -> ToolExecution:
        return self._run(self._a.execute_tool(**kwargs))

    def list_tools(self) -> list[ToolInfo]:
        return self._run(self._a.list_tools())

    def list_connected_accounts(self, **kwargs: Any) -> ConnectedAccountPage:
        return self._run(self._a.list_connected_accounts(**kwargs))

    def get_connected_account(self, **kwargs: Any) -> ConnectedAccount:
        return self._run(self._a.get_connected_account(**kwargs))

    def delete_connected_account(self, **kwargs: Any) -> None:
        self._run(self._a.delete_connected_account(**kwargs))

    def verify_connected_account_user(self, **kwargs: Any) -> ConnectedAccount:
        return self._run(self._a.verify_connected_account_user(**kwargs))

    # -- agent-framework adapters (see tokenward.sdk.adapters) ----------------------------------

    def tools_for_openai(
        self,
        tools: Sequence[str] | None = None,
        *,
        api: adapters.OpenAIApi = "chat",
        provider: str | None = None,
    ) -> list[dict[str, Any]]:
        return adapters.openai_tools(tools, api=api, provider=provider)

    def tools_for_anthropic(
        self, tools: Sequence[str] | None = None, *, provider: str | None = None
    ) -> list[dict[str, Any]]:
        return adapters.anthropic_tools(tools, provider=provider)

    def execute_openai_tool_call(
        self, tool_call: Any, *, connection_name: str, identifier: str
    ) -> dict[str, Any]:
        return self._run(
            self._a.execute_openai_tool_call(
                tool_call, connection_name=connection_name, identifier=identifier
            )
        )

    def execute_anthropic_tool_use(
        self, block: Any, *, connection_name: str, identifier: str
    ) -> dict[str, Any]:
        return self._run(
            self._a.execute_anthropic_tool_use(
                block, connection_name=connection_name, identifier=identifier
            )
        )

    def tools_for_langchain(
        self,
        *,
        connection_name: str,
        identifier: str,
        tools: Sequence[str] | None = None,
        provider: str | None = None,
    ) -> list[StructuredTool]:
        def run(name: str, arguments: dict[str, Any]) -> adapters.ToolOutcome:
            return self._run(
                adapters.run_tool(
                    self._a, name, arguments, connection_name=connection_name, identifier=identifier
                )
            )

        return adapters.langchain_tools(tools, run_sync=run, provider=provider)
