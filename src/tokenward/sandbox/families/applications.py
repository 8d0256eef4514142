"""Applications: the current application, commands and their permissions, application emojis,
entitlements, SKUs and subscriptions, role connections, and the bot user itself.

A bot may only act on its own application (another application id: ``403 20012``). Guild
commands need the bot in the guild (``50001``). Setting command permissions needs a Bearer token
with ``applications.commands.permissions.update`` of a user holding Manage Guild and Manage
Roles there (a bot token: ``401``, as Discord documents).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from tokenward.sandbox import fixtures as fx
from tokenward.sandbox.api import application_object, bot_user, entitlement_public
from tokenward.sandbox.errors import (
    DiscordError,
    bad_request,
    missing_access,
    not_authorized_for_application,
    not_found,
    unauthorized,
    unknown,
)
from tokenward.sandbox.families.common import actor, audit, form_error, paginate_ids
from tokenward.sandbox.families.messages import clean
from tokenward.sandbox.rest import Ctx, Reply, handles
from tokenward.sandbox.state import Application
from tokenward.sandbox.world import GuildState, World

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$", re.UNICODE)
MAX_COMMANDS = 100


def _own_application(ctx: Ctx) -> Application:
    """The path's application, which must be the caller's (bot or Bearer token's app)."""
    application_id = ctx.path.get("application_id")
    app = ctx.state.applications.get(application_id or "")
    if app is None:
        raise unknown(10002, "Application")
    if ctx.application_id != app.client_id:
        raise not_authorized_for_application()
    return app


def _caller_app(ctx: Ctx) -> Application:
    assert ctx.caller.bot is not None
    return ctx.caller.bot


def private_application(world: World, app: Application) -> dict[str, Any]:
    body = {
        **application_object(app),
        "type": None,
        "bot": bot_user(app),
        "flags_new": "0",
        "redirect_uris": list(app.redirect_uris),
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "owner": world.user_object(fx.APPLICATION_OWNER_ID),
        "approximate_guild_count": sum(
            1 for g in world.guilds.values() if app.bot_user_id in g.members
        ),
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "team": None,
        "eligible_oauth2_scopes": ["bot", "applications.commands", "identify"],
        "integration_types_config": {"0": {}, "1": {}},
    }
    body.update(world.app_edits.get(app.client_id, {}))
    result: dict[str, Any] = clean(body)
    # Unset endpoints are null, as on Discord (not dropped, so the response is not filled in).
    result["interactions_endpoint_url"] = app.interactions_endpoint_url
    result["event_webhooks_url"] = app.event_webhooks_url
    result["event_webhooks_status"] = app.event_webhooks_status
    result["event_webhooks_types"] = app.event_webhooks_types
    return result


@handles("get_my_application", "get_my_oauth2_application")
def get_my_application(ctx: Ctx) -> Any:
    return private_application(ctx.world, _caller_app(ctx))


@handles("get_application")
def get_application(ctx: Ctx) -> Any:
    return private_application(ctx.world, _own_application(ctx))


_APP_FIELDS = (
    "description",
    "icon",
    "cover_image",
    "interactions_endpoint_url",
    "role_connections_verification_url",
    "custom_install_url",
    "install_params",
    "integration_types_config",
    "flags",
    "tags",
    "event_webhooks_url",
    "event_webhooks_status",
    "event_webhooks_types",
)


_ENDPOINT_FIELDS = (
    "interactions_endpoint_url",
    "event_webhooks_url",
    "event_webhooks_status",
    "event_webhooks_types",
)
_URL_CHECKS = {
    # field -> the error Discord gives when the URL does not pass its check
    "interactions_endpoint_url": (
        "APPLICATION_INTERACTIONS_ENDPOINT_URL_INVALID",
        "The specified interactions endpoint url could not be verified.",
    ),
    "event_webhooks_url": (
        "APPLICATION_EVENT_WEBHOOKS_URL_INVALID",
        "The specified event webhooks url could not be verified.",
    ),
}


async def _check_endpoint_urls(ctx: Ctx, app: Application, body: dict[str, Any]) -> None:
    """Discord verifies a new interactions endpoint or event webhooks URL before saving it: a
    signed PING must be acknowledged and a badly signed one refused with 401. A URL the
    sandbox may not call (not loopback) fails the same way. Raises one ``50035`` naming every
    field that failed."""
    from tokenward.sandbox.outgoing import (
        deliver_event,
        loopback_url_problem,
        verify_interactions_endpoint,
    )

    failed: list[str] = []
    for key in _URL_CHECKS:
        url = body.get(key)
        if not url or url == getattr(app, key):
            continue
        if loopback_url_problem(str(url)) is not None:
            failed.append(key)
        elif key == "interactions_endpoint_url":
            if not (await verify_interactions_endpoint(ctx.state, app, str(url)))["ok"]:
                failed.append(key)
        else:
            ping = await deliver_event(ctx.state, app, None, url=str(url))
            bad = await deliver_event(ctx.state, app, None, signature="bad", url=str(url))
            if not ping["acknowledged"] or not bad["refused_bad_signature"]:
                failed.append(key)
    if failed:
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {
                key: {"_errors": [{"code": _URL_CHECKS[key][0], "message": _URL_CHECKS[key][1]}]}
                for key in failed
            },
        )


