"""Messages, reactions, pins, polls and typing (resources/message.mdx, ``discord-api.md`` §6.2–6.3).

Creating a message: the caller needs View Channel and Send Messages (Send Messages in Threads in a
thread); a message needs content, embeds, stickers, components, a poll or attachments (else
``400 50006``); content is at most 2,000 characters and all embeds together at most 6,000
(``400 50035``). ``nonce`` with ``enforce_nonce: true``: when the same author sent a message with
that nonce in the last five minutes (the sandbox's reading of "a few minutes"), that message is
returned and none is created, which is what makes a retried send safe.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tokenward.clock import isoformat
from tokenward.sandbox import fixtures as fx
from tokenward.sandbox.errors import DiscordError, bad_request, missing_access, not_found
from tokenward.sandbox.families.common import (
    actor,
    audit,
    channel_for,
    channel_guild,
    form_error,
    paginate_ids,
)
from tokenward.sandbox.rest import Ctx, Reply, handles
from tokenward.sandbox.world import NONCE_WINDOW, THREAD_TYPES, VOICE_LIKE, Reaction, World

MAX_CONTENT = 2000
MAX_EMBED_TOTAL = 6000
MAX_REACTIONS = 20
MAX_PINS = 250
_USER_MENTION = re.compile(r"<@!?([0-9]{15,20})>")
_ROLE_MENTION = re.compile(r"<@&([0-9]{15,20})>")
# Flags a bot may set on a message: SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE,
# IS_COMPONENTS_V2.
SETTABLE_FLAGS = 4 | 4096 | 8192 | 32768


def clean(value: Any) -> Any:
    """A request object as the API echoes it: null fields dropped."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def number_components(components: list[Any]) -> list[Any]:
    """Discord numbers every component of a message (``id``) when the sender did not."""
    counter = [0]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            result = {k: walk(v) for k, v in node.items() if v is not None}
            if "type" in result:
                counter[0] += 1
                result.setdefault("id", counter[0])
            return result
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return [walk(component) for component in components]


