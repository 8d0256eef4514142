"""Declarative provider and tool specs, loaded from YAML (the tool model, version 2).

A provider is described by ``provider.yaml`` (URLs, credentials, scopes, rate-limit major
parameters), its tools by ``tools.yaml`` (one entry per tool: endpoint, auth, parameters with
their JSON Schemas, annotations, output, response schema reference, hook names) and the object
schemas its tools share by ``schemas.json`` (``$defs``). ``tools.yaml`` and ``schemas.json`` are
generated from Discord's OpenAPI description and a curated overlay (``scripts/
generate_catalog.py``); these models check the shape of each file on its own and
:mod:`tokenward.providers.loader` checks the files against each other and against the hooks.

A parameter's ``schema`` is JSON Schema (draft 2020-12) for its value: types, formats, ranges,
lengths, enums, patterns, and for objects and arrays their properties and items, which may
refer to the shared schemas as ``{"$ref": "#/$defs/<Name>"}``. Where the value goes is its
``location``:

- ``path``: a placeholder of the endpoint's path (``wire`` names the placeholder when it differs
  from the parameter's name, e.g. ``emoji`` fills ``{emoji_name}``);
- ``query``: the query string (arrays repeat the key, booleans are ``true``/``false``);
- ``body``: a field of the request body (``wire`` may be dotted, ``message.content``, to nest
  it, or ``.`` for a parameter whose value is the whole body, e.g. a list of commands);
- ``header``: an HTTP header named by ``wire``, its value percent-encoded (Discord's
  ``X-Audit-Log-Reason``);
- ``gateway``: read by the tool's hooks, never sent (e.g. filters the gateway applies);
- ``ignored``: accepted for compatibility, never sent; its ``note`` goes into the result when a
  caller gives it (parameters Discord has dropped).

Models are strict (no coercion: ``"5"`` is not an integer) and refuse unknown keys, so a typo in
a YAML file is an error, never a silently ignored setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ParamLocation = Literal["path", "query", "body", "header", "gateway", "ignored"]
"""Where a parameter's value goes (see the module docstring)."""

ParamKind = Literal["invite_code", "template_code", "user_ref", "emoji", "base64_file"]
"""Normalisation beyond JSON Schema. ``invite_code`` / ``template_code`` also accept the links
people paste and are reduced to the code; ``user_ref`` is ``@me`` or a snowflake; ``emoji`` is
a Unicode emoji or a custom one (``name:id``, also from ``<:name:id>``); ``base64_file`` is a
file's bytes in base64, sent as a multipart file part."""

AuthKind = Literal["user", "bot", "none", "user_or_bot"]
"""``user``: the account's OAuth2 bearer token. ``bot``: a bot token (the connection's for the
``discord`` connector, the connected account's own for ``discordbot``). ``none``: no token
needed (webhook-token and interaction-token routes, public reads; a bot token may be attached
for better rate limits). ``user_or_bot``: decided per call by the tool's route hook."""

ResolvedAuth = Literal["user", "bot", "none"]

OutputKind = Literal["json", "image", "text"]
"""What a tool returns: JSON, an image (base64 with its media type), or text (e.g. CSV)."""

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

BodyEncoding = Literal["json", "multipart"]

Credential = Literal["oauth2", "bot_token"]
"""What a connected account of the provider holds: an OAuth2 grant, or a bot token."""

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})
BODY_ROOT = "."
"""The ``wire`` of a body parameter whose value is the whole request body."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WIRE = re.compile(r"^(\.|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$")
_HEADER = re.compile(r"^[A-Za-z0-9-]+$")


class _Spec(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def schema_types(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The JSON types a schema node names directly (``type``, as a tuple; empty if none)."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, list):
        return tuple(t for t in declared if isinstance(t, str))
    return ()


def ref_name(schema: Mapping[str, Any]) -> str | None:
    """``X`` for a node ``{"$ref": "#/$defs/X"}``, else None."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return ref[len("#/$defs/") :]
    return None


def resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow ``$ref`` to ``$defs`` until a node that is not a bare reference."""
    seen: set[str] = set()
    node = schema
    while (name := ref_name(node)) is not None and name not in seen:
        seen.add(name)
        target = defs.get(name)
        if not isinstance(target, Mapping):
            return node
        node = target
    return node


def primary_type(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> str | None:
    """The main JSON type of a value schema: its first non-null type, following references and
    unions (``anyOf`` branches that agree). ``None`` when nothing says."""
    node = resolve(schema, defs or {})
    types = [t for t in schema_types(node) if t != "null"]
    if types:
        return types[0]
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        found = {primary_type(b, defs) for b in branches if isinstance(b, Mapping)}
        found.discard(None)
        if len(found) == 1:
            return found.pop()
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node:
        return "array"
    return None


class OAuthEndpointsSpec(_Spec):
    """OAuth2 endpoints, as paths relative to the provider's base URL."""

    authorize_url: str = Field(pattern=r"^/[^/]")
    token_url: str = Field(pattern=r"^/[^/]")
    revoke_url: str = Field(pattern=r"^/[^/]")


class ProviderSpec(_Spec):
    """One provider (``provider.yaml``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    display_name: str = Field(min_length=1)
    credential: Credential = "oauth2"
    base_url: str = Field(default="https://discord.com", pattern=r"^https?://[^/?#]+$")
    api_prefix: str = Field(default="/api/v10", pattern=r"^/[A-Za-z0-9/_.-]*[A-Za-z0-9]$")
    oauth: OAuthEndpointsSpec | None = None
    default_scopes: tuple[str, ...] = ()
    known_scopes: tuple[str, ...] = ()
    user_agent: str = Field(
        default="DiscordBot (https://github.com/tokenward/tokenward, {version})",
        pattern=r"\{version\}",
    )
    major_parameters: tuple[str, ...] = ()
    user_auth_scheme: str = "Bearer"
    bot_auth_scheme: str = "Bot"

    @model_validator(mode="after")
    def _consistent(self) -> ProviderSpec:
        if self.credential == "oauth2":
            if self.oauth is None:
                raise ValueError("an oauth2 provider needs an 'oauth' block")
            if not self.default_scopes:
                raise ValueError("an oauth2 provider needs default_scopes")
        elif self.oauth is not None or self.default_scopes:
            raise ValueError("a bot_token provider has no 'oauth' block and no default_scopes")
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


class FileSpec(_Spec):
    """How a ``base64_file`` parameter is sent as a multipart file part."""

    filename: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    media_types: tuple[str, ...] = Field(min_length=1)
    """Accepted media types; the first whose signature matches the bytes is used (PNG, GIF,
    JSON and CSV are recognised), else the first."""
    max_bytes: int = Field(ge=1)


class ParamSpec(_Spec):
    """One tool parameter: its name, where it goes, and the JSON Schema of its value."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    location: ParamLocation
    description: str = Field(min_length=10)
    required: bool = False
    schema_: dict[str, Any] = Field(alias="schema")
    wire: str | None = Field(default=None, pattern=_WIRE.pattern)
    kind: ParamKind | None = None
    file: FileSpec | None = None
    note: str | None = Field(default=None, min_length=10)
    secret: bool = False
    """The value is a credential (a webhook or interaction token, an OAuth2 access token): it
    must never be logged or echoed."""

    def __hash__(self) -> int:  # the schema is a dict: hash what identifies the parameter
        return hash((self.name, self.location, self.wire))

    @property
    def wire_name(self) -> str:
        """The name Discord knows: the path placeholder, query key, body field or header."""
        return self.wire or self.name

    @property
    def type(self) -> str | None:
        """The value's main JSON type as the schema states it directly (see ``primary_type``)."""
        return primary_type(self.schema_)

    @property
    def default(self) -> Any:
        return self.schema_.get("default")

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        schema = self.schema_
        if not any(k in schema for k in ("type", "$ref", "anyOf", "enum", "const")):
            raise ValueError("a parameter schema needs 'type', '$ref', 'anyOf', 'enum' or 'const'")
        unknown_types = [t for t in schema_types(schema) if t not in JSON_TYPES]
        if unknown_types:
            raise ValueError(f"unknown JSON type(s): {', '.join(unknown_types)}")
        kind = schema_types(schema)
        if self.location == "path":
            if not self.required:
                raise ValueError("a path parameter must be required")
            if not kind or not set(kind) <= {"string", "integer"}:
                raise ValueError("a path parameter must be a string or an integer")
        if self.location == "query":
            scalar = set(kind) - {"null"} <= SCALAR_TYPES and bool(kind)
            items = schema.get("items")
            array_of_scalars = (
                kind == ("array",)
                and isinstance(items, dict)
                and set(schema_types(items)) <= SCALAR_TYPES
            )
            if not (scalar or array_of_scalars or "enum" in schema):
                raise ValueError("a query parameter must be a scalar or an array of scalars")
        if self.location == "header":
            if kind != ("string",) or not self.wire or not _HEADER.match(self.wire):
                raise ValueError("a header parameter is a string with 'wire' naming the header")
        elif self.wire is not None and self.location in ("gateway", "ignored"):
            raise ValueError("'wire' is only for parameters that are sent")
        if self.wire == BODY_ROOT and self.location != "body":
            raise ValueError("wire '.' (the whole body) is only for body parameters")
        if self.wire is not None and "." in self.wire and self.location != "body":
            raise ValueError("a dotted wire name is only for body parameters")
        if self.kind is not None and kind != ("string",):
            raise ValueError(f"a {self.kind} parameter must have type string")
        if (self.kind == "base64_file") != (self.file is not None):
            raise ValueError("'file' goes with kind base64_file, and the reverse")
        if self.note is not None and self.location != "ignored":
            raise ValueError("'note' is only for ignored parameters")
        if self.location == "ignored" and self.note is None:
            raise ValueError("an ignored parameter needs a 'note' saying why it has no effect")
        if "default" in schema and self.required:
            raise ValueError("a required parameter cannot have a default")
        return self


