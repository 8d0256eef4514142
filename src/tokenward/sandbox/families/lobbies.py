"""Lobbies (the Social SDK's): create, join by secret, members, channel links, messages.

A lobby belongs to one application; its bot manages it (another application's bot: ``404
10031 Unknown Lobby``, as if it did not exist). Users act through Bearer tokens of that
application: they may join by secret, leave, read and send messages when they are members
(else ``403 50001``).
"""

from __future__ import annotations

import secrets
from typing import Any

from tokenward.sandbox.errors import DiscordError, missing_access, unknown
from tokenward.sandbox.families.common import actor, form_error
from tokenward.sandbox.families.messages import check_message_limits
from tokenward.sandbox.rest import Ctx, Reply, handles
from tokenward.sandbox.world import World

MAX_MEMBERS = 25


def lobby_object(lobby: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": lobby["id"],
        "application_id": lobby["application_id"],
        "metadata": lobby.get("metadata"),
        "members": [dict(m) for m in lobby["members"]],
        "linked_channel": lobby.get("linked_channel"),
        "flags": lobby.get("flags", 0),
    }


def _lobby(ctx: Ctx, *, member: bool = False) -> dict[str, Any]:
    lobby = ctx.world.lobbies.get(ctx.path["lobby_id"])
    if lobby is None or lobby["application_id"] != ctx.application_id:
        raise unknown(10031, "Lobby")
    if member and not ctx.is_bot and actor(ctx) not in {m["id"] for m in lobby["members"]}:
        raise missing_access()
    return lobby


def _member(item: dict[str, Any]) -> dict[str, Any]:
    body = {
        "id": str(item["id"]),
        "metadata": item.get("metadata"),
        "flags": int(item.get("flags") or 0),
    }
    if item.get("additional_name"):
        body["additional_name"] = item["additional_name"]
    return body


def _check_users(world: World, ids: list[str]) -> None:
    for index, user_id in enumerate(ids):
        if not world.user_exists(user_id):
            raise form_error(f"members.{index}.id", "USER_UNKNOWN", "Unknown user")


