"""Connectors: each provider folder, ready to run.

A connection names its provider (``connection.provider``: ``discord``, ``discordbot``), and that
name selects everything the core does differently for it. Nothing in the core knows Discord; it
reads the provider's folder, ``tokenward/providers/<name>/``:

- ``provider.yaml`` (:class:`~tokenward.providers.models.ProviderSpec`): the base URL (which
  ``TOKENWARD_DISCORD_BASE_URL`` replaces, to run against the sandbox), the API prefix, the
  ``User-Agent``, the OAuth2 endpoints, the auth schemes, the rate-limit major parameters;
- ``tools.yaml`` and ``hooks.py``: the tool catalog (:class:`~tokenward.tools.catalog.Catalog`);
- ``errors.yaml`` (optional): how the provider's error answers read to a caller (a hint per error
  code, the OAuth2 scope each route needs), see :class:`~tokenward.proxy.client.ErrorMapping`.

**What a connected account holds** follows from the provider's ``credential``:

- ``oauth2``: the account is linked through the provider's OAuth2 flow (``oauth`` in
  provider.yaml: authorize, token and revoke URLs), its access token is sent with
  ``user_auth_scheme`` (``Bearer``, RFC 6750), refreshed, and revoked when it is deleted; a
  connection needs an OAuth client (id and secret). Discord's ``discord`` provider.
- ``bot_token``: the account is given its token when it is created
  (``POST /api/v1/connected-accounts``), checked against the provider's identity route
  (``GET /users/@me``) before it is stored, and sent as is; it never expires and cannot be
  refreshed, so a 401 marks the account ``EXPIRED``; it is sent with ``bot_auth_scheme``. The
  connection needs no OAuth client. Discord's ``discordbot`` provider.

**Adding a provider** is a folder with those files (and its sandbox or real base URL); the runtime
picks it up by its name. The core changes only for a new *kind* of account credential.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import pydantic
import yaml

from tokenward.errors import ConfigError, ToolNotFound, ValidationError
from tokenward.oauth.endpoints import OAuth2Client, OAuthUrls
from tokenward.providers.models import Credential, ProviderSpec, ToolSpec
from tokenward.proxy.client import ErrorMapping
from tokenward.proxy.transport import Transport
from tokenward.tools.catalog import Catalog
from tokenward.tools.catalogs import installed_providers

__all__ = [
    "AccountCredential",
    "Connector",
    "Connectors",
    "ToolCatalog",
    "load_error_mapping",
]

AccountCredential = Credential
"""What a provider's connected accounts hold: an OAuth2 grant, or a bot token given to them."""

WHOAMI_PATH = "/users/@me"
"""The identity route under the API prefix (Discord's, for both of its providers): who the
credential belongs to. Used after an OAuth2 link (with ``identify``) and to check a bot token."""


class ToolCatalog(Protocol):
    """What the servers read from a catalog: one provider's or every provider's tools."""

    def tools(self) -> list[ToolSpec]: ...

    def names(self) -> list[str]: ...

    def get(self, name: str) -> ToolSpec: ...

    def description(self, name: str) -> str: ...


class _ErrorsFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    provider: str = pydantic.Field(min_length=1, max_length=64)
    hints: dict[int, str] = pydantic.Field(default_factory=dict)
    scopes_by_route: list[_ScopeRoute] = pydantic.Field(default_factory=list)


class _ScopeRoute(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    pattern: str
    scope: str

    @pydantic.field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


_ErrorsFile.model_rebuild()


def _provider_file(name: str, filename: str) -> str | None:
    try:
        return (resources.files(f"tokenward.providers.{name}") / filename).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None


@functools.cache
def load_error_mapping(name: str) -> ErrorMapping:
    """The provider's ``errors.yaml`` as an :class:`ErrorMapping` (a plain one when absent)."""
    text = _provider_file(name, "errors.yaml")
    if text is None:
        return ErrorMapping()
    try:
        parsed = _ErrorsFile.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, pydantic.ValidationError) as exc:
        raise ConfigError(f"providers/{name}/errors.yaml is invalid: {exc}") from exc
    return ErrorMapping(
        provider=parsed.provider,
        hints=dict(parsed.hints),
        scopes_by_route=tuple((re.compile(r.pattern), r.scope) for r in parsed.scopes_by_route),
    )


def account_credential(spec: ProviderSpec) -> AccountCredential:
    """What the provider's connected accounts hold (see the module docstring)."""
    return spec.credential


