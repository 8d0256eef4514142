"""The tool catalog: specs by name, and the seam between a tool input and an HTTP call.

``Catalog.prepare`` turns a tool input into a :class:`PreparedRequest` without any I/O: the input
is validated (nothing is sent when it is bad), hooks run, the path is filled with URL-encoded
values, the query is rendered (booleans as ``true``/``false``), and the auth kind is resolved. A
runner then sends it through the proxy core and hands the answer to ``Catalog.finish``, which
applies the tool's result hook (gateway-side filters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode

from tokenward.clock import Clock
from tokenward.errors import BotTokenRequired, ToolNotFound
from tokenward.providers.hooks import HookContext, RouteChoice
from tokenward.providers.loader import LoadedProvider, load_provider
from tokenward.providers.models import OutputKind, ProviderSpec, ResolvedAuth, ToolSpec
from tokenward.tools.validation import validate_input

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class PreparedRequest:
    """Everything needed to send one tool call, and nothing secret."""

    tool: str
    method: str
    path: str
    """Full path under the base URL, API prefix included, path values URL-encoded."""
    route: str
    """The path template (API prefix included), the key of a rate-limit route."""
    major_parameters: Mapping[str, str]
    """Values of the provider's major parameters found in the path (e.g. ``guild_id``)."""
    query: tuple[tuple[str, str], ...]
    auth: ResolvedAuth
    """``user`` (account bearer), ``bot`` (connection bot token) or ``none`` (attach the bot
    token when the connection has one, for better rate limits; otherwise nothing)."""
    response: OutputKind
    media_type: str | None
    """For ``response == "image"``: the expected ``Content-Type`` (``image/png``)."""
    scopes: tuple[str, ...]
    """OAuth2 scopes the user token must carry (empty for bot/none, or any scope)."""
    result_hook: str | None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    """The validated, normalised input, read by the result hook."""
    idempotent: bool = True

    @property
    def target(self) -> str:
        """Path plus query string, as it goes on the request line."""
        return self.path + ("?" + urlencode(self.query) if self.query else "")

    def missing_scopes(self, granted: Iterable[str]) -> tuple[str, ...]:
        """The required scopes that ``granted`` lacks."""
        have = set(granted)
        return tuple(s for s in self.scopes if s not in have)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def bot_token_hint() -> str:
    """How to give a connection a bot token (shown in errors, never containing one)."""
    return (
        "Add your Discord application's bot token (Developer Portal > your app > Bot > Reset "
        "Token) to the connection: `tokenward connections create NAME ... --bot-token TOKEN`, "
        'or PATCH /api/v1/connections/{name} with {"bot_token": "..."}.'
    )


def agent_description(tool: ToolSpec) -> str:
    """The description agents see; a deprecated tool says so first and names its replacement."""
    if tool.annotations.deprecated:
        return f"DEPRECATED: use {tool.annotations.replaced_by} instead. {tool.description}"
    return tool.description


class Catalog:
    """A provider's tools, ready to validate, prepare and finish calls."""

    def __init__(self, provider: LoadedProvider) -> None:
        self._provider = provider

    @classmethod
    def load(cls, name: str = "discord") -> Catalog:
        """The catalog of a packaged provider (its files are read and checked once)."""
        return cls(load_provider(name))

    @property
    def provider(self) -> ProviderSpec:
        return self._provider.spec

    def tools(self) -> list[ToolSpec]:
        return list(self._provider.tools.values())

    def names(self) -> list[str]:
        return list(self._provider.tools)

    def get(self, name: str) -> ToolSpec:
        try:
            return self._provider.tools[name]
        except KeyError:
            raise ToolNotFound(f"no tool named {name!r}", details={"tool_name": name}) from None

    def validate(self, name: str, tool_input: object) -> dict[str, Any]:
        """The normalised arguments for ``tool_input``, or a ValidationError naming each field."""
        return validate_input(self.get(name), tool_input)

    def prepare(
        self, name: str, tool_input: object, *, bot_token_available: bool
    ) -> PreparedRequest:
        """Validate ``tool_input`` and build the request; raise before anything is sent.

        Raises ToolNotFound, ValidationError, or BotTokenRequired when the call needs the
        connection's bot token and ``bot_token_available`` is false.
        """
        tool = self.get(name)
        arguments = validate_input(tool, tool_input)
        hooks = self._provider.hooks
        if tool.hooks.input is not None:
            arguments = hooks.input[tool.hooks.input](MappingProxyType(arguments))
        if tool.hooks.route is not None:
            choice = hooks.route[tool.hooks.route](MappingProxyType(arguments))
        else:
            assert tool.auth != "user_or_bot"  # the model refuses it without a route hook
            choice = RouteChoice(path=tool.endpoint.path, auth=tool.auth, scopes=tool.scopes)
        if choice.auth == "bot" and not bot_token_available:
            why = choice.note or f"Discord serves {choice.path} only to bot tokens."
            raise BotTokenRequired(
                f"{tool.name} needs the connection's bot token for this call, and this "
                f"connection has none. {why} {bot_token_hint()}",
                details={"tool_name": tool.name, "route": choice.path},
            )
        prefix = self.provider.api_prefix
        path = _PLACEHOLDER.sub(lambda m: quote(str(arguments[m.group(1)]), safe=""), choice.path)
        majors = {
            key: str(arguments[key])
            for key in _PLACEHOLDER.findall(choice.path)
            if key in self.provider.major_parameters
        }
        query = tuple(
            (p.name, _query_value(arguments[p.name]))
            for p in tool.params
            if p.location == "query" and p.name in arguments
        )
        return PreparedRequest(
            tool=tool.name,
            method=tool.endpoint.method,
            path=prefix + path,
            route=prefix + choice.path,
            major_parameters=MappingProxyType(majors),
            query=query,
            auth=choice.auth,
            response=tool.output,
            media_type=tool.media_type,
            scopes=choice.scopes,
            result_hook=tool.hooks.result,
            arguments=MappingProxyType(arguments),
            idempotent=tool.annotations.idempotent,
        )

    def finish(self, prepared: PreparedRequest, data: Any, *, clock: Clock) -> Any:
        """The tool's result: the provider's answer after the tool's result hook, if any."""
        if prepared.result_hook is None:
            return data
        hook = self._provider.hooks.result[prepared.result_hook]
        return hook(data, prepared.arguments, HookContext(clock=clock))

    def description(self, name: str) -> str:
        """The description agents see (see :func:`agent_description`)."""
        return agent_description(self.get(name))
