"""The hook seam: small named Python functions that tools.yaml refers to by name.

Each provider package has a ``hooks`` module exposing ``HOOKS: HookRegistry``. The loader checks
that every name a tool uses is registered there; the catalog calls them.

- input hook ``(arguments) -> arguments``: adjusts the validated input before the request is built.
- route hook ``(arguments) -> RouteChoice``: picks path template, auth and scopes per call.
- result hook ``(data, arguments, context) -> data``: post-processes the provider's answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenward.clock import Clock
from tokenward.providers.models import ResolvedAuth


@dataclass(frozen=True)
class RouteChoice:
    """What a route hook decides for one call."""

    path: str
    """Path template relative to the API prefix; placeholders are filled from the arguments."""
    auth: ResolvedAuth
    scopes: tuple[str, ...] = ()
    note: str | None = None
    """Why this route needs the auth it does; shown when that credential is missing."""


@dataclass(frozen=True)
class HookContext:
    """What a result hook may use besides the data: the clock (never the system time)."""

    clock: Clock


InputHook = Callable[[Mapping[str, Any]], dict[str, Any]]
RouteHook = Callable[[Mapping[str, Any]], RouteChoice]
ResultHook = Callable[[Any, Mapping[str, Any], HookContext], Any]


@dataclass(frozen=True)
class HookRegistry:
    input: Mapping[str, InputHook] = field(default_factory=dict)
    route: Mapping[str, RouteHook] = field(default_factory=dict)
    result: Mapping[str, ResultHook] = field(default_factory=dict)
