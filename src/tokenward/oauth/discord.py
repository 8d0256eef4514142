"""Discord's OAuth2 endpoints: the authorize URL, code exchange, refresh, revoke, ``/users/@me``.

The flow logic (``service.py``, ``refresh.py``) talks to :class:`OAuthEndpoints`, a small protocol,
so tests can hand in another implementation; :class:`DiscordOAuthClient` is the real one over an
injected ``aiohttp.ClientSession``. Errors never carry a token or a secret.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp

from tokenward import __version__

USER_AGENT = f"DiscordBot (https://github.com/tokenward/tokenward, {__version__})"


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
    """Discord answered the token or revoke endpoint with an OAuth error (``invalid_grant``…)."""

    def __init__(self, status: int, error: str, description: str | None) -> None:
        super().__init__(f"{error}: {description or ''}".strip())
        self.status = status
        self.error = error
        self.description = description


class OAuthUnavailable(Exception):
    """A network error, a timeout or a 5xx: worth retrying later.

    ``sent`` says whether the request may have reached Discord. When it did (a timeout, a
    connection dropped after sending, an error answer), Discord may have acted on it: a refresh
    token sent in such a request may already be spent. Only a connection that could not be opened
    (``sent=False``) certainly left everything as it was.
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


class DiscordOAuthClient:
    """Discord's OAuth2 endpoints under ``base_url`` (``https://discord.com`` or the sandbox)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float = 15.0,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

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
        return f"{self._base}/oauth2/authorize?{urlencode(params)}"

    async def _post_form(
        self, path: str, client: ClientCredentials, form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
        try:
            async with self._session.post(
                f"{self._base}{path}",
                data=form,
                headers={
                    "Authorization": f"Basic {basic}",
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                },
                timeout=self._timeout,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise OAuthUnavailable(
                f"could not reach Discord ({type(exc).__name__})",
                sent=not isinstance(exc, aiohttp.ClientConnectorError),
            ) from exc
        if status >= 500 or status == 429:
            raise OAuthUnavailable(f"Discord answered {status}", status)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise OAuthUnavailable(
                f"Discord answered {status} with a body that is not JSON", status
            ) from exc
        if not isinstance(body, dict):
            raise OAuthUnavailable(f"Discord answered {status} with an unexpected body", status)
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
            expires_in=int(body.get("expires_in") or 604800),
            scopes=tuple(str(scope).split()),
            id_token=str(body["id_token"]) if body.get("id_token") else None,
        )

    async def exchange_code(
        self, client: ClientCredentials, *, code: str, redirect_uri: str, code_verifier: str
    ) -> TokenSet:
        status, body = await self._post_form(
            "/api/oauth2/token",
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
            "/api/oauth2/token",
            client,
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        return self._token_set(status, body)

    async def revoke(self, client: ClientCredentials, token: str, hint: str | None = None) -> None:
        form = {"token": token}
        if hint:
            form["token_type_hint"] = hint
        status, body = await self._post_form("/api/oauth2/token/revoke", client, form)
        if status != 200:
            raise OAuthRejected(
                status, str(body.get("error") or f"http_{status}"), body.get("error_description")
            )

    async def current_user(self, access_token: str) -> dict[str, Any]:
        try:
            async with self._session.get(
                f"{self._base}/api/v10/users/@me",
                headers={"Authorization": f"Bearer {access_token}", "User-Agent": USER_AGENT},
                timeout=self._timeout,
            ) as resp:
                status = resp.status
                raw = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise OAuthUnavailable(f"could not reach Discord ({type(exc).__name__})") from exc
        if status != 200:
            raise OAuthUnavailable(f"Discord answered {status} to /users/@me", status)
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise OAuthUnavailable("Discord answered /users/@me with an unexpected body")
        return body
