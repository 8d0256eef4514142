"""Load a provider's YAML files, check them against each other and the hooks, and cache them.

Each file is validated by its model (strict, unknown keys refused); then the cross-checks:
tool names are unique and start with the provider's name, every hook a tool names is
registered, every scope is one the provider knows, and ``replaced_by`` points at a live tool.
Every problem found is reported at once, in a :class:`~tokenward.errors.ConfigError`.
"""

from __future__ import annotations

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
from tokenward.providers.models import ProviderSpec, ToolsFileSpec, ToolSpec

TOOL_NAME_MAX = 64


@dataclass(frozen=True)
class LoadedProvider:
    """A provider's checked specs, its tools by name (file order) and its hooks."""

    spec: ProviderSpec
    tools: Mapping[str, ToolSpec]
    hooks: HookRegistry


class _UniqueKeyLoader(yaml.SafeLoader):
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


def cross_check(spec: ProviderSpec, tools: ToolsFileSpec, hooks: HookRegistry) -> list[str]:
    """Every inconsistency between the provider, its tools and its hooks."""
    problems: list[str] = []
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
        for kind, name in (
            ("input", tool.hooks.input),
            ("route", tool.hooks.route),
            ("result", tool.hooks.result),
        ):
            registry: Mapping[str, object] = getattr(hooks, kind)
            if name is not None and name not in registry:
                problems.append(f"{where}: {kind} hook {name!r} is not registered")
        for scope in tool.scopes:
            if scope not in spec.known_scopes:
                problems.append(f"{where}: scope {scope!r} is not a known {spec.name} scope")
        target = tool.annotations.replaced_by
        if target is not None:
            if target not in by_name:
                problems.append(f"{where}: replaced_by {target!r} is not a tool")
            elif by_name[target].annotations.deprecated:
                problems.append(f"{where}: replaced_by {target!r} is itself deprecated")
    return problems


def load_provider_from_text(
    provider_yaml: str, tools_yaml: str, hooks: HookRegistry
) -> LoadedProvider:
    """Validate and cross-check a provider from its two files' text (not cached)."""
    problems: list[str] = []
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
    _raise(cross_check(spec, tools, hooks))
    return LoadedProvider(spec=spec, tools={t.name: t for t in tools.tools}, hooks=hooks)


@functools.cache
def load_provider(name: str = "discord") -> LoadedProvider:
    """The packaged provider ``name`` (``providers/<name>/*.yaml`` + ``<name>.hooks.HOOKS``).

    Cached: the files are read and checked once per process.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ConfigError(f"provider name {name!r} is not valid")
    package = f"tokenward.providers.{name}"
    try:
        folder = resources.files(package)
        provider_yaml = (folder / "provider.yaml").read_text(encoding="utf-8")
        tools_yaml = (folder / "tools.yaml").read_text(encoding="utf-8")
        hooks_module = importlib.import_module(f"{package}.hooks")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ConfigError(f"provider {name!r} is not installed: {exc}") from exc
    hooks = getattr(hooks_module, "HOOKS", None)
    if not isinstance(hooks, HookRegistry):
        raise ConfigError(f"{package}.hooks must define HOOKS as a HookRegistry")
    return load_provider_from_text(provider_yaml, tools_yaml, hooks)
