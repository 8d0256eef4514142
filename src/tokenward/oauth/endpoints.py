"""OAuth2 endpoints of a provider: the authorize URL, code exchange, refresh, revoke, whoami.

The flow logic (``service.py``, ``refresh.py``) talks to :class:`OAuthEndpoints`, a small protocol,
so tests can hand in another implementation. :class:`OAuth2Client` is the real one: its URLs come
from the provider's ``provider.yaml`` (``oauth.authorize_url``, ``token_url``, ``revoke_url``,
relative to the provider's base URL) and every call goes through the same injectable
:class:`~tokenward.proxy.transport.Transport` as the rest of tokenward's outbound traffic (no
session of its own, no redirects followed, no cookies, proxies from the environment ignored).
Client authentication is HTTP Basic (RFC 6749 §2.3.1, what Discord documents); the form and
answers are RFC 6749's. Errors never carry a token or a secret.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from tokenward.proxy.retry import NOT_SENT
from tokenward.proxy.transport import Transport, TransportError, UpstreamRequest

DEFAULT_EXPIRES_IN = 604800  # Discord's documented lifetime, for an answer that omits expires_in


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_in: int
    scopes: tuple[str, ...]
    id_token: str | None = None

    def __repr__(self) -> str:
        return f"TokenSet(expires_in={self.expires_in}, scopes={self.scopes!r})"


class OAuthRejected(Exception):
    """The provider answered the token or revoke endpoint with an OAuth error
    (``invalid_grant``, …)."""

    def __init__(self, status: int, error: str, description: str | None) -> None:
        super().__init__(f"{error}: {description or ''}".strip())
        self.status = status
        self.error = error
        self.description = description


class OAuthUnavailable(Exception):
    """A network error, a timeout or a 5xx: worth retrying later.

    ``sent`` says whether the request may have reached the provider. When it did (a timeout, a
    connection dropped after sending, an error answer), the provider may have acted on it: a
    refresh token sent in such a request may already be spent. Only a connection that could not
    be opened (``sent=False``) certainly left everything as it was.
    """

    def __init__(self, reason: str, status: int | None = None, *, sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.sent = sent


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r})"


class OAuthEndpoints(Protocol):
    def authorize_url(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        state: str,
        code_challenge: str,
        prompt: str | None = None,
    ) -> str: ...

    async def exchange_code(
        self, client: ClientCredentials, *, code: str, redirect_uri: str, code_verifier: str
    ) -> TokenSet: ...

    async def refresh(self, client: ClientCredentials, refresh_token: str) -> TokenSet: ...

    async def revoke(
        self, client: ClientCredentials, token: str, hint: str | None = None
    ) -> None: ...

    async def current_user(self, access_token: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OAuthUrls:
    """Absolute URLs of one provider's OAuth2 endpoints and of its "who am I" API route."""

    authorize: str
    token: str
    revoke: str
    whoami: str


class OAuth2Client:
    """A provider's OAuth2 endpoints (``urls``) over ``transport``.

    ``user_scheme`` is the provider's auth scheme for an access token (``Bearer``); ``timeout``
    bounds each call.
    """

    def __init__(
        self,
        transport: Transport,
        urls: OAuthUrls,
        *,
        user_agent: str,
        user_scheme: str = "Bearer",
        timeout: float = 15.0,
    ) -> None:
        self._transport = transport
        self.urls = urls
        self._user_agent = user_agent
        self._user_scheme = user_scheme
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"OAuth2Client(token_url={self.urls.token!r})"

    def authorize_url(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        state: str,
        code_challenge: str,
        prompt: str | None = None,
    ) -> str:
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if prompt:
            params["prompt"] = prompt
        return f"{self.urls.authorize}?{urlencode(params)}"

    async def _send(self, request: UpstreamRequest, what: str) -> tuple[int, bytes]:
        """Send and read the whole answer; transport failures become OAuthUnavailable."""
        try:
            response = await self._transport.send(request)
            try:
                raw = await response.read()
            finally:
                await response.aclose()
        except TransportError as exc:
            raise OAuthUnavailable(
                f"could not reach the provider's {what} ({exc.kind.value})",
                sent=exc.kind not in NOT_SENT,
            ) from exc
        return response.status, raw

    async def _post_form(
        self, url: str, client: ClientCredentials, form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before they go into Basic.
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
        basic = base64.b64encode(pair.encode()).decode()
        request = UpstreamRequest(
            "POST",
            url,
            (
                ("Authorization", f"Basic {basic}"),
                ("User-Agent", self._user_agent),
                ("Accept", "application/json"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ),
            urlencode(form).encode(),
            self._timeout,
        )
        status, raw = await self._send(request, "token endpoint")
        if status >= 500 or status == 429:
            raise OAuthUnavailable(f"the provider answered {status}", status)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise OAuthUnavailable(
                f"the provider answered {status} with a body that is not JSON", status
            ) from exc
        if not isinstance(body, dict):
            raise OAuthUnavailable(
                f"the provider answered {status} with an unexpected body", status
            )
        return status, body

    @staticmethod
    def _token_set(status: int, body: dict[str, Any]) -> TokenSet:
        if status != 200 or "access_token" not in body:
            raise OAuthRejected(
                status,
                str(body.get("error") or "invalid_response"),
                body.get("error_description")
                if isinstance(body.get("error_description"), str)
                else None,
            )
        scope = body.get("scope") or ""
        return TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
            expires_in=int(body.get("expires_in") or DEFAULT_EXPIRES_IN),
            scopes=tuple(str(scope).split()),
            id_token=str(body["id_token"]) if body.get("id_token") else None,
        )

    async def exchange_code(
        self, client: ClientCredentials, *, code: str, redirect_uri: str, code_verifier: str
    ) -> TokenSet:
        status, body = await self._post_form(
            self.urls.token,
            client,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
        )
        return self._token_set(status, body)

    async def refresh(self, client: ClientCredentials, refresh_token: str) -> TokenSet:
        status, body = await self._post_form(
            self.urls.token,
            client,
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        return self._token_set(status, body)

    async def revoke(self, client: ClientCredentials, token: str, hint: str | None = None) -> None:
        form = {"token": token}
        if hint:
            form["token_type_hint"] = hint
        status, body = await self._post_form(self.urls.revoke, client, form)
        if status != 200:
            raise OAuthRejected(
                status, str(body.get("error") or f"http_{status}"), body.get("error_description")
            )

    async def current_user(self, access_token: str) -> dict[str, Any]:
        """``GET`` the identity route with the access token (Discord's ``/users/@me``). Raises
        OAuthRejected for a 401/403 and OAuthUnavailable when no usable answer came."""
        request = UpstreamRequest(
            "GET",
            self.urls.whoami,
            (
                ("Authorization", f"{self._user_scheme} {access_token}"),
                ("User-Agent", self._user_agent),
            ),
            None,
            self._timeout,
        )
        status, raw = await self._send(request, "identity route")
        if status in (401, 403):
            raise OAuthRejected(status, "invalid_token", f"the provider answered {status}")
        if status != 200:
            raise OAuthUnavailable(f"the provider answered {status} to the identity route", status)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise OAuthUnavailable(
                "the identity route answered with a body that is not JSON"
            ) from exc
        if not isinstance(body, dict):
            raise OAuthUnavailable("the identity route answered with an unexpected body")
        return body
