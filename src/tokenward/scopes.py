"""API-client scopes: what an API client, and every API token it gets, may do.

An API client is created with a set of scopes (``tokenward api-clients create --scopes
tools:execute,accounts:read``); the scopes go into each API token it obtains (the JWT claim
``scope``, space-separated as in RFC 8693 §4.2 / RFC 9068), and every route names the scope it
needs. A call without it is refused with ``403 INSUFFICIENT_SCOPE`` naming the scope.

Two rules keep the vocabulary small and predictable:

- ``admin`` means every scope, including any added later. It is the default, so clients created
  without ``--scopes`` (and every client created before scopes existed) keep full access.
- ``<resource>:write`` includes ``<resource>:read``.

``proxy`` is separate from ``tools:execute`` on purpose: the tools are a curated, typed,
annotated set of calls, while ``/proxy`` reaches any Discord route the user's grant allows.
``mcp:sessions`` mints long-lived URLs that run tools as a user, so creating one needs
``tools:execute`` as well: a session never does more than its creator could.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from tokenward.errors import ValidationError

__all__ = [
    "ADMIN",
    "SCOPES",
    "format_scopes",
    "grants",
    "missing_scopes",
    "parse_scopes",
]

ADMIN: Final = "admin"

SCOPES: Final[dict[str, str]] = {
    "tools:execute": "List the tools and run them as a connected account.",
    "proxy": "Call Discord's REST API as a connected account through /proxy/* (any route the "
    "user's grant allows, beyond the curated tools).",
    "accounts:read": "List and read connected accounts.",
    "accounts:write": "Create authorization links, verify users and delete (revoke) connected "
    "accounts; includes accounts:read.",
    "connections:read": "List and read connections (never their secrets).",
    "connections:write": "Create connections, change their client secret, bot token or scopes, "
    "and delete them; includes connections:read.",
    "mcp:sessions": "Create MCP session URLs (also needs tools:execute).",
    "webhooks:read": "List webhook endpoints and their deliveries.",
    "webhooks:write": "Create, delete and re-enable webhook endpoints, rotate their secrets and "
    "re-send deliveries; includes webhooks:read.",
    ADMIN: "Everything, including scopes added later (the default).",
}
"""Every scope and what it allows, in display order."""

_ORDER: Final = {name: index for index, name in enumerate(SCOPES)}
MAX_SCOPES_TEXT: Final = 1024


def parse_scopes(value: str | Iterable[str], *, field: str = "scopes") -> frozenset[str]:
    """The scopes in ``value`` (comma- or space-separated text, or an iterable of names).

    Raises :class:`~tokenward.errors.ValidationError` naming ``field`` and every unknown scope,
    or when no scope is given.
    """
    if isinstance(value, str):
        if len(value) > MAX_SCOPES_TEXT:
            reason = f"must be at most {MAX_SCOPES_TEXT} characters"
            raise ValidationError(f"{field} {reason}", fields={field: reason})
        names = value.replace(",", " ").split()
    else:
        names = [str(name).strip() for name in value]
        names = [name for name in names if name]
    if not names:
        reason = f"give at least one scope (known: {', '.join(SCOPES)})"
        raise ValidationError(f"{field}: {reason}", fields={field: reason})
    unknown = [name for name in dict.fromkeys(names) if name not in SCOPES]
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:5])
        noun = "scope" if len(unknown) == 1 else "scopes"
        reason = f"unknown {noun} {shown}; known scopes: {', '.join(SCOPES)}"
        raise ValidationError(f"{field}: {reason}", fields={field: reason})
    return frozenset(names)


def format_scopes(scopes: Iterable[str]) -> str:
    """Space-separated, in the vocabulary's order (``admin`` alone when present)."""
    names = set(scopes)
    if ADMIN in names:
        return ADMIN
    return " ".join(sorted(names, key=lambda name: (_ORDER.get(name, len(_ORDER)), name)))


def grants(granted: Iterable[str], needed: str) -> bool:
    """Whether scopes ``granted`` allow what ``needed`` allows."""
    have = set(granted)
    if ADMIN in have or needed in have:
        return True
    resource, _, action = needed.rpartition(":")
    return action == "read" and f"{resource}:write" in have


def missing_scopes(granted: Iterable[str], needed: Iterable[str]) -> list[str]:
    """The scopes of ``needed`` that ``granted`` does not allow, in order."""
    have = frozenset(granted)
    return [name for name in needed if not grants(have, name)]
