"""The sandbox's control API under ``/_sandbox/``, for tests, benches and people.

Applications (``GET|POST /_sandbox/applications``, ``PATCH /_sandbox/applications/{client_id}``),
``GET /_sandbox/stats``, ``POST /_sandbox/reset``, fault rules (``GET|POST|DELETE
/_sandbox/faults``; the REST middleware applies them), ``POST /_sandbox/tokens/expire`` and
``GET /_sandbox/tokens``. Bad input gets HTTP 400 with tokenward's error envelope, naming each bad
field: ``{"error": {"code": "VALIDATION_ERROR", "message", "details": {"fields": {...}}}}``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tokenward.errors import NotFoundError, TokenwardError, ValidationError
from tokenward.sandbox import pages
from tokenward.sandbox.state import Application, FaultRule, SandboxState

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
MAX_REDIRECT_URIS = 10
MAX_LATENCY_MS = 60_000.0


def _error(exc: TokenwardError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status)


async def _json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return {}
        raise ValidationError(
            "the request body must be a JSON object", fields={"body": "the body is empty"}
        )
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValidationError(
            "the request body is not valid JSON", fields={"body": "not valid JSON"}
        ) from exc
    if not isinstance(data, dict):
        raise ValidationError(
            "the request body must be a JSON object",
            fields={"body": f"expected an object, got {type(data).__name__}"},
        )
    return data


def _reject_unknown(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(unknown)}",
            fields={k: f"unknown field; allowed: {', '.join(sorted(allowed))}" for k in unknown},
        )


def _redirect_uri_problem(uri: str) -> str | None:
    parts = urlsplit(uri)
    if not parts.scheme or not _SCHEME_RE.fullmatch(parts.scheme) or "://" not in uri:
        return "not an absolute URL (scheme://host/path)"
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        return "an http(s) URL needs a host"
    if parts.fragment or uri.endswith("#"):
        return "must not contain a fragment (#...)"
    if any(c.isspace() for c in uri):
        return "must not contain whitespace"
    return None


def _redirect_uris(data: dict[str, Any], *, required: bool) -> list[str] | None:
    if "redirect_uris" not in data:
        if required:
            raise ValidationError(
                "redirect_uris is required",
                fields={"redirect_uris": "required: a list of absolute URLs"},
            )
        return None
    value = data["redirect_uris"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(
            "redirect_uris must be a list of strings",
            fields={"redirect_uris": "expected a list of absolute URL strings"},
        )
    if required and not value:
        raise ValidationError(
            "redirect_uris must name at least one URL",
            fields={"redirect_uris": "empty; give at least one absolute URL"},
        )
    if len(value) > MAX_REDIRECT_URIS:
        raise ValidationError(
            f"at most {MAX_REDIRECT_URIS} redirect URIs",
            fields={"redirect_uris": f"{len(value)} given; at most {MAX_REDIRECT_URIS}"},
        )
    problems = {
        f"redirect_uris[{i}]": problem
        for i, uri in enumerate(value)
        if (problem := _redirect_uri_problem(uri)) is not None
    }
    if problems:
        raise ValidationError("invalid redirect URI(s)", fields=problems)
    return list(dict.fromkeys(value))


def _name(data: dict[str, Any]) -> str | None:
    name = data.get("name")
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationError(
            "name must be a non-empty string", fields={"name": "a string of 1-100 characters"}
        )
    return name.strip()


def _number(data: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValidationError(
            f"{key} must be a number from {low:g} to {high:g}",
            fields={key: f"expected a number from {low:g} to {high:g}"},
        )
    return float(value)


def _integer(data: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"{key} must be an integer from {low} to {high}",
            fields={key: f"expected an integer from {low} to {high}"},
        )
    return value


MAX_FAULT_STATUSES = 16


def _statuses(data: dict[str, Any]) -> tuple[int, ...]:
    value = data.get("statuses")
    if value is None:
        return ()
    reason = f"expected a list of 1-{MAX_FAULT_STATUSES} integers from 100 to 599"
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_FAULT_STATUSES
        or not all(
            isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599
            for item in value
        )
    ):
        raise ValidationError(f"statuses: {reason}", fields={"statuses": reason})
    return tuple(value)


def parse_fault(data: dict[str, Any]) -> FaultRule:
    """A :class:`FaultRule` from the body of ``POST /_sandbox/faults``."""
    _reject_unknown(
        data,
        {
            "route",
            "status",
            "statuses",
            "probability",
            "latency_ms",
            "drop_connection",
            "count",
            "method",
            "after_handler",
        },
    )
    route = data.get("route")
    if not isinstance(route, str) or not (route == "*" or route.startswith("/")):
        raise ValidationError(
            "route must be '*' or a path starting with '/'",
            fields={"route": "required: '*' or a path prefix such as /api/v10/users/@me"},
        )
    status = _integer(data, "status", 100, 599)
    statuses = _statuses(data)
    if status is not None and statuses:
        raise ValidationError(
            "give status or statuses, not both",
            fields={"statuses": "not allowed together with status"},
        )
    probability = _number(data, "probability", 0.0, 1.0)
    latency_ms = _number(data, "latency_ms", 0.0, MAX_LATENCY_MS)
    count = _integer(data, "count", 1, 1_000_000)
    drop = data.get("drop_connection", False)
    if not isinstance(drop, bool):
        raise ValidationError(
            "drop_connection must be true or false",
            fields={"drop_connection": "expected a boolean"},
        )
    method = data.get("method")
    if method is not None and method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise ValidationError(
            "method must be an HTTP method",
            fields={"method": "one of GET, POST, PUT, PATCH, DELETE (or omit for any)"},
        )
    after_handler = data.get("after_handler", False)
    if not isinstance(after_handler, bool):
        raise ValidationError(
            "after_handler must be true or false", fields={"after_handler": "expected a boolean"}
        )
    if after_handler and status is None and not statuses and not drop:
        raise ValidationError(
            "after_handler needs status, statuses or drop_connection",
            fields={"after_handler": "give drop_connection: true, status or statuses with it"},
        )
    if status is None and not statuses and not latency_ms and not drop:
        raise ValidationError(
            "a fault needs status, statuses, latency_ms or drop_connection",
            fields={"status": "give status, statuses, latency_ms > 0 or drop_connection: true"},
        )
    return FaultRule(
        route=route,
        status=status,
        statuses=statuses,
        probability=1.0 if probability is None else probability,
        latency_ms=latency_ms or 0.0,
        drop_connection=drop,
        remaining=count,
        method=method,
        after_handler=after_handler,
    )


ENDPOINT_FIELDS = (
    "interactions_endpoint_url",
    "event_webhooks_url",
    "event_webhooks_status",
    "event_webhooks_types",
    "bad_signature_every",
)


def parse_endpoint_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The endpoint fields of ``PATCH /_sandbox/applications/{client_id}``, checked (URLs must
    be loopback; ``null`` or ``""`` clears a URL). No request is sent to the URLs."""
    from tokenward.sandbox.outgoing import EVENT_TYPES, loopback_url_problem

    result: dict[str, Any] = {}
    for key in ("interactions_endpoint_url", "event_webhooks_url"):
        if key not in data:
            continue
        value = data[key]
        if value is None or value == "":
            result[key] = None
            continue
        problem = loopback_url_problem(value) if isinstance(value, str) else "expected a string"
        if problem is not None:
            raise ValidationError(f"{key}: {problem}", fields={key: problem})
        result[key] = value
    if "event_webhooks_status" in data:
        status = data["event_webhooks_status"]
        if status not in (1, 2) or isinstance(status, bool):
            raise ValidationError(
                "event_webhooks_status must be 1 or 2",
                fields={"event_webhooks_status": "1 (disabled) or 2 (enabled)"},
            )
        result["event_webhooks_status"] = status
    if "event_webhooks_types" in data:
        types = data["event_webhooks_types"]
        if types is not None and (
            not isinstance(types, list) or not all(t in EVENT_TYPES for t in types)
        ):
            raise ValidationError(
                "event_webhooks_types must be a list of event types or null",
                fields={
                    "event_webhooks_types": "null (all) or a list of: " + ", ".join(EVENT_TYPES)
                },
            )
        result["event_webhooks_types"] = None if types is None else list(dict.fromkeys(types))
    if "bad_signature_every" in data:
        result["bad_signature_every"] = _integer(data, "bad_signature_every", 0, 1_000_000) or 0
    return result


