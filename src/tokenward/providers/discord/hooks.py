"""Discord's tool hooks: behaviour that tools.yaml cannot say as data.

The ``discord`` and ``discordbot`` providers share these functions; each registers the ones
its tools name (this module's ``HOOKS``, and ``tokenward.providers.discordbot.hooks.HOOKS``).

- ``user_ref_route``: ``discord_get_user`` reads ``@me`` with the account's token, and any other
  user with the connection's bot token, because Discord serves ``GET /users/{id}`` to bots only.
- ``filter_entitlements``: ``GET /users/@me/applications/{id}/entitlements`` takes none of the
  ``exclude_deleted`` / ``exclude_ended`` / ``user_id`` / ``guild_id`` / ``before`` / ``after``
  / ``limit`` filters the tool offers, so the gateway applies them to the answer.
- ``ensure_nonce``: a new message gets a random ``nonce`` with ``enforce_nonce: true`` unless the
  caller chose otherwise, so that resending it after a dropped connection returns the message
  Discord already created instead of posting it twice.
- ``permission_names``: ``permissions_names`` / ``allow_names`` / ``deny_names`` (permission flag
  names) become the ``permissions`` / ``allow`` / ``deny`` bitfield strings; names win over a
  bitfield given too.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tokenward.clock import parse_utc
from tokenward.providers.discord.permissions import bitfield
from tokenward.providers.hooks import HookContext, HookRegistry, RouteChoice

ME = "@me"
NONCE_BYTES = 12
"""24 hex characters: within Discord's 25-character limit for a nonce."""
PERMISSION_NAME_PARAMS = {
    "permissions_names": "permissions",
    "allow_names": "allow",
    "deny_names": "deny",
}


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
    moment = parse_utc(ends_at)
    return moment is not None and moment <= now


def _id(value: object) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def filter_entitlements(data: Any, arguments: Mapping[str, Any], context: HookContext) -> Any:
    """Apply the entitlement filters the endpoint lacks to a list of entitlements.

    Order matters and mirrors Discord's own list endpoint: drop what the filters exclude
    (``exclude_deleted``, ``exclude_ended``, ``user_id``, ``guild_id``, and IDs outside
    ``after``/``before``), then keep the first ``limit`` of what remains. Anything that is not
    a list is returned unchanged.
    """
    if not isinstance(data, list):
        return data
    kept: list[Any] = list(data)
    if arguments.get("exclude_deleted") is True:
        kept = [e for e in kept if not (isinstance(e, dict) and e.get("deleted") is True)]
    if arguments.get("exclude_ended") is True:
        now = datetime.fromtimestamp(context.clock.time(), tz=UTC)
        kept = [e for e in kept if not (isinstance(e, dict) and _ended(e.get("ends_at"), now))]
    for key in ("user_id", "guild_id"):
        wanted = arguments.get(key)
        if isinstance(wanted, str):
            kept = [e for e in kept if isinstance(e, dict) and e.get(key) == wanted]
    after, before = _id(arguments.get("after")), _id(arguments.get("before"))
    if after is not None or before is not None:

        def inside(entry: Any) -> bool:
            number = _id(entry.get("id")) if isinstance(entry, dict) else None
            if number is None:
                return False
            return (after is None or number > after) and (before is None or number < before)

        kept = [e for e in kept if inside(e)]
    limit = arguments.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool):
        kept = kept[:limit]
    return kept


def ensure_nonce(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Add a random ``nonce`` and ``enforce_nonce: true`` when the caller gave no nonce.

    A caller's own nonce is kept as given (with their ``enforce_nonce`` choice), and a caller
    who set ``enforce_nonce: false`` gets no nonce: they chose a plain create.
    """
    out = dict(arguments)
    if "nonce" in out or out.get("enforce_nonce") is False:
        return out
    out["nonce"] = secrets.token_hex(NONCE_BYTES)
    out["enforce_nonce"] = True
    return out


def permission_names(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Turn permission flag names into Discord's bitfield strings (names take precedence)."""
    out = dict(arguments)
    for names_key, target in PERMISSION_NAME_PARAMS.items():
        names = out.get(names_key)
        if isinstance(names, list):
            out[target] = bitfield(str(n) for n in names)
    return out


HOOKS = HookRegistry(
    input={"ensure_nonce": ensure_nonce, "permission_names": permission_names},
    route={"user_ref_route": user_ref_route},
    result={"filter_entitlements": filter_entitlements},
)