def embed_size(embed: dict[str, Any]) -> int:
    total = 0
    for key in ("title", "description"):
        total += len(embed.get(key) or "")
    for item in embed.get("fields") or ():
        total += len(item.get("name") or "") + len(item.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


def response_embeds(embeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for embed in embeds:
        item = clean(embed)
        item.setdefault("type", "rich")
        for field in item.get("fields", ()):
            field.setdefault("inline", False)
        result.append(item)
    return result


def check_message_limits(body: dict[str, Any], *, creating: bool) -> None:
    content = body.get("content")
    if content is not None and len(content) > MAX_CONTENT:
        raise form_error(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    embeds = body.get("embeds") or []
    if sum(embed_size(embed) for embed in embeds) > MAX_EMBED_TOTAL:
        raise form_error(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
        )
    if creating and not any(
        body.get(key)
        for key in ("content", "embeds", "sticker_ids", "components", "poll", "attachments")
    ):
        raise bad_request(50006, "Cannot send an empty message")


def poll_object(world: World, request: dict[str, Any]) -> dict[str, Any]:
    hours = request.get("duration") or 24
    return {
        "question": clean(request["question"]),
        "answers": [
            {"answer_id": index + 1, "poll_media": clean(answer.get("poll_media") or {})}
            for index, answer in enumerate(request["answers"])
        ],
        "expiry": isoformat(world.now() + timedelta(hours=hours).total_seconds()),
        "allow_multiselect": bool(request.get("allow_multiselect")),
        "layout_type": request.get("layout_type") or 1,
        "results": {"answer_counts": [], "is_finalized": False},
    }


def mentions(
    world: World, channel: dict[str, Any], author_id: str, body: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str], bool]:
    """(users, role ids, @everyone) the content mentions, as ``allowed_mentions`` lets it."""
    content = body.get("content") or ""
    allowed = body.get("allowed_mentions")
    parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse") or ())
    allowed_users = set((allowed or {}).get("users") or ())
    allowed_roles = set((allowed or {}).get("roles") or ())
    users = []
    for user_id in dict.fromkeys(_USER_MENTION.findall(content)):
        if ("users" in parse or user_id in allowed_users) and world.user_exists(user_id):
            users.append(world.user_object(user_id))
    roles: list[str] = []
    guild = world.guilds.get(str(channel.get("guild_id")))
    if guild is not None:
        roles = [
            role_id
            for role_id in dict.fromkeys(_ROLE_MENTION.findall(content))
            if role_id in guild.roles and ("roles" in parse or role_id in allowed_roles)
        ]
    everyone = False
    if "everyone" in parse and ("@everyone" in content or "@here" in content):
        everyone = bool(world.channel_permissions(channel, author_id) & fx.MENTION_EVERYONE)
    return users, roles, everyone


def build_message(
    world: World,
    channel: dict[str, Any],
    author: dict[str, Any],
    body: dict[str, Any],
    *,
    message_id: str | None = None,
    webhook_id: str | None = None,
    application_id: str | None = None,
    message_type: int = 0,
) -> dict[str, Any]:
    """A new message (not yet stored) from a create-message style body."""
    channel_id = str(channel["id"])
    message = world.message_object(
        channel_id,
        message_id or world.new_id(),
        author,
        content=body.get("content") or "",
        message_type=message_type,
    )
    users, roles, everyone = mentions(world, channel, str(author["id"]), body)
    message.update(mentions=users, mention_roles=roles, mention_everyone=everyone)
    message["embeds"] = response_embeds(body.get("embeds") or [])
    message["components"] = number_components(body.get("components") or [])
    message["flags"] = int(body.get("flags") or 0) & SETTABLE_FLAGS
    message["tts"] = bool(body.get("tts"))
    if body.get("poll"):
        message["poll"] = poll_object(world, body["poll"])
    if body.get("sticker_ids"):
        message["sticker_items"] = sticker_items(world, body["sticker_ids"])
    if body.get("nonce") is not None:
        message["nonce"] = body["nonce"]
    if webhook_id is not None:
        message["webhook_id"] = webhook_id
    if application_id is not None:
        message["application_id"] = application_id
    if channel.get("guild_id") is not None:
        message["guild_id"] = channel["guild_id"]
    return message


def sticker_items(world: World, sticker_ids: list[str]) -> list[dict[str, Any]]:
    items = []
    for sticker_id in sticker_ids:
        found = None
        for guild in world.guilds.values():
            found = guild.stickers.get(sticker_id) or found
        for pack in fx.STICKER_PACKS:
            for sticker in pack["stickers"]:
                if sticker["id"] == sticker_id:
                    found = sticker
        if found is None:
            raise bad_request(50081, "Invalid sticker sent")
        items.append({"id": sticker_id, "name": found["name"], "format_type": found["format_type"]})
    return items


def sendable(ctx: Ctx) -> dict[str, Any]:
    """The path's channel, if the caller may send messages there."""
    channel = channel_for(ctx)
    kind = channel.get("type")
    if kind in (4, 15, 16):
        raise bad_request(50008, "Cannot send messages in a non-text channel")
    world, user = ctx.world, actor(ctx)
    if kind in THREAD_TYPES:
        world.require_channel_permission(channel, user, fx.SEND_MESSAGES_IN_THREADS)
        metadata = channel.get("thread_metadata") or {}
        if (
            metadata.get("locked")
            and not world.channel_permissions(channel, user) & fx.MANAGE_THREADS
        ):
            raise bad_request(50083, "Thread is archived")
        if metadata.get("archived"):
            metadata["archived"] = False  # sending unarchives an unlocked thread
    else:
        world.require_channel_permission(channel, user, fx.SEND_MESSAGES)
    return channel


@handles("create_message")
def create_message(ctx: Ctx) -> Any:
    world, body = ctx.world, ctx.body_dict()
    channel = sendable(ctx)
    check_message_limits(body, creating=True)
    author_id = actor(ctx)
    nonce = body.get("nonce")
    key = (author_id, str(nonce))
    if nonce is not None and body.get("enforce_nonce"):
        earlier = world.nonces.get(key)
        if earlier is not None and world.now() - earlier[2] <= NONCE_WINDOW:
            existing = world.messages.get(earlier[0], {}).get(earlier[1])
            if existing is not None:
                return world.render_message(existing, author_id)
    reference = body.get("message_reference")
    referenced = None
    if reference:
        referenced_channel = str(reference.get("channel_id") or channel["id"])
        referenced = world.messages.get(referenced_channel, {}).get(str(reference["message_id"]))
        if referenced is None and reference.get("fail_if_not_exists", True) is not False:
            raise form_error(
                "message_reference",
                "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                "Unknown message",
            )
    message = build_message(world, channel, world.user_object(author_id), body)
    if referenced is not None and reference is not None:
        forward = reference.get("type") == 1
        message["type"] = 0 if forward else 19
        message["message_reference"] = {
            "type": 1 if forward else 0,
            "channel_id": referenced["channel_id"],
            "message_id": referenced["id"],
            **({"guild_id": channel["guild_id"]} if channel.get("guild_id") else {}),
        }
        if not forward:
            message["referenced_message"] = world.render_message(referenced)
    world.store_message(message)
    if nonce is not None:
        world.nonces[key] = (str(channel["id"]), str(message["id"]), world.now())
    return world.render_message(message, author_id)


def _history(ctx: Ctx) -> dict[str, Any]:
    channel = channel_for(ctx)
    if not ctx.world.channel_permissions(channel, actor(ctx)) & fx.READ_MESSAGE_HISTORY:
        raise missing_access()
    return channel


@handles("list_messages")
def list_messages(ctx: Ctx) -> Any:
    channel = channel_for(ctx)
    world, user = ctx.world, actor(ctx)
    if not world.channel_permissions(channel, user) & fx.READ_MESSAGE_HISTORY:
        return []
    items = list(world.messages.get(str(channel["id"]), {}).values())
    limit = ctx.query.get("limit", 50)
    around = ctx.query.get("around")
    if around is not None:
        ordered = sorted(items, key=lambda m: int(m["id"]))
        older = [m for m in ordered if int(m["id"]) <= int(around)][-((limit + 1) // 2) :]
        newer = [m for m in ordered if int(m["id"]) > int(around)][: limit - len(older)]
        page = older + newer
    else:
        page = paginate_ids(items, ctx.query.get("before"), ctx.query.get("after"), limit)
        if ctx.query.get("after") is None and ctx.query.get("before") is None:
            page = sorted(items, key=lambda m: int(m["id"]))[-limit:]
    page.sort(key=lambda m: int(m["id"]), reverse=True)
    return [world.render_message(message, user) for message in page]


@handles("get_message")
def get_message(ctx: Ctx) -> Any:
    channel = _history(ctx)
    message = ctx.world.message(str(channel["id"]), ctx.path["message_id"])
    return ctx.world.render_message(message, ctx.actor)


@handles("update_message")
def update_message(ctx: Ctx) -> Any:
    world, body, user = ctx.world, ctx.body_dict(), actor(ctx)
    channel = channel_for(ctx)
    message = world.message(str(channel["id"]), ctx.path["message_id"])
    own = message["author"]["id"] == user and "webhook_id" not in message
    if not own:
        if {k for k, v in body.items() if v is not None} - {"flags"}:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        world.require_channel_permission(channel, user, fx.MANAGE_MESSAGES)
    check_message_limits(body, creating=False)
    edit_message(world, channel, message, body)
    return world.render_message(message, user)


def edit_message(
    world: World, channel: dict[str, Any], message: dict[str, Any], body: dict[str, Any]
) -> None:
    if "content" in body:
        message["content"] = body["content"] or ""
        users, roles, everyone = mentions(world, channel, str(message["author"]["id"]), body)
        message.update(mentions=users, mention_roles=roles, mention_everyone=everyone)
    if "embeds" in body:
        message["embeds"] = response_embeds(body["embeds"] or [])
    if "components" in body:
        message["components"] = number_components(body["components"] or [])
    if "flags" in body and body["flags"] is not None:
        message["flags"] = (int(message.get("flags", 0)) & ~SETTABLE_FLAGS) | (
            int(body["flags"]) & SETTABLE_FLAGS
        )
    if "attachments" in body and body["attachments"] is not None:
        keep = {str(item.get("id")) for item in body["attachments"]}
        message["attachments"] = [a for a in message["attachments"] if str(a["id"]) in keep]
    message["edited_timestamp"] = world.now_iso()


def remove_message(world: World, channel_id: str, message_id: str) -> None:
    world.messages.get(channel_id, {}).pop(message_id, None)
    world.pins.get(channel_id, {}).pop(message_id, None)
    world.reactions.pop((channel_id, message_id), None)


@handles("delete_message")
def delete_message(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    channel = channel_for(ctx)
    channel_id = str(channel["id"])
    message = world.message(channel_id, ctx.path["message_id"])
    author_id = str(message["author"]["id"])
    if author_id != user:
        world.require_channel_permission(channel, user, fx.MANAGE_MESSAGES)
        audit(
            ctx,
            channel_guild(ctx, channel),
            72,
            author_id,
            options={"channel_id": channel_id, "count": "1"},
        )
    remove_message(world, channel_id, str(message["id"]))
    return None


@handles("bulk_delete_messages")
def bulk_delete_messages(ctx: Ctx) -> Any:
    world = ctx.world
    channel = channel_for(ctx, fx.MANAGE_MESSAGES)
    channel_id = str(channel["id"])
    ids = list(dict.fromkeys(ctx.body_dict()["messages"]))
    if len(ids) < 2:
        raise form_error("messages", "BASE_TYPE_MIN_LENGTH", "Must be 2 or more in length.")
    cutoff = (world.now() - 14 * 86400) * 1000 - fx.DISCORD_EPOCH_MS
    if any((int(message_id) >> 22) < cutoff for message_id in ids):
        raise bad_request(50034, "You can only bulk delete messages that are under 14 days old.")
    deleted = [m for m in ids if m in world.messages.get(channel_id, {})]
    for message_id in deleted:
        remove_message(world, channel_id, message_id)
    audit(ctx, channel_guild(ctx, channel), 73, channel_id, options={"count": str(len(deleted))})
    return None


@handles("crosspost_message")
def crosspost_message(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    channel = channel_for(ctx)
    if channel.get("type") != 5:
        raise bad_request(50024, "Cannot execute action on this channel type")
    message = world.message(str(channel["id"]), ctx.path["message_id"])
    if message["author"]["id"] == user:
        world.require_channel_permission(channel, user, fx.SEND_MESSAGES)
    else:
        world.require_channel_permission(channel, user, fx.MANAGE_MESSAGES)
    if int(message.get("flags", 0)) & 1:
        raise bad_request(40033, "This message has already been crossposted.")
    message["flags"] = int(message.get("flags", 0)) | 1
    return world.render_message(message, user)


@handles("trigger_typing_indicator")
def trigger_typing(ctx: Ctx) -> Any:
    sendable(ctx)
    return Reply(None, 204)


# -- polls -----------------------------------------------------------------------------------------


def _poll_message(ctx: Ctx) -> dict[str, Any]:
    channel = _history(ctx)
    message = ctx.world.message(str(channel["id"]), ctx.path["message_id"])
    if "poll" not in message:
        raise bad_request(520001, "This message does not have a poll")
    return message


@handles("get_answer_voters")
def get_answer_voters(ctx: Ctx) -> Any:
    message = _poll_message(ctx)
    answers = {str(a["answer_id"]) for a in message["poll"]["answers"]}
    if ctx.path["answer_id"] not in answers:
        raise not_found()  # Discord's code for an unknown answer is not documented
    return {"users": []}


@handles("poll_expire")
def poll_expire(ctx: Ctx) -> Any:
    message = _poll_message(ctx)
    if message["author"]["id"] != actor(ctx):
        raise DiscordError(403, 50013, "Missing Permissions")
    message["poll"]["results"]["is_finalized"] = True
    message["poll"]["expiry"] = ctx.world.now_iso()
    return ctx.world.render_message(message, ctx.actor)


# -- reactions -------------------------------------------------------------------------------------


def _reaction_target(ctx: Ctx, *perms: int) -> tuple[dict[str, Any], dict[str, Any]]:
    channel = channel_for(ctx)
    world, user = ctx.world, actor(ctx)
    world.require_channel_permission(channel, user, fx.READ_MESSAGE_HISTORY, *perms)
    return channel, world.message(str(channel["id"]), ctx.path["message_id"])


@handles("add_my_message_reaction")
def add_reaction(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    channel, message = _reaction_target(ctx)
    key, emoji = world.parse_emoji(ctx.path["emoji_name"], user)
    reactions = world.reactions.setdefault((str(channel["id"]), str(message["id"])), {})
    existing = reactions.get(key)
    if existing is None or not existing.users:
        # A new reaction needs Add Reactions; joining one does not (resources/message.mdx).
        world.require_channel_permission(channel, user, fx.ADD_REACTIONS)
        if sum(1 for r in reactions.values() if r.users) >= MAX_REACTIONS:
            raise bad_request(30010, "Maximum number of reactions reached (20)")
    reaction = reactions.setdefault(key, Reaction(emoji))
    if user not in reaction.users:
        reaction.users.append(user)
    return Reply(None, 204)


def _remove_reaction(ctx: Ctx, user_id: str) -> None:
    channel = channel_for(ctx)
    world = ctx.world
    message = world.message(str(channel["id"]), ctx.path["message_id"])
    key, _ = world.parse_emoji(ctx.path["emoji_name"], None)
    reaction = world.reactions.get((str(channel["id"]), str(message["id"])), {}).get(key)
    if reaction is not None and user_id in reaction.users:
        reaction.users.remove(user_id)


@handles("delete_my_message_reaction")
def delete_own_reaction(ctx: Ctx) -> Any:
    _remove_reaction(ctx, actor(ctx))
    return Reply(None, 204)


@handles("delete_user_message_reaction")
def delete_user_reaction(ctx: Ctx) -> Any:
    channel_for(ctx, fx.MANAGE_MESSAGES)
    _remove_reaction(ctx, ctx.path["user_id"])
    return Reply(None, 204)


@handles("list_message_reactions_by_emoji")
def list_reactions(ctx: Ctx) -> Any:
    world = ctx.world
    channel, message = _reaction_target(ctx)
    key, _ = world.parse_emoji(ctx.path["emoji_name"], None)
    reaction = world.reactions.get((str(channel["id"]), str(message["id"])), {}).get(key)
    if ctx.query.get("type") == 1 or reaction is None:
        return []
    users = [world.user_object(user_id) for user_id in reaction.users]
    return paginate_ids(users, None, ctx.query.get("after"), ctx.query.get("limit", 25))


@handles("delete_all_message_reactions")
def delete_all_reactions(ctx: Ctx) -> Any:
    channel = channel_for(ctx, fx.MANAGE_MESSAGES)
    message = ctx.world.message(str(channel["id"]), ctx.path["message_id"])
    ctx.world.reactions.pop((str(channel["id"]), str(message["id"])), None)
    return Reply(None, 204)


@handles("delete_all_message_reactions_by_emoji")
def delete_all_reactions_for_emoji(ctx: Ctx) -> Any:
    channel = channel_for(ctx, fx.MANAGE_MESSAGES)
    world = ctx.world
    message = world.message(str(channel["id"]), ctx.path["message_id"])
    key, _ = world.parse_emoji(ctx.path["emoji_name"], None)
    world.reactions.get((str(channel["id"]), str(message["id"])), {}).pop(key, None)
    return Reply(None, 204)


# -- pins ------------------------------------------------------------------------------------------


def _pinned(world: World, channel_id: str, viewer: str | None) -> list[tuple[str, dict[str, Any]]]:
    pins = world.pins.get(channel_id, {})
    items = [
        (pinned_at, world.render_message(world.messages[channel_id][message_id], viewer))
        for message_id, pinned_at in pins.items()
        if message_id in world.messages.get(channel_id, {})
    ]
    items.sort(key=lambda item: item[0], reverse=True)
    return items


@handles("list_pins")
def list_pins(ctx: Ctx) -> Any:
    channel = _history(ctx)
    items = _pinned(ctx.world, str(channel["id"]), ctx.actor)
    before = ctx.query.get("before")
    if before is not None:
        items = [item for item in items if item[0] < before]
    limit = ctx.query.get("limit", 50)
    return {
        "items": [{"pinned_at": at, "message": message} for at, message in items[:limit]],
        "has_more": len(items) > limit,
    }


@handles("deprecated_list_pins")
def deprecated_list_pins(ctx: Ctx) -> Any:
    channel = _history(ctx)
    return [message for _, message in _pinned(ctx.world, str(channel["id"]), ctx.actor)]


@handles("create_pin", "deprecated_create_pin")
def pin_message(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    channel = channel_for(ctx)
    if not world.channel_permissions(channel, user) & (fx.PIN_MESSAGES | fx.MANAGE_MESSAGES):
        raise DiscordError(403, 50013, "Missing Permissions")
    channel_id = str(channel["id"])
    message = world.message(channel_id, ctx.path["message_id"])
    pins = world.pins.setdefault(channel_id, {})
    if message["id"] in pins:
        return Reply(None, 204)
    if len(pins) >= MAX_PINS:
        raise bad_request(30003, "Maximum number of pins reached (250)")
    pins[str(message["id"])] = world.now_iso()
    channel["last_pin_timestamp"] = pins[str(message["id"])]
    notice = world.message_object(
        channel_id, world.new_id(), world.user_object(user), message_type=6
    )
    notice["message_reference"] = {"type": 0, "channel_id": channel_id, "message_id": message["id"]}
    world.store_message(notice)
    options = {"channel_id": channel_id, "message_id": str(message["id"])}
    audit(ctx, channel_guild(ctx, channel), 74, str(message["author"]["id"]), options=options)
    return Reply(None, 204)


@handles("delete_pin", "deprecated_delete_pin")
def unpin_message(ctx: Ctx) -> Any:
    world, user = ctx.world, actor(ctx)
    channel = channel_for(ctx)
    if not world.channel_permissions(channel, user) & (fx.PIN_MESSAGES | fx.MANAGE_MESSAGES):
        raise DiscordError(403, 50013, "Missing Permissions")
    channel_id = str(channel["id"])
    message = world.message(channel_id, ctx.path["message_id"])
    if world.pins.get(channel_id, {}).pop(str(message["id"]), None) is not None:
        options = {"channel_id": channel_id, "message_id": str(message["id"])}
        audit(ctx, channel_guild(ctx, channel), 75, str(message["author"]["id"]), options=options)
    return Reply(None, 204)


__all__ = ["VOICE_LIKE", "build_message", "check_message_limits", "clean", "edit_message"]
