"""Discord's REST API, emulated: every endpoint of the tool catalog, under ``/api/v10``,
``/api/v9`` and the unversioned ``/api`` (the same handlers).

Facts come from ``discord-api.md`` §0, §2, §4 and §5; choices where Discord's behaviour is
unverified are written down in ``sandbox/README.md`` ("REST API and rate limits").

Routes are data (:data:`API_ROUTES`): a template, an auth policy, a handler and a rate-limit
bucket. ``routes()`` turns them into Starlette routes; ``middleware.py`` reads the same table to
name each request's route and bucket. Handlers raise :class:`DiscordError` for Discord's error
bodies (``{"message", "code", "errors"?}``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tokenward.clock import isoformat
from tokenward.sandbox import fixtures
from tokenward.sandbox.errors import (
    DiscordError,
    FormErrors,
    missing_scope,
    not_authorized_for_application,
    unauthorized,
    unknown,
)
from tokenward.sandbox.fixtures import (
    CONNECTIONS,
    STICKER_PACKS,
    FakeUser,
    Guild,
    avatar_url,
    epoch,
    guild_by_id,
    public_user,
    user_by_id,
)
from tokenward.sandbox.png import WIDGET_STYLES, widget_png
from tokenward.sandbox.ratelimit import RouteLimit
from tokenward.sandbox.routing import RouteTable
from tokenward.sandbox.state import AccessToken, Application, SandboxState

API_PREFIXES: tuple[str, ...] = ("/api/v10", "/api/v9", "/api")


def _query_bool(request: Request, errors: FormErrors, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    parsed = errors.boolean(name, raw)
    return default if parsed is None else parsed


def _query_snowflake(request: Request, errors: FormErrors, name: str) -> int | None:
    raw = request.query_params.get(name)
    return None if raw is None else errors.snowflake(name, raw)


def _path_snowflake(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    errors = FormErrors()
    errors.snowflake(name, value)
    errors.raise_if_any()
    return value


def _snowflake_list(request: Request, errors: FormErrors, name: str) -> set[str] | None:
    """Comma-delimited and/or repeated snowflakes (``sku_ids``); None when absent."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    result: set[str] = set()
    for raw in values:
        for item in raw.split(","):
            item = item.strip()
            if item and errors.snowflake(name, item) is not None:
                result.add(str(int(item)))
    if len(result) > 100:
        errors.add(name, "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    return result


# -- authentication ---------------------------------------------------------------------------


class Auth(Enum):
    NONE = "none"  # no token needed; a valid Bot or Bearer token is accepted
    BEARER = "bearer"  # OAuth2 Bearer token only
    BEARER_OR_BOT = "bearer_or_bot"
    BOT = "bot"  # Bot token only
    ANY = "any"  # a valid Bot or Bearer token


@dataclass(frozen=True)
class Caller:
    """Who is calling: nobody, a user through an OAuth2 token, or an application's bot."""

    token: AccessToken | None = None
    bot: Application | None = None


ANONYMOUS = Caller()


def split_authorization(header: str | None) -> tuple[str, str] | None:
    """``("bearer"|"bot"|"", credential)`` from an Authorization header, or None if absent."""
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if not credential:
        return "", scheme
    return scheme.lower(), credential.strip()


def authenticate(
    state: SandboxState, header: str | None, policy: Auth, scope: str | None
) -> Caller:
    """Resolve the caller, or raise 401 (bad or unaccepted token) / 403 50026 (missing scope)."""
    parts = split_authorization(header)
    if parts is None:
        if policy is Auth.NONE:
            return ANONYMOUS
        raise unauthorized()
    scheme, credential = parts
    if scheme == "bearer":
        token = state.valid_access_token(credential)
        if token is None or policy is Auth.BOT:
            raise unauthorized()
        if scope is not None and scope not in token.scopes:
            raise missing_scope()
        return Caller(token=token)
    if scheme == "bot":
        app = state.application_by_bot_token(credential)
        if app is None or policy is Auth.BEARER:
            raise unauthorized()
        return Caller(bot=app)
    raise unauthorized()


# -- object builders --------------------------------------------------------------------------


def bot_user(app: Application) -> dict[str, Any]:
    return {
        "id": app.bot_user_id,
        "username": app.name,
        "discriminator": f"{int(app.bot_user_id) % 10000:04d}",
        "global_name": None,
        "avatar": None,
        "bot": True,
        "system": False,
        "mfa_enabled": True,
        "banner": None,
        "accent_color": None,
        "locale": "en-US",
        "verified": True,
        "email": None,
        "flags": 0,
        "public_flags": 0,
        "premium_type": 0,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
    }


def application_object(app: Application) -> dict[str, Any]:
    """The partial application of ``/oauth2/@me``."""
    return {
        "id": app.client_id,
        "name": app.name,
        "icon": None,
        "description": app.description,
        "summary": "",
        "type": None,
        "hook": True,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": app.verify_key,
        "flags": 0,
        "flags_new": "0",
    }


def current_user_object(user: FakeUser, scopes: tuple[str, ...]) -> dict[str, Any]:
    body = user.public_object()
    if "identify.premium" not in scopes:
        body["premium_type"] = 0
    if "email" in scopes:
        body["email"] = user.email
        body["verified"] = user.verified
    return body


def _require_user(token: AccessToken) -> FakeUser:
    user = user_by_id(token.user_id)
    if user is None:  # a token for a user the fixtures do not know: treat as a dead token
        raise unauthorized()
    return user


def _widget_member(index: int, entry: tuple[str, str, str | None]) -> dict[str, Any]:
    username, status, activity = entry
    digest = hashlib.sha256(f"widget:{username}".encode()).hexdigest()
    member: dict[str, Any] = {
        "id": str(index),
        "username": username,
        "discriminator": "0000",
        "avatar": None,
        "status": status,
        "avatar_url": f"{fixtures.CDN}/widget-avatars/{digest[:40]}/{digest[40:]}",
    }
    if activity is not None:
        member["activity"] = {"name": activity}
    return member


def _known_guild(guild_id: str) -> Guild:
    guild = guild_by_id(guild_id)
    if guild is None:
        raise unknown(10004, "Guild")
    return guild


def _widget_guild(request: Request) -> Guild:
    guild = _known_guild(_path_snowflake(request, "guild_id"))
    if not guild.widget_enabled:
        raise DiscordError(403, 50004, "Widget Disabled")
    return guild


def _paginate(
    items: list[Any], key: Callable[[Any], int], before: int | None, after: int | None, limit: int
) -> list[Any]:
    """Discord's snowflake pagination over items sorted by id (ascending in the result)."""
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [item for item in ordered if key(item) > after]
    if before is not None:
        ordered = [item for item in ordered if key(item) < before]
        if after is None:
            return ordered[-limit:]
    return ordered[:limit]


# -- handlers ---------------------------------------------------------------------------------

Handler = Callable[[SandboxState, Request, Caller], Any]


def get_gateway(state: SandboxState, request: Request, caller: Caller) -> Any:
    return {"url": "wss://gateway.discord.gg"}


def get_template(state: SandboxState, request: Request, caller: Caller) -> Any:
    template = state.world.templates.get(request.path_params["code"])
    if template is None:
        raise unknown(10057, "Guild Template")
    return template


def _widget_target(state: SandboxState, request: Request) -> tuple[Guild, str]:
    """The fixture guild behind a widget route and its current name, if the widget is on."""
    guild = _known_guild(_path_snowflake(request, "guild_id"))
    live = state.world.guilds[guild.id]
    if not live.widget["enabled"]:
        raise DiscordError(403, 50004, "Widget Disabled")
    return guild, str(live.data["name"])


def get_widget_json(state: SandboxState, request: Request, caller: Caller) -> Any:
    guild, name = _widget_target(state, request)
    voice = [
        channel
        for channel in state.world.channels.values()
        if channel.get("guild_id") == guild.id and channel.get("type") in (2, 13)
    ]
    voice.sort(key=lambda c: (int(c.get("position", 0)), int(c["id"])))
    return {
        "id": guild.id,
        "name": name,
        "instant_invite": (
            f"https://discord.com/invite/{guild.widget_invite_code}"
            if guild.widget_invite_code
            else None
        ),
        "channels": [
            {"id": channel["id"], "name": channel["name"], "position": channel["position"]}
            for channel in voice
        ],
        "members": [_widget_member(i, entry) for i, entry in enumerate(guild.widget_members[:100])],
        "presence_count": guild.presence_count,
    }


def get_widget_png(state: SandboxState, request: Request, caller: Caller) -> Any:
    errors = FormErrors()
    style = errors.choice("style", request.query_params.get("style", "shield"), WIDGET_STYLES)
    errors.raise_if_any()
    guild, name = _widget_target(state, request)
    assert style is not None
    return Response(widget_png(style, name, guild.presence_count), media_type="image/png")


def get_invite(state: SandboxState, request: Request, caller: Caller) -> Any:
    errors = FormErrors()
    with_counts = _query_bool(request, errors, "with_counts", False)
    event_id = _query_snowflake(request, errors, "guild_scheduled_event_id")
    errors.raise_if_any()
    world = state.world
    invite = world.invites.get(request.path_params["code"])
    expires_at = invite.get("expires_at") if invite else None
    if invite is None or (expires_at is not None and epoch(expires_at) <= state.clock.time()):
        raise unknown(10006, "Invite")
    live = world.guilds.get(str(invite["guild_id"]))
    channel = world.channels.get(str(invite["channel_id"]))
    if live is None or channel is None:
        raise unknown(10006, "Invite")
    data = live.data
    body: dict[str, Any] = {
        "type": 0,
        "code": invite["code"],
        "guild": {
            key: data.get(key)
            for key in (
                "id",
                "name",
                "splash",
                "banner",
                "description",
                "icon",
                "features",
                "verification_level",
                "vanity_url_code",
                "nsfw_level",
                "nsfw",
                "premium_subscription_count",
            )
        },
        "guild_id": live.id,
        "channel": {"id": channel["id"], "type": channel["type"], "name": channel["name"]},
        "expires_at": expires_at,
    }
    if invite.get("inviter_id"):
        body["inviter"] = world.user_object(str(invite["inviter_id"]))
    if with_counts:
        body["approximate_member_count"] = data["approximate_member_count"]
        body["approximate_presence_count"] = data["approximate_presence_count"]
    if event_id is not None:
        event = live.events.get(str(event_id))
        if event is not None:
            body["guild_scheduled_event"] = event
    return body


def get_my_guild_member(state: SandboxState, request: Request, caller: Caller) -> Any:
    assert caller.token is not None
    guild_id = _path_snowflake(request, "guild_id")
    user = _require_user(caller.token)
    live = state.world.guilds.get(guild_id)
    if live is None or user.id not in live.members:
        raise unknown(10004, "Guild")
    return state.world.member_object(live, user.id)


def get_oauth2_me(state: SandboxState, request: Request, caller: Caller) -> Any:
    if caller.bot is not None:
        return {
            "application": application_object(caller.bot),
            "scopes": ["bot", "applications.commands"],
            "expires": None,
            "user": bot_user(caller.bot),
        }
    assert caller.token is not None
    token = caller.token
    app = state.applications.get(token.client_id)
    if app is None:
        raise unauthorized()
    body: dict[str, Any] = {
        "application": application_object(app),
        "scopes": list(token.scopes),
        "expires": isoformat(token.expires_at),
    }
    if "identify" in token.scopes:
        body["user"] = current_user_object(_require_user(token), token.scopes)
    return body


def get_current_user(state: SandboxState, request: Request, caller: Caller) -> Any:
    if caller.bot is not None:
        return bot_user(caller.bot)
    assert caller.token is not None
    return current_user_object(_require_user(caller.token), caller.token.scopes)


def get_userinfo(state: SandboxState, request: Request, caller: Caller) -> Any:
    assert caller.token is not None
    user = _require_user(caller.token)
    scopes = caller.token.scopes
    claims: dict[str, Any] = {"sub": user.id}
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = user.verified
    if "identify" in scopes:
        claims["preferred_username"] = user.username
        claims["nickname"] = user.global_name
        claims["picture"] = avatar_url(user)
        claims["locale"] = user.locale
    return claims


def get_user(state: SandboxState, request: Request, caller: Caller) -> Any:
    user_id = _path_snowflake(request, "user_id")
    user = fixtures.any_user_by_id(user_id)
    if user is not None:
        return {**public_user(user), **state.world.user_edits.get(user_id, {})}
    for app in state.applications.values():
        if app.bot_user_id == user_id:
            body = {**bot_user(app), **state.world.user_edits.get(user_id, {})}
            for private in ("email", "verified", "locale", "mfa_enabled", "flags", "premium_type"):
                del body[private]
            return body
    raise unknown(10013, "User")


def list_my_guilds(state: SandboxState, request: Request, caller: Caller) -> Any:
    errors = FormErrors()
    before = _query_snowflake(request, errors, "before")
    after = _query_snowflake(request, errors, "after")
    raw_limit = request.query_params.get("limit")
    limit = errors.integer("limit", raw_limit, 1, 200) if raw_limit is not None else 200
    with_counts = _query_bool(request, errors, "with_counts", False)
    errors.raise_if_any()
    world = state.world
    if caller.bot is not None:
        user_id = caller.bot.bot_user_id
    else:
        assert caller.token is not None
        user_id = _require_user(caller.token).id
    rows: list[dict[str, Any]] = []
    for live in world.guilds.values():
        if user_id not in live.members:
            continue
        data = live.data
        row: dict[str, Any] = {
            "id": live.id,
            "name": data["name"],
            "icon": data.get("icon"),
            "banner": data.get("banner"),
            "owner": live.owner_id == user_id,
            "permissions": str(world.base_permissions(live, user_id)),
            "features": list(data.get("features", ())),
        }
        if with_counts:
            row["approximate_member_count"] = data["approximate_member_count"]
            row["approximate_presence_count"] = data["approximate_presence_count"]
        rows.append(row)
    return _paginate(rows, lambda row: int(row["id"]), before, after, limit or 200)


def list_sticker_packs(state: SandboxState, request: Request, caller: Caller) -> Any:
    return {"sticker_packs": list(STICKER_PACKS)}


def list_my_connections(state: SandboxState, request: Request, caller: Caller) -> Any:
    assert caller.token is not None
    return list(CONNECTIONS.get(caller.token.user_id, ()))


def _known_application(state: SandboxState, request: Request) -> str:
    application_id = _path_snowflake(request, "application_id")
    if application_id not in state.applications:
        raise unknown(10002, "Application")
    return application_id


def list_my_entitlements(state: SandboxState, request: Request, caller: Caller) -> Any:
    """Every entitlement of the caller for the application: deleted and ended ones included;
    only ``sku_ids`` and ``exclude_consumed`` (default true) filter."""
    assert caller.token is not None
    errors = FormErrors()
    sku_ids = _snowflake_list(request, errors, "sku_ids")
    exclude_consumed = _query_bool(request, errors, "exclude_consumed", True)
    errors.raise_if_any()
    application_id = _known_application(state, request)
    user_id = caller.token.user_id
    return [
        entitlement_public(entitlement)
        for entitlement in state.world.entitlements.values()
        if entitlement["application_id"] == application_id
        and entitlement.get("user_id") == user_id
        and (sku_ids is None or entitlement["sku_id"] in sku_ids)
        and not (exclude_consumed and entitlement.get("consumed"))
    ]


def entitlement_public(entitlement: dict[str, Any]) -> dict[str, Any]:
    """An entitlement as answered: no ``user_id`` (guild's) or ``guild_id`` (user's) when unset."""
    return {
        key: value
        for key, value in entitlement.items()
        if not (key in ("user_id", "guild_id") and value is None)
    }


def _ended(entitlement: dict[str, Any], now: float) -> bool:
    ends_at = entitlement.get("ends_at")
    return ends_at is not None and epoch(ends_at) <= now


def list_app_entitlements(state: SandboxState, request: Request, caller: Caller) -> Any:
    application_id = _path_snowflake(request, "application_id")
    if caller.bot is not None:
        if caller.bot.client_id != application_id:
            raise not_authorized_for_application()
    else:
        assert caller.token is not None
        # ``applications.entitlements`` is a developer scope: only the application's owner.
        if (
            "applications.entitlements" not in caller.token.scopes
            or caller.token.user_id != fixtures.APPLICATION_OWNER_ID
            or application_id not in state.applications
        ):
            raise not_authorized_for_application()
    errors = FormErrors()
    user_id = _query_snowflake(request, errors, "user_id")
    guild_id = _query_snowflake(request, errors, "guild_id")
    sku_ids = _snowflake_list(request, errors, "sku_ids")
    before = _query_snowflake(request, errors, "before")
    after = _query_snowflake(request, errors, "after")
    raw_limit = request.query_params.get("limit")
    limit = errors.integer("limit", raw_limit, 1, 100) if raw_limit is not None else 100
    exclude_ended = _query_bool(request, errors, "exclude_ended", False)
    exclude_deleted = _query_bool(request, errors, "exclude_deleted", True)
    only_active = _query_bool(request, errors, "only_active", False)
    errors.raise_if_any()
    now = state.clock.time()

    def keep(entitlement: dict[str, Any]) -> bool:
        if entitlement["application_id"] != application_id:
            return False
        if user_id is not None and entitlement.get("user_id") != str(user_id):
            return False
        if guild_id is not None and entitlement.get("guild_id") != str(guild_id):
            return False
        if sku_ids is not None and entitlement["sku_id"] not in sku_ids:
            return False
        if (exclude_ended or only_active) and _ended(entitlement, now):
            return False
        if (exclude_deleted or only_active) and entitlement.get("deleted"):
            return False
        return not (only_active and entitlement.get("consumed"))

    selected = [e for e in state.world.entitlements.values() if keep(e)]
    page = _paginate(selected, lambda e: int(e["id"]), before, after, limit or 100)
    return [entitlement_public(entitlement) for entitlement in page]


# -- the route table --------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiRoute:
    """One REST endpoint: ``template`` is relative to the API prefix (``/users/@me``)."""

    template: str
    handler: Handler
    auth: Auth
    limit: RouteLimit
    scope: str | None = None
    method: str = "GET"


_WIDGET = RouteLimit.named("guild-widget")  # widget.json and widget.png share one bucket

API_ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("/gateway", get_gateway, Auth.NONE, RouteLimit.named("gateway", 10, 10.0)),
    ApiRoute(
        "/guilds/templates/{code}", get_template, Auth.NONE, RouteLimit.named("guild-template")
    ),
    ApiRoute("/guilds/{guild_id}/widget.json", get_widget_json, Auth.NONE, _WIDGET),
    ApiRoute("/guilds/{guild_id}/widget.png", get_widget_png, Auth.NONE, _WIDGET),
    ApiRoute("/invites/{code}", get_invite, Auth.NONE, RouteLimit.named("invite")),
    ApiRoute(
        "/sticker-packs", list_sticker_packs, Auth.NONE, RouteLimit.named("sticker-packs", 10, 10.0)
    ),
    ApiRoute(
        "/users/@me/guilds/{guild_id}/member",
        get_my_guild_member,
        Auth.BEARER,
        RouteLimit.named("my-guild-member"),
        scope="guilds.members.read",
    ),
    ApiRoute(
        "/users/@me/guilds",
        list_my_guilds,
        Auth.BEARER_OR_BOT,
        RouteLimit.named("my-guilds"),
        scope="guilds",
    ),
    ApiRoute(
        "/users/@me/connections",
        list_my_connections,
        Auth.BEARER,
        RouteLimit.named("my-connections"),
        scope="connections",
    ),
    ApiRoute(
        "/users/@me/applications/{application_id}/entitlements",
        list_my_entitlements,
        Auth.BEARER,
        RouteLimit.named("my-entitlements"),
    ),
    ApiRoute(
        "/users/@me", get_current_user, Auth.BEARER_OR_BOT, RouteLimit.named("me"), scope="identify"
    ),
    ApiRoute("/users/{user_id}", get_user, Auth.BOT, RouteLimit.named("user")),
    ApiRoute("/oauth2/@me", get_oauth2_me, Auth.ANY, RouteLimit.named("oauth2-me")),
    ApiRoute(
        "/oauth2/userinfo",
        get_userinfo,
        Auth.BEARER,
        RouteLimit.named("oauth2-userinfo"),
        scope="openid",
    ),
    ApiRoute(
        "/applications/{application_id}/entitlements",
        list_app_entitlements,
        Auth.ANY,
        RouteLimit.named("application-entitlements", 10, 10.0),
    ),
)