def apply_endpoint_settings(application: Application, settings: dict[str, Any]) -> None:
    """Store checked endpoint settings; setting an events URL enables events unless the same
    change says ``event_webhooks_status: 1``."""
    if "interactions_endpoint_url" in settings:
        application.interactions_endpoint_url = settings["interactions_endpoint_url"]
    if "event_webhooks_url" in settings:
        application.event_webhooks_url = settings["event_webhooks_url"]
        if settings["event_webhooks_url"] is not None and "event_webhooks_status" not in settings:
            application.event_webhooks_status = 2
    if "event_webhooks_status" in settings:
        application.event_webhooks_status = settings["event_webhooks_status"]
    if "event_webhooks_types" in settings:
        application.event_webhooks_types = settings["event_webhooks_types"]
    if "bad_signature_every" in settings:
        application.bad_signature_every = settings["bad_signature_every"]
        application.deliveries = 0


_SNOWFLAKE = re.compile(r"[0-9]{1,20}")


def _snowflake_field(data: dict[str, Any], key: str, default: str | None) -> str | None:
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not _SNOWFLAKE.fullmatch(value):
        raise ValidationError(
            f"{key} must be a snowflake string", fields={key: "expected a snowflake string"}
        )
    return value


def parse_interaction(state: SandboxState, data: dict[str, Any]) -> dict[str, Any]:
    """Make an interaction as if a user had run a command (``POST /_sandbox/interactions``)."""
    from tokenward.sandbox import fixtures as fx

    _reject_unknown(data, {"application_id", "guild_id", "channel_id", "user_id", "type", "data"})
    application_id = _snowflake_field(data, "application_id", fx.DEFAULT_APPLICATION_ID)
    guild_id = _snowflake_field(data, "guild_id", fx.HUB_ID)
    channel_id = _snowflake_field(data, "channel_id", fx.HUB_GENERAL)
    user_id = _snowflake_field(data, "user_id", fx.ADA_ID)
    kind = _integer(data, "type", 1, 5) or 2
    payload = data.get("data", {"id": fx.GLOBAL_COMMAND_ID, "name": "ping", "type": 1})
    if not isinstance(payload, dict):
        raise ValidationError("data must be an object", fields={"data": "expected an object"})
    world = state.world
    assert application_id is not None
    assert channel_id is not None
    assert user_id is not None
    if application_id not in state.applications:
        raise NotFoundError(
            "no application with this id", details={"application_id": "unknown application"}
        )
    channel = world.channels.get(channel_id)
    if channel is None or (guild_id is not None and channel.get("guild_id") != guild_id):
        raise NotFoundError(
            "no such channel in that guild", details={"channel_id": "unknown channel"}
        )
    if not world.user_exists(user_id):
        raise NotFoundError("no user with this id", details={"user_id": "unknown user"})
    interaction = world.new_interaction(
        application_id, guild_id, channel_id, user_id, kind, payload
    )
    return interaction.public()


