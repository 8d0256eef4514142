"""Load a provider's files, check them against each other and the hooks, and cache them.

A provider package holds ``provider.yaml``, ``tools.yaml``, ``schemas.json`` (the ``$defs`` its
tools share; optional) and a ``hooks`` module. Each file is validated by its model (strict,
unknown keys refused); then the cross-checks: tool names are unique and start with the
provider's name, every hook a tool names is registered, every scope is one the provider knows,
every ``$ref`` resolves to a shared schema, and ``replaced_by`` points at a live tool. Every
problem found is reported at once, in a :class:`~tokenward.errors.ConfigError`. Each tool gets
the shared schemas it refers to (directly or through other schemas) as ``ToolSpec.defs``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pydantic
import yaml

from tokenward.errors import ConfigError
from tokenward.providers.hooks import HookRegistry
from tokenward.providers.models import ProviderSpec, ToolsFileSpec, ToolSpec, ref_name

TOOL_NAME_MAX = 64
SCHEMAS_FILE = "schemas.json"


@dataclass(frozen=True)
class LoadedProvider:
    """A provider's checked specs, its tools by name (file order) and its hooks."""

    spec: ProviderSpec
    tools: Mapping[str, ToolSpec]
    hooks: HookRegistry
    defs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Every shared schema of the provider (``schemas.json`` ``$defs``)."""


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that refuses duplicate mapping keys (PyYAML keeps the last one silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _parse_yaml(text: str, filename: str) -> Any:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{filename}: not valid YAML: {exc}") from exc
    try:
        # Round-trip through JSON so pydantic's strict JSON rules apply: arrays may fill tuples,
        # but "5" never becomes 5.
        return json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{filename}: holds a value that is not plain data: {exc}") from exc


def _readable_location(loc: tuple[int | str, ...], raw: Any) -> str:
    """``tools.3.params.1.type`` → ``tools[discord_x].params[guild_id].type`` where names exist."""
    parts: list[str] = []
    node = raw
    for part in loc:
        named = None
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                named = node["name"]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            node = None
        if named is not None:
            parts.append(f"[{named}]")
        elif isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts) or "(root)"


def _model_problems(exc: pydantic.ValidationError, filename: str, raw: str) -> list[str]:
    data = json.loads(raw)
    return [
        f"{filename}: {_readable_location(err['loc'], data)}: {err['msg']}" for err in exc.errors()
    ]


def _raise(problems: list[str]) -> None:
    if problems:
        raise ConfigError(
            "provider specs are invalid: " + "; ".join(problems),
            details={"problems": problems},
        )


def cross_check(
    spec: ProviderSpec,
    tools: ToolsFileSpec,
    hooks: HookRegistry,
    defs: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every inconsistency between the provider, its tools, its shared schemas and hooks."""
    problems: list[str] = []
    defs = defs or {}
    for name, schema in defs.items():
        for missing in sorted(_refs(schema) - set(defs)):
            problems.append(f"{SCHEMAS_FILE}: {name} refers to {missing!r}, which is not defined")
    if tools.provider != spec.name:
        problems.append(f"tools.yaml: provider {tools.provider!r} is not {spec.name!r}")
    name_rule = re.compile(rf"^{re.escape(spec.name)}_[a-z0-9_]+$")
    names = [t.name for t in tools.tools]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"tools.yaml: tool name {dup!r} is used more than once")
    by_name = {t.name: t for t in tools.tools}
    for tool in tools.tools:
        where = f"tools.yaml: {tool.name}"
        if not name_rule.match(tool.name) or len(tool.name) > TOOL_NAME_MAX:
            problems.append(
                f"{where}: name must match {name_rule.pattern} and be at most "
                f"{TOOL_NAME_MAX} characters"
            )
        named: list[tuple[str, str | None]] = [
            *(("input", n) for n in tool.hooks.input),
            ("route", tool.hooks.route),
            ("result", tool.hooks.result),
        ]
        for kind, hook in named:
            registry: Mapping[str, object] = getattr(hooks, kind)
            if hook is not None and hook not in registry:
                problems.append(f"{where}: {kind} hook {hook!r} is not registered")
        for scope in tool.scopes:
            if scope not in spec.known_scopes:
                problems.append(f"{where}: scope {scope!r} is not a known {spec.name} scope")
        for param in tool.params:
            for missing in sorted(_refs(param.schema_) - set(defs)):
                problems.append(
                    f"{where}: parameter {param.name} refers to {missing!r}, which is not a "
                    f"shared schema of {spec.name}"
                )
        target = tool.annotations.replaced_by
        if target is not None:
            if target not in by_name:
                problems.append(f"{where}: replaced_by {target!r} is not a tool")
            elif by_name[target].annotations.deprecated:
                problems.append(f"{where}: replaced_by {target!r} is itself deprecated")
    return problems


