"""Discord's tool hooks: behaviour that tools.yaml cannot say as data.

- ``user_ref_route``: ``discord_get_user`` reads ``@me`` with the account's token, and any other
  user with the connection's bot token, because Discord serves ``GET /users/{id}`` to bots only.
- ``filter_entitlements``: ``GET /users/@me/applications/{id}/entitlements`` takes none of the
  ``exclude_deleted`` / ``exclude_ended`` / ``limit`` filters the tool offers, so the gateway
  applies them to the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tokenward.providers.hooks import HookContext, HookRegistry, RouteChoice

ME = "@me"


def user_ref_route(arguments: Mapping[str, Any]) -> RouteChoice:
    """``@me`` → the current user with the user token; any snowflake → that user, bot token."""
    if arguments.get("user_id") == ME:
        return RouteChoice(path="/users/@me", auth="user", scopes=("identify",))
    return RouteChoice(
        path="/users/{user_id}",
        auth="bot",
        scopes=(),
        note=(
            'Discord serves users other than "@me" only to bot tokens; pass user_id "@me" to '
            "read the connected user instead."
        ),
    )


def _ended(ends_at: object, now: datetime) -> bool:
    """Whether an entitlement's ``ends_at`` lies in the past; null or unreadable → not ended."""
    if not isinstance(ends_at, str):
        return False
    try:
        moment = datetime.fromisoformat(ends_at)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment <= now


def filter_entitlements(data: Any, arguments: Mapping[str, Any], context: HookContext) -> Any:
    """Apply ``exclude_deleted``, ``exclude_ended`` and ``limit`` to a list of entitlements.

    Order matters and mirrors Discord's own list endpoint: drop first, then keep the first
    ``limit`` of what remains. Anything that is not a list is returned unchanged.
    """
    if not isinstance(data, list):
        return data
    kept: list[Any] = list(data)
    if arguments.get("exclude_deleted") is True:
        kept = [e for e in kept if not (isinstance(e, dict) and e.get("deleted") is True)]
    if arguments.get("exclude_ended") is True:
        now = datetime.fromtimestamp(context.clock.time(), tz=UTC)
        kept = [e for e in kept if not (isinstance(e, dict) and _ended(e.get("ends_at"), now))]
    limit = arguments.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool):
        kept = kept[:limit]
    return kept


HOOKS = HookRegistry(
    route={"user_ref_route": user_ref_route},
    result={"filter_entitlements": filter_entitlements},
)
