"""Discord's OAuth2 server, emulated: authorize (with a consent page), token, revoke, the JWKS and
the OIDC discovery document.

Facts come from ``discord-api.md`` §1 and §4. Where Discord's behaviour is unverified the choice
made here is written down in ``sandbox/README.md`` ("OAuth2").

Errors on the token and revoke endpoints use RFC 6749's shape, ``{"error", "error_description"}``,
with HTTP 400 (401 for ``invalid_client``). Authorize errors redirect back to the client with
``error``/``error_description``/``state``, except when the client or the redirect URI cannot be
trusted (unknown ``client_id``, unregistered ``redirect_uri``): then an HTML error page is shown
and nothing redirects (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tokenward.sandbox import pages
from tokenward.sandbox.fixtures import USERS, user_by_id
from tokenward.sandbox.state import (
    AccessToken,
    Application,
    AuthCode,
    Grant,
    RefreshToken,
    SandboxState,
    new_token,
)

# Scopes an application in the sandbox may be granted. Discord's partner-only scopes (marked *
# in the reference) are refused with ``invalid_scope`` as for an unapproved application; ``bot``
# and ``webhook.incoming`` are refused too because the sandbox does not emulate their extra
# token-response fields; ``applications.commands.update`` is client-credentials only.
GRANTABLE_SCOPES: frozenset[str] = frozenset(pages.SCOPE_MEANINGS)

SESSION_COOKIE = "tokenward_sandbox_session"

# Authorize parameters carried through the consent form.
_CARRIED = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "prompt",
    "code_challenge",
    "code_challenge_method",
    "nonce",
)

VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE_RE = re.compile(r"[A-Za-z0-9_-]{43}")

ACCESS_DENIED = "The resource owner or authorization server denied the request"
INVALID_SCOPE = "The requested scope is invalid, unknown, or malformed."
INVALID_CODE = 'Invalid "code" in request.'
INVALID_REFRESH_TOKEN = 'Invalid "refresh_token" in request'

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# -- errors ------------------------------------------------------------------------------------


class OAuthError(Exception):
    """An RFC 6749 error answer of the token or revoke endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        headers = dict(_NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="discord"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


class _PageError(Exception):
    def __init__(self, title: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status

    def response(self) -> HTMLResponse:
        return HTMLResponse(
            pages.error_page(self.title, self.message), status_code=self.status, headers=_NO_STORE
        )


class _RedirectError(Exception):
    def __init__(self, redirect_uri: str, error: str, description: str, state: str | None) -> None:
        super().__init__(f"{error}: {description}")
        self.redirect_uri = redirect_uri
        self.error = error
        self.description = description
        self.state = state

    def response(self) -> Response:
        return _redirect(
            self.redirect_uri,
            {"error": self.error, "error_description": self.description, "state": self.state},
        )


def _redirect(uri: str, params: Mapping[str, str | None]) -> RedirectResponse:
    """``uri`` with ``params`` appended to whatever query it already has."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    location = urlunsplit(parts._replace(query=urlencode(query)))
    return RedirectResponse(location, status_code=302, headers=_NO_STORE)


# -- PKCE (RFC 7636, S256 only) ----------------------------------------------------------------


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_s256_challenge(value: str) -> bool:
    """True for base64url (no padding) of exactly 32 bytes, i.e. a SHA-256 digest."""
    if not _CHALLENGE_RE.fullmatch(value):
        return False
    try:
        raw = base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 32 and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == value


# -- authorize ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizeRequest:
    application: Application
    redirect_uri: str  # the one to send the browser back to
    given_redirect_uri: str | None  # as sent; the token request must repeat it
    scopes: tuple[str, ...]
    state: str | None
    prompt: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    carried: dict[str, str]


def parse_scopes(raw: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for scope in raw.split():
        seen.setdefault(scope, None)
    return tuple(seen)


def validate_authorize(state: SandboxState, params: Mapping[str, str]) -> AuthorizeRequest:
    """Check an authorize request in Discord's order; raises ``_PageError``/``_RedirectError``."""
    client_id = params.get("client_id", "")
    application = state.applications.get(client_id) if client_id else None
    if application is None:
        raise _PageError(
            "Unknown application",
            "The client_id is missing or names no application registered in this sandbox "
            "(GET /_sandbox/applications lists them).",
        )
    given = params.get("redirect_uri")
    if given is None or given == "":
        if not application.redirect_uris:
            raise _PageError(
                "Invalid OAuth2 redirect_uri",
                f"{application.name} has no registered redirect URI; register one with "
                "PATCH /_sandbox/applications/{client_id}.",
            )
        given = None
        redirect_uri = application.redirect_uris[0]
    elif given not in application.redirect_uris:
        raise _PageError(
            "Invalid OAuth2 redirect_uri",
            "The redirect_uri does not exactly match any redirect URI registered for "
            f"{application.name}.",
        )
    else:
        redirect_uri = given
    client_state = params.get("state")

    def fail(error: str, description: str) -> _RedirectError:
        return _RedirectError(redirect_uri, error, description, client_state)

    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", 'Unsupported "response_type"')
    scopes = parse_scopes(params.get("scope", ""))
    if not scopes or any(s not in GRANTABLE_SCOPES for s in scopes):
        raise fail("invalid_scope", INVALID_SCOPE)
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if challenge is not None or method is not None:
        if method != "S256":
            raise fail("invalid_request", 'Unsupported "code_challenge_method"')
        if challenge is None or not _is_s256_challenge(challenge):
            raise fail("invalid_request", 'Invalid "code_challenge"')
    carried = {k: params[k] for k in _CARRIED if params.get(k)}
    return AuthorizeRequest(
        application=application,
        redirect_uri=redirect_uri,
        given_redirect_uri=given,
        scopes=scopes,
        state=client_state,
        prompt=params.get("prompt") or None,
        code_challenge=challenge,
        code_challenge_method=method,
        nonce=params.get("nonce") or None,
        carried=carried,
    )


def issue_code(state: SandboxState, request: AuthorizeRequest, user_id: str) -> str:
    code = new_token(24)
    state.codes[code] = AuthCode(
        code=code,
        client_id=request.application.client_id,
        user_id=user_id,
        scopes=request.scopes,
        redirect_uri=request.given_redirect_uri,
        code_challenge=request.code_challenge,
        code_challenge_method=request.code_challenge_method,
        nonce=request.nonce,
        expires_at=state.clock.time() + state.settings.code_lifetime,
    )
    return code


def _session_user(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and user_by_id(value) is not None else None


def _already_approved(state: SandboxState, user_id: str, request: AuthorizeRequest) -> bool:
    approved = state.approvals.get((user_id, request.application.client_id), frozenset())
    return set(request.scopes) <= approved


# -- tokens ------------------------------------------------------------------------------------


def _grant_for(state: SandboxState, client_id: str, user_id: str, scopes: tuple[str, ...]) -> Grant:
    """The live user↔application grant, created on first use; scopes accumulate."""
    for grant in state.grants.values():
        if not grant.revoked and grant.client_id == client_id and grant.user_id == user_id:
            grant.scopes = tuple(dict.fromkeys((*grant.scopes, *scopes)))
            return grant
    grant = Grant(id=new_token(12), client_id=client_id, user_id=user_id, scopes=scopes)
    state.grants[grant.id] = grant
    return grant


def issue_tokens(
    state: SandboxState, grant: Grant, scopes: tuple[str, ...], nonce: str | None = None
) -> dict[str, Any]:
    """A fresh access + refresh token pair on ``grant`` and the token response body."""
    now = state.clock.time()
    lifetime = state.settings.token_lifetime
    access = AccessToken(
        value=new_token(24),
        grant_id=grant.id,
        client_id=grant.client_id,
        user_id=grant.user_id,
        scopes=scopes,
        issued_at=now,
        expires_at=now + lifetime,
    )
    refresh = RefreshToken(
        value=new_token(24),
        grant_id=grant.id,
        client_id=grant.client_id,
        user_id=grant.user_id,
        scopes=scopes,
        issued_at=now,
    )
    state.access_tokens[access.value] = access
    state.refresh_tokens[refresh.value] = refresh
    body: dict[str, Any] = {
        "access_token": access.value,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "refresh_token": refresh.value,
        "scope": " ".join(scopes),
    }
    if "openid" in scopes:
        claims: dict[str, Any] = {
            "iss": state.settings.issuer,
            "sub": grant.user_id,
            "aud": grant.client_id,
            "iat": int(now),
            "exp": int(now) + lifetime,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        body["id_token"] = state.signing_key.sign(claims)
    return body


def revoke_authorization(state: SandboxState, user_id: str, client_id: str) -> None:
    """Kill every access token, refresh token and pending code of a user↔application pair."""
    for grant in state.grants.values():
        if grant.user_id == user_id and grant.client_id == client_id:
            grant.revoked = True
    tokens: list[AccessToken | RefreshToken] = [
        *state.access_tokens.values(),
        *state.refresh_tokens.values(),
    ]
    for token in tokens:
        if token.user_id == user_id and token.client_id == client_id:
            token.revoked = True
    for code in state.codes.values():
        if code.user_id == user_id and code.client_id == client_id:
            code.used = True
    state.approvals.pop((user_id, client_id), None)


async def _read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded body, or None when the body is anything else (JSON, multipart, …)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return None
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        return None
    form: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in form:
            raise OAuthError("invalid_request", f'Duplicate "{key}" in request')
        form[key] = value
    return form


def _authenticate_client(
    state: SandboxState, request: Request, form: Mapping[str, str]
) -> Application:
    """HTTP Basic (``client_id:client_secret``) or ``client_id`` + ``client_secret`` fields."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "Client authentication must use HTTP Basic", 401)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise OAuthError("invalid_client", "Malformed HTTP Basic credentials", 401) from exc
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed HTTP Basic credentials", 401)
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if form.get("client_id") not in (None, client_id):
            raise OAuthError("invalid_client", "client_id differs between Basic and form", 401)
    else:
        client_id = form.get("client_id", "")
        secret = form.get("client_secret", "")
        if not client_id or not secret:
            raise OAuthError("invalid_client", "Missing client credentials", 401)
    application = state.applications.get(client_id)
    if application is None or not secrets.compare_digest(
        application.client_secret.encode(), secret.encode()
    ):
        raise OAuthError("invalid_client", "Invalid client credentials", 401)
    return application


def _exchange_code(
    state: SandboxState, application: Application, form: Mapping[str, str]
) -> dict[str, Any]:
    value = form.get("code")
    if not value:
        raise OAuthError("invalid_request", 'Missing "code"')
    code = state.codes.get(value)
    if (
        code is None
        or code.used
        or code.client_id != application.client_id
        or code.expires_at <= state.clock.time()
    ):
        raise OAuthError("invalid_grant", INVALID_CODE)
    redirect_uri = form.get("redirect_uri")
    expected = code.redirect_uri
    if expected is None and redirect_uri is not None:
        # The authorize request omitted it, so Discord used the first registered URI.
        expected = application.redirect_uris[0] if application.redirect_uris else None
    if expected is not None and redirect_uri != expected:
        raise OAuthError("invalid_grant", INVALID_CODE)
    if code.code_challenge is not None:
        verifier = form.get("code_verifier")
        if not verifier:
            raise OAuthError("invalid_request", 'Missing "code_verifier"')
        if not VERIFIER_RE.fullmatch(verifier):
            raise OAuthError("invalid_request", 'Invalid "code_verifier"')
        if not secrets.compare_digest(s256(verifier), code.code_challenge):
            code.used = True  # a wrong verifier burns the code: no guessing
            raise OAuthError("invalid_grant", 'Invalid "code_verifier"')
    code.used = True
    grant = _grant_for(state, code.client_id, code.user_id, code.scopes)
    body = issue_tokens(state, grant, code.scopes, code.nonce)
    state.stats.authorization_code_grants += 1
    return body


def _refresh(
    state: SandboxState, application: Application, form: Mapping[str, str]
) -> dict[str, Any]:
    value = form.get("refresh_token")
    if not value:
        raise OAuthError("invalid_request", 'Missing "refresh_token"')
    token = state.refresh_tokens.get(value)
    if (
        token is None
        or token.used
        or token.revoked
        or not secrets.compare_digest(token.client_id, application.client_id)
    ):
        raise OAuthError("invalid_grant", INVALID_REFRESH_TOKEN)
    grant = state.grants.get(token.grant_id)
    if grant is None or grant.revoked:
        raise OAuthError("invalid_grant", INVALID_REFRESH_TOKEN)
    token.used = True
    body = issue_tokens(state, grant, token.scopes)
    state.stats.refresh_token_grants += 1
    return body


# -- routes ------------------------------------------------------------------------------------


def routes(state: SandboxState) -> list[BaseRoute]:
    async def authorize_get(request: Request) -> Response:
        try:
            auth = validate_authorize(state, dict(request.query_params))
        except (_PageError, _RedirectError) as exc:
            return exc.response()
        user_id = _session_user(request)
        if auth.prompt == "none" and user_id and _already_approved(state, user_id, auth):
            code = issue_code(state, auth, user_id)
            return _redirect(auth.redirect_uri, {"code": code, "state": auth.state})
        page = pages.consent_page(
            application_name=auth.application.name,
            scopes=auth.scopes,
            users=USERS,
            selected_user_id=user_id,
            action=request.url.path,
            hidden=auth.carried,
        )
        return HTMLResponse(page, headers={**_NO_STORE, "X-Frame-Options": "DENY"})

    async def authorize_post(request: Request) -> Response:
        async with request.form() as form:
            fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
        try:
            auth = validate_authorize(state, {k: fields[k] for k in _CARRIED if k in fields})
        except (_PageError, _RedirectError) as exc:
            return exc.response()
        action = fields.get("action")
        if action == "cancel":
            return _RedirectError(
                auth.redirect_uri, "access_denied", ACCESS_DENIED, auth.state
            ).response()
        if action != "authorize":
            return _PageError(
                "Bad consent form", 'The form must send action="authorize" or action="cancel".'
            ).response()
        user = user_by_id(fields.get("user_id", ""))
        if user is None:
            return _PageError(
                "Bad consent form", "Pick one of the sandbox users (user_id is unknown)."
            ).response()
        key = (user.id, auth.application.client_id)
        state.approvals[key] = state.approvals.get(key, frozenset()) | set(auth.scopes)
        code = issue_code(state, auth, user.id)
        response = _redirect(auth.redirect_uri, {"code": code, "state": auth.state})
        response.set_cookie(SESSION_COOKIE, user.id, httponly=True, samesite="lax", path="/")
        return response

    async def token(request: Request) -> Response:
        try:
            form = await _read_form(request)
            if form is None:
                raise OAuthError(
                    "unsupported_grant_type",
                    "The body must be application/x-www-form-urlencoded",
                )
            grant_type = form.get("grant_type")
            if grant_type not in ("authorization_code", "refresh_token"):
                raise OAuthError("unsupported_grant_type", 'Unsupported "grant_type"')
            application = _authenticate_client(state, request, form)
            if grant_type == "authorization_code":
                body = _exchange_code(state, application, form)
            else:
                body = _refresh(state, application, form)
        except OAuthError as exc:
            state.stats.token_errors[exc.error] += 1
            return exc.response()
        return JSONResponse(body, headers=_NO_STORE)

    async def revoke(request: Request) -> Response:
        try:
            # Anything but a urlencoded body reads as an empty form (so: no token, no fields).
            form = await _read_form(request) or {}
            application = _authenticate_client(state, request, form)
            value = form.get("token")
            if not value:
                raise OAuthError("invalid_request", 'Missing "token"')
        except OAuthError as exc:
            state.stats.token_errors[exc.error] += 1
            return exc.response()
        found: AccessToken | RefreshToken | None = state.access_tokens.get(value)
        if found is None:
            found = state.refresh_tokens.get(value)
        # RFC 7009 §2.2: an unknown token (or one of another client) gets a plain 200.
        if found is not None and found.client_id == application.client_id:
            grant = state.grants.get(found.grant_id)
            had_grant = grant is not None and not grant.revoked
            revoke_authorization(state, found.user_id, found.client_id)
            state.stats.revocations += 1
            # Discord tells the application's Webhook Events URL, after answering.
            from tokenward.sandbox.outgoing import in_background, send_deauthorized

            in_background(send_deauthorized(state, application, found.user_id, had_grant))
        return JSONResponse({}, headers=_NO_STORE)

    async def keys(request: Request) -> Response:
        return JSONResponse(state.signing_key.jwks())

    async def discovery(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": state.settings.issuer,
                "authorization_endpoint": f"{base}/api/oauth2/authorize",
                "token_endpoint": f"{base}/api/oauth2/token",
                "revocation_endpoint": f"{base}/api/oauth2/token/revoke",
                "userinfo_endpoint": f"{base}/api/oauth2/userinfo",
                "jwks_uri": f"{base}/api/oauth2/keys",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": sorted(GRANTABLE_SCOPES),
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce"],
            }
        )

    result: list[BaseRoute] = []
    for path in ("/oauth2/authorize", "/api/oauth2/authorize", "/api/v10/oauth2/authorize"):
        result.append(Route(path, authorize_get, methods=["GET"]))
        result.append(Route(path, authorize_post, methods=["POST"]))
    for prefix in ("/api", "/api/v10"):
        result.append(Route(f"{prefix}/oauth2/token", token, methods=["POST"]))
        result.append(Route(f"{prefix}/oauth2/token/revoke", revoke, methods=["POST"]))
    for path in ("/oauth2/keys", "/api/oauth2/keys", "/api/v10/oauth2/keys"):
        result.append(Route(path, keys, methods=["GET"]))
    result.append(Route("/.well-known/openid-configuration", discovery, methods=["GET"]))
    return result
