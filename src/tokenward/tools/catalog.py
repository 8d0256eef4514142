"""The tool catalog: specs by name, and the seam between a tool input and an HTTP call.

``Catalog.prepare`` turns a tool input into a :class:`PreparedRequest` without any I/O: the input
is validated (nothing is sent when it is bad), input hooks run, the path is filled with
URL-encoded values, the query is rendered (booleans as ``true``/``false``, arrays as repeated
keys), the body is encoded (JSON, or multipart when the tool uploads a file), headers are set
(``X-Audit-Log-Reason``, percent-encoded), notes are collected for accepted-but-ignored
parameters, and the auth kind is resolved. A runner then sends it through the proxy core and
hands the answer to ``Catalog.finish``, which applies the tool's result hook.

:class:`Catalogs` holds several providers' catalogs (``discord`` and ``discordbot``) behind the
same methods, resolving each tool name to its provider.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode

from tokenward.clock import Clock
from tokenward.errors import BotTokenRequired, ToolNotFound, ValidationError
from tokenward.providers.hooks import HookContext, RouteChoice
from tokenward.providers.loader import LoadedProvider, load_provider, load_provider_spec
from tokenward.providers.models import (
    BODY_ROOT,
    OutputKind,
    ParamSpec,
    ProviderSpec,
    ResolvedAuth,
    ToolSpec,
)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
PROVIDERS = ("discord", "discordbot")
"""The packaged providers, in listing order."""


@dataclass(frozen=True)
class PreparedRequest:
    """Everything needed to send one tool call.

    Secret inputs (webhook and interaction tokens, OAuth2 access tokens given as parameters)
    can be part of ``path``, ``body`` and ``arguments``: log ``log_path``, never those.
    """

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
    """``user`` (account bearer), ``bot`` (a bot token: the connection's for ``discord``, the
    account's own for ``discordbot``) or ``none`` (no token needed; for ``discord`` the
    connection's bot token is attached when it has one, for better rate limits)."""
    response: OutputKind
    media_type: str | None
    """For ``response == "image"``: the expected ``Content-Type`` (``image/png``)."""
    scopes: tuple[str, ...]
    """OAuth2 scopes the user token must carry (empty for bot/none, or any scope)."""
    result_hook: str | None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    """The validated, normalised input (after input hooks), read by the result hook."""
    idempotent: bool = True
    body: bytes | None = None
    """The request body (JSON, UTF-8; or multipart), or None for a request without one."""
    content_type: str | None = None
    """``application/json`` or ``multipart/form-data; boundary=...`` when there is a body."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers, e.g. ``("X-Audit-Log-Reason", "<percent-encoded reason>")``."""
    retry_safe: bool = True
    """Whether the request may be sent again after a failure that leaves its outcome unknown
    (a dropped connection, a 5xx): true for idempotent tools, and for a non-idempotent one made
    safe (``discordbot_create_message`` with ``nonce`` and ``enforce_nonce``). Never resend a
    request whose ``retry_safe`` is false."""
    notes: tuple[str, ...] = ()
    """Things the caller should know about the call, for the tool result (e.g. a parameter
    that was accepted and has no effect)."""
    connector: str = "discord"
    """The provider (connector) the tool belongs to: ``discord`` or ``discordbot``."""
    read_only: bool = True
    destructive: bool = False
    log_path: str = ""
    """``path`` with secret path values replaced by their placeholder, safe to log."""

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


def _query(tool: ToolSpec, arguments: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for p in tool.params:
        if p.location != "query" or p.name not in arguments:
            continue
        value = arguments[p.name]
        if isinstance(value, list | tuple):
            pairs.extend((p.wire_name, _query_value(v)) for v in value)
        else:
            pairs.append((p.wire_name, _query_value(value)))
    return tuple(pairs)


def _plain(value: Any) -> Any:
    """JSON-ready data: integral floats become integers (``5.0`` is sent as ``5``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _place(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = target
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[last] = value


def _json_body(params: Sequence[ParamSpec], arguments: Mapping[str, Any]) -> bytes:
    body: Any = {}
    for p in params:
        if p.name not in arguments:
            continue
        if p.wire == BODY_ROOT:
            body = arguments[p.name]
        else:
            _place(body, p.wire_name, arguments[p.name])
    return json.dumps(_plain(body), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _form_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def _multipart_body(params: Sequence[ParamSpec], arguments: Mapping[str, Any]) -> tuple[bytes, str]:
    boundary = "tokenward-" + secrets.token_hex(16)
    parts: list[bytes] = []
    for p in params:
        if p.name not in arguments:
            continue
        value = arguments[p.name]
        if p.file is not None:
            from tokenward.tools.validation import decode_file  # with jsonschema: on first use

            data, media_type = decode_file(p, value)
            head = (
                f'Content-Disposition: form-data; name="{p.wire_name}"; '
                f'filename="{p.file.filename}"\r\nContent-Type: {media_type}\r\n\r\n'
            )
            parts.append(head.encode("ascii") + data)
        else:
            head = f'Content-Disposition: form-data; name="{p.wire_name}"\r\n\r\n'
            parts.append(head.encode("ascii") + _form_value(value).encode("utf-8"))
    delimiter = f"--{boundary}\r\n".encode("ascii")
    body = b"".join(delimiter + part + b"\r\n" for part in parts)
    body += f"--{boundary}--\r\n".encode("ascii")
    return body, f"multipart/form-data; boundary={boundary}"


def _body(tool: ToolSpec, arguments: Mapping[str, Any]) -> tuple[bytes | None, str | None]:
    if tool.endpoint.body is None:
        return None, None
    params = [p for p in tool.params if p.location == "body"]
    if tool.endpoint.body == "multipart":
        return _multipart_body(params, arguments)
    return _json_body(params, arguments), "application/json"


def _headers(tool: ToolSpec, arguments: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (p.wire_name, quote(str(arguments[p.name]), safe=""))
        for p in tool.params
        if p.location == "header" and p.name in arguments
    )


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
        self._loaded: LoadedProvider | None = provider
        self._name = provider.spec.name

    @classmethod
    def load(cls, name: str = "discord") -> Catalog:
        """The catalog of a packaged provider (its files are read and checked once)."""
        return cls(load_provider(name))

    @classmethod
    def lazy(cls, name: str = "discord") -> Catalog:
        """The catalog of a packaged provider, its tools read and checked on first use.

        Only ``provider.yaml`` is read now (:attr:`provider`): parsing and checking a tool
        catalog takes a few hundred milliseconds, which a server should not spend before it
        answers (``tokenward serve``'s start-up).
        """
        catalog = cls.__new__(cls)
        catalog._loaded = None
        catalog._name = name
        load_provider_spec(name)  # a missing or broken provider.yaml still fails now
        return catalog

    @property
    def _provider(self) -> LoadedProvider:
        if self._loaded is None:
            self._loaded = load_provider(self._name)
        return self._loaded

    @classmethod
    def load_all(cls, names: Sequence[str] = PROVIDERS) -> Catalogs:
        """Every packaged provider's catalog, behind one lookup by tool name."""
        return Catalogs([cls.load(n) for n in names])

    @property
    def provider(self) -> ProviderSpec:
        if self._loaded is None:
            return load_provider_spec(self._name)
        return self._loaded.spec

    @property
    def defs(self) -> Mapping[str, Any]:
        """The provider's shared schemas (``$defs``)."""
        return self._provider.defs

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
        from tokenward.tools.validation import validate_input  # with jsonschema: on first use

        return validate_input(self.get(name), tool_input)

    def prepare(
        self, name: str, tool_input: object, *, bot_token_available: bool
    ) -> PreparedRequest:
        """Validate ``tool_input`` and build the request; raise before anything is sent.

        Raises ToolNotFound, ValidationError, or BotTokenRequired when the call needs a bot
        token and ``bot_token_available`` is false.
        """
        from tokenward.tools.validation import validate_input

        tool = self.get(name)
        arguments = validate_input(tool, tool_input)
        hooks = self._provider.hooks
        for hook in tool.hooks.input:
            arguments = hooks.input[hook](MappingProxyType(arguments))
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
        by_wire = {p.wire_name: p for p in tool.params if p.location == "path"}
        prefix = self.provider.api_prefix

        def fill(match: re.Match[str], *, hide_secrets: bool = False) -> str:
            param = by_wire[match.group(1)]
            if hide_secrets and param.secret:
                return match.group(0)
            return quote(str(arguments[param.name]), safe="")

        path = _PLACEHOLDER.sub(fill, choice.path)
        log_path = _PLACEHOLDER.sub(lambda m: fill(m, hide_secrets=True), choice.path)
        majors = {
            key: str(arguments[by_wire[key].name])
            for key in _PLACEHOLDER.findall(choice.path)
            if key in self.provider.major_parameters
        }
        body, content_type = _body(tool, arguments)
        notes = tuple(
            p.note
            for p in tool.params
            if p.location == "ignored" and p.name in arguments and p.note is not None
        )
        nonce_safe = (
            tool.nonce_retry
            and arguments.get("enforce_nonce") is True
            and arguments.get("nonce") not in (None, "")
        )
        return PreparedRequest(
            tool=tool.name,
            method=tool.endpoint.method,
            path=prefix + path,
            route=prefix + choice.path,
            major_parameters=MappingProxyType(majors),
            query=_query(tool, arguments),
            auth=choice.auth,
            response=tool.output,
            media_type=tool.media_type,
            scopes=choice.scopes,
            result_hook=tool.hooks.result,
            arguments=MappingProxyType(arguments),
            idempotent=tool.annotations.idempotent,
            body=body,
            content_type=content_type,
            headers=_headers(tool, arguments),
            retry_safe=tool.annotations.idempotent or nonce_safe,
            notes=notes,
            connector=self.provider.name,
            read_only=tool.annotations.read_only,
            destructive=tool.annotations.destructive,
            log_path=prefix + log_path,
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


class Catalogs:
    """Several providers' catalogs behind the methods of one :class:`Catalog`.

    Tool names are unique across providers (each starts with its provider's name), so a tool
    name selects its catalog. ``tools()`` and ``names()`` list the providers in order.
    """

    def __init__(self, catalogs: Sequence[Catalog]) -> None:
        self._catalogs = {c.provider.name: c for c in catalogs}
        self._by_tool: dict[str, Catalog] = {}
        for catalog in catalogs:
            for name in catalog.names():
                if name in self._by_tool:
                    raise ValueError(f"tool {name!r} is in more than one provider")
                self._by_tool[name] = catalog

    @classmethod
    def load(cls, names: Sequence[str] | None = None) -> Catalogs:
        """The catalogs of ``names`` (default: every provider folder in the package)."""
        from tokenward.tools.catalogs import installed_providers

        return cls([Catalog.load(n) for n in (installed_providers() if names is None else names)])

    @property
    def providers(self) -> list[ProviderSpec]:
        return [c.provider for c in self._catalogs.values()]

    def provider(self, name: str) -> Catalog:
        """One provider's catalog; a ValidationError naming ``provider`` when none is installed
        (for a caller's input; :meth:`catalog` raises ToolNotFound)."""
        catalog = self._catalogs.get(name)
        if catalog is None:
            reason = f"unknown provider {name[:64]!r}; known: {', '.join(self._catalogs)}"
            raise ValidationError(f"provider: {reason}", fields={"provider": reason})
        return catalog

    def catalog(self, provider: str) -> Catalog:
        """One provider's catalog."""
        try:
            return self._catalogs[provider]
        except KeyError:
            raise ToolNotFound(f"no provider named {provider!r}") from None

    def catalog_for(self, tool_name: str) -> Catalog:
        """The catalog holding ``tool_name`` (ToolNotFound when none does)."""
        try:
            return self._by_tool[tool_name]
        except KeyError:
            raise ToolNotFound(
                f"no tool named {tool_name!r}", details={"tool_name": tool_name}
            ) from None

    catalog_of = catalog_for

    def provider_of(self, tool_name: str) -> ProviderSpec:
        return self.catalog_for(tool_name).provider

    def tools(self) -> list[ToolSpec]:
        return [t for c in self._catalogs.values() for t in c.tools()]

    def names(self) -> list[str]:
        return [n for c in self._catalogs.values() for n in c.names()]

    def get(self, name: str) -> ToolSpec:
        return self.catalog_for(name).get(name)

    def validate(self, name: str, tool_input: object) -> dict[str, Any]:
        return self.catalog_for(name).validate(name, tool_input)

    def prepare(
        self, name: str, tool_input: object, *, bot_token_available: bool
    ) -> PreparedRequest:
        return self.catalog_for(name).prepare(
            name, tool_input, bot_token_available=bot_token_available
        )

    def finish(self, prepared: PreparedRequest, data: Any, *, clock: Clock) -> Any:
        return self.catalog_for(prepared.tool).finish(prepared, data, clock=clock)

    def description(self, name: str) -> str:
        return agent_description(self.get(name))
