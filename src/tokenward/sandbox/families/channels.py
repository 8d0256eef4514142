"""Channels, threads, permission overwrites, invites, followers, DMs and stage instances.

Guild channels need Manage Channels to create, edit or delete (threads: Manage Threads, or being
the thread's creator for name/archive changes); overwrites need Manage Roles; invites need Create
Instant Invite (listing them Manage Channels, revoking Manage Channels or Manage Guild). Each
change writes the audit-log entry Discord writes (CHANNEL_CREATE 10 … THREAD_DELETE 112), with
``X-Audit-Log-Reason`` as its reason.
"""

from __future__ import annotations

from typing import Any

from tokenward.sandbox import fixtures as fx
from tokenward.sandbox.errors import DiscordError, bad_request, missing_access, unknown
from tokenward.sandbox.families.common import (
    actor,
    apply_changes,
    audit,
    channel_for,
    channel_guild,
    form_error,
    guild_for,
)
from tokenward.sandbox.families.messages import build_message, check_message_limits, clean
from tokenward.sandbox.rest import Ctx, Reply, handles
from tokenward.sandbox.world import THREAD_TYPES, VOICE_LIKE, World

CHANNEL_FIELDS = (
    "name",
    "topic",
    "nsfw",
    "rate_limit_per_user",
    "bitrate",
    "user_limit",
    "rtc_region",
    "video_quality_mode",
    "default_auto_archive_duration",
    "default_thread_rate_limit_per_user",
    "default_sort_order",
    "default_forum_layout",
    "default_reaction_emoji",
    "available_tags",
    "flags",
)
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)


def render_channel(world: World, channel: dict[str, Any], viewer: str | None) -> dict[str, Any]:
    body = {k: v for k, v in channel.items() if not k.startswith("_")}
    if channel.get("type") in THREAD_TYPES and viewer is not None:
        joined = world.thread_members.get(str(channel["id"]), {}).get(viewer)
        if joined is not None:
            body["member"] = {
                "id": channel["id"],
                "user_id": viewer,
                "join_timestamp": joined,
                "flags": 0,
            }
        body["member_count"] = min(len(world.thread_members.get(str(channel["id"]), {})), 50)
    result: dict[str, Any] = clean(body)
    return result


def overwrites_from(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "id": str(item["id"]),
            "type": int(item.get("type") or 0),
            "allow": str(int(item.get("allow") or 0)),
            "deny": str(int(item.get("deny") or 0)),
        }
        for item in items or ()
    ]


@handles("get_channel")
def get_channel(ctx: Ctx) -> Any:
    return render_channel(ctx.world, channel_for(ctx), ctx.actor)


@handles("list_guild_channels")
def list_guild_channels(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx)
    user = actor(ctx)
    channels = [
        c
        for c in world.channels.values()
        if c.get("guild_id") == guild.id
        and c.get("type") not in THREAD_TYPES
        and world.channel_permissions(c, user) & fx.VIEW_CHANNEL
    ]
    channels.sort(key=lambda c: (int(c.get("position", 0)), int(c["id"])))
    return [render_channel(world, c, user) for c in channels]


