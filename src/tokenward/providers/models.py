"""Declarative provider and tool specs, loaded from YAML.

A provider is described by ``provider.yaml`` (URLs, scopes, rate-limit major parameters) and
its tools by ``tools.yaml`` (one entry per tool: endpoint, auth, typed parameters, scopes,
annotations, output kind, hook names). These models check the shape of each file on its own;
:mod:`tokenward.providers.loader` checks the files against each other and against the hooks.

Models are strict (no coercion: ``"5"`` is not an integer) and refuse unknown keys, so a typo in
a YAML file is an error, never a silently ignored setting.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ParamType = Literal[
    "string",
    "snowflake",
    "integer",
    "boolean",
    "enum",
    "invite_code",
    "template_code",
    "user_ref",
]
"""Parameter types. ``snowflake`` is a Discord ID (a string of digits); ``invite_code`` and
``template_code`` also accept the URL forms people paste; ``user_ref`` is ``@me`` or a snowflake."""

ParamLocation = Literal["path", "query", "gateway", "ignored"]
"""Where a parameter goes: into the URL path, into the query string, to the gateway itself (read
by the tool's result hook, never sent), or nowhere (accepted for compatibility, never sent)."""

AuthKind = Literal["user", "bot", "none", "user_or_bot"]
"""``user``: the account's OAuth2 bearer token. ``bot``: the connection's bot token. ``none``: no
token needed (the connection's bot token is attached when configured, for better rate limits).
``user_or_bot``: decided per call by the tool's route hook."""

ResolvedAuth = Literal["user", "bot", "none"]

OutputKind = Literal["json", "image"]

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Spec(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class OAuthEndpointsSpec(_Spec):
    """OAuth2 endpoints, as paths relative to the provider's base URL."""

    authorize_url: str = Field(pattern=r"^/[^/]")
    token_url: str = Field(pattern=r"^/[^/]")
    revoke_url: str = Field(pattern=r"^/[^/]")


class ProviderSpec(_Spec):
    """One provider (``provider.yaml``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    display_name: str = Field(min_length=1)
    base_url: str = Field(default="https://discord.com", pattern=r"^https?://[^/?#]+$")
    api_prefix: str = Field(default="/api/v10", pattern=r"^/[A-Za-z0-9/_.-]*[A-Za-z0-9]$")
    oauth: OAuthEndpointsSpec
    default_scopes: tuple[str, ...] = Field(min_length=1)
    known_scopes: tuple[str, ...] = Field(min_length=1)
    user_agent: str = Field(
        default="DiscordBot (https://github.com/tokenward/tokenward, {version})",
        pattern=r"\{version\}",
    )
    major_parameters: tuple[str, ...] = ()
    user_auth_scheme: str = "Bearer"
    bot_auth_scheme: str = "Bot"

    @model_validator(mode="after")
    def _default_scopes_are_known(self) -> ProviderSpec:
        unknown = [s for s in self.default_scopes if s not in self.known_scopes]
        if unknown:
            raise ValueError(f"default_scopes not in known_scopes: {', '.join(unknown)}")
        return self

    def user_agent_for(self, version: str) -> str:
        """The ``User-Agent`` header value for this gateway version."""
        return self.user_agent.replace("{version}", version)

    def url(self, relative: str, base_url: str | None = None) -> str:
        """An absolute URL for a path relative to the base (``oauth.token_url``, API paths)."""
        return (base_url or self.base_url).rstrip("/") + relative


class ParamSpec(_Spec):
    """One tool parameter."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    type: ParamType
    location: ParamLocation
    description: str = Field(min_length=10)
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] | None = None
    default: str | int | bool | None = None

    @model_validator(mode="after")
    def _constraints_fit_type(self) -> ParamSpec:
        if self.type == "enum":
            if not self.enum:
                raise ValueError("an enum parameter needs a non-empty 'enum' list")
            if len(set(self.enum)) != len(self.enum):
                raise ValueError("enum values must be unique")
        elif self.enum is not None:
            raise ValueError("'enum' is only for parameters of type enum")
        if self.type != "integer" and (self.minimum is not None or self.maximum is not None):
            raise ValueError("'minimum'/'maximum' are only for integer parameters")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is greater than maximum")
        if self.location == "path" and not self.required:
            raise ValueError("a path parameter must be required")
        if self.default is not None:
            if self.required:
                raise ValueError("a required parameter cannot have a default")
            self._check_default(self.default)
        return self

    def _check_default(self, value: str | int | bool) -> None:
        if self.type == "boolean":
            ok = isinstance(value, bool)
        elif self.type == "integer":
            ok = (
                isinstance(value, int)
                and not isinstance(value, bool)
                and (self.minimum is None or value >= self.minimum)
                and (self.maximum is None or value <= self.maximum)
            )
        elif self.type == "enum":
            ok = isinstance(value, str) and value in (self.enum or ())
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"default {value!r} does not fit a {self.type} parameter")


