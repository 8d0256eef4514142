"""Guilds, roles, members, bans, the audit log, and the guild's expressions and events.

Permissions (resources/guild.mdx and friends): Manage Guild to edit the guild, its widget and
welcome screen; Manage Roles for roles (only below the caller's highest role, and never granting
permissions the caller lacks); Kick Members, Ban Members (and Manage Guild for bulk bans),
Manage Nicknames, Moderate Members for members (never the owner, only members below the caller);
View Audit Log to read the log; Create/Manage Guild Expressions for emojis, stickers and sounds;
Create/Manage Events for scheduled events; Manage Guild for auto-moderation and templates.
"""

from __future__ import annotations

import secrets
from typing import Any

from tokenward.sandbox import fixtures as fx
from tokenward.sandbox.errors import DiscordError, bad_request, missing_access, not_found, unknown
from tokenward.sandbox.families.common import (
    actor,
    apply_changes,
    audit,
    form_error,
    guild_for,
    paginate_ids,
)
from tokenward.sandbox.families.messages import clean
from tokenward.sandbox.rest import Ctx, Reply, handles
from tokenward.sandbox.world import GuildState, Member, World

GUILD_FIELDS = (
    "name",
    "description",
    "icon",
    "banner",
    "splash",
    "discovery_splash",
    "home_header",
    "afk_channel_id",
    "afk_timeout",
    "system_channel_id",
    "system_channel_flags",
    "rules_channel_id",
    "public_updates_channel_id",
    "safety_alerts_channel_id",
    "verification_level",
    "default_message_notifications",
    "explicit_content_filter",
    "preferred_locale",
    "features",
    "premium_progress_bar_enabled",
)
ROLE_FIELDS = ("name", "permissions", "color", "hoist", "mentionable", "icon", "unicode_emoji")


def _image_required(ctx: Ctx, field: str) -> None:
    value = ctx.body_dict().get(field)
    if not isinstance(value, str) or not value.startswith("data:") or ";base64," not in value:
        raise form_error(field, "IMAGE_INVALID", "Invalid image data")


# -- the guild -------------------------------------------------------------------------------------


@handles("get_guild")
def get_guild(ctx: Ctx) -> Any:
    guild = guild_for(ctx)
    return ctx.world.guild_object(guild, bool(ctx.query.get("with_counts")))