class EndpointSpec(_Spec):
    """The HTTP call a tool makes, with a path template relative to the API prefix."""

    method: HttpMethod
    path: str = Field(pattern=r"^/[A-Za-z0-9_./@{}-]*$")
    body: BodyEncoding | None = None
    """How body parameters are encoded; ``None`` for a request without a body."""

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.path))


class AnnotationsSpec(_Spec):
    """Behaviour hints, exported to MCP and shown to agents (and used by policy)."""

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
        if self.read_only and not self.idempotent:
            raise ValueError("a read-only tool is idempotent")
        if self.deprecated != (self.replaced_by is not None):
            raise ValueError("'deprecated: true' and 'replaced_by' go together")
        return self


class HooksSpec(_Spec):
    """Names of small Python hooks (registered in the provider's ``hooks`` module).

    ``input``: runs on the validated input before the request is built (each in turn).
    ``route``: chooses the path, auth and scopes per call (``@me`` vs another user).
    ``result``: post-processes the provider's answer (gateway-side filters).
    """

    input: tuple[str, ...] = ()
    route: str | None = None
    result: str | None = None


class ResponseSpec(_Spec):
    """What Discord answers on success: the status, and the schema in Discord's OpenAPI
    description (its ``$ref`` values point into that document's ``components``)."""

    status: int = Field(ge=200, le=299)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    def __hash__(self) -> int:
        return hash(self.status)


class MessageRulesSpec(_Spec):
    """Discord's own message limits, checked before anything is sent.

    ``at``: the parameter holding the message object (e.g. ``data`` of an interaction
    response), or None when the message fields are the tool's own parameters. ``require_one``:
    the message must have at least one of content, embeds, sticker_ids, components, poll or
    attachments (a new message; an edit may change any one field).
    """

    at: str | None = None
    require_one: bool = False