class EndpointSpec(_Spec):
    """The HTTP call a tool makes, with a path template relative to the API prefix."""

    method: HttpMethod
    path: str = Field(pattern=r"^/[A-Za-z0-9_./@{}-]*$")

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.path))


class AnnotationsSpec(_Spec):
    """Behaviour hints, exported to MCP and shown to agents."""

    read_only: bool
    idempotent: bool
    destructive: bool = False
    open_world: bool = True
    deprecated: bool = False
    replaced_by: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AnnotationsSpec:
        if self.read_only and self.destructive:
            raise ValueError("a read-only tool cannot be destructive")
        if self.deprecated != (self.replaced_by is not None):
            raise ValueError("'deprecated: true' and 'replaced_by' go together")
        return self


class HooksSpec(_Spec):
    """Names of small Python hooks (registered in the provider's ``hooks`` module).

    ``input``: runs on the validated input before the request is built. ``route``: chooses the
    path, auth and scopes per call (``@me`` vs another user). ``result``: post-processes the
    provider's answer (gateway-side filters).
    """

    input: str | None = None
    route: str | None = None
    result: str | None = None


class ToolSpec(_Spec):
    """One tool (an entry of ``tools.yaml``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    title: str = Field(min_length=3, max_length=80)
    description: str = Field(min_length=40, max_length=1024)
    endpoint: EndpointSpec
    auth: AuthKind
    scopes: tuple[str, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    output: OutputKind = "json"
    media_type: str | None = None
    annotations: AnnotationsSpec
    hooks: HooksSpec = HooksSpec()

    @model_validator(mode="after")
    def _consistent(self) -> ToolSpec:
        names = [p.name for p in self.params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate parameter names: {', '.join(duplicates)}")
        declared = {p.name for p in self.params if p.location == "path"}
        in_path = set(self.endpoint.placeholders)
        if in_path - declared:
            missing = ", ".join(sorted(in_path - declared))
            raise ValueError(f"path placeholders without a path parameter: {missing}")
        if declared - in_path:
            extra = ", ".join(sorted(declared - in_path))
            raise ValueError(f"path parameters missing from the path template: {extra}")
        if self.output == "image" and not (self.media_type or "").startswith("image/"):
            raise ValueError("an image output needs an image/* media_type")
        if self.output == "json" and self.media_type is not None:
            raise ValueError("media_type is only for image outputs")
        if self.auth == "user_or_bot" and self.hooks.route is None:
            raise ValueError("auth 'user_or_bot' needs a route hook to choose per call")
        if any(p.location == "gateway" for p in self.params) and self.hooks.result is None:
            raise ValueError("parameters located at the gateway need a result hook to read them")
        if self.annotations.read_only and self.endpoint.method not in ("GET", "HEAD"):
            raise ValueError("a read-only tool must use GET or HEAD")
        return self

    def param(self, name: str) -> ParamSpec | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


class ToolsFileSpec(_Spec):
    """The whole ``tools.yaml``."""

    provider: str
    tools: tuple[ToolSpec, ...] = Field(min_length=1)
