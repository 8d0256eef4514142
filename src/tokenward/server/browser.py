"""The pages a person's browser visits during authorization (HTML, not the API's envelope).

``GET /connect/{id}`` shows what the link is for (the application, the identifier being connected,
the scopes) and a button; nothing goes to Discord until it is clicked. The button is a POST form
with a token bound to the request and to this browser (double submit: an HMAC over the request id
and a nonce that is also in a ``SameSite=Strict`` cookie, so another site cannot submit it for
the person). ``POST /connect/{id}`` checks it, binds the flow to the browser with the
``tw_link_<id>`` cookie (HttpOnly, SameSite=Lax, Secure under an https ``PUBLIC_URL``, path = the
callback) and sends the browser to Discord. The callback then requires that cookie and redirects
to ``…/callback/result/{id}``, which shows the stored outcome (a reload shows it again).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tokenward.clock import utc_datetime
from tokenward.errors import ConflictError, NotFoundError
from tokenward.oauth.service import CallbackOutcome, LinkDescription
from tokenward.server import pages
from tokenward.server.container import Container
from tokenward.vault.crypto import DerivedKeys

CSRF_COOKIE: Final = "tw_connect_csrf"
CSRF_INFO: Final = b"tokenward connect-page form token v1"
MAX_FORM_BYTES: Final = 4096

# Pages carry no script, style sheet or image from anywhere: the inline style is all there is.
PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ConnectFormTokens:
    """Form tokens for the ``/connect`` page: ``<kid>.<nonce>.<mac>``, where the MAC (HMAC-SHA256
    with a key derived from the vault's encryption keys, shared by every replica) covers the
    request id and the nonce, and the nonce is also in the browser's ``tw_connect_csrf`` cookie.
    """

    def __init__(self, container: Container) -> None:
        self._container = container
        self._keys: DerivedKeys | None = None

    @property
    def keys(self) -> DerivedKeys:
        if self._keys is None:
            self._keys = DerivedKeys(
                self._container.settings.encryption_keys,
                self._container.vault.keyring,
                info=CSRF_INFO,
                purpose="connect-page form token",
            )
        return self._keys

    @staticmethod
    def _mac(key: bytes, auth_request_id: str, nonce: str) -> str:
        message = f"{auth_request_id}.{nonce}".encode()
        return _b64(hmac.new(key, message, hashlib.sha256).digest())

    def issue(self, auth_request_id: str) -> tuple[str, str]:
        """``(form_token, cookie_nonce)`` for one page view."""
        kid, key = self.keys.active()
        nonce = secrets.token_urlsafe(24)
        return f"{kid}.{nonce}.{self._mac(key, auth_request_id, nonce)}", nonce

    def check(self, auth_request_id: str, token: str, cookie_nonce: str | None) -> bool:
        kid, _, rest = token.partition(".")
        nonce, _, mac = rest.partition(".")
        if not (kid and nonce and mac and cookie_nonce):
            return False
        key = self.keys.get(kid)
        if key is None:
            return False
        expected = self._mac(key, auth_request_id, nonce)
        return hmac.compare_digest(mac, expected) and hmac.compare_digest(nonce, cookie_nonce)


def _outcome_page(outcome: CallbackOutcome) -> Response:
    if outcome.redirect_to:
        return RedirectResponse(
            outcome.redirect_to, status_code=outcome.status_code, headers=PAGE_HEADERS
        )
    if outcome.ok:
        html = pages.success_page(
            outcome.connection_name or "", outcome.username, outcome.pending_verification
        )
        return HTMLResponse(html, status_code=200, headers=PAGE_HEADERS)
    html = pages.error_page(outcome.title, outcome.message, outcome.action)
    return HTMLResponse(html, status_code=outcome.status_code, headers=PAGE_HEADERS)


def _link_invalid() -> HTMLResponse:
    html = pages.error_page(
        "This link cannot be used",
        "The authorization link is unknown, has expired, or was already used.",
        "Ask the application for a new authorization link.",
    )
    return HTMLResponse(html, status_code=404, headers=PAGE_HEADERS)


def browser_routes(container: Container) -> APIRouter:
    """The ``/connect`` page, its button, the OAuth callback and the result page."""
    router = APIRouter(include_in_schema=False)
    tokens = ConnectFormTokens(container)
    secure = container.settings.public_base.lower().startswith("https://")

    def form_path(auth_request_id: str) -> str:
        return urlsplit(container.oauth.link_url(auth_request_id)).path

    def connect_page(
        description: LinkDescription, status_code: int = 200, notice: str | None = None
    ) -> HTMLResponse:
        rid = description.auth_request_id
        token, nonce = tokens.issue(rid)
        html = pages.connect_page(
            connection_name=description.connection_name,
            client_id=description.client_id,
            identifier=description.identifier,
            scopes=description.scopes,
            expires_at_text=utc_datetime(description.expires_at).strftime("%Y-%m-%d %H:%M UTC"),
            relink=description.relink,
            action_url=container.oauth.link_url(rid),
            csrf_token=token,
            problem=description.problem,
            notice=notice,
        )
        response = HTMLResponse(
            html, status_code=409 if description.problem else status_code, headers=PAGE_HEADERS
        )
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            max_age=max(60, int(description.expires_at - container.clock.time())),
            path=form_path(rid),
            secure=secure,
            httponly=True,
            samesite="strict",
        )
        return response

    @router.get("/connect/{auth_request_id}")
    async def connect(auth_request_id: str) -> Response:
        try:
            description = await container.oauth.describe(auth_request_id)
        except NotFoundError:
            return _link_invalid()
        return connect_page(description)

    @router.post("/connect/{auth_request_id}")
    async def connect_continue(auth_request_id: str, request: Request) -> Response:
        try:
            description = await container.oauth.describe(auth_request_id)
        except NotFoundError:
            return _link_invalid()
        token = ""
        if int(request.headers.get("content-length") or 0) <= MAX_FORM_BYTES:
            async with request.form(max_files=0, max_fields=8) as form:
                value = form.get("csrf_token")
                token = value if isinstance(value, str) else ""
        if not tokens.check(auth_request_id, token, request.cookies.get(CSRF_COOKIE)):
            return connect_page(
                description,
                status_code=403,
                notice="This page expired or was submitted from somewhere else, so nothing was "
                "sent to Discord. Check the details below and use the button again.",
            )
        try:
            start = await container.oauth.begin(auth_request_id)
        except NotFoundError:
            return _link_invalid()
        except ConflictError as exc:
            html = pages.error_page("This link cannot be used", exc.message, "")
            return HTMLResponse(html, status_code=409, headers=PAGE_HEADERS)
        response = RedirectResponse(start.authorize_url, status_code=303, headers=PAGE_HEADERS)
        response.set_cookie(
            start.cookie_name,
            start.cookie_value,
            max_age=start.cookie_max_age,
            path=start.cookie_path,
            secure=start.cookie_secure,
            httponly=True,
            samesite="lax",
        )
        response.delete_cookie(CSRF_COOKIE, path=form_path(auth_request_id))
        return response

    @router.get("/sso/v1/oauth/{connection_id}/callback")
    async def callback(connection_id: str, request: Request) -> Response:
        params = dict(request.query_params.items())
        outcome = await container.oauth.complete(connection_id, params, request.cookies)
        return _outcome_page(outcome)

    @router.get("/sso/v1/oauth/{connection_id}/callback/result/{auth_request_id}")
    async def result(connection_id: str, auth_request_id: str, request: Request) -> Response:
        outcome = await container.oauth.result(connection_id, auth_request_id, request.cookies)
        return _outcome_page(outcome)

    return router