@dataclass(frozen=True)
class Connector:
    """One provider at run time (see the module docstring)."""

    spec: ProviderSpec
    catalog: Catalog
    base_url: str
    """The effective base URL (provider.yaml's, or the override for it)."""
    accounts: AccountCredential
    oauth: OAuth2Client | None
    """The OAuth2 client, for a provider whose accounts hold OAuth2 grants; else None."""
    errors: ErrorMapping
    user_agent: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def display_name(self) -> str:
        return self.spec.display_name

    @property
    def api_prefix(self) -> str:
        return self.spec.api_prefix

    @property
    def account_scheme(self) -> str:
        """The auth scheme a connected account's credential is sent with."""
        return self.spec.user_auth_scheme if self.uses_oauth else self.spec.bot_auth_scheme

    @property
    def bot_scheme(self) -> str:
        """The auth scheme of a bot token (a ``discord`` connection's own, or a bot account's)."""
        return self.spec.bot_auth_scheme

    @property
    def uses_oauth(self) -> bool:
        """Connections need an OAuth client and accounts are linked through authorization links."""
        return self.accounts == "oauth2"

    def check_connection(
        self,
        *,
        client_id: str | None,
        client_secret: str | None,
        scopes: object,
        bot_token: str | None,
        require_user_verification: bool,
    ) -> None:
        """Refuse (ValidationError naming each field) what a connection of this provider must or
        must not have: an OAuth client for OAuth accounts; none of the OAuth fields otherwise."""
        problems: dict[str, str] = {}
        if self.uses_oauth:
            for name, value in (("client_id", client_id), ("client_secret", client_secret)):
                if value is None:
                    problems[name] = f"required for provider {self.name} (its OAuth client)"
        else:
            unused = f"not used by provider {self.name}: its accounts hold their own bot tokens"
            given = {
                "client_id": client_id is not None,
                "client_secret": client_secret is not None,
                "scopes": scopes is not None,
                "bot_token": bot_token is not None,
                "require_user_verification": require_user_verification,
            }
            problems = {name: unused for name, present in given.items() if present}
        if problems:
            raise ValidationError(
                "; ".join(f"{k}: {v}" for k, v in problems.items()), fields=problems
            )

    def api_url(self, relative: str) -> str:
        """The absolute URL of an API route (``/users/@me`` → ``{base}/api/v10/users/@me``)."""
        return self.base_url + self.api_prefix + relative


class Connectors:
    """Every installed provider by name, and their tools as one catalog (names are unique: each
    starts with its provider's name)."""

    def __init__(self, connectors: Iterable[Connector]) -> None:
        self._by_name: dict[str, Connector] = {c.name: c for c in connectors}
        self._tools: dict[str, Connector] | None = None

    @property
    def _by_tool(self) -> dict[str, Connector]:
        """Every tool's connector; built (and the catalogs loaded) on first use."""
        if self._tools is None:
            by_tool: dict[str, Connector] = {}
            for connector in self._by_name.values():
                for tool in connector.catalog.names():
                    if tool in by_tool:
                        raise ConfigError(f"tool {tool!r} is defined by two providers")
                    by_tool[tool] = connector
            self._tools = by_tool
        return self._tools

    @classmethod
    def build(
        cls,
        *,
        transport: Transport,
        version: str,
        base_urls: Mapping[str, str] | None = None,
        oauth_timeout: float = 15.0,
        names: Iterable[str] | None = None,
    ) -> Connectors:
        """Load the providers ``names`` (default: every installed one; their tool catalogs on
        first use, see :meth:`Catalog.lazy`). ``base_urls`` replaces a
        provider.yaml base URL by another (``{"https://discord.com": sandbox_url}``); OAuth2 calls
        go through ``transport``."""
        overrides = {k.rstrip("/"): v.rstrip("/") for k, v in (base_urls or {}).items()}
        built: list[Connector] = []
        for name in names if names is not None else installed_providers():
            catalog = Catalog.lazy(name)
            spec = catalog.provider
            base = overrides.get(spec.base_url.rstrip("/"), spec.base_url.rstrip("/"))
            accounts = account_credential(spec)
            user_agent = spec.user_agent_for(version)
            oauth = None
            if accounts == "oauth2" and spec.oauth is not None:
                oauth = OAuth2Client(
                    transport,
                    OAuthUrls(
                        authorize=spec.url(spec.oauth.authorize_url, base),
                        token=spec.url(spec.oauth.token_url, base),
                        revoke=spec.url(spec.oauth.revoke_url, base),
                        whoami=base + spec.api_prefix + WHOAMI_PATH,
                    ),
                    user_agent=user_agent,
                    user_scheme=spec.user_auth_scheme,
                    timeout=oauth_timeout,
                )
            built.append(
                Connector(
                    spec=spec,
                    catalog=catalog,
                    base_url=base,
                    accounts=accounts,
                    oauth=oauth,
                    errors=load_error_mapping(name),
                    user_agent=user_agent,
                )
            )
        return cls(built)

    # -- providers ----------------------------------------------------------------------------

    def providers(self) -> list[Connector]:
        return list(self._by_name.values())

    def provider(self, name: str) -> Connector:
        """The connector for provider ``name``; a ValidationError naming the field when unknown."""
        connector = self._by_name.get(name)
        if connector is None:
            known = ", ".join(self._by_name)
            reason = f"unknown provider {name[:64]!r}; known: {known}"
            raise ValidationError(f"provider: {reason}", fields={"provider": reason})
        return connector

    def for_tool(self, tool_name: str) -> Connector:
        """The connector whose catalog has ``tool_name``; ToolNotFound otherwise."""
        connector = self._by_tool.get(tool_name)
        if connector is None:
            raise ToolNotFound(f"no tool named {tool_name!r}", details={"tool_name": tool_name})
        return connector

    # -- every tool, as one catalog (ToolCatalog) ---------------------------------------------

    def tools(self) -> list[ToolSpec]:
        return [tool for c in self._by_name.values() for tool in c.catalog.tools()]

    def names(self) -> list[str]:
        return list(self._by_tool)

    def __contains__(self, name: object) -> bool:
        """Whether a tool of this name exists (the catalogs load on first use)."""
        return name in self._by_tool

    def get(self, name: str) -> ToolSpec:
        return self.for_tool(name).catalog.get(name)

    def description(self, name: str) -> str:
        return self.for_tool(name).catalog.description(name)