async def _edit_application(ctx: Ctx, app: Application) -> Any:
    body = ctx.body_dict()
    await _check_endpoint_urls(ctx, app, body)
    edits = ctx.world.app_edits.setdefault(app.client_id, {})
    for key, value in body.items():
        if key in _APP_FIELDS and key not in _ENDPOINT_FIELDS:
            edits[key] = clean(value)
    for key in ("interactions_endpoint_url", "event_webhooks_url"):
        if key in body:
            setattr(app, key, body[key] or None)
    if body.get("event_webhooks_url") and "event_webhooks_status" not in body:
        app.event_webhooks_status = 2
    if body.get("event_webhooks_status") is not None:
        app.event_webhooks_status = int(body["event_webhooks_status"])
    if "event_webhooks_types" in body:
        types = body["event_webhooks_types"]
        app.event_webhooks_types = None if types is None else list(dict.fromkeys(types))
    if "description" in edits:
        description = edits.pop("description")
        if isinstance(description, dict):  # {"default": "...", "localizations": {...}}
            description = description.get("default")
        app.description = str(description or "")  # documented as a string; null clears it
    return private_application(ctx.world, app)


@handles("update_my_application")
async def update_my_application(ctx: Ctx) -> Any:
    return await _edit_application(ctx, _caller_app(ctx))


@handles("update_application")
async def update_application(ctx: Ctx) -> Any:
    return await _edit_application(ctx, _own_application(ctx))


