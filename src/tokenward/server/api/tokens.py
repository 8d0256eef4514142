"""``POST /oauth/token``: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) for API clients.

Credentials come form-encoded (``client_id`` / ``client_secret``) or as HTTP Basic (§2.3.1), not
both. Errors use tokenward's envelope: ``INVALID_CLIENT`` (401) for unknown or wrong credentials,
``UNSUPPORTED_GRANT_TYPE`` (400), ``INVALID_REQUEST`` (400) for a body that is not form-encoded
or repeats a parameter, ``VALIDATION_ERROR`` (400) naming a missing parameter or an unknown
scope, ``INVALID_SCOPE`` (400) for a ``scope`` beyond the client's, ``RATE_LIMITED`` (429, with
``retry_after`` and ``Retry-After``) after repeated failures for a client id from one address or
from one address for any client id (see :class:`~tokenward.server.api.auth.FailedAttempts`).
"""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tokenward.errors import TokenwardError, ValidationError
from tokenward.scopes import format_scopes
from tokenward.server.api.auth import ApiAuth, ApiAuthError, basic_credentials
from tokenward.server.api.errors import error_responses
from tokenward.server.api.models import TokenRequest, TokenResponse

log = logging.getLogger("tokenward.auth")

router = APIRouter(tags=["authentication"])

MAX_FORM_BYTES: Final = 8 * 1024
FORM_TYPE: Final = "application/x-www-form-urlencoded"


def _invalid_request(message: str, **details: str) -> TokenwardError:
    return TokenwardError(message, code="INVALID_REQUEST", status=400, details=dict(details))


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise _invalid_request(
            "the form body cannot be parsed (UTF-8, at most 32 fields)"
        ) from None
    repeated = {name: "given more than once" for name, values in parsed.items() if len(values) > 1}
    if repeated:
        raise _invalid_request(
            f"parameters may appear only once: {', '.join(sorted(repeated))}", **repeated
        )
    return {name: values[0] for name, values in parsed.items()}


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    summary="Get an API token (client credentials)",
    responses=error_responses(400, 401, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_TYPE: {"schema": TokenRequest.model_json_schema()}},
        },
        # Credentials in the form, or as HTTP Basic (RFC 6749 §2.3.1).
        "security": [{}, {"ClientCredentialsBasic": []}],
    },
)
async def issue_token(request: Request) -> JSONResponse:
    """Exchange an API client's id and secret for a short-lived bearer token."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        shown = media_type or "none"
        raise _invalid_request(
            f"send the parameters form-encoded (Content-Type: {FORM_TYPE}), as OAuth 2.0 "
            f"requires; got Content-Type {shown}",
            content_type=shown,
        )
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise _invalid_request(f"the form body is larger than {MAX_FORM_BYTES} bytes")
    form = _form(body)

    grant_type = form.get("grant_type")
    if not grant_type:
        raise ValidationError(
            "grant_type is required (use client_credentials)",
            fields={"grant_type": "field required; use client_credentials"},
        )
    if grant_type != "client_credentials":
        raise TokenwardError(
            f"unsupported grant_type {grant_type[:40]!r}; only client_credentials is supported",
            code="UNSUPPORTED_GRANT_TYPE",
            status=400,
            details={"fields": {"grant_type": "must be client_credentials"}},
        )

    basic_header: dict[str, str] = {}
    authorization = request.headers.get("authorization")
    basic = None
    if authorization:
        try:
            basic = basic_credentials(authorization)
        except ValueError as exc:
            raise _invalid_request(f"the Basic Authorization header is malformed ({exc})") from None
    if basic is not None:
        if "client_id" in form or "client_secret" in form:
            raise _invalid_request(
                "send client credentials either as HTTP Basic or in the form, not both"
            )
        client_id, client_secret = basic
        basic_header = {"WWW-Authenticate": 'Basic realm="tokenward"'}
    else:
        missing = {
            name: "field required (or send HTTP Basic credentials)"
            for name in ("client_id", "client_secret")
            if not form.get(name)
        }
        if missing:
            raise ValidationError(f"missing {' and '.join(missing)}", fields=missing)
        client_id, client_secret = form["client_id"], form["client_secret"]

    auth: ApiAuth = request.app.state.api_auth
    source = auth.addresses.resolve(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
    )
    try:
        issued = await auth.issue(
            client_id, client_secret, source=source, scope=form.get("scope") or None
        )
    except ApiAuthError as exc:
        exc.headers.update(basic_header)
        log.info("API token refused: invalid client credentials")
        raise
    log.info("API token issued to client %s", client_id)
    return JSONResponse(
        TokenResponse(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            scope=format_scopes(issued.scopes),
        ).model_dump(),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