@handles("create_lobby")
def create_lobby(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    members = [_member(m) for m in body.get("members") or ()]
    _check_users(world, [m["id"] for m in members])
    lobby: dict[str, Any] = {
        "id": world.new_id(),
        "application_id": ctx.application_id,
        "metadata": body.get("metadata"),
        "members": members,
        "linked_channel": None,
        "flags": int(body.get("flags") or 0),
        "secret": None,
        "idle_timeout_seconds": body.get("idle_timeout_seconds") or 300,
    }
    world.lobbies[lobby["id"]] = lobby
    world.lobby_messages[lobby["id"]] = []
    return Reply(lobby_object(lobby), 201)


@handles("create_or_join_lobby")
def create_or_join_lobby(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    secret = str(body["secret"])
    lobby = next(
        (
            item
            for item in world.lobbies.values()
            if item["application_id"] == ctx.application_id
            and item.get("secret") is not None
            and secrets.compare_digest(item["secret"], secret)
        ),
        None,
    )
    if lobby is None:
        lobby = {
            "id": world.new_id(),
            "application_id": ctx.application_id,
            "metadata": body.get("lobby_metadata"),
            "members": [],
            "linked_channel": None,
            "flags": 0,
            "secret": secret,
            "idle_timeout_seconds": body.get("idle_timeout_seconds") or 300,
        }
        world.lobbies[lobby["id"]] = lobby
        world.lobby_messages[lobby["id"]] = []
    if not ctx.is_bot:
        user = actor(ctx)
        if user not in {m["id"] for m in lobby["members"]}:
            lobby["members"].append(
                {"id": user, "metadata": body.get("member_metadata"), "flags": 0}
            )
    return lobby_object(lobby)


@handles("get_lobby")
def get_lobby(ctx: Ctx) -> Any:
    return lobby_object(_lobby(ctx))


@handles("edit_lobby")
def edit_lobby(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    lobby = _lobby(ctx)
    if "metadata" in body:
        lobby["metadata"] = body["metadata"]
    if body.get("idle_timeout_seconds") is not None:
        lobby["idle_timeout_seconds"] = body["idle_timeout_seconds"]
    if body.get("members") is not None:
        members = [_member(m) for m in body["members"]]
        _check_users(world, [m["id"] for m in members])
        lobby["members"] = members
    return lobby_object(lobby)


@handles("delete_lobby")
def delete_lobby(ctx: Ctx) -> Any:
    lobby = _lobby(ctx)
    del ctx.world.lobbies[lobby["id"]]
    ctx.world.lobby_messages.pop(lobby["id"], None)
    return Reply(None, 204)


@handles("add_lobby_member")
def add_lobby_member(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    lobby = _lobby(ctx)
    user_id = ctx.path["user_id"]
    if not world.user_exists(user_id):
        raise unknown(10013, "User")
    member = _member({**body, "id": user_id})
    others = [m for m in lobby["members"] if m["id"] != user_id]
    if len(others) >= MAX_MEMBERS:
        raise DiscordError(400, 30058, "Maximum number of lobby members reached")  # a guess
    lobby["members"] = [*others, member]
    return member


@handles("delete_lobby_member")
def delete_lobby_member(ctx: Ctx) -> Any:
    lobby = _lobby(ctx)
    lobby["members"] = [m for m in lobby["members"] if m["id"] != ctx.path["user_id"]]
    return Reply(None, 204)


@handles("leave_lobby")
def leave_lobby(ctx: Ctx) -> Any:
    lobby = _lobby(ctx)
    user = actor(ctx)
    lobby["members"] = [m for m in lobby["members"] if m["id"] != user]
    return Reply(None, 204)


@handles("bulk_update_lobby_members")
def bulk_update_lobby_members(ctx: Ctx) -> Any:
    world = ctx.world
    lobby = _lobby(ctx)
    members = {m["id"]: m for m in lobby["members"]}
    result = []
    for item in ctx.body or ():
        user_id = str(item["id"])
        if item.get("remove_member"):
            members.pop(user_id, None)
            continue
        if not world.user_exists(user_id):
            raise unknown(10013, "User")
        members[user_id] = _member(item)
        result.append(members[user_id])
    lobby["members"] = list(members.values())[:MAX_MEMBERS]
    return result


@handles("edit_lobby_channel_link")
def edit_lobby_channel_link(ctx: Ctx) -> Any:
    world = ctx.world
    lobby = _lobby(ctx, member=True)
    channel_id = ctx.body_dict().get("channel_id")
    if channel_id is None:
        lobby["linked_channel"] = None
    else:
        channel = world.visible_channel(str(channel_id), ctx.actor)
        lobby["linked_channel"] = {
            "id": channel["id"],
            "type": channel["type"],
            "guild_id": channel.get("guild_id"),
            "name": channel.get("name"),
            "flags": 0,
            "position": channel.get("position", 0),
        }
    return lobby_object(lobby)


def _invite(ctx: Ctx, lobby: dict[str, Any]) -> dict[str, Any]:
    if lobby.get("linked_channel") is None:
        raise DiscordError(400, 0, "The lobby is not linked to a channel")
    return {"code": secrets.token_urlsafe(6)[:8]}


@handles("create_linked_lobby_guild_invite_for_self")
def invite_for_self(ctx: Ctx) -> Any:
    return _invite(ctx, _lobby(ctx, member=True))


@handles("create_linked_lobby_guild_invite_for_user")
def invite_for_user(ctx: Ctx) -> Any:
    lobby = _lobby(ctx)
    if ctx.path["user_id"] not in {m["id"] for m in lobby["members"]}:
        raise unknown(10007, "Member")
    return _invite(ctx, lobby)


@handles("get_lobby_messages")
def get_lobby_messages(ctx: Ctx) -> Any:
    lobby = _lobby(ctx, member=True)
    messages = ctx.world.lobby_messages.get(lobby["id"], [])
    limit = ctx.query.get("limit", 50)
    return list(reversed(messages))[:limit]


@handles("create_lobby_message")
def create_lobby_message(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    lobby = _lobby(ctx, member=True)
    check_message_limits(body, creating=True)
    author = world.user_object(actor(ctx))
    message = {
        "id": world.new_id(),
        "type": 0,
        "content": body.get("content") or "",
        "lobby_id": lobby["id"],
        "channel_id": lobby["id"],
        "author": author,
        "flags": int(body.get("flags") or 0),
        "application_id": lobby["application_id"],
    }
    if body.get("metadata"):
        message["metadata"] = body["metadata"]
    world.lobby_messages.setdefault(lobby["id"], []).append(message)
    return Reply(message, 201)


@handles("update_lobby_message_external_moderation_metadata")
def update_moderation_metadata(ctx: Ctx) -> Any:
    lobby = _lobby(ctx)
    for message in ctx.world.lobby_messages.get(lobby["id"], []):
        if message["id"] == ctx.path["message_id"]:
            message["moderation_metadata"] = dict(ctx.body_dict())
            return Reply(None, 204)
    raise unknown(10008, "Message")