def token_details(state: SandboxState) -> dict[str, list[dict[str, Any]]]:
    """Metadata of every code and token (values included: the sandbox's secrets are fake)."""
    now = state.clock.time()

    def grant_live(grant_id: str) -> bool:
        grant = state.grants.get(grant_id)
        return grant is not None and not grant.revoked

    return {
        "access_tokens": [
            {
                "value": t.value,
                "client_id": t.client_id,
                "user_id": t.user_id,
                "grant_id": t.grant_id,
                "scopes": list(t.scopes),
                "issued_at": t.issued_at,
                "expires_at": t.expires_at,
                "expired": t.expires_at <= now,
                "revoked": t.revoked or not grant_live(t.grant_id),
                "valid": state.valid_access_token(t.value) is not None,
            }
            for t in state.access_tokens.values()
        ],
        "refresh_tokens": [
            {
                "value": t.value,
                "client_id": t.client_id,
                "user_id": t.user_id,
                "grant_id": t.grant_id,
                "scopes": list(t.scopes),
                "issued_at": t.issued_at,
                "used": t.used,
                "revoked": t.revoked or not grant_live(t.grant_id),
                "valid": not t.used and not t.revoked and grant_live(t.grant_id),
            }
            for t in state.refresh_tokens.values()
        ],
        "codes": [
            {
                "value": c.code,
                "client_id": c.client_id,
                "user_id": c.user_id,
                "scopes": list(c.scopes),
                "expires_at": c.expires_at,
                "used": c.used,
                "expired": c.expires_at <= now,
                "pkce": c.code_challenge is not None,
            }
            for c in state.codes.values()
        ],
    }


