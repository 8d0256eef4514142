"""Helpers shared by the family modules: access checks, audit entries, change lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tokenward.sandbox.errors import DiscordError, missing_access
from tokenward.sandbox.rest import Ctx
from tokenward.sandbox.world import GuildState


def actor(ctx: Ctx) -> str:
    """The acting user (bot or Bearer user); 50001 for calls without one."""
    found = ctx.actor
    if found is None:
        raise missing_access()
    return found


def channel_for(ctx: Ctx, *perms: int, name: str = "channel_id") -> dict[str, Any]:
    """The path's channel, visible to the caller, with ``perms`` (else 50001 / 50013)."""
    channel = ctx.world.visible_channel(ctx.path[name], ctx.actor)
    if perms:
        ctx.world.require_channel_permission(channel, actor(ctx), *perms)
    return channel


def guild_for(ctx: Ctx, *perms: int, guild_id: str | None = None) -> GuildState:
    """The path's guild, the caller a member with ``perms`` (else 10004 / 50001 / 50013)."""
    guild = ctx.world.member_guild(guild_id or ctx.path["guild_id"], ctx.actor)
    if perms:
        ctx.world.require_guild_permission(guild, actor(ctx), *perms)
    return guild


def channel_guild(ctx: Ctx, channel: dict[str, Any]) -> GuildState | None:
    guild_id = channel.get("guild_id")
    return None if guild_id is None else ctx.world.guilds[str(guild_id)]


def audit(
    ctx: Ctx,
    guild: GuildState | None,
    action_type: int,
    target_id: str | None,
    changes: Iterable[tuple[str, Any, Any]] = (),
    options: dict[str, Any] | None = None,
) -> None:
    """An audit-log entry for the caller's action, with ``X-Audit-Log-Reason`` as its reason."""
    if guild is None:
        return
    ctx.world.audit(guild, action_type, ctx.actor, target_id, ctx.reason, changes, options)


def apply_changes(
    target: dict[str, Any], updates: dict[str, Any], keys: Iterable[str]
) -> list[tuple[str, Any, Any]]:
    """Set each of ``keys`` present in ``updates`` on ``target``; the audit-log changes."""
    changes = []
    for key in keys:
        if key in updates:
            old, new = target.get(key), updates[key]
            if old != new:
                changes.append((key, old, new))
            target[key] = new
    return changes


def form_error(field: str, code: str, message: str) -> DiscordError:
    """A 50035 naming one field (``a.b.0`` nests)."""
    tree: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(field.split(".")):
        tree = {key: tree}
    return DiscordError(400, 50035, "Invalid Form Body", tree)


def paginate_ids(
    items: list[dict[str, Any]],
    before: str | None,
    after: str | None,
    limit: int,
    key: str = "id",
) -> list[dict[str, Any]]:
    """Snowflake pagination, ascending by ``key``."""
    ordered = sorted(items, key=lambda item: int(item[key]))
    if after is not None:
        ordered = [item for item in ordered if int(item[key]) > int(after)]
    if before is not None:
        ordered = [item for item in ordered if int(item[key]) < int(before)]
        if after is None:
            return ordered[-limit:]
    return ordered[:limit]
