"""Webhooks, webhook execution, and interaction callbacks and follow-ups (``discord-api.md`` §6.6).

Managing webhooks needs Manage Webhooks; the token routes need no ``Authorization`` (a wrong
token is ``401 50027``, an unknown webhook ``404 10015``). Answers of token routes carry no
``user``, as Discord's do.

Interactions: the sandbox has no gateway and no users clicking, so a test creates one with
``POST /_sandbox/interactions`` (see ``control.py``) and gets its id and token. The first
response goes to ``POST /interactions/{id}/{token}/callback`` within three seconds of the
sandbox clock (later, or a wrong token: ``404 10062 Unknown interaction``; twice: ``400 40060``);
then ``/webhooks/{application_id}/{token}`` (follow-ups) and ``…/messages/@original`` work for
fifteen minutes (after that ``401 50027``).
"""

from __future__ import annotations

import secrets
from typing import Any

from tokenward.sandbox import fixtures as fx
from tokenward.sandbox.errors import DiscordError, bad_request, unknown
from tokenward.sandbox.families.common import actor, apply_changes, audit, channel_for, guild_for
from tokenward.sandbox.families.messages import (
    build_message,
    check_message_limits,
    edit_message,
    remove_message,
)
from tokenward.sandbox.rest import Ctx, Reply, handles
from tokenward.sandbox.world import (
    INTERACTION_CALLBACK_WINDOW,
    INTERACTION_TOKEN_LIFETIME,
    THREAD_TYPES,
    Interaction,
    World,
)

_BAD_NAMES = ("clyde", "discord")


def invalid_webhook_token() -> DiscordError:
    return DiscordError(401, 50027, "Invalid Webhook Token")


def webhook_object(
    world: World, hook: dict[str, Any], *, with_token: bool, with_user: bool = True
) -> dict[str, Any]:
    body = {k: v for k, v in hook.items() if k not in ("token", "user")}
    if with_user and hook.get("user") is not None:
        body["user"] = hook["user"]
    if with_token and hook.get("type") == 1 and hook.get("token"):
        body["token"] = hook["token"]
        body["url"] = f"https://discord.com/api/webhooks/{hook['id']}/{hook['token']}"
    return body


def _check_name(name: Any) -> None:
    if isinstance(name, str) and any(bad in name.lower() for bad in _BAD_NAMES):
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {
                "name": {
                    "_errors": [
                        {
                            "code": "WEBHOOK_INVALID_USERNAME",
                            "message": f'Username cannot contain "{name}"',
                        }
                    ]
                }
            },
        )


def _managed(ctx: Ctx) -> dict[str, Any]:
    """The path's webhook, the caller holding Manage Webhooks in its channel."""
    world = ctx.world
    hook = world.webhooks.get(ctx.path["webhook_id"])
    if hook is None:
        raise unknown(10015, "Webhook")
    channel = world.visible_channel(str(hook["channel_id"]), ctx.actor)
    world.require_channel_permission(channel, actor(ctx), fx.MANAGE_WEBHOOKS)
    return hook