# Routes served elsewhere (``oauth.py``) that Discord rate-limits like any API route. The token
# and revoke endpoints are deliberately absent: they are not rate-limited.
EXTRA_LIMITED_ROUTES: tuple[tuple[str, str, RouteLimit], ...] = (
    ("GET", "/oauth2/keys", RouteLimit.named("oauth2-keys", 10, 10.0)),
)


def routes(state: SandboxState) -> list[BaseRoute]:
    """The control route that lists the fake data (the REST routes are ``rest.py``'s)."""

    async def fixtures_endpoint(request: Request) -> Response:
        return JSONResponse({**fixtures.fixtures_document(), **state.world.fixtures_extra()})

    return [Route("/_sandbox/fixtures", fixtures_endpoint, methods=["GET"])]


# -- composition ------------------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    phrase = {404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
    return JSONResponse(
        {"message": f"{status}: {phrase}", "code": 0}, status_code=status, headers=headers
    )


def wrap(app: Starlette, state: SandboxState, table: RouteTable) -> Starlette:
    """Discord-shaped 404/405 bodies, then the request-accounting/fault/rate-limit middleware."""
    from tokenward.sandbox.middleware import SandboxMiddleware

    app.add_exception_handler(404, _http_error)
    app.add_exception_handler(405, _http_error)
    app.add_middleware(SandboxMiddleware, state=state, table=table)
    return app