def _refs(schema: Any) -> set[str]:
    """The shared-schema names a schema refers to directly (``#/$defs/<name>``)."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = ref_name(node)
            if name is not None:
                found.add(name)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def closure(names: set[str], defs: Mapping[str, Any]) -> dict[str, Any]:
    """The shared schemas ``names`` need, with everything they refer to in turn."""
    needed: dict[str, Any] = {}
    pending = sorted(names)
    while pending:
        name = pending.pop()
        if name in needed or name not in defs:
            continue
        needed[name] = defs[name]
        pending.extend(sorted(_refs(defs[name]) - set(needed)))
    return {name: needed[name] for name in sorted(needed)}


def _parse_defs(text: str | None) -> tuple[dict[str, Any], list[str]]:
    if text is None:
        return {}, []
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, [f"{SCHEMAS_FILE}: not valid JSON: {exc}"]
    defs = data.get("$defs") if isinstance(data, dict) else None
    if not isinstance(defs, dict) or not all(isinstance(v, dict) for v in defs.values()):
        return {}, [f"{SCHEMAS_FILE}: must be an object with '$defs' mapping names to schemas"]
    return defs, []


def load_provider_from_text(
    provider_yaml: str,
    tools_yaml: str,
    hooks: HookRegistry,
    schemas_json: str | None = None,
) -> LoadedProvider:
    """Validate and cross-check a provider from its files' text (not cached)."""
    defs, problems = _parse_defs(schemas_json)
    spec: ProviderSpec | None = None
    tools: ToolsFileSpec | None = None
    provider_raw = _parse_yaml(provider_yaml, "provider.yaml")
    tools_raw = _parse_yaml(tools_yaml, "tools.yaml")
    try:
        spec = ProviderSpec.model_validate_json(provider_raw)
    except pydantic.ValidationError as exc:
        problems += _model_problems(exc, "provider.yaml", provider_raw)
    try:
        tools = ToolsFileSpec.model_validate_json(tools_raw)
    except pydantic.ValidationError as exc:
        problems += _model_problems(exc, "tools.yaml", tools_raw)
    _raise(problems)
    assert spec is not None
    assert tools is not None
    _raise(cross_check(spec, tools, hooks, defs))
    attached: dict[str, ToolSpec] = {}
    for tool in tools.tools:
        used = set().union(*(_refs(p.schema_) for p in tool.params)) if tool.params else set()
        attached[tool.name] = (
            tool.model_copy(update={"defs": closure(used, defs)}) if used else tool
        )
    return LoadedProvider(spec=spec, tools=attached, hooks=hooks, defs=defs)


def _provider_package(name: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ConfigError(f"provider name {name!r} is not valid")
    return f"tokenward.providers.{name}"


@functools.cache
def load_provider_spec(name: str = "discord") -> ProviderSpec:
    """The packaged provider ``name``'s ``provider.yaml`` alone, checked by its model.

    Cheap next to :func:`load_provider` (a few kilobytes, not the tool catalog): what a server
    needs to start (base URL, OAuth2 endpoints, auth schemes); the tools are checked on first use.
    """
    package = _provider_package(name)
    try:
        text = (resources.files(package) / "provider.yaml").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ConfigError(f"provider {name!r} is not installed: {exc}") from exc
    raw = _parse_yaml(text, "provider.yaml")
    try:
        return ProviderSpec.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        _raise(_model_problems(exc, "provider.yaml", raw))
        raise  # pragma: no cover  (_raise raised)


@functools.cache
def load_provider(name: str = "discord") -> LoadedProvider:
    """The packaged provider ``name`` (``providers/<name>/`` files + ``<name>.hooks.HOOKS``).

    Cached: the files are read and checked once per process.
    """
    package = _provider_package(name)
    try:
        folder = resources.files(package)
        provider_yaml = (folder / "provider.yaml").read_text(encoding="utf-8")
        tools_yaml = (folder / "tools.yaml").read_text(encoding="utf-8")
        schemas = folder / SCHEMAS_FILE
        schemas_json = schemas.read_text(encoding="utf-8") if schemas.is_file() else None
        hooks_module = importlib.import_module(f"{package}.hooks")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ConfigError(f"provider {name!r} is not installed: {exc}") from exc
    hooks = getattr(hooks_module, "HOOKS", None)
    if not isinstance(hooks, HookRegistry):
        raise ConfigError(f"{package}.hooks must define HOOKS as a HookRegistry")
    return load_provider_from_text(provider_yaml, tools_yaml, hooks, schemas_json)