class ToolSpec(_Spec):
    """One tool (an entry of ``tools.yaml``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    title: str = Field(min_length=3, max_length=80)
    description: str = Field(min_length=40, max_length=1024)
    operation: str | None = None
    """The operationId in Discord's OpenAPI description (None for a route it lacks)."""
    endpoint: EndpointSpec
    auth: AuthKind
    scopes: tuple[str, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    output: OutputKind = "json"
    media_type: str | None = None
    response: ResponseSpec | None = None
    annotations: AnnotationsSpec
    hooks: HooksSpec = HooksSpec()
    message: MessageRulesSpec | None = None
    nonce_retry: bool = False
    """The call may be resent when the body carries a ``nonce`` with ``enforce_nonce: true``:
    Discord then returns the message already created instead of posting it twice."""
    defs: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)
    """The shared schemas (``$defs``) this tool's parameters refer to, attached by the loader."""

    def __hash__(self) -> int:  # schemas are dicts: hash what identifies the tool
        return hash((self.name, self.endpoint))

    @model_validator(mode="after")
    def _consistent(self) -> ToolSpec:
        names = [p.name for p in self.params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate parameter names: {', '.join(duplicates)}")
        declared = {p.wire_name for p in self.params if p.location == "path"}
        in_path = set(self.endpoint.placeholders)
        if in_path - declared:
            missing = ", ".join(sorted(in_path - declared))
            raise ValueError(f"path placeholders without a path parameter: {missing}")
        if declared - in_path:
            extra = ", ".join(sorted(declared - in_path))
            raise ValueError(f"path parameters missing from the path template: {extra}")
        body = [p for p in self.params if p.location == "body"]
        if body and self.endpoint.body is None:
            raise ValueError("body parameters need 'endpoint.body' (json or multipart)")
        if self.endpoint.body is not None and self.endpoint.method in ("GET", "HEAD"):
            raise ValueError("a GET or HEAD request has no body")
        if any(p.wire == BODY_ROOT for p in body) and len(body) > 1:
            raise ValueError("a parameter that is the whole body must be the only body parameter")
        if self.endpoint.body == "multipart" and any(p.wire == BODY_ROOT for p in body):
            raise ValueError("a multipart body cannot be a single value")
        if any(p.kind == "base64_file" for p in self.params) and self.endpoint.body != "multipart":
            raise ValueError("a base64_file parameter needs a multipart body")
        sent = [
            (p.location, p.wire_name)
            for p in self.params
            if p.location in ("path", "query", "body") and p.wire != BODY_ROOT
        ]
        clashes = sorted({f"{loc} {w}" for loc, w in sent if sent.count((loc, w)) > 1})
        if clashes:
            raise ValueError(f"two parameters send the same field: {', '.join(clashes)}")
        if self.output == "image" and not (self.media_type or "").startswith("image/"):
            raise ValueError("an image output needs an image/* media_type")
        if self.output == "text" and not (self.media_type or "").startswith("text/"):
            raise ValueError("a text output needs a text/* media_type")
        if self.output == "json" and self.media_type is not None:
            raise ValueError("media_type is only for image and text outputs")
        if self.auth == "user_or_bot" and self.hooks.route is None:
            raise ValueError("auth 'user_or_bot' needs a route hook to choose per call")
        gateway = [p.name for p in self.params if p.location == "gateway"]
        if gateway and self.hooks.result is None and not self.hooks.input:
            raise ValueError("parameters located at the gateway need an input or result hook")
        if self.annotations.read_only and self.endpoint.method not in ("GET", "HEAD"):
            raise ValueError("a read-only tool must use GET or HEAD")
        if self.message is not None and self.message.at is not None:
            holder = self.param(self.message.at)
            if holder is None or holder.location != "body":
                raise ValueError("message.at must name a body parameter")
        if self.nonce_retry and not {"nonce", "enforce_nonce"} <= set(names):
            raise ValueError("nonce_retry needs nonce and enforce_nonce parameters")
        return self

    def param(self, name: str) -> ParamSpec | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    def param_type(self, param: ParamSpec) -> str | None:
        """The parameter's main JSON type, following references into the shared schemas."""
        return primary_type(param.schema_, self.defs)


class ToolsFileSpec(_Spec):
    """The whole ``tools.yaml``."""

    provider: str
    tools: tuple[ToolSpec, ...] = Field(min_length=1)
