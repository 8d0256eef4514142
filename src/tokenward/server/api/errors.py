"""The error envelope everywhere: ``{"error": {"code", "message", "details"}}``.

:func:`install_error_handlers` maps every way a request can fail onto the envelope:

- :class:`~tokenward.errors.TokenwardError`: its own status, code, message and details;
  a 401 whose code is ``UNAUTHENTICATED`` or ``INVALID_TOKEN`` also carries
  ``WWW-Authenticate: Bearer`` (RFC 6750), a 403 ``INSUFFICIENT_SCOPE`` names the scope there
  too, a 429 carries ``Retry-After`` (from ``details.retry_after``), and an error may add
  headers of its own through a ``headers`` attribute;
- FastAPI's request validation: 400 ``VALIDATION_ERROR`` with ``details.fields`` mapping each bad
  field (a dotted path such as ``scopes.1``; ``body`` for the body as a whole) to the reason:
  missing, wrong type, unknown field, invalid JSON. Input values are never echoed back;
- Starlette's HTTP exceptions (unknown route, wrong method, body too large): their status, with
  ``NOT_FOUND``, ``METHOD_NOT_ALLOWED`` and so on as the code;
- anything else: 500 ``INTERNAL_ERROR``, logged (through the redacting log filter) and never
  described to the client. :class:`~tokenward.server.api.observability.ObservabilityMiddleware`
  guards the same way one layer further out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tokenward.errors import TokenwardError

log = logging.getLogger("tokenward.server")

_BEARER_CODES: Final = frozenset({"UNAUTHENTICATED", "INVALID_TOKEN"})
_HTTP_CODES: Final = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}
_LOCATIONS: Final = frozenset({"body", "query", "path", "header", "cookie"})
_MAX_FIELDS_IN_MESSAGE: Final = 4


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="A stable code, e.g. ACCOUNT_NOT_FOUND.")
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Machine-readable context; validation errors put each bad field and its "
        "reason under `fields`.",
    )


class ErrorEnvelope(BaseModel):
    """Every error response."""

    error: ErrorBody


_STATUS_TEXT: Final = {
    400: "Bad request: the input is invalid (`details.fields` names each bad field).",
    401: "No valid credentials.",
    403: "Not allowed (for API tokens: `INSUFFICIENT_SCOPE` names the scope needed).",
    404: "Not found.",
    409: "Conflict with the current state.",
    429: "Rate limited: wait `details.retry_after` seconds (also in `Retry-After`).",
    500: "Unexpected server error (logged; quote `X-Request-ID`).",
    502: "Discord failed or could not be reached.",
    "default": "Another error status (e.g. one Discord answered), in the same envelope.",
}


def error_responses(*statuses: int | str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the envelope for these statuses."""
    return {
        status: {"model": ErrorEnvelope, "description": _STATUS_TEXT.get(status, "Error.")}
        for status in statuses
    }


def envelope(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    out = {"Cache-Control": "no-store"}
    if headers:
        out.update(headers)
    return JSONResponse(envelope(code, message, details), status_code=status, headers=out)


def error_headers(exc: TokenwardError) -> dict[str, str]:
    """Headers an error's status calls for: ``WWW-Authenticate`` on a bearer 401 and on
    ``INSUFFICIENT_SCOPE`` (RFC 6750 §3.1), ``Retry-After`` (whole seconds) on a 429."""
    headers: dict[str, str] = {}
    if exc.status == 401 and exc.code in _BEARER_CODES:
        headers["WWW-Authenticate"] = 'Bearer realm="tokenward"'
    elif exc.status == 403 and exc.code == "INSUFFICIENT_SCOPE":
        needed = str(exc.details.get("required_scope", ""))
        headers["WWW-Authenticate"] = (
            f'Bearer realm="tokenward", error="insufficient_scope", scope="{needed}"'
        )
    if exc.status == 429:
        retry_after = exc.details.get("retry_after")
        if isinstance(retry_after, int | float) and retry_after >= 0:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return headers


def tokenward_error_response(exc: TokenwardError) -> JSONResponse:
    headers = error_headers(exc)
    extra = getattr(exc, "headers", None)
    if isinstance(extra, Mapping):
        headers.update({str(k): str(v) for k, v in extra.items()})
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)


# -- validation ----------------------------------------------------------------------------------


def _dotted(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        where = str(parts.pop(0))
        if not parts:
            return where
    return ".".join(str(p) for p in parts) or "body"


def _reason(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "json_invalid":
        ctx = error.get("ctx") or {}
        detail = ctx.get("error") if isinstance(ctx, Mapping) else None
        return f"is not valid JSON ({detail})" if detail else "is not valid JSON"
    if kind in {"model_attributes_type", "dict_type", "model_type"}:
        return "must be a JSON object"
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:]


def validation_fields(errors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``{dotted field: reason}``; several reasons for one field are joined with ``; ``."""
    fields: dict[str, str] = {}
    for error in errors:
        loc = error.get("loc") or ()
        kind = str(error.get("type", ""))
        # A JSON syntax error's location is (body, character offset): name the body.
        name = "body" if kind == "json_invalid" else _dotted(loc)
        reason = _reason(error)
        if name in fields and reason not in fields[name]:
            fields[name] = f"{fields[name]}; {reason}"
        else:
            fields.setdefault(name, reason)
    return fields


def validation_message(fields: Mapping[str, str]) -> str:
    items = [f"{name}: {reason}" for name, reason in fields.items()]
    shown = "; ".join(items[:_MAX_FIELDS_IN_MESSAGE])
    more = len(items) - _MAX_FIELDS_IN_MESSAGE
    if more > 0:
        shown += f"; and {more} more"
    return f"invalid request: {shown}" if shown else "invalid request"


# -- handlers ------------------------------------------------------------------------------------


async def _on_tokenward_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TokenwardError)
    return tokenward_error_response(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = validation_fields(list(exc.errors()))
    return error_response(400, "VALIDATION_ERROR", validation_message(fields), {"fields": fields})


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, f"HTTP_{status}")
    details: dict[str, Any] = {}
    if status == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
        details = {"method": request.method, "path": request.url.path}
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        allowed = _allowed_methods(request, exc.headers or {})
        details = {"method": request.method, "allowed": allowed}
        headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        return error_response(status, code, message, details, headers)
    else:
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else f"HTTP {status}"
    return error_response(status, code, message, details, exc.headers)


def _walk_routes(routes: Iterable[Any]) -> Iterator[Any]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router
        if inner is not None:
            yield from _walk_routes(inner.routes)
        else:
            yield route


def _allowed_methods(request: Request, headers: Mapping[str, str]) -> list[str]:
    """Every method served on the matched path (one route per method, so Starlette's own
    ``Allow`` names only the first)."""
    allowed: set[str] = set()
    template = getattr(request.scope.get("route"), "path_format", None)
    if template is not None:
        for route in _walk_routes(request.app.routes):
            if getattr(route, "path_format", None) == template:
                allowed.update(getattr(route, "methods", None) or ())
    allow = headers.get("Allow") or headers.get("allow")
    if allow:
        allowed.update(m.strip() for m in allow.split(","))
    return sorted(allowed)


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unhandled %s while serving %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return error_response(
        500,
        "INTERNAL_ERROR",
        "The server hit an unexpected error. It has been logged; quote the X-Request-ID header "
        "when reporting it.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TokenwardError, _on_tokenward_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