def routes(state: SandboxState) -> list[BaseRoute]:
    async def landing(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        params = dict(request.query_params.items())
        html = pages.landing_page(base, params, state.default_application.client_id)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def list_applications(request: Request) -> Response:
        return JSONResponse([a.public_dict() for a in state.applications.values()])

    async def create_application(request: Request) -> Response:
        try:
            data = await _json_object(request)
            _reject_unknown(data, {"redirect_uris", "name"})
            uris = _redirect_uris(data, required=True)
            name = _name(data)
        except ValidationError as exc:
            return _error(exc)
        application = state.register_application(uris or [], name)
        return JSONResponse(application.public_dict(), status_code=201)

    async def update_application(request: Request) -> Response:
        client_id = request.path_params["client_id"]
        application = state.applications.get(client_id)
        if application is None:
            return _error(
                NotFoundError(
                    "no application with this client_id",
                    details={"client_id": "unknown; GET /_sandbox/applications lists them"},
                )
            )
        try:
            data = await _json_object(request)
            _reject_unknown(data, {"redirect_uris", "name", *ENDPOINT_FIELDS})
            uris = _redirect_uris(data, required=False)
            name = _name(data)
            endpoints = parse_endpoint_settings(data)
        except ValidationError as exc:
            return _error(exc)
        if uris is not None:
            application.redirect_uris = uris
        if name is not None:
            application.name = name
        apply_endpoint_settings(application, endpoints)
        return JSONResponse(application.public_dict())

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats.as_dict())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def list_faults(request: Request) -> Response:
        return JSONResponse({"faults": [f.as_dict() for f in state.faults]})

    async def add_fault(request: Request) -> Response:
        try:
            rule = parse_fault(await _json_object(request))
        except ValidationError as exc:
            return _error(exc)
        state.faults.append(rule)
        return JSONResponse(rule.as_dict(), status_code=201)

    async def delete_faults(request: Request) -> Response:
        route = request.query_params.get("route")
        before = len(state.faults)
        if route is None:
            state.faults.clear()
        else:
            state.faults[:] = [f for f in state.faults if f.route != route]
        return JSONResponse({"deleted": before - len(state.faults)})

    async def expire_tokens(request: Request) -> Response:
        try:
            data = await _json_object(request, optional=True)
            _reject_unknown(data, {"user_id", "client_id"})
            for key in ("user_id", "client_id"):
                if data.get(key) is not None and not isinstance(data[key], str):
                    raise ValidationError(
                        f"{key} must be a string", fields={key: "expected a snowflake string"}
                    )
        except ValidationError as exc:
            return _error(exc)
        count = state.expire_access_tokens(data.get("user_id"), data.get("client_id"))
        return JSONResponse({"expired": count})

    async def list_tokens(request: Request) -> Response:
        return JSONResponse({**state.all_token_values(), "details": token_details(state)})

    async def create_interaction(request: Request) -> Response:
        try:
            data = await _json_object(request, optional=True)
            interaction = parse_interaction(state, data)
        except (ValidationError, NotFoundError) as exc:
            return _error(exc)
        return JSONResponse(interaction, status_code=201)

    async def list_messages(request: Request) -> Response:
        channel_id = request.query_params.get("channel_id")
        world = state.world
        if channel_id is not None and channel_id not in world.messages:
            return _error(
                NotFoundError(
                    "no channel with this id has messages",
                    details={"channel_id": "unknown; GET /_sandbox/fixtures lists channels"},
                )
            )
        channels = [channel_id] if channel_id is not None else list(world.messages)
        items = [
            world.render_message(message)
            for cid in channels
            for message in world.messages[cid].values()
        ]
        items.sort(key=lambda m: int(m["id"]))
        return JSONResponse({"messages": items, "created": world.messages_created})

    return [
        Route("/_sandbox/callback", landing, methods=["GET"]),
        Route("/_sandbox/applications", list_applications, methods=["GET"]),
        Route("/_sandbox/applications", create_application, methods=["POST"]),
        Route("/_sandbox/applications/{client_id}", update_application, methods=["PATCH"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/faults", list_faults, methods=["GET"]),
        Route("/_sandbox/faults", add_fault, methods=["POST"]),
        Route("/_sandbox/faults", delete_faults, methods=["DELETE"]),
        Route("/_sandbox/tokens/expire", expire_tokens, methods=["POST"]),
        Route("/_sandbox/tokens", list_tokens, methods=["GET"]),
        Route("/_sandbox/interactions", create_interaction, methods=["POST"]),
        Route("/_sandbox/messages", list_messages, methods=["GET"]),
    ]
