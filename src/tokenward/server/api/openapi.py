"""The OpenAPI document (``/openapi.json``), made to say what the server really does.

FastAPI's generated document is corrected in one place, :func:`install_openapi`:

- **Validation errors are 400, not 422.** The error handlers answer every validation failure
  with ``400 VALIDATION_ERROR`` in the envelope, so FastAPI's default ``422`` and its
  ``HTTPValidationError`` schema are removed, and ``400`` is declared on every operation that
  takes parameters or a body.
- **Statuses that follow from the structure are added everywhere they apply:** ``401`` and
  ``403`` (``INSUFFICIENT_SCOPE``) on every operation that needs an API token, ``500`` on every
  operation (the last-resort guard answers with the envelope). Statuses that depend on what a
  route does (``404``, ``409``, ``429``, ``502``) are declared on the route itself with
  :func:`~tokenward.server.api.errors.error_responses`; ``tests/api/test_openapi.py`` provokes
  them and checks that each one the server returns is declared.
- **What FastAPI cannot see is described by hand:** ``/proxy/{path}`` (a pure ASGI endpoint in
  front of the router) with its headers, HTTP Basic client authentication at ``/oauth/token``,
  and the bearer token of ``/metrics`` when ``TOKENWARD_METRICS_TOKEN`` is set.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["install_openapi"]

API_TOKEN_SCHEME: Final = "ApiToken"
_ENVELOPE_REF: Final = {"$ref": "#/components/schemas/ErrorEnvelope"}
_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PROXY_METHODS: Final = ("get", "post", "put", "patch", "delete")
_STRUCTURAL: Final = {
    "400": "Bad request: the input is invalid (`details.fields` names each bad field).",
    "401": "No valid credentials.",
    "403": "The API token's scopes do not allow this (`INSUFFICIENT_SCOPE` names the scope).",
    "500": "Unexpected server error (logged; quote `X-Request-ID`).",
}


def _envelope(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ENVELOPE_REF}}}


def _proxy_operation(method: str) -> dict[str, Any]:
    passed_through = (
        "The gateway's own error in the envelope (codes below), or Discord's answer with that "
        "status passed through as it is."
    )
    operation: dict[str, Any] = {
        "tags": ["proxy"],
        "summary": f"{method.upper()} a Discord API route as a connected account",
        "description": "Forwards to Discord's `/{path}` (e.g. `/proxy/api/v10/users/@me` → "
        "`/api/v10/users/@me`) with the account's token, after the path guard, refresh and "
        "rate limiting. The query string is forwarded as it is; so are `Content-Type`, "
        "`Accept`, `Accept-Language`, `If-None-Match`, `If-Modified-Since` and "
        "`X-Audit-Log-Reason`. Discord's status, body and rate-limit headers come back as they "
        "are. Gateway errors: 400 `PATH_REJECTED` / `VALIDATION_ERROR`, 401, 403 "
        "`INSUFFICIENT_SCOPE`, 404 `CONNECTION_NOT_FOUND` / `ACCOUNT_NOT_FOUND`, 409 "
        "`ACCOUNT_NOT_ACTIVE`, 429 `RATE_LIMITED`, 502 `UPSTREAM_UNAVAILABLE`.",
        "operationId": f"proxy_{method}",
        "security": [{API_TOKEN_SCHEME: ["proxy"]}],
        "parameters": [
            {
                "name": "path",
                "in": "path",
                "required": True,
                "description": "The Discord path under `/api`, e.g. `api/v10/users/@me`.",
                "schema": {"type": "string"},
            },
            {
                "name": "connection_name",
                "in": "header",
                "required": False,
                "description": "The connection's name. Required, spelled `connection_name` or "
                "`connection-name`.",
                "schema": {"type": "string"},
            },
            {
                "name": "connection-name",
                "in": "header",
                "required": False,
                "description": "Same as `connection_name` (for clients that drop underscores).",
                "schema": {"type": "string"},
            },
            {
                "name": "identifier",
                "in": "header",
                "required": True,
                "description": "Your application's key for the user.",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {
                "description": "Discord's answer, as it is.",
                "content": {"*/*": {"schema": {}}},
            },
            **{
                status: {
                    "description": passed_through,
                    "content": {"application/json": {"schema": {"anyOf": [_ENVELOPE_REF, {}]}}},
                }
                for status in ("400", "401", "403", "404", "409", "429", "500", "502")
            },
            "default": {
                "description": "Any other status Discord answered, passed through.",
                "content": {"*/*": {"schema": {}}},
            },
        },
    }
    if method in ("post", "put", "patch"):
        operation["requestBody"] = {
            "required": False,
            "description": "Forwarded to Discord as it is (up to 8 MiB).",
            "content": {"*/*": {"schema": {}}},
        }
    return operation


def _needs_api_token(operation: dict[str, Any]) -> bool:
    return any(API_TOKEN_SCHEME in requirement for requirement in operation.get("security", ()))


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters")) or "requestBody" in operation


def _schemas_in_use(document: dict[str, Any]) -> set[str]:
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in used:
                    used.add(name)
                    walk(document["components"]["schemas"].get(name))
            for key, value in node.items():
                if key != "schemas":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in document.items() if k != "components"})
    return used


def build_openapi(app: FastAPI, *, metrics_token: bool) -> dict[str, Any]:
    """The corrected document (see the module docstring)."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    paths: dict[str, Any] = document.setdefault("paths", {})
    paths["/proxy/{path}"] = {method: _proxy_operation(method) for method in _PROXY_METHODS}

    components = document.setdefault("components", {})
    schemes = components.setdefault("securitySchemes", {})
    schemes["ClientCredentialsBasic"] = {
        "type": "http",
        "scheme": "basic",
        "description": "`client_id:client_secret` as HTTP Basic (RFC 6749 §2.3.1), instead of "
        "the form fields.",
    }
    metrics_operation = paths.get("/metrics", {}).get("get")
    if metrics_token and metrics_operation is not None:
        schemes["MetricsToken"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The value of `TOKENWARD_METRICS_TOKEN`.",
        }
        metrics_operation["security"] = [{"MetricsToken": []}]
        metrics_operation.setdefault("responses", {})["401"] = _envelope(
            "Missing or wrong metrics token."
        )

    for path_item in paths.values():
        for method in _METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            if _takes_input(operation):
                responses.setdefault("400", _envelope(_STRUCTURAL["400"]))
            if _needs_api_token(operation):
                responses.setdefault("401", _envelope(_STRUCTURAL["401"]))
                responses.setdefault("403", _envelope(_STRUCTURAL["403"]))
            responses.setdefault("500", _envelope(_STRUCTURAL["500"]))

    schemas = components.get("schemas", {})
    used = _schemas_in_use(document)
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and name not in used:
            del schemas[name]
    return document


def install_openapi(app: FastAPI, *, metrics_token: bool = False) -> None:
    """Serve :func:`build_openapi`'s document (built once, on first request) at
    ``/openapi.json``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, metrics_token=metrics_token)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