@handles("create_webhook")
def create_webhook(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    channel = channel_for(ctx, fx.MANAGE_WEBHOOKS)
    if channel.get("guild_id") is None or channel.get("type") in THREAD_TYPES:
        raise bad_request(50024, "Cannot execute action on this channel type")
    _check_name(body.get("name"))
    count = sum(1 for h in world.webhooks.values() if h["channel_id"] == channel["id"])
    if count >= 15:
        raise bad_request(30007, "Maximum number of webhooks reached (15)")
    hook = {
        "id": world.new_id(),
        "type": 1,
        "guild_id": channel["guild_id"],
        "channel_id": channel["id"],
        "name": body["name"],
        "avatar": None if not body.get("avatar") else secrets.token_hex(16),
        "application_id": ctx.application_id if ctx.is_bot else None,
        "token": secrets.token_urlsafe(48),
        "user": world.user_object(actor(ctx)),
    }
    world.webhooks[hook["id"]] = hook
    guild = world.guilds[str(channel["guild_id"])]
    audit(
        ctx,
        guild,
        50,
        hook["id"],
        [("name", None, hook["name"]), ("type", None, 1), ("channel_id", None, channel["id"])],
    )
    return webhook_object(world, hook, with_token=True)


@handles("list_channel_webhooks")
def list_channel_webhooks(ctx: Ctx) -> Any:
    world = ctx.world
    channel = channel_for(ctx, fx.MANAGE_WEBHOOKS)
    return [
        webhook_object(world, hook, with_token=True)
        for hook in world.webhooks.values()
        if hook["channel_id"] == channel["id"]
    ]


@handles("get_guild_webhooks")
def get_guild_webhooks(ctx: Ctx) -> Any:
    world = ctx.world
    guild = guild_for(ctx, fx.MANAGE_WEBHOOKS)
    return [
        webhook_object(world, hook, with_token=True)
        for hook in world.webhooks.values()
        if hook.get("guild_id") == guild.id
    ]


@handles("get_webhook")
def get_webhook(ctx: Ctx) -> Any:
    return webhook_object(ctx.world, _managed(ctx), with_token=True)


@handles("update_webhook")
def update_webhook(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    hook = _managed(ctx)
    _check_name(body.get("name"))
    updates: dict[str, Any] = {}
    if body.get("name") is not None:
        updates["name"] = body["name"]
    if "avatar" in body:
        updates["avatar"] = None if not body["avatar"] else secrets.token_hex(16)
    if body.get("channel_id") is not None:
        target = world.visible_channel(str(body["channel_id"]), ctx.actor)
        world.require_channel_permission(target, actor(ctx), fx.MANAGE_WEBHOOKS)
        if target.get("guild_id") != hook.get("guild_id"):
            raise bad_request(50035, "Invalid Form Body")
        updates["channel_id"] = target["id"]
    changes = apply_changes(hook, updates, ("name", "avatar", "channel_id"))
    audit(ctx, world.guilds.get(str(hook.get("guild_id"))), 51, hook["id"], changes)
    return webhook_object(world, hook, with_token=True)


@handles("delete_webhook")
def delete_webhook(ctx: Ctx) -> Any:
    world = ctx.world
    hook = _managed(ctx)
    del world.webhooks[hook["id"]]
    audit(
        ctx,
        world.guilds.get(str(hook.get("guild_id"))),
        52,
        hook["id"],
        [("name", hook["name"], None)],
    )
    return Reply(None, 204)


# -- token routes: webhooks or interactions --------------------------------------------------------


def _token_target(ctx: Ctx) -> tuple[dict[str, Any] | None, Interaction | None]:
    """The webhook of ``{webhook_id}/{webhook_token}``, or the interaction when the id is an
    application's and the token an interaction token."""
    world = ctx.world
    webhook_id, token = ctx.path["webhook_id"], ctx.path["webhook_token"]
    hook = world.webhooks.get(webhook_id)
    if hook is not None:
        if hook.get("type") != 1 or not secrets.compare_digest(str(hook.get("token", "")), token):
            raise invalid_webhook_token()
        return hook, None
    if webhook_id in ctx.state.applications:
        interaction = world.interaction_by_token(webhook_id, token)
        if interaction is None:
            raise unknown(10015, "Webhook")
        if world.now() - interaction.created_at > INTERACTION_TOKEN_LIFETIME:
            raise invalid_webhook_token()
        return None, interaction
    raise unknown(10015, "Webhook")


def _hook_only(ctx: Ctx) -> dict[str, Any]:
    hook, _ = _token_target(ctx)
    if hook is None:
        raise unknown(10015, "Webhook")
    return hook


@handles("get_webhook_by_token")
def get_webhook_by_token(ctx: Ctx) -> Any:
    return webhook_object(ctx.world, _hook_only(ctx), with_token=True, with_user=False)


@handles("update_webhook_by_token")
def update_webhook_by_token(ctx: Ctx) -> Any:
    hook = _hook_only(ctx)
    body = ctx.body_dict()
    _check_name(body.get("name"))
    updates: dict[str, Any] = {}
    if body.get("name") is not None:
        updates["name"] = body["name"]
    if "avatar" in body:
        updates["avatar"] = None if not body["avatar"] else secrets.token_hex(16)
    changes = apply_changes(hook, updates, ("name", "avatar"))
    audit(ctx, ctx.world.guilds.get(str(hook.get("guild_id"))), 51, hook["id"], changes)
    return webhook_object(ctx.world, hook, with_token=False, with_user=False)


@handles("delete_webhook_by_token")
def delete_webhook_by_token(ctx: Ctx) -> Any:
    hook = _hook_only(ctx)
    del ctx.world.webhooks[hook["id"]]
    audit(
        ctx,
        ctx.world.guilds.get(str(hook.get("guild_id"))),
        52,
        hook["id"],
        [("name", hook["name"], None)],
    )
    return Reply(None, 204)


def _webhook_author(hook: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": hook["id"],
        "username": body.get("username") or hook["name"],
        "discriminator": "0000",
        "avatar": hook.get("avatar"),
        "bot": True,
        "global_name": None,
        "public_flags": 0,
        "flags": 0,
        "primary_guild": None,
    }


def _target_channel(ctx: Ctx, hook_channel: str) -> dict[str, Any]:
    world = ctx.world
    thread_id = ctx.query.get("thread_id")
    if thread_id is None:
        return world.channel(hook_channel)
    thread = world.channels.get(str(thread_id))
    if thread is None or thread.get("parent_id") != hook_channel:
        raise unknown(10003, "Channel")
    return thread


@handles("execute_webhook")
def execute_webhook(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    hook, interaction = _token_target(ctx)
    check_message_limits(body, creating=True)
    if interaction is not None:
        return _followup(ctx, interaction, body)
    assert hook is not None
    channel = _target_channel(ctx, str(hook["channel_id"]))
    if channel.get("type") == 15 and body.get("thread_name"):
        thread_id = world.new_id()
        thread = {
            "id": thread_id,
            "type": 11,
            "guild_id": channel["guild_id"],
            "parent_id": channel["id"],
            "owner_id": hook["id"],
            "name": body["thread_name"],
            "flags": 0,
            "message_count": 0,
            "member_count": 0,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "thread_metadata": {
                "archived": False,
                "archive_timestamp": world.now_iso(),
                "auto_archive_duration": 4320,
                "locked": False,
                "create_timestamp": world.now_iso(),
            },
        }
        world.channels[thread_id] = thread
        world.messages[thread_id] = {}
        channel = thread
    elif channel.get("type") == 15:
        raise bad_request(
            220001, "Webhooks posted to forum channels must have a thread_name or thread_id"
        )
    message = build_message(
        world,
        channel,
        _webhook_author(hook, body),
        body,
        webhook_id=str(hook["id"]),
        application_id=hook.get("application_id"),
    )
    world.store_message(message)
    if ctx.query.get("wait"):
        return world.render_message(message)
    return Reply(None, 204)


@handles("execute_slack_compatible_webhook")
def execute_slack(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    hook = _hook_only(ctx)
    channel = _target_channel(ctx, str(hook["channel_id"]))
    text = body.get("text") or ""
    if not text and not body.get("attachments"):
        raise bad_request(50006, "Cannot send an empty message")
    message = build_message(
        world, channel, _webhook_author(hook, body), {"content": text}, webhook_id=str(hook["id"])
    )
    world.store_message(message)
    return "ok"


@handles("execute_github_compatible_webhook")
def execute_github(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    hook = _hook_only(ctx)
    channel = _target_channel(ctx, str(hook["channel_id"]))
    sender = (body.get("sender") or {}).get("login", "someone")
    repository = (body.get("repository") or {}).get("full_name", "a repository")
    embed = {"title": f"[{repository}] {body.get('action') or 'event'}", "author": {"name": sender}}
    message = build_message(
        world,
        channel,
        _webhook_author(hook, {"username": "GitHub"}),
        {"embeds": [embed]},
        webhook_id=str(hook["id"]),
    )
    world.store_message(message)
    return Reply(None, 204)


def _hook_message(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(channel, message)`` of ``…/messages/{message_id|@original}`` on a token route."""
    world = ctx.world
    hook, interaction = _token_target(ctx)
    message_id = ctx.path.get("message_id", "@original")
    if interaction is not None:
        if message_id == "@original":
            if interaction.original_id is None:
                raise unknown(10008, "Message")
            message_id = interaction.original_id
        elif message_id not in interaction.followups and message_id != interaction.original_id:
            raise unknown(10008, "Message")
        channel = world.channel(interaction.channel_id)
        return channel, world.message(str(channel["id"]), message_id)
    assert hook is not None
    if message_id == "@original":
        raise unknown(10008, "Message")
    channel = _target_channel(ctx, str(hook["channel_id"]))
    message = world.message(str(channel["id"]), message_id)
    if message.get("webhook_id") != hook["id"]:
        raise unknown(10008, "Message")
    return channel, message


@handles("get_webhook_message", "get_original_webhook_message")
def get_webhook_message(ctx: Ctx) -> Any:
    _, message = _hook_message(ctx)
    return ctx.world.render_message(message)


@handles("update_webhook_message", "update_original_webhook_message")
def update_webhook_message(ctx: Ctx) -> Any:
    body = ctx.body_dict()
    channel, message = _hook_message(ctx)
    check_message_limits(body, creating=False)
    edit_message(ctx.world, channel, message, body)
    message["flags"] = int(message.get("flags", 0)) & ~128  # no longer "thinking…"
    return ctx.world.render_message(message)


@handles("delete_webhook_message", "delete_original_webhook_message")
def delete_webhook_message(ctx: Ctx) -> Any:
    channel, message = _hook_message(ctx)
    remove_message(ctx.world, str(channel["id"]), str(message["id"]))
    return Reply(None, 204)


# -- interactions ----------------------------------------------------------------------------------


def _interaction_author(world: World, interaction: Interaction) -> dict[str, Any]:
    app = world.state.applications.get(interaction.application_id)
    return world.user_object(app.bot_user_id if app else interaction.application_id)


def _interaction_message(
    world: World, interaction: Interaction, body: dict[str, Any], flags: int = 0
) -> dict[str, Any]:
    channel = world.channel(interaction.channel_id)
    message = build_message(
        world,
        channel,
        _interaction_author(world, interaction),
        body,
        webhook_id=interaction.application_id,
        application_id=interaction.application_id,
        message_type=20 if interaction.type == 2 else 0,
    )
    message["flags"] = int(message.get("flags", 0)) | flags
    message["interaction_metadata"] = {
        "id": interaction.id,
        "type": interaction.type,
        "user": world.user_object(interaction.user_id),
        "authorizing_integration_owners": {"0": interaction.guild_id or interaction.user_id},
    }
    world.store_message(message)
    return message


def _followup(ctx: Ctx, interaction: Interaction, body: dict[str, Any]) -> Any:
    if not interaction.responded:
        raise unknown(10015, "Webhook")
    message = _interaction_message(ctx.world, interaction, body, int(body.get("flags") or 0) & 64)
    interaction.followups.append(str(message["id"]))
    return ctx.world.render_message(message)


# Callback types allowed per interaction type (interactions/receiving-and-responding.mdx).
_CALLBACKS = {1: {1}, 2: {4, 5, 9, 12}, 3: {4, 5, 6, 7, 9, 12}, 4: {8}, 5: {4, 5, 6, 7}}


def apply_interaction_response(
    world: World, interaction: Interaction, body: dict[str, Any]
) -> dict[str, Any] | None:
    """Act on an interaction's first response (``{type, data?}``), whether it came through
    ``POST /interactions/{id}/{token}/callback`` or as the HTTP answer of the application's
    interactions endpoint; returns the message it created or edited, if any. Raises
    :class:`DiscordError` (and changes nothing) for a response the interaction does not allow."""
    if interaction.responded:
        raise bad_request(40060, "Interaction has already been acknowledged.")
    kind = body.get("type")
    if (
        isinstance(kind, bool)
        or not isinstance(kind, int)
        or kind not in _CALLBACKS.get(interaction.type, set())
    ):
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {
                "type": {
                    "_errors": [
                        {
                            "code": "INTERACTION_RESPONSE_TYPE_INVALID",
                            "message": "Invalid interaction response type",
                        }
                    ]
                }
            },
        )
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {
                "data": {
                    "_errors": [
                        {
                            "code": "DICT_TYPE_CONVERT",
                            "message": "Only dictionaries may be used in a DictType",
                        }
                    ]
                }
            },
        )
    message = None
    if kind in (4, 5):
        if kind == 4:
            check_message_limits(data, creating=True)
        flags = int(data.get("flags") or 0) & 64
        message = _interaction_message(
            world, interaction, data if kind == 4 else {}, flags | (128 if kind == 5 else 0)
        )
        interaction.original_id = str(message["id"])
    elif kind == 7 and interaction.original_id is not None:
        channel = world.channel(interaction.channel_id)
        message = world.message(str(channel["id"]), interaction.original_id)
        edit_message(world, channel, message, data)
    interaction.responded = True
    interaction.response_type = kind
    return message


@handles("create_interaction_response")
def create_interaction_response(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    interaction = world.interactions.get(ctx.path["interaction_id"])
    if interaction is None or not secrets.compare_digest(
        interaction.token, ctx.path["interaction_token"]
    ):
        raise unknown(10062, "interaction")
    if interaction.responded:
        raise bad_request(40060, "Interaction has already been acknowledged.")
    if world.now() - interaction.created_at > INTERACTION_CALLBACK_WINDOW:
        raise unknown(10062, "interaction")
    message = apply_interaction_response(world, interaction, body)
    kind = int(body["type"])
    if not ctx.query.get("with_response"):
        return Reply(None, 204)
    answer: dict[str, Any] = {
        "interaction": {
            "id": interaction.id,
            "type": interaction.type,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(message and int(message.get("flags", 0)) & 64),
            "channel_id": interaction.channel_id,
            **({"guild_id": interaction.guild_id} if interaction.guild_id else {}),
            **({"response_message_id": message["id"]} if message else {}),
        }
    }
    if message is not None and kind in (4, 7):
        answer["resource"] = {"type": kind, "message": world.render_message(message)}
    return Reply(answer, 200)
