"""The REST dispatcher: every operation of Discord's spec (and the hosted tools' extra route),
under ``/api/v10``, ``/api/v9`` and ``/api``.

Per request, in order: find the route and the operation (``404``/``405`` with Discord's bodies);
authenticate by the operation's ``security`` (``401``, or ``403 50026`` for a Bearer token without
the scope); check path parameters (a non-snowflake id is ``400 50035``), query parameters and the
request body against the spec's schemas (``400 50035`` with Discord's error tree; unparsable JSON
is ``400 50109``); then run the operation's handler (``families/*``), or, for routes outside the
emulated families, answer a deterministic body made from the response schema. Every JSON answer
of a handler is completed against the operation's response schema, so it carries every field
the spec requires.

The sixteen routes of the first tool catalog keep their own handlers in ``api.py`` (their own
parameter checks and error messages) and the buckets they always had.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from tokenward.sandbox import api
from tokenward.sandbox.api import Auth, Caller, authenticate
from tokenward.sandbox.errors import DiscordError, invalid_form, invalid_json, missing_scope
from tokenward.sandbox.openapi import Operation, Spec, load_spec
from tokenward.sandbox.ratelimit import RouteLimit
from tokenward.sandbox.routing import RouteTable
from tokenward.sandbox.schema import ErrorTree
from tokenward.sandbox.state import SandboxState
from tokenward.sandbox.world import World

NOT_FOUND = {"message": "404: Not Found", "code": 0}
METHOD_NOT_ALLOWED = {"message": "405: Method Not Allowed", "code": 0}


@dataclass
class Reply:
    """A handler's answer when it is not the operation's first 2xx status with a JSON body."""

    body: Any = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    state: SandboxState
    request: Request
    op: Operation
    caller: Caller
    path: dict[str, str]
    query: dict[str, Any]
    body: Any
    reason: str | None

    @property
    def world(self) -> World:
        return self.state.world

    @property
    def actor(self) -> str | None:
        """The user acting: the bot's user, the Bearer token's user, or None (no token)."""
        if self.caller.bot is not None:
            return self.caller.bot.bot_user_id
        if self.caller.token is not None:
            return self.caller.token.user_id
        return None

    @property
    def application_id(self) -> str | None:
        if self.caller.bot is not None:
            return self.caller.bot.client_id
        if self.caller.token is not None:
            return self.caller.token.client_id
        return None

    @property
    def is_bot(self) -> bool:
        return self.caller.bot is not None

    def body_dict(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}


Handler = Callable[[Ctx], Any]
HANDLERS: dict[str, Handler] = {}


def handles(*operation_ids: str) -> Callable[[Handler], Handler]:
    """Register a handler for operations (by the spec's ``operationId``)."""

    def register(function: Handler) -> Handler:
        for operation_id in operation_ids:
            assert operation_id not in HANDLERS, operation_id
            HANDLERS[operation_id] = function
        return function

    return register


@dataclass(frozen=True)
class Legacy:
    handler: api.Handler
    auth: Auth
    scope: str | None
    limit: RouteLimit


# The first catalog's routes: operation id -> its handler in ``api.py``.
LEGACY_OPERATIONS: dict[tuple[str, str], str] = {
    ("GET", "/gateway"): "get_gateway",
    ("GET", "/guilds/templates/{code}"): "get_guild_template",
    ("GET", "/guilds/{guild_id}/widget.json"): "get_guild_widget",
    ("GET", "/guilds/{guild_id}/widget.png"): "get_guild_widget_png",
    ("GET", "/invites/{code}"): "invite_resolve",
    ("GET", "/sticker-packs"): "list_sticker_packs",
    ("GET", "/users/@me/guilds/{guild_id}/member"): "get_my_guild_member",
    ("GET", "/users/@me/guilds"): "list_my_guilds",
    ("GET", "/users/@me/connections"): "list_my_connections",
    (
        "GET",
        "/users/@me/applications/{application_id}/entitlements",
    ): "get_current_user_application_entitlements",
    ("GET", "/users/@me"): "get_my_user",
    ("GET", "/users/{user_id}"): "get_user",
    ("GET", "/oauth2/@me"): "get_my_oauth2_authorization",
    ("GET", "/oauth2/userinfo"): "get_openid_connect_userinfo",
    ("GET", "/applications/{application_id}/entitlements"): "get_entitlements",
}
# Served by ``oauth.py`` (registered before the dispatcher), rate-limited as before.
OAUTH_SERVED = {"get_public_keys": RouteLimit.named("oauth2-keys", 10, 10.0)}


def legacy_routes() -> dict[str, Legacy]:
    result: dict[str, Legacy] = {}
    for route in api.API_ROUTES:
        operation_id = LEGACY_OPERATIONS[(route.method, route.template)]
        result[operation_id] = Legacy(route.handler, route.auth, route.scope, route.limit)
    return result


def route_limit(op: Operation, legacy: dict[str, Legacy]) -> RouteLimit:
    if op.id in legacy:
        return legacy[op.id].limit
    if op.id in OAUTH_SERVED:
        return OAUTH_SERVED[op.id]
    return RouteLimit.named(f"{op.method} {op.path}")


def build_table(spec: Spec | None = None) -> RouteTable:
    """Every operation's route, bucket and operation, for the middleware and the dispatcher."""
    spec = spec or load_spec()
    legacy = legacy_routes()
    table = RouteTable()
    for op in spec.operations:
        table.add(op.method, op.path, route_limit(op, legacy), op)
    return table


# -- authentication by the spec's security -------------------------------------------------------


def _policy(op: Operation) -> tuple[Auth, tuple[str, ...]]:
    security = set(op.security)
    scopes: tuple[str, ...] = ()
    if op.scopes and len(op.scopes) < 10:  # a full list of every scope means "any scope"
        scopes = op.scopes
    if "none" in security:
        return Auth.NONE, ()
    if "bot" in security and "oauth2" in security:
        return Auth.BEARER_OR_BOT, scopes
    if "oauth2" in security:
        return Auth.BEARER, scopes
    return Auth.BOT, ()


def _authenticate(state: SandboxState, request: Request, op: Operation) -> Caller:
    policy, scopes = _policy(op)
    caller = authenticate(state, request.headers.get("authorization"), policy, None)
    if caller.token is not None and scopes and not set(scopes) & set(caller.token.scopes):
        raise missing_scope()
    return caller


# -- parameters and body ---------------------------------------------------------------------------


def _check_path(spec: Spec, op: Operation, params: dict[str, str]) -> None:
    errors = ErrorTree()
    for name, value in params.items():
        schema = op.path_params.get(name)
        if schema is None:
            continue
        _, found = spec.schemas.check(schema, value)
        if found.count:
            errors.merge(_rooted(name, found))
    if errors.count:
        raise invalid_form(errors.tree)


def _rooted(name: str, errors: ErrorTree) -> ErrorTree:
    """The errors of one parameter, under its name."""
    tree = ErrorTree()
    tree.tree = {name: errors.tree}
    tree.count = errors.count
    return tree


_QUERY_BOOLEANS = {"1": "true", "0": "false"}


def _parse_query(spec: Spec, op: Operation, request: Request) -> dict[str, Any]:
    errors = ErrorTree()
    result: dict[str, Any] = {}
    params = request.query_params
    for name, schema in op.query_params.items():
        values = params.getlist(name)
        if not values:
            if name in op.required_query:
                errors.add((name,), "BASE_TYPE_REQUIRED", "This field is required")
            continue
        node = spec.schemas.resolve(schema)
        raw: Any = values
        if node.get("type") != "array" and "array" not in (node.get("type") or ()):
            raw = values[-1]
            if "boolean" in (node.get("type") or ()) and raw in _QUERY_BOOLEANS:
                raw = _QUERY_BOOLEANS[raw]  # query strings say 1/0 too (discord-api.md §0)
        else:
            raw = [item for value in values for item in value.split(",") if item != ""]
        value, found = spec.schemas.check(schema, raw)
        if found.count:
            errors.merge(_rooted(name, found))
        else:
            result[name] = value
    if errors.count:
        raise invalid_form(errors.tree)
    return result


async def _read_body(request: Request, op: Operation) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form() as form:
            if "payload_json" in form:
                payload = form["payload_json"]
                text = payload if isinstance(payload, str) else (await payload.read()).decode()
                return _json(text.encode())
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                fields[key] = "<file>" if isinstance(value, UploadFile) else value
            return fields
    raw = await request.body()
    if not raw.strip():
        return None
    return _json(raw)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid_json() from exc


def _check_body(spec: Spec, op: Operation, body: Any) -> Any:
    schema = op.request_schema
    if schema is None:
        return body
    node = spec.schemas.resolve(schema)
    if body is None:
        kinds = node.get("type")
        if (
            kinds == "object"
            or (isinstance(kinds, list) and "object" in kinds)
            or ("type" not in node and ("properties" in node or "oneOf" in node or "anyOf" in node))
        ):
            body = {}
        elif kinds is not None and "null" in kinds:
            return None
    value, errors = spec.schemas.check(schema, body)
    if errors.count:
        raise invalid_form(errors.tree)
    return value


def check_request_body(operation_id: str, body: Any) -> Any:
    """``body`` checked (and coerced) against an operation's request schema exactly as a request
    to that operation would be; raises ``400 50035`` with Discord's error tree."""
    spec = load_spec()
    return _check_body(spec, spec.by_id(operation_id), body)


# -- answers ---------------------------------------------------------------------------------------


def _with_path_values(body: Any, params: dict[str, str]) -> Any:
    if isinstance(body, dict):
        for name, value in params.items():
            if name in body and isinstance(body[name], str):
                body[name] = value
    return body


def synthesized(ctx: Ctx) -> Any:
    """A deterministic schema-valid answer for an operation outside the emulated families,
    after the same existence and membership checks as any guild or channel route."""
    world = ctx.world
    if "channel_id" in ctx.path:
        world.visible_channel(ctx.path["channel_id"], ctx.actor)
    elif "guild_id" in ctx.path:
        world.member_guild(ctx.path["guild_id"], ctx.actor)
    schema = ctx.op.response_schema()
    media = ctx.op.media_types.get(ctx.op.success_status)
    if media is not None:  # e.g. an invite's target users as CSV
        return Response(b"user_id\n" if media == "text/csv" else b"", media_type=media)
    if schema is None:
        return None
    seed = f"{ctx.op.id}:" + ":".join(f"{k}={v}" for k, v in sorted(ctx.path.items()))
    return _with_path_values(load_spec().schemas.sample(schema, seed), ctx.path)


def answer(spec: Spec, op: Operation, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    reply = result if isinstance(result, Reply) else Reply(result)
    status = reply.status
    if status is None:
        status = op.success_status
        if reply.body is None and 204 in op.responses:
            status = 204
    if status == 204 or (reply.body is None and op.responses.get(status) is None):
        return Response(status_code=status if status != 200 else 204, headers=reply.headers)
    schema = op.response_schema(status)
    body = reply.body
    if schema is not None:
        body = spec.schemas.complete(schema, body, op.id)
    return JSONResponse(body, status_code=status, headers=reply.headers)


def _audit_reason(request: Request) -> str | None:
    raw = request.headers.get("x-audit-log-reason")
    if raw is None:
        return None
    return unquote(raw)[:512] or None


def dispatcher(state: SandboxState, table: RouteTable) -> Callable[[Request], Any]:
    spec = load_spec()
    legacy = legacy_routes()
    from tokenward.sandbox import families  # noqa: F401  (registers the handlers)

    async def dispatch(request: Request) -> Response:
        found = table.match_scope(request.scope)
        if found is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        op = found.entry.targets.get(request.method)
        if op is None:
            return JSONResponse(METHOD_NOT_ALLOWED, status_code=405)
        request.scope["path_params"] = found.params
        try:
            old = legacy.get(op.id)
            if old is not None:
                caller = authenticate(
                    state, request.headers.get("authorization"), old.auth, old.scope
                )
                result = old.handler(state, request, caller)
                return result if isinstance(result, Response) else JSONResponse(result)
            caller = _authenticate(state, request, op)
            _check_path(spec, op, found.params)
            query = _parse_query(spec, op, request)
            body = (
                _check_body(spec, op, await _read_body(request, op))
                if op.request_schema is not None
                else None
            )
            ctx = Ctx(state, request, op, caller, found.params, query, body, _audit_reason(request))
            handler = HANDLERS.get(op.id, synthesized)
            result = handler(ctx)
            if inspect.isawaitable(result):  # a handler that calls out (e.g. to verify a URL)
                result = await result
            return answer(spec, op, result)
        except DiscordError as exc:
            return exc.response()

    return dispatch


class _TableRoute(Route):
    """A catch-all under ``/api`` that only claims paths of the route table, so other routes
    (``oauth.py``'s token endpoint answering 405 to GET) and Starlette's 404 keep working."""

    def __init__(self, table: RouteTable, endpoint: Callable[[Request], Any]) -> None:
        super().__init__("/api/{rest:path}", endpoint, methods=list(_METHODS))
        self.table = table

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and self.table.match_scope(scope) is None:
            return Match.NONE, {}
        match, child = super().matches(scope)
        # Any method reaches the dispatcher, which answers Discord's 405 itself.
        return (Match.FULL if match is Match.PARTIAL else match), child


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def routes(state: SandboxState, table: RouteTable) -> list[BaseRoute]:
    return [_TableRoute(table, dispatcher(state, table))]