@handles("update_my_user")
def update_my_user(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    app = _caller_app(ctx)
    edits = world.user_edits.setdefault(app.bot_user_id, {})
    if body.get("username") is not None:
        name = str(body["username"])
        if any(bad in name.lower() for bad in ("discord", "clyde", "@", "#", ":", "```")):
            raise form_error(
                "username", "USERNAME_INVALID_CONTAINS", "Username contains disallowed text"
            )
        edits["username"] = name
        app.name = name
    for key in ("avatar", "banner"):
        if key in body:
            edits[key] = (
                None if not body[key] else hashlib.sha256(str(body[key]).encode()).hexdigest()[:32]
            )
    result = bot_user(app)
    result.update(edits)
    return result


# -- commands --------------------------------------------------------------------------------------


def _command_guild(ctx: Ctx, app: Application) -> GuildState | None:
    guild_id = ctx.path.get("guild_id")
    if guild_id is None:
        return None
    guild = ctx.world.guild(guild_id)
    if app.bot_user_id not in guild.members:
        raise missing_access()
    return guild


def _commands(world: World, app_id: str, guild_id: str | None) -> list[dict[str, Any]]:
    return [
        c
        for c in world.commands.values()
        if c["application_id"] == app_id and c.get("guild_id") == guild_id
    ]


def _command(ctx: Ctx, app: Application, guild: GuildState | None) -> dict[str, Any]:
    command = ctx.world.commands.get(ctx.path["command_id"])
    if (
        command is None
        or command["application_id"] != app.client_id
        or command.get("guild_id") != (guild.id if guild else None)
    ):
        raise unknown(10063, "application command")
    return command


def _validate_command(body: dict[str, Any], kind: int) -> None:
    name = str(body.get("name", ""))
    if kind == 1 and (not _COMMAND_NAME.match(name) or name != name.lower()):
        raise form_error("name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if kind == 1 and not body.get("description"):
        raise form_error("description", "BASE_TYPE_REQUIRED", "This field is required")
    if kind != 1 and body.get("description"):
        raise form_error(
            "description",
            "APPLICATION_COMMAND_DESCRIPTION_INVALID",
            "Context menu commands cannot have a description",
        )


def _command_object(
    world: World,
    app: Application,
    guild: GuildState | None,
    body: dict[str, Any],
    command_id: str | None = None,
) -> dict[str, Any]:
    kind = int(body.get("type") or 1)
    command_id = command_id or world.new_id()
    permissions = body.get("default_member_permissions")
    command = {
        "id": command_id,
        "application_id": app.client_id,
        "version": world.new_id(),
        "default_member_permissions": None if permissions is None else str(int(permissions)),
        "type": kind,
        "name": body["name"],
        "description": body.get("description") or "",
        "options": clean(body.get("options") or []),
        "nsfw": bool(body.get("nsfw")),
    }
    for key in ("name_localizations", "description_localizations", "contexts", "integration_types"):
        if body.get(key) is not None:
            command[key] = clean(body[key])
    if guild is not None:
        command["guild_id"] = guild.id
    else:
        command["dm_permission"] = body.get("dm_permission") is not False
    return command


def _render_command(command: dict[str, Any], localizations: bool) -> dict[str, Any]:
    body = dict(command)
    if not localizations:
        body.pop("name_localizations", None)
        body.pop("description_localizations", None)
    return body


@handles("list_application_commands", "list_guild_application_commands")
def list_commands(ctx: Ctx) -> Any:
    app = _own_application(ctx)
    guild = _command_guild(ctx, app)
    localized = bool(ctx.query.get("with_localizations"))
    return [
        _render_command(c, localized)
        for c in _commands(ctx.world, app.client_id, guild.id if guild else None)
    ]


@handles("create_application_command", "create_guild_application_command")
def create_command(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    app = _own_application(ctx)
    guild = _command_guild(ctx, app)
    kind = int(body.get("type") or 1)
    _validate_command(body, kind)
    existing = list(_commands(world, app.client_id, guild.id if guild else None))
    same = next((c for c in existing if c["name"] == body["name"] and c["type"] == kind), None)
    if same is not None:  # an upsert: the same name and type edit the command (200)
        command = _command_object(world, app, guild, body, same["id"])
        world.commands[command["id"]] = command
        return Reply(command, 200)
    if len([c for c in existing if c["type"] == kind]) >= MAX_COMMANDS:
        raise bad_request(30032, "Maximum number of application commands reached")
    command = _command_object(world, app, guild, body)
    world.commands[command["id"]] = command
    return Reply(command, 201)


@handles("get_application_command", "get_guild_application_command")
def get_command(ctx: Ctx) -> Any:
    app = _own_application(ctx)
    return _command(ctx, app, _command_guild(ctx, app))


@handles("update_application_command", "update_guild_application_command")
def update_command(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    app = _own_application(ctx)
    guild = _command_guild(ctx, app)
    command = _command(ctx, app, guild)
    merged = {**command, **{k: v for k, v in body.items() if v is not None}}
    _validate_command(merged, int(command["type"]))
    updated = _command_object(world, app, guild, merged, command["id"])
    world.commands[command["id"]] = updated
    return updated


@handles("delete_application_command", "delete_guild_application_command")
def delete_command(ctx: Ctx) -> Any:
    app = _own_application(ctx)
    guild = _command_guild(ctx, app)
    command = _command(ctx, app, guild)
    del ctx.world.commands[command["id"]]
    return Reply(None, 204)


@handles("bulk_set_application_commands", "bulk_set_guild_application_commands")
def bulk_set_commands(ctx: Ctx) -> Any:
    world = ctx.world
    app = _own_application(ctx)
    guild = _command_guild(ctx, app)
    guild_id = guild.id if guild else None
    items = list(ctx.body or ())
    for index, body in enumerate(items):
        try:
            _validate_command(body, int(body.get("type") or 1))
        except DiscordError as exc:
            raise DiscordError(
                400, 50035, "Invalid Form Body", {str(index): exc.errors or {}}
            ) from exc
    old = {(c["name"], c["type"]): c["id"] for c in _commands(world, app.client_id, guild_id)}
    for command in _commands(world, app.client_id, guild_id):
        del world.commands[command["id"]]
    result = []
    for body in items:
        kind = int(body.get("type") or 1)
        command = _command_object(
            world, app, guild, body, str(body.get("id") or "") or old.get((body["name"], kind))
        )
        world.commands[command["id"]] = command
        result.append(command)
    return result


# -- command permissions ---------------------------------------------------------------------------


def _permissions_guild(ctx: Ctx, app: Application) -> GuildState:
    return ctx.world.guild(ctx.path["guild_id"])


def _permissions_object(
    app_id: str, guild_id: str, command_id: str, items: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"id": command_id, "application_id": app_id, "guild_id": guild_id, "permissions": items}


@handles("list_guild_application_command_permissions")
def list_command_permissions(ctx: Ctx) -> Any:
    app = _own_application(ctx)
    guild = _permissions_guild(ctx, app)
    return [
        _permissions_object(a, g, c, items)
        for (a, g, c), items in ctx.world.command_permissions.items()
        if a == app.client_id and g == guild.id
    ]


@handles("get_guild_application_command_permissions")
def get_command_permissions(ctx: Ctx) -> Any:
    app = _own_application(ctx)
    guild = _permissions_guild(ctx, app)
    key = (app.client_id, guild.id, ctx.path["command_id"])
    items = ctx.world.command_permissions.get(key)
    if items is None:
        raise unknown(10066, "application command permissions")
    return _permissions_object(*key, items)


@handles("set_guild_application_command_permissions")
def set_command_permissions(ctx: Ctx) -> Any:
    world = ctx.world
    if ctx.is_bot:
        raise unauthorized()
    app = _own_application(ctx)
    guild = _permissions_guild(ctx, app)
    user = actor(ctx)
    if user not in guild.members:
        raise missing_access()
    world.require_guild_permission(guild, user, fx.MANAGE_GUILD, fx.MANAGE_ROLES)
    command_id = ctx.path["command_id"]
    if command_id != app.client_id:  # the application id itself means "all commands"
        command = world.commands.get(command_id)
        if command is None or command["application_id"] != app.client_id:
            raise unknown(10063, "application command")
    items = [
        {"id": str(item["id"]), "type": int(item["type"]), "permission": bool(item["permission"])}
        for item in ctx.body_dict().get("permissions") or ()
    ]
    key = (app.client_id, guild.id, command_id)
    world.command_permissions[key] = items
    audit(ctx, guild, 121, command_id, [(str(item["id"]), None, item) for item in items])
    return _permissions_object(*key, items)


# -- application emojis ----------------------------------------------------------------------------


def _app_emojis(ctx: Ctx) -> tuple[Application, dict[str, dict[str, Any]]]:
    app = _own_application(ctx)
    return app, ctx.world.app_emojis.setdefault(app.client_id, {})


def _app_emoji(ctx: Ctx) -> dict[str, Any]:
    _, emojis = _app_emojis(ctx)
    emoji = emojis.get(ctx.path["emoji_id"])
    if emoji is None:
        raise unknown(10014, "Emoji")
    return emoji


@handles("list_application_emojis")
def list_app_emojis(ctx: Ctx) -> Any:
    _, emojis = _app_emojis(ctx)
    return {"items": list(emojis.values())}


@handles("get_application_emoji")
def get_app_emoji(ctx: Ctx) -> Any:
    return _app_emoji(ctx)


@handles("create_application_emoji")
def create_app_emoji(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    app, emojis = _app_emojis(ctx)
    image = str(body.get("image", ""))
    if not image.startswith("data:") or ";base64," not in image:
        raise form_error("image", "IMAGE_INVALID", "Invalid image data")
    if any(e["name"] == body["name"] for e in emojis.values()):
        raise form_error("name", "APPLICATION_EMOJI_NAME_ALREADY_TAKEN", "Emoji name already taken")
    emoji = {
        "id": world.new_id(),
        "name": body["name"],
        "roles": [],
        "require_colons": True,
        "managed": False,
        "animated": image.startswith("data:image/gif"),
        "available": True,
        "user": world.user_object(app.bot_user_id),
    }
    emojis[emoji["id"]] = emoji
    return Reply(emoji, 201)


@handles("update_application_emoji")
def update_app_emoji(ctx: Ctx) -> Any:
    emoji = _app_emoji(ctx)
    if ctx.body_dict().get("name"):
        emoji["name"] = ctx.body_dict()["name"]
    return emoji


@handles("delete_application_emoji")
def delete_app_emoji(ctx: Ctx) -> Any:
    emoji = _app_emoji(ctx)
    _, emojis = _app_emojis(ctx)
    del emojis[emoji["id"]]
    return Reply(None, 204)


# -- entitlements, SKUs, subscriptions -------------------------------------------------------------


def _entitlement_app(ctx: Ctx) -> Application:
    """Bots act on their own application; Bearer tokens need ``applications.entitlements`` of
    the application's owner (as for listing, see README)."""
    app_id = ctx.path["application_id"]
    app = ctx.state.applications.get(app_id)
    if ctx.is_bot:
        if app is None or ctx.application_id != app_id:
            raise not_authorized_for_application()
        return app
    token = ctx.caller.token
    if app is None or token is None or token.user_id != fx.APPLICATION_OWNER_ID:
        raise not_authorized_for_application()
    return app


def _entitlement(ctx: Ctx, app: Application) -> dict[str, Any]:
    entitlement = ctx.world.entitlements.get(ctx.path["entitlement_id"])
    if entitlement is None or entitlement["application_id"] != app.client_id:
        raise unknown(10029, "Entitlement")
    return entitlement


def entitlement_object(entitlement: dict[str, Any]) -> dict[str, Any]:
    return entitlement_public(entitlement)


@handles("get_entitlement")
def get_entitlement(ctx: Ctx) -> Any:
    app = _entitlement_app(ctx)
    return entitlement_object(_entitlement(ctx, app))


def _sku(world: World, app: Application, sku_id: str) -> dict[str, Any]:
    for sku in world.skus.get(app.client_id, ()):
        if sku["id"] == sku_id:
            return sku
    raise unknown(10027, "SKU")


@handles("create_entitlement")
def create_entitlement(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    app = _entitlement_app(ctx)
    _sku(world, app, str(body["sku_id"]))
    owner_id, owner_type = str(body["owner_id"]), int(body["owner_type"])
    if owner_type == 1 and owner_id not in world.guilds:
        raise unknown(10004, "Guild")
    if owner_type == 2 and not world.user_exists(owner_id):
        raise unknown(10013, "User")
    entitlement: dict[str, Any] = {
        "id": world.new_id(),
        "sku_id": str(body["sku_id"]),
        "application_id": app.client_id,
        "user_id": owner_id if owner_type == 2 else None,
        "guild_id": owner_id if owner_type == 1 else None,
        "type": 4,
        "deleted": False,
        "starts_at": None,
        "ends_at": None,
        "consumed": False,
    }
    world.entitlements[entitlement["id"]] = entitlement
    return entitlement_object(entitlement)


@handles("delete_entitlement")
def delete_entitlement(ctx: Ctx) -> Any:
    app = _entitlement_app(ctx)
    entitlement = _entitlement(ctx, app)
    if entitlement["type"] != 4:
        raise bad_request(50035, "Only test entitlements can be deleted")
    del ctx.world.entitlements[entitlement["id"]]
    return Reply(None, 204)


@handles("consume_entitlement")
def consume_entitlement(ctx: Ctx) -> Any:
    world = ctx.world
    app = _entitlement_app(ctx)
    entitlement = _entitlement(ctx, app)
    sku = _sku(world, app, entitlement["sku_id"])
    if sku["type"] != 3:
        raise bad_request(40074, "This entitlement is not consumable")  # a guess at the code
    entitlement["consumed"] = True
    return Reply(None, 204)


@handles("list_skus")
def list_skus(ctx: Ctx) -> Any:
    app = _own_application(ctx)
    return list(ctx.world.skus.get(app.client_id, ()))


def _subscriptions(ctx: Ctx) -> list[dict[str, Any]]:
    world = ctx.world
    sku_id = ctx.path["sku_id"]
    apps = [
        a
        for a in ctx.state.applications.values()
        if any(s["id"] == sku_id for s in world.skus.get(a.client_id, ()))
    ]
    if not apps:
        raise unknown(10027, "SKU")
    if ctx.application_id not in {a.client_id for a in apps}:
        raise not_authorized_for_application()
    return [s for s in world.subscriptions.values() if sku_id in s["sku_ids"]]


@handles("get_sku_subscriptions")
def list_sku_subscriptions(ctx: Ctx) -> Any:
    rows = _subscriptions(ctx)
    user_id = ctx.query.get("user_id")
    if ctx.is_bot and user_id is None:
        raise form_error("user_id", "BASE_TYPE_REQUIRED", "This field is required")
    if ctx.caller.token is not None:
        user_id = ctx.caller.token.user_id
    rows = [s for s in rows if s["user_id"] == str(user_id)]
    return paginate_ids(
        rows, ctx.query.get("before"), ctx.query.get("after"), ctx.query.get("limit", 50)
    )


@handles("get_sku_subscription")
def get_sku_subscription(ctx: Ctx) -> Any:
    for subscription in _subscriptions(ctx):
        if subscription["id"] == ctx.path["subscription_id"]:
            if ctx.caller.token is not None and subscription["user_id"] != ctx.caller.token.user_id:
                break
            return subscription
    raise not_found()  # Discord's code for an unknown subscription is not documented


# -- role connections ------------------------------------------------------------------------------


@handles("get_application_role_connections_metadata")
def get_role_connection_metadata(ctx: Ctx) -> Any:
    app = _own_application(ctx)
    return list(ctx.world.role_connection_metadata.get(app.client_id, ()))


@handles("update_application_role_connections_metadata")
def update_role_connection_metadata(ctx: Ctx) -> Any:
    app = _own_application(ctx)
    records = [clean(item) for item in ctx.body or ()]
    keys = [r["key"] for r in records]
    if len(keys) != len(set(keys)):
        raise form_error(
            "_errors", "APPLICATION_ROLE_CONNECTIONS_METADATA_DUPLICATE_KEY", "Duplicate key"
        )
    ctx.world.role_connection_metadata[app.client_id] = records
    return records


def _user_role_connection(ctx: Ctx) -> tuple[str, str]:
    token = ctx.caller.token
    app_id = ctx.path["application_id"]
    if app_id not in ctx.state.applications:
        raise unknown(10002, "Application")
    if token is None or token.client_id != app_id:
        raise not_authorized_for_application()
    return app_id, token.user_id


@handles("get_application_user_role_connection")
def get_user_role_connection(ctx: Ctx) -> Any:
    key = _user_role_connection(ctx)
    return ctx.world.role_connections.get(
        key, {"platform_name": None, "platform_username": None, "metadata": {}}
    )


@handles("update_application_user_role_connection")
def update_user_role_connection(ctx: Ctx) -> Any:
    key = _user_role_connection(ctx)
    body = ctx.body_dict()
    known = {m["key"]: m for m in ctx.world.role_connection_metadata.get(key[0], ())}
    metadata = {str(k): str(v) for k, v in (body.get("metadata") or {}).items()}
    for name in metadata:
        if name not in known:
            raise form_error(
                f"metadata.{name}",
                "APPLICATION_ROLE_CONNECTION_METADATA_UNKNOWN_KEY",
                "Unknown metadata key",
            )
    current = ctx.world.role_connections.setdefault(
        key, {"platform_name": None, "platform_username": None, "metadata": {}}
    )
    for field in ("platform_name", "platform_username"):
        if field in body:
            current[field] = body[field]
    if "metadata" in body:
        current["metadata"] = metadata
    return current


@handles("delete_application_user_role_connection")
def delete_user_role_connection(ctx: Ctx) -> Any:
    key = _user_role_connection(ctx)
    ctx.world.role_connections.pop(key, None)
    return Reply(None, 204)


@handles("get_bot_gateway")
def get_bot_gateway(ctx: Ctx) -> Any:
    return {
        "url": "wss://gateway.discord.gg",
        "shards": 1,
        "session_start_limit": {
            "total": 1000,
            "remaining": 1000,
            "reset_after": 0,
            "max_concurrency": 1,
        },
    }


def not_ours() -> DiscordError:
    return not_authorized_for_application()