@handles("create_guild_channel")
def create_guild_channel(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    guild = guild_for(ctx, fx.MANAGE_CHANNELS)
    kind = body.get("type") or 0
    parent_id = body.get("parent_id")
    if parent_id is not None:
        parent = world.channels.get(str(parent_id))
        if parent is None or parent.get("guild_id") != guild.id or parent.get("type") != 4:
            raise form_error("parent_id", "CHANNEL_PARENT_INVALID", "Not a category")
    channel: dict[str, Any] = {
        "id": world.new_id(),
        "type": kind,
        "guild_id": guild.id,
        "name": body["name"],
        "position": body.get("position")
        if body.get("position") is not None
        else 1 + max((int(c.get("position", 0)) for c in world.channels.values()), default=0),
        "flags": 0,
        "parent_id": str(parent_id) if parent_id else None,
        "permission_overwrites": overwrites_from(body.get("permission_overwrites")),
        "nsfw": bool(body.get("nsfw")),
        "last_message_id": None,
    }
    if kind in (0, 5, 15, 16):
        channel["topic"] = body.get("topic")
        channel["rate_limit_per_user"] = body.get("rate_limit_per_user") or 0
    if kind in VOICE_LIKE:
        channel.update(
            bitrate=body.get("bitrate") or 64000,
            user_limit=body.get("user_limit") or 0,
            rtc_region=body.get("rtc_region"),
        )
    for key in ("default_auto_archive_duration", "default_forum_layout", "available_tags"):
        if body.get(key) is not None:
            channel[key] = body[key]
    world.channels[channel["id"]] = channel
    if kind not in (4,):
        world.messages[channel["id"]] = {}
    changes = [("name", None, channel["name"]), ("type", None, kind)]
    audit(ctx, guild, 10, channel["id"], changes)
    return Reply(render_channel(world, channel, ctx.actor), 201)


@handles("bulk_update_guild_channels")
def bulk_update_guild_channels(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx, fx.MANAGE_CHANNELS)
    for item in ctx.body or ():
        channel = world.channels.get(str(item.get("id")))
        if channel is None or channel.get("guild_id") != guild.id:
            raise unknown(10003, "Channel")
        if item.get("position") is not None:
            channel["position"] = item["position"]
        if "parent_id" in item:
            channel["parent_id"] = item["parent_id"]
    return Reply(None, 204)


def _can_manage_thread(world: World, channel: dict[str, Any], user: str) -> bool:
    return bool(world.channel_permissions(channel, user) & fx.MANAGE_THREADS)


@handles("update_channel")
def update_channel(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    channel = channel_for(ctx)
    guild = channel_guild(ctx, channel)
    if channel.get("type") in THREAD_TYPES:
        owner = channel.get("owner_id") == user
        if not (owner or _can_manage_thread(world, channel, user)):
            raise DiscordError(403, 50013, "Missing Permissions")
        if "locked" in body and not _can_manage_thread(world, channel, user):
            raise DiscordError(403, 50013, "Missing Permissions")
        metadata = channel["thread_metadata"]
        for key in ("archived", "locked", "invitable", "auto_archive_duration"):
            if body.get(key) is not None:
                metadata[key] = body[key]
                if key == "archived":
                    metadata["archive_timestamp"] = world.now_iso()
        changes = apply_changes(
            channel,
            {k: v for k, v in body.items() if v is not None},
            ("name", "rate_limit_per_user", "applied_tags", "flags"),
        )
        audit(ctx, guild, 111, str(channel["id"]), changes)
        return render_channel(world, channel, user)
    if guild is None:  # a group DM: its owner (or a recipient) may rename it
        changes = apply_changes(channel, body, ("name", "icon"))
        return render_channel(world, channel, user)
    world.require_channel_permission(channel, user, fx.MANAGE_CHANNELS)
    if body.get("permission_overwrites") is not None:
        world.require_channel_permission(channel, user, fx.MANAGE_ROLES)
        channel["permission_overwrites"] = overwrites_from(body["permission_overwrites"])
    updates = {
        k: v
        for k, v in body.items()
        if k in CHANNEL_FIELDS or k in ("position", "parent_id", "type")
    }
    if updates.get("type") is not None and {channel["type"], updates["type"]} - {0, 5}:
        raise form_error(
            "type", "CHANNEL_TYPE_INVALID", "Only text and announcement channels convert"
        )
    changes = apply_changes(
        channel,
        {k: v for k, v in updates.items() if v is not None or k in ("topic", "parent_id")},
        updates,
    )
    audit(ctx, guild, 11, str(channel["id"]), changes)
    return render_channel(world, channel, user)


@handles("delete_channel")
def delete_channel(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    channel = channel_for(ctx)
    guild = channel_guild(ctx, channel)
    if guild is not None:
        if channel.get("type") in THREAD_TYPES:
            if not _can_manage_thread(world, channel, user):
                raise DiscordError(403, 50013, "Missing Permissions")
            audit(ctx, guild, 112, str(channel["id"]), [("name", channel["name"], None)])
        else:
            world.require_channel_permission(channel, user, fx.MANAGE_CHANNELS)
            audit(ctx, guild, 12, str(channel["id"]), [("name", channel["name"], None)])
    body = render_channel(world, channel, user)
    channel_id = str(channel["id"])
    del world.channels[channel_id]
    world.messages.pop(channel_id, None)
    world.pins.pop(channel_id, None)
    for thread in [c for c in world.channels.values() if c.get("parent_id") == channel_id]:
        if thread.get("type") in THREAD_TYPES:
            del world.channels[str(thread["id"])]
    return body


# -- permission overwrites ------------------------------------------------------------------------


@handles("set_channel_permission_overwrite")
def set_overwrite(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    channel = channel_for(ctx, fx.MANAGE_ROLES)
    guild = channel_guild(ctx, channel)
    if guild is None or channel.get("type") in THREAD_TYPES:
        raise bad_request(50024, "Cannot execute action on this channel type")
    target = ctx.path["overwrite_id"]
    kind = body.get("type")
    if kind is None:
        kind = 0 if target in guild.roles else 1
    if kind == 0 and target not in guild.roles:
        raise unknown(10011, "Role")
    if kind == 1 and not world.user_exists(target):
        raise unknown(10013, "User")
    allow, deny = int(body.get("allow") or 0), int(body.get("deny") or 0)
    # A bot cannot grant or deny permissions it does not have itself (Discord's rule).
    if (allow | deny) & ~world.channel_permissions(channel, user):
        raise DiscordError(403, 50013, "Missing Permissions")
    overwrites = channel.setdefault("permission_overwrites", [])
    existing = next((o for o in overwrites if o["id"] == target), None)
    item = {"id": target, "type": kind, "allow": str(allow), "deny": str(deny)}
    if existing is None:
        overwrites.append(item)
        audit(
            ctx,
            guild,
            13,
            str(channel["id"]),
            [("allow", None, item["allow"]), ("deny", None, item["deny"])],
            {"id": target, "type": str(kind)},
        )
    else:
        changes = apply_changes(existing, item, ("allow", "deny"))
        audit(ctx, guild, 14, str(channel["id"]), changes, {"id": target, "type": str(kind)})
    return Reply(None, 204)


@handles("delete_channel_permission_overwrite")
def delete_overwrite(ctx: Ctx) -> Any:
    channel = channel_for(ctx, fx.MANAGE_ROLES)
    guild = channel_guild(ctx, channel)
    target = ctx.path["overwrite_id"]
    overwrites = channel.get("permission_overwrites") or []
    kept = [o for o in overwrites if o["id"] != target]
    if len(kept) != len(overwrites):
        channel["permission_overwrites"] = kept
        audit(ctx, guild, 15, str(channel["id"]), options={"id": target})
    return Reply(None, 204)


# -- threads ---------------------------------------------------------------------------------------


def _new_thread(
    ctx: Ctx,
    parent: dict[str, Any],
    thread_id: str,
    name: str,
    kind: int,
    body: dict[str, Any],
) -> dict[str, Any]:
    world, user = ctx.world, actor(ctx)
    duration = (
        body.get("auto_archive_duration") or parent.get("default_auto_archive_duration") or 4320
    )
    thread = {
        "id": thread_id,
        "type": kind,
        "guild_id": parent["guild_id"],
        "parent_id": parent["id"],
        "owner_id": user,
        "name": name,
        "flags": 0,
        "last_message_id": None,
        "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "thread_metadata": {
            "archived": False,
            "archive_timestamp": world.now_iso(),
            "auto_archive_duration": duration,
            "locked": False,
            "create_timestamp": world.now_iso(),
            **({"invitable": body.get("invitable") is not False} if kind == 12 else {}),
        },
    }
    if body.get("applied_tags"):
        thread["applied_tags"] = list(body["applied_tags"])
    world.channels[thread_id] = thread
    world.messages[thread_id] = {}
    world.thread_members[thread_id] = {user: world.now_iso()}
    audit(
        ctx,
        channel_guild(ctx, parent),
        110,
        thread_id,
        [("name", None, name), ("type", None, kind)],
    )
    return thread


@handles("create_thread_from_message")
def create_thread_from_message(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    parent = channel_for(ctx, fx.CREATE_PUBLIC_THREADS)
    if parent.get("type") not in (0, 5):
        raise bad_request(50024, "Cannot execute action on this channel type")
    message = world.message(str(parent["id"]), ctx.path["message_id"])
    if str(message["id"]) in world.channels or message.get("thread"):
        raise bad_request(160004, "A thread has already been created for this message")
    kind = 10 if parent.get("type") == 5 else 11
    thread = _new_thread(ctx, parent, str(message["id"]), body["name"], kind, body)
    message["flags"] = int(message.get("flags", 0)) | 32
    message["thread"] = thread
    return Reply(render_channel(world, thread, ctx.actor), 201)


@handles("create_thread")
def create_thread(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    parent = channel_for(ctx)
    kind_of_parent = parent.get("type")
    if kind_of_parent in (15, 16):
        world.require_channel_permission(parent, user, fx.SEND_MESSAGES)
        first = body.get("message")
        if not isinstance(first, dict):
            raise form_error("message", "BASE_TYPE_REQUIRED", "This field is required")
        check_message_limits(first, creating=True)
        thread_id = world.new_id()
        thread = _new_thread(ctx, parent, thread_id, body["name"], 11, body)
        starter = build_message(world, thread, world.user_object(user), first, message_id=thread_id)
        world.store_message(starter)
        result = render_channel(world, thread, user)
        result["message"] = world.render_message(starter, user)
        return Reply(result, 201)
    if kind_of_parent not in (0, 5):
        raise bad_request(50024, "Cannot execute action on this channel type")
    kind = body.get("type") or 12
    if kind == 12:
        world.require_channel_permission(parent, user, fx.CREATE_PRIVATE_THREADS)
    else:
        world.require_channel_permission(parent, user, fx.CREATE_PUBLIC_THREADS)
    thread = _new_thread(ctx, parent, world.new_id(), body["name"], kind, body)
    return Reply(render_channel(world, thread, user), 201)


def _thread(ctx: Ctx) -> dict[str, Any]:
    channel = channel_for(ctx)
    if channel.get("type") not in THREAD_TYPES:
        raise bad_request(50024, "Cannot execute action on this channel type")
    return channel


def _thread_member(
    world: World, thread: dict[str, Any], user_id: str, joined: str, with_member: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": thread["id"],
        "user_id": user_id,
        "join_timestamp": joined,
        "flags": 0,
    }
    if with_member:
        guild = world.guilds[str(thread["guild_id"])]
        if user_id in guild.members:
            body["member"] = world.member_object(guild, user_id)
    return body


@handles("join_thread")
def join_thread(ctx: Ctx) -> Any:
    thread = _thread(ctx)
    if thread["thread_metadata"].get("archived"):
        raise bad_request(50083, "Thread is archived")
    ctx.world.thread_members.setdefault(str(thread["id"]), {}).setdefault(
        actor(ctx), ctx.world.now_iso()
    )
    return Reply(None, 204)


@handles("leave_thread")
def leave_thread(ctx: Ctx) -> Any:
    thread = _thread(ctx)
    ctx.world.thread_members.get(str(thread["id"]), {}).pop(actor(ctx), None)
    return Reply(None, 204)


@handles("add_thread_member")
def add_thread_member(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    thread = _thread(ctx)
    world.require_channel_permission(thread, user, fx.SEND_MESSAGES_IN_THREADS)
    target = ctx.path["user_id"]
    guild = world.guilds[str(thread["guild_id"])]
    if target not in guild.members:
        raise unknown(10007, "Member")
    world.thread_members.setdefault(str(thread["id"]), {}).setdefault(target, world.now_iso())
    return Reply(None, 204)


@handles("delete_thread_member")
def remove_thread_member(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    thread = _thread(ctx)
    if thread.get("owner_id") != user and not _can_manage_thread(world, thread, user):
        raise DiscordError(403, 50013, "Missing Permissions")
    members = world.thread_members.get(str(thread["id"]), {})
    if ctx.path["user_id"] not in members:
        raise unknown(10007, "Member")
    del members[ctx.path["user_id"]]
    return Reply(None, 204)


@handles("get_thread_member")
def get_thread_member(ctx: Ctx) -> Any:
    world = ctx.world
    thread = _thread(ctx)
    joined = world.thread_members.get(str(thread["id"]), {}).get(ctx.path["user_id"])
    if joined is None:
        raise unknown(10007, "Member")
    return _thread_member(
        world, thread, ctx.path["user_id"], joined, bool(ctx.query.get("with_member"))
    )


@handles("list_thread_members")
def list_thread_members(ctx: Ctx) -> Any:
    world = ctx.world
    thread = _thread(ctx)
    members = world.thread_members.get(str(thread["id"]), {})
    after = ctx.query.get("after")
    rows = [
        _thread_member(world, thread, user_id, joined, bool(ctx.query.get("with_member")))
        for user_id, joined in sorted(members.items(), key=lambda kv: int(kv[0]))
        if after is None or int(user_id) > int(after)
    ]
    return rows[: ctx.query.get("limit", 100)]


def _threads_answer(
    world: World, threads: list[dict[str, Any]], viewer: str, has_more: bool = False
) -> dict[str, Any]:
    members = [
        {
            "id": t["id"],
            "user_id": viewer,
            "join_timestamp": world.thread_members[str(t["id"])][viewer],
            "flags": 0,
        }
        for t in threads
        if viewer in world.thread_members.get(str(t["id"]), {})
    ]
    return {
        "threads": [render_channel(world, t, None) for t in threads],
        "members": members,
        "has_more": has_more,
    }


def _archived(ctx: Ctx, kinds: tuple[int, ...], joined_only: bool = False) -> Any:
    world, user = ctx.world, actor(ctx)
    parent = channel_for(ctx, fx.READ_MESSAGE_HISTORY)
    if kinds == (12,) and not joined_only:
        world.require_channel_permission(parent, user, fx.MANAGE_THREADS)
    threads = [
        t
        for t in world.channels.values()
        if t.get("parent_id") == parent["id"]
        and t.get("type") in kinds
        and t["thread_metadata"].get("archived")
        and (not joined_only or user in world.thread_members.get(str(t["id"]), {}))
    ]
    threads.sort(key=lambda t: t["thread_metadata"]["archive_timestamp"], reverse=True)
    before = ctx.query.get("before")
    if before is not None:
        threads = [t for t in threads if t["thread_metadata"]["archive_timestamp"] < str(before)]
    limit = ctx.query.get("limit", 50)
    return _threads_answer(world, threads[:limit], user, len(threads) > limit)


@handles("list_public_archived_threads")
def list_public_archived_threads(ctx: Ctx) -> Any:
    return _archived(ctx, (10, 11))


@handles("list_private_archived_threads")
def list_private_archived_threads(ctx: Ctx) -> Any:
    return _archived(ctx, (12,))


@handles("list_my_private_archived_threads")
def list_my_private_archived_threads(ctx: Ctx) -> Any:
    return _archived(ctx, (12,), joined_only=True)


@handles("get_active_guild_threads")
def get_active_guild_threads(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx)
    user = actor(ctx)
    threads = [
        t
        for t in world.channels.values()
        if t.get("guild_id") == guild.id
        and t.get("type") in THREAD_TYPES
        and not t["thread_metadata"].get("archived")
        and world.channel_permissions(t, user) & fx.VIEW_CHANNEL
    ]
    answer = _threads_answer(world, threads, user)
    del answer["has_more"]
    answer["has_more"] = False
    return answer


@handles("thread_search")
def thread_search(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    parent = channel_for(ctx)
    name = (ctx.query.get("name") or "").lower()
    archived = ctx.query.get("archived")
    threads = [
        t
        for t in world.channels.values()
        if t.get("parent_id") == parent["id"]
        and t.get("type") in THREAD_TYPES
        and name in t["name"].lower()
        and (archived is None or bool(t["thread_metadata"].get("archived")) == archived)
    ]
    offset, limit = ctx.query.get("offset", 0), ctx.query.get("limit", 25)
    page = threads[offset : offset + limit]
    answer = _threads_answer(world, page, user, offset + limit < len(threads))
    answer["total_results"] = len(threads)
    return answer


# -- invites ---------------------------------------------------------------------------------------


def invite_object(world: World, invite: dict[str, Any], *, metadata: bool = True) -> dict[str, Any]:
    guild = world.guilds[str(invite["guild_id"])]
    channel = world.channels.get(str(invite["channel_id"]), {})
    data = guild.data
    body: dict[str, Any] = {
        "type": 0,
        "code": invite["code"],
        "expires_at": invite.get("expires_at"),
        "guild_id": guild.id,
        "guild": {
            "id": guild.id,
            "name": data["name"],
            "splash": data.get("splash"),
            "banner": data.get("banner"),
            "description": data.get("description"),
            "icon": data.get("icon"),
            "features": list(data.get("features", ())),
            "verification_level": data.get("verification_level"),
            "vanity_url_code": data.get("vanity_url_code"),
            "nsfw_level": data.get("nsfw_level"),
            "nsfw": False,
            "premium_subscription_count": data.get("premium_subscription_count", 0),
        },
        "channel": {
            "id": invite["channel_id"],
            "type": channel.get("type", 0),
            "name": channel.get("name"),
        },
    }
    if invite.get("inviter_id"):
        body["inviter"] = world.user_object(str(invite["inviter_id"]))
    if metadata:
        body.update(
            uses=invite.get("uses", 0),
            max_uses=invite.get("max_uses", 0),
            max_age=invite.get("max_age", 0),
            temporary=bool(invite.get("temporary")),
            created_at=invite.get("created_at"),
        )
    if invite.get("target_type"):
        body["target_type"] = invite["target_type"]
    return body


@handles("create_channel_invite")
def create_channel_invite(ctx: Ctx) -> Any:
    import secrets
    from datetime import timedelta

    from tokenward.clock import isoformat

    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    channel = channel_for(ctx, fx.CREATE_INSTANT_INVITE)
    guild = channel_guild(ctx, channel)
    if guild is None or channel.get("type") in THREAD_TYPES or channel.get("type") == 4:
        raise bad_request(50024, "Cannot execute action on this channel type")
    max_age = 86400 if body.get("max_age") is None else int(body["max_age"])
    if not body.get("unique"):
        for invite in world.invites.values():
            if (
                invite["channel_id"] == channel["id"]
                and invite.get("inviter_id") == user
                and invite.get("max_age") == max_age
                and invite.get("max_uses", 0) == (body.get("max_uses") or 0)
                and bool(invite.get("temporary")) == bool(body.get("temporary"))
            ):
                return invite_object(world, invite)
    code = secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")[:8]
    invite = {
        "code": code,
        "guild_id": guild.id,
        "channel_id": channel["id"],
        "inviter_id": user,
        "expires_at": None
        if max_age == 0
        else isoformat(world.now() + timedelta(seconds=max_age).total_seconds()),
        "guild_scheduled_event_id": None,
        "max_age": max_age,
        "max_uses": body.get("max_uses") or 0,
        "uses": 0,
        "temporary": bool(body.get("temporary")),
        "created_at": world.now_iso(),
        "target_type": body.get("target_type"),
    }
    world.invites[code] = invite
    changes = [
        ("code", None, code),
        ("channel_id", None, channel["id"]),
        ("max_age", None, max_age),
    ]
    audit(ctx, guild, 40, code, changes)
    return invite_object(world, invite)


@handles("list_channel_invites")
def list_channel_invites(ctx: Ctx) -> Any:
    world = ctx.world
    channel = channel_for(ctx, fx.MANAGE_CHANNELS)
    return [
        invite_object(world, invite)
        for invite in world.invites.values()
        if invite["channel_id"] == channel["id"]
    ]


@handles("invite_revoke")
def invite_revoke(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    invite = world.invites.get(ctx.path["code"])
    if invite is None:
        raise unknown(10006, "Invite")
    guild = world.member_guild(str(invite["guild_id"]), user)
    channel = world.channels.get(str(invite["channel_id"]))
    allowed = world.base_permissions(guild, user) & fx.MANAGE_GUILD or (
        channel is not None and world.channel_permissions(channel, user) & fx.MANAGE_CHANNELS
    )
    if not allowed:
        raise DiscordError(403, 50013, "Missing Permissions")
    body = invite_object(world, invite)
    del world.invites[invite["code"]]
    audit(ctx, guild, 42, invite["code"], [("code", invite["code"], None)])
    return body


@handles("list_guild_invites")
def list_guild_invites(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx, fx.MANAGE_GUILD)
    return [invite_object(world, i) for i in world.invites.values() if i["guild_id"] == guild.id]


# -- followers, DMs, stage, voice ------------------------------------------------------------------


@handles("follow_channel")
def follow_channel(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    source = channel_for(ctx)
    if source.get("type") != 5:
        raise bad_request(50024, "Cannot execute action on this channel type")
    target_id = str(ctx.body_dict()["webhook_channel_id"])
    target = world.visible_channel(target_id, user)
    world.require_channel_permission(target, user, fx.MANAGE_WEBHOOKS)
    source_guild = world.guilds[str(source["guild_id"])]
    hook = {
        "id": world.new_id(),
        "type": 2,
        "guild_id": target.get("guild_id"),
        "channel_id": target_id,
        "name": source_guild.data["name"] + " #" + source["name"],
        "avatar": None,
        "application_id": None,
        "user": world.user_object(user),
        "source_guild": {
            "id": source_guild.id,
            "name": source_guild.data["name"],
            "icon": source_guild.data.get("icon"),
        },
        "source_channel": {"id": source["id"], "name": source["name"]},
    }
    world.webhooks[hook["id"]] = hook
    audit(
        ctx,
        channel_guild(ctx, target),
        50,
        hook["id"],
        [("name", None, hook["name"]), ("type", None, 2)],
    )
    return {"channel_id": source["id"], "webhook_id": hook["id"]}


def _dm(world: World, user: str, recipient: str) -> dict[str, Any]:
    for channel in world.channels.values():
        if (
            channel.get("type") == 1
            and {r["id"] for r in channel["recipients"]} == {recipient}
            and channel.get("_owner") == user
        ):
            return channel
    channel = {
        "id": world.new_id(),
        "type": 1,
        "flags": 0,
        "last_message_id": None,
        "recipients": [world.user_object(recipient)],
        "_owner": user,
    }
    world.channels[channel["id"]] = channel
    world.messages[channel["id"]] = {}
    return channel


def _dm_visible(channel: dict[str, Any], user: str) -> None:
    recipients = {r["id"] for r in channel.get("recipients", ())}
    if user not in recipients and channel.get("_owner") != user and channel.get("owner_id") != user:
        raise missing_access()


@handles("create_dm")
def create_dm(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    if body.get("recipient_id") is not None:
        recipient = str(body["recipient_id"])
        if not world.user_exists(recipient):
            raise unknown(10013, "User")
        channel = _dm(world, user, recipient)
        return {k: v for k, v in channel.items() if not k.startswith("_")}
    tokens = body.get("access_tokens")
    if not tokens:
        raise form_error("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
    recipients = []
    for token in tokens:
        found = ctx.state.valid_access_token(token)
        if found is None or "gdm.join" not in found.scopes:
            raise DiscordError(403, 50025, "Invalid OAuth2 access token provided")
        recipients.append(world.user_object(found.user_id))
    channel = {
        "id": world.new_id(),
        "type": 3,
        "flags": 0,
        "last_message_id": None,
        "recipients": recipients,
        "name": None,
        "icon": None,
        "owner_id": user,
        "managed": True,
        "application_id": ctx.application_id,
        "nicks": dict(body.get("nicks") or {}),
    }
    world.channels[channel["id"]] = channel
    world.messages[channel["id"]] = {}
    return {k: v for k, v in channel.items() if k != "nicks"}


def _group_dm(ctx: Ctx) -> dict[str, Any]:
    channel = ctx.world.channel(ctx.path["channel_id"])
    if channel.get("type") != 3:
        raise bad_request(50024, "Cannot execute action on this channel type")
    if channel.get("owner_id") != actor(ctx):
        raise missing_access()
    return channel


@handles("add_group_dm_user")
def add_group_dm_user(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    channel = _group_dm(ctx)
    target = ctx.path["user_id"]
    if target in {r["id"] for r in channel["recipients"]}:
        return Reply(None, 204)
    token = ctx.state.valid_access_token(str(body.get("access_token") or ""))
    if token is None or token.user_id != target or "gdm.join" not in token.scopes:
        raise DiscordError(403, 50025, "Invalid OAuth2 access token provided")
    channel["recipients"].append(world.user_object(target))
    return Reply({k: v for k, v in channel.items() if k != "nicks"}, 201)


@handles("delete_group_dm_user")
def delete_group_dm_user(ctx: Ctx) -> Any:
    channel = _group_dm(ctx)
    channel["recipients"] = [r for r in channel["recipients"] if r["id"] != ctx.path["user_id"]]
    return Reply(None, 204)


def _voice(ctx: Ctx, *perms: int, name: str = "channel_id") -> dict[str, Any]:
    channel = channel_for(ctx, *perms, name=name)
    if channel.get("type") not in VOICE_LIKE:
        raise bad_request(50024, "Cannot execute action on this channel type")
    return channel


@handles("update_voice_channel_status")
def update_voice_status(ctx: Ctx) -> Any:
    channel = _voice(ctx, fx.MANAGE_CHANNELS)
    channel["status"] = ctx.body_dict().get("status")
    return Reply(None, 204)


@handles("send_soundboard_sound")
def send_soundboard_sound(ctx: Ctx) -> Any:
    world = ctx.world
    channel = _voice(ctx, fx.SPEAK)
    sound_id = str(ctx.body_dict().get("sound_id"))
    source = ctx.body_dict().get("source_guild_id") or channel["guild_id"]
    guild = world.guilds.get(str(source))
    if guild is None or sound_id not in guild.soundboard:
        raise unknown(10097, "Soundboard Sound")
    return Reply(None, 204)


def _stage_instance(ctx: Ctx) -> dict[str, Any]:
    channel = _voice(ctx)
    found = ctx.world.stage_instances.get(str(channel["id"]))
    if found is None:
        raise unknown(10067, "Stage Instance")
    return found


@handles("create_stage_instance")
def create_stage_instance(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    channel = world.visible_channel(str(body["channel_id"]), user)
    if channel.get("type") != 13:
        raise bad_request(50024, "Cannot execute action on this channel type")
    world.require_channel_permission(
        channel, user, fx.MANAGE_CHANNELS, fx.MUTE_MEMBERS, fx.MOVE_MEMBERS
    )
    if str(channel["id"]) in world.stage_instances:
        raise bad_request(150006, "Stage already open")
    instance = {
        "id": world.new_id(),
        "guild_id": channel["guild_id"],
        "channel_id": channel["id"],
        "topic": body["topic"],
        "privacy_level": body.get("privacy_level") or 2,
        "discoverable_disabled": False,
        "guild_scheduled_event_id": body.get("guild_scheduled_event_id"),
    }
    world.stage_instances[str(channel["id"])] = instance
    audit(
        ctx, channel_guild(ctx, channel), 83, instance["id"], [("topic", None, instance["topic"])]
    )
    return instance


@handles("get_stage_instance")
def get_stage_instance(ctx: Ctx) -> Any:
    return _stage_instance(ctx)


@handles("update_stage_instance")
def update_stage_instance(ctx: Ctx) -> Any:
    instance = _stage_instance(ctx)
    channel = ctx.world.channel(ctx.path["channel_id"])
    ctx.world.require_channel_permission(
        channel, actor(ctx), fx.MANAGE_CHANNELS, fx.MUTE_MEMBERS, fx.MOVE_MEMBERS
    )
    changes = apply_changes(
        instance,
        {k: v for k, v in ctx.body_dict().items() if v is not None},
        ("topic", "privacy_level"),
    )
    audit(ctx, channel_guild(ctx, channel), 84, instance["id"], changes)
    return instance


@handles("delete_stage_instance")
def delete_stage_instance(ctx: Ctx) -> Any:
    instance = _stage_instance(ctx)
    channel = ctx.world.channel(ctx.path["channel_id"])
    ctx.world.require_channel_permission(
        channel, actor(ctx), fx.MANAGE_CHANNELS, fx.MUTE_MEMBERS, fx.MOVE_MEMBERS
    )
    del ctx.world.stage_instances[str(channel["id"])]
    audit(
        ctx, channel_guild(ctx, channel), 85, instance["id"], [("topic", instance["topic"], None)]
    )
    return Reply(None, 204)


__all__ = ["ARCHIVE_DURATIONS", "invite_object", "render_channel"]
