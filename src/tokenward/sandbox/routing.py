"""Discord's routes as data: path templates, their methods, buckets and major parameters.

One :class:`RouteTable` serves the request-accounting/rate-limit middleware (which names each
request's route and bucket) and the REST dispatcher (which finds the operation to run). Templates
are relative to the API prefix (``/api/v10``, ``/api/v9`` or the unversioned ``/api``).

Matching: a template with no ``{parameter}`` is a dictionary lookup; the others are indexed by
their number of segments and tried with literal segments before parameters at the first place
two templates differ (``/guilds/{guild_id}/members/search`` before
``/guilds/{guild_id}/members/{user_id}``), as Discord's router does.

Major parameters (``discord-api.md`` §3, §6.4): a bucket's counters are kept per channel, guild,
webhook (id + token) or interaction (id + token), whichever the path names first in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from tokenward.sandbox.ratelimit import RouteLimit

PREFIXES = ("/api/v10/", "/api/v9/", "/api/")
_SCOPE_KEY = "tokenward.sandbox.route"
_UNSET: Any = object()
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass
class RouteEntry:
    template: str
    limits: dict[str, RouteLimit | None] = field(default_factory=dict)  # method -> bucket
    targets: dict[str, Any] = field(default_factory=dict)  # method -> operation (dispatcher)

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(self.limits)

    @property
    def limit(self) -> RouteLimit | None:
        """The bucket when every method shares one (the common case), else the GET one."""
        values = list(self.limits.values())
        return values[0] if values else None


@dataclass(frozen=True)
class RouteMatch:
    prefix: str
    entry: RouteEntry
    params: dict[str, str]

    @property
    def major(self) -> str:
        return major_parameter(self.params)


def major_parameter(params: dict[str, str]) -> str:
    """The rate-limit major parameter of a matched path ("" when there is none)."""
    if "channel_id" in params:
        return "channel:" + params["channel_id"]
    if "guild_id" in params:
        return params["guild_id"]  # bare, as before: ``(identity, bucket, guild_id)``
    if "webhook_id" in params:
        return f"webhook:{params['webhook_id']}:{params.get('webhook_token', '')}"
    if "interaction_id" in params:
        return f"interaction:{params['interaction_id']}:{params.get('interaction_token', '')}"
    return ""


def _first(path: str) -> str:
    """The first segment of ``/first/...`` (every template starts with a literal one)."""
    return path.split("/", 2)[1] if path.count("/") else path


def _sort_key(template: str) -> tuple[int, ...]:
    return tuple(1 if segment.startswith("{") else 0 for segment in template.split("/"))


class RouteTable:
    """Names a request's route template (under ``/api/v10``, ``/api/v9`` or ``/api``)."""

    def __init__(self, entries: Iterable[tuple[str, str, RouteLimit | None]] = ()) -> None:
        self._entries: dict[str, RouteEntry] = {}
        self._static: dict[str, RouteEntry] = {}
        # (segment count, first segment) -> patterns, literal segments first
        self._dynamic: dict[tuple[int, str], list[tuple[re.Pattern[str], RouteEntry]]] = {}
        for method, template, limit in entries:
            self.add(method, template, limit)

    def add(
        self, method: str, template: str, limit: RouteLimit | None, target: Any = None
    ) -> RouteEntry:
        entry = self._entries.get(template)
        if entry is None:
            entry = RouteEntry(template)
            self._entries[template] = entry
            self._index(entry)
        entry.limits.setdefault(method, limit)
        if target is not None:
            entry.targets[method] = target
        return entry

    def _index(self, entry: RouteEntry) -> None:
        template = entry.template
        if "{" not in template:
            self._static[template] = entry
            return
        parts = []
        for segment in template.split("/"):
            param = _PARAM.fullmatch(segment)
            parts.append(f"(?P<{param.group(1)}>[^/]+)" if param else re.escape(segment))
        pattern = re.compile("/".join(parts))
        bucket = self._dynamic.setdefault((template.count("/"), _first(template)), [])
        bucket.append((pattern, entry))
        bucket.sort(key=lambda item: _sort_key(item[1].template))

    def entries(self) -> list[RouteEntry]:
        return list(self._entries.values())

    def match_rest(self, rest: str) -> tuple[RouteEntry, dict[str, str]] | None:
        """Match a path relative to the API prefix (``/users/@me``)."""
        entry = self._static.get(rest)
        if entry is not None:
            return entry, {}
        for pattern, candidate in self._dynamic.get((rest.count("/"), _first(rest)), ()):
            found = pattern.fullmatch(rest)
            if found is not None:
                return candidate, found.groupdict()
        return None

    def match_scope(self, scope: MutableMapping[str, Any]) -> RouteMatch | None:
        """``match_path`` of the request's path, computed once per request (kept in scope)."""
        cached = scope.get(_SCOPE_KEY, _UNSET)
        if cached is _UNSET or (cached is not None and cached[0] != scope["path"]):
            found = self.match_path(scope["path"])
            scope[_SCOPE_KEY] = (scope["path"], found)
            return found
        return None if cached is None else cached[1]

    def match_path(self, path: str) -> RouteMatch | None:
        for prefix in PREFIXES:
            if path.startswith(prefix):
                rest = path[len(prefix) - 1 :]
                break
        else:
            return None
        found = self.match_rest(rest)
        if found is None:
            return None
        entry, params = found
        return RouteMatch(path[: len(path) - len(rest)], entry, params)

    def match(self, path: str) -> tuple[str, RouteEntry, str] | None:
        """``(prefix, entry, major)`` for the middleware."""
        found = self.match_path(path)
        if found is None:
            return None
        return found.prefix, found.entry, found.major