@handles("update_guild")
def update_guild(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    if "owner_id" in body and body["owner_id"] is not None:
        if user != guild.owner_id:
            raise DiscordError(403, 50013, "Missing Permissions")
        if str(body["owner_id"]) not in guild.members:
            raise unknown(10007, "Member")
        guild.data["owner_id"] = str(body["owner_id"])
    updates = {
        k: v
        for k, v in body.items()
        if k in GUILD_FIELDS
        and (
            v is not None
            or k
            in ("description", "icon", "banner", "splash", "afk_channel_id", "system_channel_id")
        )
    }
    changes = apply_changes(guild.data, updates, GUILD_FIELDS)
    audit(ctx, guild, 1, guild.id, changes)
    return world.guild_object(guild)


@handles("get_guild_preview")
def get_guild_preview(ctx: Ctx) -> Any:
    world = ctx.world
    guild = world.member_guild(ctx.path["guild_id"], ctx.actor)
    data = guild.data
    return {
        "id": guild.id,
        "name": data["name"],
        "icon": data.get("icon"),
        "description": data.get("description"),
        "home_header": None,
        "splash": data.get("splash"),
        "discovery_splash": None,
        "features": list(data.get("features", ())),
        "approximate_member_count": data["approximate_member_count"],
        "approximate_presence_count": data["approximate_presence_count"],
        "emojis": list(guild.emojis.values()),
        "stickers": list(guild.stickers.values()),
    }


@handles("get_guild_vanity_url")
def get_guild_vanity_url(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    return {"code": guild.data.get("vanity_url_code"), "uses": 0}


@handles("get_guild_widget_settings")
def get_widget_settings(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    return dict(guild.widget)


@handles("update_guild_widget_settings")
def update_widget_settings(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    body = ctx.body_dict()
    changes = []
    if body.get("enabled") is not None:
        changes += apply_changes(guild.widget, {"enabled": body["enabled"]}, ("enabled",))
        guild.data["widget_enabled"] = body["enabled"]
    if "channel_id" in body:
        channel_id = body["channel_id"]
        if (
            channel_id is not None
            and ctx.world.channels.get(str(channel_id), {}).get("guild_id") != guild.id
        ):
            raise unknown(10003, "Channel")
        changes += apply_changes(guild.widget, {"channel_id": channel_id}, ("channel_id",))
    renamed = [(("widget_" + key), old, new) for key, old, new in changes]
    audit(ctx, guild, 1, guild.id, renamed)
    return dict(guild.widget)


@handles("get_guild_welcome_screen")
def get_welcome_screen(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    return dict(guild.welcome_screen)


@handles("update_guild_welcome_screen")
def update_welcome_screen(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    body = ctx.body_dict()
    if "description" in body:
        guild.welcome_screen["description"] = body["description"]
    if body.get("welcome_channels") is not None:
        guild.welcome_screen["welcome_channels"] = clean(body["welcome_channels"])
    if body.get("enabled") is not None:
        guild.welcome_screen["enabled"] = body["enabled"]
    return {k: v for k, v in guild.welcome_screen.items() if k != "enabled"}


@handles("put_guilds_onboarding")
def put_onboarding(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD, fx.MANAGE_ROLES)
    body = ctx.body_dict()
    for key in ("prompts", "default_channel_ids", "enabled", "mode"):
        if body.get(key) is not None:
            guild.onboarding[key] = clean(body[key])
    audit(ctx, guild, 167, guild.id)
    return dict(guild.onboarding)


@handles("get_guilds_onboarding")
def get_onboarding(ctx: Ctx) -> Any:
    guild = guild_for(ctx)
    return {k: v for k, v in guild.onboarding.items() if k != "below_requirements"}


@handles("guild_role_member_counts")
def role_member_counts(ctx: Ctx) -> Any:
    guild = guild_for(ctx)
    counts = {role_id: 0 for role_id in guild.roles if role_id != guild.id}
    for member in guild.members.values():
        for role_id in member.roles:
            if role_id in counts:
                counts[role_id] += 1
    return counts


@handles("leave_guild")
def leave_guild(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    guild = world.guild(ctx.path["guild_id"])
    if user not in guild.members:
        raise unknown(10004, "Guild")
    if user == guild.owner_id:
        raise bad_request(50055, "Invalid guild")
    del guild.members[user]
    return Reply(None, 204)


# -- roles -----------------------------------------------------------------------------------------


def _role(guild: GuildState, role_id: str) -> dict[str, Any]:
    role = guild.roles.get(role_id)
    if role is None:
        raise unknown(10011, "Role")
    return role


def _grantable(world: World, guild: GuildState, user: str, permissions: int) -> None:
    if permissions & ~world.base_permissions(guild, user):
        raise DiscordError(403, 50013, "Missing Permissions")


@handles("list_guild_roles")
def list_guild_roles(ctx: Ctx) -> Any:
    return ctx.world.sorted_roles(guild_for(ctx))


@handles("get_guild_role")
def get_guild_role(ctx: Ctx) -> Any:
    guild = guild_for(ctx)
    return dict(_role(guild, ctx.path["role_id"]))


def _role_updates(body: dict[str, Any]) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    for key in ROLE_FIELDS:
        if key in body and (body[key] is not None or key in ("icon", "unicode_emoji")):
            updates[key] = body[key]
    if "permissions" in updates:
        updates["permissions"] = str(int(updates["permissions"]))
    colors = body.get("colors")
    if colors:
        updates["color"] = colors.get("primary_color") or updates.get("color", 0)
    return updates


@handles("create_guild_role")
def create_guild_role(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    guild = guild_for(ctx, fx.MANAGE_ROLES)
    if len(guild.roles) >= 250:
        raise bad_request(30005, "Maximum number of guild roles reached (250)")
    updates = _role_updates(body)
    permissions = int(updates.get("permissions", guild.roles[guild.id]["permissions"]))
    _grantable(world, guild, user, permissions)
    for other in guild.roles.values():
        if other["id"] != guild.id:
            other["position"] = int(other["position"]) + 1
    role = {
        "id": world.new_id(),
        "name": updates.get("name") or "new role",
        "permissions": str(permissions),
        "position": 1,
        "color": updates.get("color", 0),
        "colors": {
            "primary_color": updates.get("color", 0),
            "secondary_color": None,
            "tertiary_color": None,
        },
        "hoist": bool(updates.get("hoist")),
        "managed": False,
        "mentionable": bool(updates.get("mentionable")),
        "icon": updates.get("icon"),
        "unicode_emoji": updates.get("unicode_emoji"),
        "flags": 0,
    }
    guild.roles[role["id"]] = role
    changes = [(k, None, role[k]) for k in ("name", "permissions", "color", "hoist", "mentionable")]
    audit(ctx, guild, 30, role["id"], changes)
    return dict(role)


@handles("update_guild_role")
def update_guild_role(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    guild = guild_for(ctx, fx.MANAGE_ROLES)
    role = _role(guild, ctx.path["role_id"])
    if role["id"] != guild.id:
        world.require_above_role(guild, user, role["id"])
    updates = _role_updates(ctx.body_dict())
    if "permissions" in updates:
        _grantable(world, guild, user, int(updates["permissions"]))
    if "color" in updates:
        role["colors"] = {**role.get("colors", {}), "primary_color": updates["color"]}
    changes = apply_changes(role, updates, ROLE_FIELDS)
    audit(ctx, guild, 31, role["id"], changes)
    return dict(role)


@handles("delete_guild_role")
def delete_guild_role(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    guild = guild_for(ctx, fx.MANAGE_ROLES)
    role = _role(guild, ctx.path["role_id"])
    if role["id"] == guild.id or role.get("managed"):
        raise bad_request(50028, "Invalid role")
    world.require_above_role(guild, user, role["id"])
    del guild.roles[role["id"]]
    for member in guild.members.values():
        if role["id"] in member.roles:
            member.roles.remove(role["id"])
    audit(ctx, guild, 32, role["id"], [("name", role["name"], None)])
    return Reply(None, 204)


@handles("bulk_update_guild_roles")
def bulk_update_guild_roles(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    guild = guild_for(ctx, fx.MANAGE_ROLES)
    mine = world.highest_position(guild, user)
    for item in ctx.body or ():
        role = _role(guild, str(item["id"]))
        position = item.get("position")
        if position is None:
            continue
        if user != guild.owner_id and (int(role["position"]) >= mine or position >= mine):
            raise DiscordError(403, 50013, "Missing Permissions")
        role["position"] = position
    return world.sorted_roles(guild)


# -- members ---------------------------------------------------------------------------------------


@handles("get_guild_member")
def get_guild_member(ctx: Ctx) -> Any:
    guild = guild_for(ctx)
    return ctx.world.member_object(guild, ctx.path["user_id"])


@handles("list_guild_members")
def list_guild_members(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx)
    after = int(ctx.query.get("after") or 0)
    ids = sorted((u for u in guild.members if int(u) > after), key=int)[: ctx.query.get("limit", 1)]
    return [world.member_object(guild, user_id) for user_id in ids]


@handles("search_guild_members")
def search_guild_members(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx)
    query = str(ctx.query.get("query", "")).lower()
    found = []
    for user_id, member in sorted(guild.members.items(), key=lambda kv: int(kv[0])):
        names = [world.user_object(user_id)["username"], member.nick or ""]
        if any(name.lower().startswith(query) for name in names if name):
            found.append(world.member_object(guild, user_id))
    return found[: ctx.query.get("limit", 1)]


@handles("add_guild_member")
def add_guild_member(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    guild = guild_for(ctx, fx.CREATE_INSTANT_INVITE)
    target = ctx.path["user_id"]
    if target in guild.members:
        return Reply(None, 204)
    token = ctx.state.valid_access_token(str(body.get("access_token") or ""))
    if token is None or token.user_id != target or "guilds.join" not in token.scopes:
        raise DiscordError(403, 50025, "Invalid OAuth2 access token provided")
    if target in guild.bans:
        raise DiscordError(403, 40007, "The user is banned from this guild.")
    roles = [str(r) for r in body.get("roles") or ()]
    for role_id in roles:
        _role(guild, role_id)
        world.require_above_role(guild, user, role_id)
    if roles:
        world.require_guild_permission(guild, user, fx.MANAGE_ROLES)
    guild.members[target] = Member(
        target,
        roles,
        body.get("nick"),
        world.now_iso(),
        deaf=bool(body.get("deaf")),
        mute=bool(body.get("mute")),
    )
    return Reply(world.member_object(guild, target), 201)


@handles("update_guild_member")
def update_guild_member(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    guild = guild_for(ctx)
    target = ctx.path["user_id"]
    member = guild.members.get(target)
    if member is None:
        raise unknown(10007, "Member")
    changes: list[tuple[str, Any, Any]] = []
    if "nick" in body:
        world.require_guild_permission(guild, user, fx.MANAGE_NICKNAMES)
        world.require_above_member(guild, user, target)
        changes.append(("nick", member.nick, body["nick"]))
        member.nick = body["nick"] or None
    if body.get("roles") is not None:
        world.require_guild_permission(guild, user, fx.MANAGE_ROLES)
        wanted = [str(r) for r in body["roles"] if r is not None]
        for role_id in set(wanted) ^ set(member.roles):
            _role(guild, role_id)
            world.require_above_role(guild, user, role_id)
        added = [r for r in wanted if r not in member.roles]
        removed = [r for r in member.roles if r not in wanted]
        member.roles = list(dict.fromkeys(wanted))
        role_changes = []
        if added:
            role_changes.append(
                ("$add", None, [{"id": r, "name": guild.roles[r]["name"]} for r in added])
            )
        if removed:
            role_changes.append(
                ("$remove", None, [{"id": r, "name": guild.roles[r]["name"]} for r in removed])
            )
        if role_changes:
            audit(ctx, guild, 25, target, role_changes)
    for key, perm in (("mute", fx.MUTE_MEMBERS), ("deaf", fx.DEAFEN_MEMBERS)):
        if body.get(key) is not None:
            world.require_guild_permission(guild, user, perm)
            changes.append((key, getattr(member, key), body[key]))
            setattr(member, key, bool(body[key]))
    if "communication_disabled_until" in body:
        world.require_guild_permission(guild, user, fx.MODERATE_MEMBERS)
        world.require_above_member(guild, user, target)
        changes.append(
            (
                "communication_disabled_until",
                member.communication_disabled_until,
                body["communication_disabled_until"],
            )
        )
        member.communication_disabled_until = body["communication_disabled_until"]
    if "channel_id" in body:
        world.require_guild_permission(guild, user, fx.MOVE_MEMBERS)
        if target not in guild.voice_states:
            raise bad_request(40032, "Target user is not connected to voice.")
        if body["channel_id"] is None:
            del guild.voice_states[target]
        else:
            guild.voice_states[target]["channel_id"] = str(body["channel_id"])
    if body.get("flags") is not None:
        world.require_guild_permission(guild, user, fx.MANAGE_GUILD)
        member.flags = int(body["flags"])
    if changes:
        audit(ctx, guild, 24, target, changes)
    return world.member_object(guild, target)


@handles("update_my_guild_member")
def update_my_guild_member(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    guild = guild_for(ctx)
    member = guild.members[user]
    if "nick" in body:
        world.require_guild_permission(guild, user, fx.CHANGE_NICKNAME)
        audit(ctx, guild, 24, user, [("nick", member.nick, body["nick"])])
        member.nick = body["nick"] or None
    for key in ("avatar", "banner", "bio"):
        if key in body:
            setattr(member, key, body[key])
    result = world.member_object(guild, user)
    result["bio"] = member.bio
    return result


def _kick_target(ctx: Ctx, perm: int) -> tuple[GuildState, str]:
    guild = guild_for(ctx, perm)
    target = ctx.path["user_id"]
    ctx.world.require_above_member(ctx.world.guilds[guild.id], actor(ctx), target)
    return guild, target


@handles("delete_guild_member")
def kick_member(ctx: Ctx) -> Any:
    guild, target = _kick_target(ctx, fx.KICK_MEMBERS)
    if target not in guild.members:
        raise unknown(10007, "Member")
    del guild.members[target]
    audit(ctx, guild, 20, target)
    return Reply(None, 204)


@handles("add_guild_member_role")
def add_member_role(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    guild = guild_for(ctx, fx.MANAGE_ROLES)
    member = guild.members.get(ctx.path["user_id"])
    if member is None:
        raise unknown(10007, "Member")
    role = _role(guild, ctx.path["role_id"])
    world.require_above_role(guild, user, role["id"])
    if role.get("managed"):
        raise DiscordError(403, 50013, "Missing Permissions")
    if role["id"] not in member.roles:
        member.roles.append(role["id"])
        audit(
            ctx,
            guild,
            25,
            member.user_id,
            [("$add", None, [{"id": role["id"], "name": role["name"]}])],
        )
    return Reply(None, 204)


@handles("delete_guild_member_role")
def remove_member_role(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    guild = guild_for(ctx, fx.MANAGE_ROLES)
    member = guild.members.get(ctx.path["user_id"])
    if member is None:
        raise unknown(10007, "Member")
    role = _role(guild, ctx.path["role_id"])
    world.require_above_role(guild, user, role["id"])
    if role["id"] in member.roles:
        member.roles.remove(role["id"])
        audit(
            ctx,
            guild,
            25,
            member.user_id,
            [("$remove", None, [{"id": role["id"], "name": role["name"]}])],
        )
    return Reply(None, 204)


# -- bans ------------------------------------------------------------------------------------------


def _ban_object(world: World, user_id: str, reason: str | None) -> dict[str, Any]:
    return {"user": world.user_object(user_id), "reason": reason}


@handles("list_guild_bans")
def list_guild_bans(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx, fx.BAN_MEMBERS)
    rows = [{"id": user_id, "reason": reason} for user_id, reason in guild.bans.items()]
    page = paginate_ids(
        rows, ctx.query.get("before"), ctx.query.get("after"), ctx.query.get("limit", 1000)
    )
    return [_ban_object(world, row["id"], row["reason"]) for row in page]


@handles("get_guild_ban")
def get_guild_ban(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.BAN_MEMBERS)
    target = ctx.path["user_id"]
    if target not in guild.bans:
        raise unknown(10026, "Ban")
    return _ban_object(ctx.world, target, guild.bans[target])


def _ban(ctx: Ctx, guild: GuildState, target: str, delete_seconds: int) -> None:
    world = ctx.world
    if not world.user_exists(target):
        raise unknown(10013, "User")
    if target in guild.members:
        world.require_above_member(guild, actor(ctx), target)
        del guild.members[target]
    guild.bans[target] = ctx.reason
    if delete_seconds:
        cutoff = world.now() - delete_seconds
        for channel_id, messages in world.messages.items():
            if world.channels.get(channel_id, {}).get("guild_id") != guild.id:
                continue
            for message_id, message in list(messages.items()):
                created = ((int(message_id) >> 22) + fx.DISCORD_EPOCH_MS) / 1000
                if message["author"]["id"] == target and created >= cutoff:
                    del messages[message_id]
    audit(ctx, guild, 22, target)


@handles("ban_user_from_guild")
def ban_user(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.BAN_MEMBERS)
    body = ctx.body_dict()
    seconds = body.get("delete_message_seconds")
    if seconds is None and body.get("delete_message_days") is not None:
        seconds = int(body["delete_message_days"]) * 86400
    _ban(ctx, guild, ctx.path["user_id"], int(seconds or 0))
    return Reply(None, 204)


@handles("unban_user_from_guild")
def unban_user(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.BAN_MEMBERS)
    target = ctx.path["user_id"]
    if target not in guild.bans:
        raise unknown(10026, "Ban")
    del guild.bans[target]
    audit(ctx, guild, 23, target)
    return Reply(None, 204)


@handles("bulk_ban_users_from_guild")
def bulk_ban(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.BAN_MEMBERS, fx.MANAGE_GUILD)
    body = ctx.body_dict()
    banned, failed = [], []
    for target in dict.fromkeys(str(u) for u in body["user_ids"]):
        try:
            if target in guild.bans:
                raise unknown(10026, "Ban")
            _ban(ctx, guild, target, int(body.get("delete_message_seconds") or 0))
            banned.append(target)
        except DiscordError:
            failed.append(target)
    if not banned:
        raise bad_request(500000, "Failed to ban users")
    return {"banned_users": banned, "failed_users": failed}


# -- prune -----------------------------------------------------------------------------------------


def _prunable(guild: GuildState, include_roles: set[str]) -> list[str]:
    """Members the sandbox treats as inactive: no roles (or only ``include_roles``), not bots."""
    result = []
    for user_id, member in guild.members.items():
        if user_id == guild.owner_id or user_id.startswith("13000000000000009"):
            continue
        if set(member.roles) <= include_roles:
            result.append(user_id)
    return result


@handles("preview_prune_guild")
def preview_prune(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.KICK_MEMBERS)
    roles = ctx.query.get("include_roles") or []
    roles = roles if isinstance(roles, list) else str(roles).split(",")
    return {"pruned": len(_prunable(guild, {str(r) for r in roles}))}


@handles("prune_guild")
def prune_guild(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.KICK_MEMBERS, fx.MANAGE_GUILD)
    body = ctx.body_dict()
    targets = _prunable(guild, {str(r) for r in body.get("include_roles") or ()})
    for user_id in targets:
        del guild.members[user_id]
    audit(
        ctx,
        guild,
        21,
        None,
        options={
            "delete_member_days": str(body.get("days") or 7),
            "members_removed": str(len(targets)),
        },
    )
    return {"pruned": None if body.get("compute_prune_count") is False else len(targets)}


# -- audit log -------------------------------------------------------------------------------------


@handles("list_guild_audit_log_entries")
def list_audit_log(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx, fx.VIEW_AUDIT_LOG)
    entries = list(guild.audit_log)
    q = ctx.query
    if q.get("user_id") is not None:
        entries = [e for e in entries if e.get("user_id") == q["user_id"]]
    if q.get("target_id") is not None:
        entries = [e for e in entries if e.get("target_id") == q["target_id"]]
    if q.get("action_type") is not None:
        entries = [e for e in entries if e["action_type"] == q["action_type"]]
    limit = q.get("limit", 50)
    page = paginate_ids(entries, q.get("before"), q.get("after"), limit)
    if q.get("after") is None:
        page.sort(key=lambda e: int(e["id"]), reverse=True)
    user_ids = {e["user_id"] for e in page if e.get("user_id")}
    user_ids |= {
        e["target_id"]
        for e in page
        if e.get("target_id") and world.user_exists(str(e["target_id"]))
    }
    return {
        "audit_log_entries": page,
        "users": [world.user_object(u) for u in sorted(user_ids)],
        "integrations": [],
        "webhooks": [],
        "guild_scheduled_events": [],
        "threads": [],
        "application_commands": [],
        "auto_moderation_rules": [],
    }


# -- integrations, voice ---------------------------------------------------------------------------


@handles("list_guild_integrations")
def list_integrations(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    return list(guild.integrations.values())


@handles("delete_guild_integration")
def delete_integration(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    integration = guild.integrations.pop(ctx.path["integration_id"], None)
    if integration is None:
        raise unknown(10005, "Integration")
    audit(ctx, guild, 82, integration["id"], [("name", integration["name"], None)])
    return Reply(None, 204)


def _voice_state(ctx: Ctx, user_id: str) -> dict[str, Any]:
    guild = guild_for(ctx)
    state = guild.voice_states.get(user_id)
    if state is None:
        raise unknown(10065, "Voice State")
    return state


@handles("get_self_voice_state")
def get_self_voice_state(ctx: Ctx) -> Any:
    return _voice_state(ctx, actor(ctx))


@handles("get_voice_state")
def get_voice_state(ctx: Ctx) -> Any:
    return _voice_state(ctx, ctx.path["user_id"])


@handles("update_self_voice_state", "update_voice_state")
def update_voice_state(ctx: Ctx) -> Any:
    user = ctx.path.get("user_id") or actor(ctx)
    state = _voice_state(ctx, user)
    if ctx.path.get("user_id"):
        ctx.world.require_guild_permission(
            ctx.world.guilds[ctx.path["guild_id"]], actor(ctx), fx.MUTE_MEMBERS
        )
    body = ctx.body_dict()
    if body.get("suppress") is not None:
        state["suppress"] = body["suppress"]
    if "request_to_speak_timestamp" in body:
        state["request_to_speak_timestamp"] = body["request_to_speak_timestamp"]
    return Reply(None, 204)


# -- emojis and stickers ---------------------------------------------------------------------------


def _expressions(ctx: Ctx) -> GuildState:
    guild = guild_for(ctx)
    ctx.world.require_any_guild_permission(
        guild, actor(ctx), fx.MANAGE_GUILD_EXPRESSIONS, fx.CREATE_GUILD_EXPRESSIONS
    )
    return guild


@handles("list_guild_emojis")
def list_guild_emojis(ctx: Ctx) -> Any:
    return list(guild_for(ctx).emojis.values())


@handles("get_guild_emoji")
def get_guild_emoji(ctx: Ctx) -> Any:
    emoji = guild_for(ctx).emojis.get(ctx.path["emoji_id"])
    if emoji is None:
        raise unknown(10014, "Emoji")
    return emoji


@handles("create_guild_emoji")
def create_guild_emoji(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    guild = _expressions(ctx)
    _image_required(ctx, "image")
    if len(guild.emojis) >= 50:
        raise bad_request(30008, "Maximum number of emojis reached (50)")
    emoji = {
        "id": world.new_id(),
        "name": body["name"],
        "roles": [str(r) for r in body.get("roles") or () if r is not None],
        "require_colons": True,
        "managed": False,
        "animated": str(body["image"]).startswith("data:image/gif"),
        "available": True,
        "user": world.user_object(actor(ctx)),
    }
    guild.emojis[emoji["id"]] = emoji
    audit(ctx, guild, 60, emoji["id"], [("name", None, emoji["name"])])
    return Reply(emoji, 201)


@handles("update_guild_emoji")
def update_guild_emoji(ctx: Ctx) -> Any:
    guild = _expressions(ctx)
    emoji = guild.emojis.get(ctx.path["emoji_id"])
    if emoji is None:
        raise unknown(10014, "Emoji")
    body = ctx.body_dict()
    updates = {k: v for k, v in body.items() if k == "name" and v is not None}
    if body.get("roles") is not None:
        updates["roles"] = [str(r) for r in body["roles"] if r is not None]
    changes = apply_changes(emoji, updates, ("name", "roles"))
    audit(ctx, guild, 61, emoji["id"], changes)
    return emoji


@handles("delete_guild_emoji")
def delete_guild_emoji(ctx: Ctx) -> Any:
    guild = _expressions(ctx)
    emoji = guild.emojis.pop(ctx.path["emoji_id"], None)
    if emoji is None:
        raise unknown(10014, "Emoji")
    audit(ctx, guild, 62, emoji["id"], [("name", emoji["name"], None)])
    return Reply(None, 204)


@handles("list_guild_stickers")
def list_guild_stickers(ctx: Ctx) -> Any:
    return list(guild_for(ctx).stickers.values())


def _sticker(guild: GuildState, sticker_id: str) -> dict[str, Any]:
    sticker = guild.stickers.get(sticker_id)
    if sticker is None:
        raise unknown(10060, "Sticker")
    return sticker


@handles("get_guild_sticker")
def get_guild_sticker(ctx: Ctx) -> Any:
    return _sticker(guild_for(ctx), ctx.path["sticker_id"])


@handles("create_guild_sticker")
def create_guild_sticker(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    guild = _expressions(ctx)
    if not body.get("file"):
        raise form_error("file", "BASE_TYPE_REQUIRED", "This field is required")
    sticker = {
        "id": world.new_id(),
        "name": body["name"],
        "tags": body["tags"],
        "type": 2,
        "format_type": 1,
        "description": body.get("description"),
        "available": True,
        "guild_id": guild.id,
        "user": world.user_object(actor(ctx)),
    }
    guild.stickers[sticker["id"]] = sticker
    audit(ctx, guild, 90, sticker["id"], [("name", None, sticker["name"])])
    return Reply(sticker, 201)


@handles("update_guild_sticker")
def update_guild_sticker(ctx: Ctx) -> Any:
    guild = _expressions(ctx)
    sticker = _sticker(guild, ctx.path["sticker_id"])
    body = {k: v for k, v in ctx.body_dict().items() if v is not None or k == "description"}
    changes = apply_changes(sticker, body, ("name", "tags", "description"))
    audit(ctx, guild, 91, sticker["id"], changes)
    return sticker


@handles("delete_guild_sticker")
def delete_guild_sticker(ctx: Ctx) -> Any:
    guild = _expressions(ctx)
    sticker = _sticker(guild, ctx.path["sticker_id"])
    del guild.stickers[sticker["id"]]
    audit(ctx, guild, 92, sticker["id"], [("name", sticker["name"], None)])
    return Reply(None, 204)


@handles("get_sticker")
def get_sticker(ctx: Ctx) -> Any:
    sticker_id = ctx.path["sticker_id"]
    for pack in fx.STICKER_PACKS:
        for sticker in pack["stickers"]:
            if sticker["id"] == sticker_id:
                return sticker
    for guild in ctx.world.guilds.values():
        if sticker_id in guild.stickers:
            sticker = dict(guild.stickers[sticker_id])
            if ctx.actor not in guild.members:
                sticker.pop("user", None)
            return sticker
    raise unknown(10060, "Sticker")


@handles("get_sticker_pack")
def get_sticker_pack(ctx: Ctx) -> Any:
    for pack in fx.STICKER_PACKS:
        if pack["id"] == ctx.path["pack_id"]:
            return pack
    raise unknown(10061, "Sticker Pack")


# -- soundboard ------------------------------------------------------------------------------------


@handles("list_guild_soundboard_sounds")
def list_soundboard(ctx: Ctx) -> Any:
    return {"items": list(guild_for(ctx).soundboard.values())}


def _sound(guild: GuildState, sound_id: str) -> dict[str, Any]:
    sound = guild.soundboard.get(sound_id)
    if sound is None:
        raise unknown(10097, "Soundboard Sound")
    return sound


@handles("get_guild_soundboard_sound")
def get_sound(ctx: Ctx) -> Any:
    return _sound(guild_for(ctx), ctx.path["sound_id"])


@handles("create_guild_soundboard_sound")
def create_sound(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    guild = _expressions(ctx)
    sound = {
        "name": body["name"],
        "sound_id": world.new_id(),
        "volume": body.get("volume") if body.get("volume") is not None else 1.0,
        "emoji_id": body.get("emoji_id"),
        "emoji_name": body.get("emoji_name"),
        "guild_id": guild.id,
        "available": True,
        "user": world.user_object(actor(ctx)),
    }
    guild.soundboard[sound["sound_id"]] = sound
    audit(ctx, guild, 130, sound["sound_id"], [("name", None, sound["name"])])
    return Reply(sound, 201)


@handles("update_guild_soundboard_sound")
def update_sound(ctx: Ctx) -> Any:
    guild = _expressions(ctx)
    sound = _sound(guild, ctx.path["sound_id"])
    body = {k: v for k, v in ctx.body_dict().items() if v is not None}
    changes = apply_changes(sound, body, ("name", "volume", "emoji_id", "emoji_name"))
    audit(ctx, guild, 131, sound["sound_id"], changes)
    return sound


@handles("delete_guild_soundboard_sound")
def delete_sound(ctx: Ctx) -> Any:
    guild = _expressions(ctx)
    sound = _sound(guild, ctx.path["sound_id"])
    del guild.soundboard[sound["sound_id"]]
    audit(ctx, guild, 132, sound["sound_id"], [("name", sound["name"], None)])
    return Reply(None, 204)


# -- scheduled events ------------------------------------------------------------------------------


def _event(guild: GuildState, event_id: str) -> dict[str, Any]:
    event = guild.events.get(event_id)
    if event is None:
        raise unknown(10070, "Guild Scheduled Event")
    return event


def _with_count(guild: GuildState, event: dict[str, Any], counted: bool) -> dict[str, Any]:
    body = dict(event)
    body.setdefault("guild_scheduled_event_exceptions", [])
    if counted:
        body["user_count"] = len(guild.event_users.get(str(event["id"]), ()))
    else:
        body.pop("user_count", None)
    return body


@handles("list_guild_scheduled_events")
def list_events(ctx: Ctx) -> Any:
    guild = guild_for(ctx)
    counted = bool(ctx.query.get("with_user_count"))
    return [_with_count(guild, e, counted) for e in guild.events.values()]


@handles("get_guild_scheduled_event")
def get_event(ctx: Ctx) -> Any:
    guild = guild_for(ctx)
    event = _event(guild, ctx.path["guild_scheduled_event_id"])
    return _with_count(guild, event, bool(ctx.query.get("with_user_count")))


def _event_channel(ctx: Ctx, guild: GuildState, entity_type: int, channel_id: Any) -> str | None:
    if entity_type == 3:
        return None
    if channel_id is None:
        raise form_error("channel_id", "BASE_TYPE_REQUIRED", "This field is required")
    channel = ctx.world.channels.get(str(channel_id))
    wanted = 13 if entity_type == 1 else 2
    if channel is None or channel.get("guild_id") != guild.id or channel.get("type") != wanted:
        raise form_error("channel_id", "GUILD_SCHEDULED_EVENT_INVALID_CHANNEL", "Invalid channel")
    return str(channel_id)


@handles("create_guild_scheduled_event")
def create_event(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    guild = guild_for(ctx)
    world.require_any_guild_permission(guild, user, fx.MANAGE_EVENTS, fx.CREATE_EVENTS)
    entity_type = int(body["entity_type"])
    metadata = body.get("entity_metadata")
    if entity_type == 3:
        if not (metadata or {}).get("location"):
            raise form_error(
                "entity_metadata.location", "BASE_TYPE_REQUIRED", "This field is required"
            )
        if not body.get("scheduled_end_time"):
            raise form_error("scheduled_end_time", "BASE_TYPE_REQUIRED", "This field is required")
    event = {
        "id": world.new_id(),
        "guild_id": guild.id,
        "channel_id": _event_channel(ctx, guild, entity_type, body.get("channel_id")),
        "creator_id": user,
        "creator": world.user_object(user),
        "name": body["name"],
        "description": body.get("description"),
        "image": None,
        "scheduled_start_time": body["scheduled_start_time"],
        "scheduled_end_time": body.get("scheduled_end_time"),
        "privacy_level": body.get("privacy_level") or 2,
        "status": 1,
        "entity_type": entity_type,
        "entity_id": None,
        "entity_metadata": clean(metadata) if metadata else None,
        "recurrence_rule": clean(body["recurrence_rule"]) if body.get("recurrence_rule") else None,
        "guild_scheduled_event_exceptions": [],
    }
    guild.events[event["id"]] = event
    guild.event_users[event["id"]] = []
    audit(ctx, guild, 100, event["id"], [("name", None, event["name"])])
    return _with_count(guild, event, True)


@handles("update_guild_scheduled_event")
def update_event(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    guild = guild_for(ctx)
    event = _event(guild, ctx.path["guild_scheduled_event_id"])
    if event["creator_id"] != user:
        world.require_guild_permission(guild, user, fx.MANAGE_EVENTS)
    else:
        world.require_any_guild_permission(guild, user, fx.MANAGE_EVENTS, fx.CREATE_EVENTS)
    updates = {
        k: v
        for k, v in body.items()
        if v is not None or k in ("description", "channel_id", "scheduled_end_time")
    }
    if "entity_type" in updates or "channel_id" in updates:
        entity_type = int(updates.get("entity_type", event["entity_type"]))
        updates["channel_id"] = _event_channel(
            ctx, guild, entity_type, updates.get("channel_id", event["channel_id"])
        )
    if "entity_metadata" in updates and updates["entity_metadata"] is not None:
        updates["entity_metadata"] = clean(updates["entity_metadata"])
    status = updates.get("status")
    if status is not None and (event["status"], status) not in ((1, 2), (1, 4), (2, 3)):
        raise form_error(
            "status", "GUILD_SCHEDULED_EVENT_INVALID_STATUS", "Invalid status transition"
        )
    keys = (
        "name",
        "description",
        "channel_id",
        "scheduled_start_time",
        "scheduled_end_time",
        "privacy_level",
        "status",
        "entity_type",
        "entity_metadata",
        "image",
    )
    changes = apply_changes(event, updates, keys)
    audit(ctx, guild, 101, event["id"], changes)
    return _with_count(guild, event, True)


@handles("delete_guild_scheduled_event")
def delete_event(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    guild = guild_for(ctx)
    event = _event(guild, ctx.path["guild_scheduled_event_id"])
    if event["creator_id"] != user:
        world.require_guild_permission(guild, user, fx.MANAGE_EVENTS)
    del guild.events[event["id"]]
    guild.event_users.pop(event["id"], None)
    audit(ctx, guild, 102, event["id"], [("name", event["name"], None)])
    return Reply(None, 204)


@handles("list_guild_scheduled_event_users")
def list_event_users(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx)
    event = _event(guild, ctx.path["guild_scheduled_event_id"])
    rows = [{"id": u} for u in guild.event_users.get(str(event["id"]), ())]
    page = paginate_ids(
        rows, ctx.query.get("before"), ctx.query.get("after"), ctx.query.get("limit", 100)
    )
    result = []
    for row in page:
        item: dict[str, Any] = {
            "guild_scheduled_event_id": event["id"],
            "user_id": row["id"],
            "user": world.user_object(row["id"]),
        }
        if ctx.query.get("with_member") and row["id"] in guild.members:
            item["member"] = world.member_object(guild, row["id"])
        result.append(item)
    return result


# -- auto-moderation -------------------------------------------------------------------------------


def _rule(guild: GuildState, rule_id: str) -> dict[str, Any]:
    rule = guild.automod.get(rule_id)
    if rule is None:
        raise not_found()  # Discord documents no "unknown rule" code
    return rule


@handles("list_auto_moderation_rules")
def list_rules(ctx: Ctx) -> Any:
    return list(guild_for(ctx, fx.MANAGE_GUILD).automod.values())


@handles("get_auto_moderation_rule")
def get_rule(ctx: Ctx) -> Any:
    return _rule(guild_for(ctx, fx.MANAGE_GUILD), ctx.path["rule_id"])


@handles("create_auto_moderation_rule")
def create_rule(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    rule = {
        "id": world.new_id(),
        "guild_id": guild.id,
        "creator_id": actor(ctx),
        "name": body["name"],
        "event_type": body["event_type"],
        "trigger_type": body["trigger_type"],
        "trigger_metadata": clean(body.get("trigger_metadata") or {}),
        "actions": clean(body.get("actions") or []),
        "enabled": bool(body.get("enabled")),
        "exempt_roles": [str(r) for r in body.get("exempt_roles") or ()],
        "exempt_channels": [str(c) for c in body.get("exempt_channels") or ()],
    }
    for action in rule["actions"]:
        action.setdefault("metadata", {})
    guild.automod[rule["id"]] = rule
    audit(ctx, guild, 140, rule["id"], [("name", None, rule["name"])])
    return rule


@handles("update_auto_moderation_rule")
def update_rule(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    rule = _rule(guild, ctx.path["rule_id"])
    body = {k: clean(v) for k, v in ctx.body_dict().items() if v is not None}
    changes = apply_changes(
        rule,
        body,
        (
            "name",
            "event_type",
            "trigger_metadata",
            "actions",
            "enabled",
            "exempt_roles",
            "exempt_channels",
        ),
    )
    audit(ctx, guild, 141, rule["id"], changes)
    return rule


@handles("delete_auto_moderation_rule")
def delete_rule(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    rule = _rule(guild, ctx.path["rule_id"])
    del guild.automod[rule["id"]]
    audit(ctx, guild, 142, rule["id"], [("name", rule["name"], None)])
    return Reply(None, 204)


# -- templates -------------------------------------------------------------------------------------


def _template(ctx: Ctx, guild: GuildState) -> dict[str, Any]:
    template = ctx.world.templates.get(ctx.path["code"])
    if template is None or template["source_guild_id"] != guild.id:
        raise unknown(10057, "Guild Template")
    return template


def _snapshot(world: World, guild: GuildState) -> dict[str, Any]:
    roles = world.sorted_roles(guild)
    return {
        "name": guild.data["name"],
        "description": guild.data.get("description"),
        "region": None,
        "verification_level": guild.data["verification_level"],
        "default_message_notifications": guild.data["default_message_notifications"],
        "explicit_content_filter": guild.data["explicit_content_filter"],
        "preferred_locale": guild.data["preferred_locale"],
        "afk_channel_id": None,
        "afk_timeout": guild.data["afk_timeout"],
        "system_channel_id": None,
        "system_channel_flags": 0,
        "roles": [
            {
                "id": index,
                "name": role["name"],
                "permissions": role["permissions"],
                "color": role["color"],
                "colors": {
                    "primary_color": role["color"],
                    "secondary_color": None,
                    "tertiary_color": None,
                },
                "hoist": role["hoist"],
                "mentionable": role["mentionable"],
                "icon": None,
                "unicode_emoji": None,
            }
            for index, role in enumerate(roles)
        ],
        "channels": [
            {
                "id": index + 1,
                "type": channel["type"],
                "name": channel["name"],
                "position": channel.get("position", 0),
                "topic": channel.get("topic"),
                "bitrate": channel.get("bitrate", 64000),
                "user_limit": channel.get("user_limit", 0),
                "nsfw": False,
                "rate_limit_per_user": channel.get("rate_limit_per_user", 0),
                "parent_id": None,
                "default_auto_archive_duration": None,
                "permission_overwrites": [],
                "available_tags": None,
                "template": "",
                "default_reaction_emoji": None,
                "default_thread_rate_limit_per_user": None,
                "default_sort_order": None,
                "default_forum_layout": None,
                "default_tag_setting": None,
                "theme_color": None,
                "icon_emoji": None,
            }
            for index, channel in enumerate(
                c
                for c in world.channels.values()
                if c.get("guild_id") == guild.id and c.get("type") in (0, 2, 4, 15)
            )
        ],
    }


@handles("list_guild_templates")
def list_templates(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    return [t for t in ctx.world.templates.values() if t["source_guild_id"] == guild.id]


@handles("create_guild_template")
def create_template(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    if any(t["source_guild_id"] == guild.id for t in world.templates.values()):
        raise bad_request(30031, "A guild template already exists for this guild")
    code = secrets.token_urlsafe(9)[:12]
    now = world.now_iso()
    template = {
        "code": code,
        "name": body["name"],
        "description": body.get("description"),
        "usage_count": 0,
        "creator_id": user,
        "creator": world.user_object(user),
        "created_at": now,
        "updated_at": now,
        "source_guild_id": guild.id,
        "serialized_source_guild": _snapshot(world, guild),
        "is_dirty": None,
    }
    world.templates[code] = template
    return template


@handles("sync_guild_template")
def sync_template(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    template = _template(ctx, guild)
    template["serialized_source_guild"] = _snapshot(ctx.world, guild)
    template["updated_at"] = ctx.world.now_iso()
    template["is_dirty"] = None
    return template


@handles("update_guild_template")
def update_template(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    template = _template(ctx, guild)
    body = {k: v for k, v in ctx.body_dict().items() if v is not None or k == "description"}
    apply_changes(template, body, ("name", "description"))
    return template


@handles("delete_guild_template")
def delete_template(ctx: Ctx) -> Any:
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    template = _template(ctx, guild)
    del ctx.world.templates[template["code"]]
    return template


# -- message search --------------------------------------------------------------------------------


@handles("guild_search")
def guild_search(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    guild = guild_for(ctx)
    q = ctx.query
    content = (q.get("content") or "").lower()
    authors = set(q.get("author_id") or ())
    channels = set(q.get("channel_id") or ())
    hits = []
    for channel_id, messages in world.messages.items():
        channel = world.channels.get(channel_id)
        if channel is None or channel.get("guild_id") != guild.id:
            continue
        if channels and channel_id not in channels:
            continue
        perms = world.channel_permissions(channel, user)
        if not perms & fx.VIEW_CHANNEL or not perms & fx.READ_MESSAGE_HISTORY:
            continue
        for message in messages.values():
            if content and content not in message["content"].lower():
                continue
            if authors and message["author"]["id"] not in authors:
                continue
            if (
                q.get("pinned") is not None
                and (message["id"] in world.pins.get(channel_id, {})) != q["pinned"]
            ):
                continue
            hits.append(message)
    hits.sort(key=lambda m: int(m["id"]), reverse=q.get("sort_order", "desc") == "desc")
    offset, limit = q.get("offset", 0), q.get("limit", 25)
    page = hits[offset : offset + limit]
    return {
        "messages": [[world.render_message(m, user)] for m in page],
        "threads": [],
        "members": [],
        "total_results": len(hits),
        "doing_deep_historical_index": False,
    }


def missing() -> DiscordError:
    return missing_access()
