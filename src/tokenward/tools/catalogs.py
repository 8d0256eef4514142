"""Every installed provider's tools as one catalog.

``tokenward tools list``, ``GET /api/v1/tools`` and the SDK's schema exports show the tools of
every provider folder (``discord_*`` and ``discordbot_*``); tool names are unique across providers
because each starts with its provider's name. A call still runs on a connection of the tool's own
provider (:mod:`tokenward.connectors`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources

from tokenward.errors import ConfigError, ToolNotFound, ValidationError
from tokenward.providers.models import ToolSpec
from tokenward.tools.catalog import Catalog

__all__ = ["Catalogs", "installed_providers"]


def installed_providers() -> list[str]:
    """Every provider folder shipped in the package (one with a ``provider.yaml``), by name."""
    root = resources.files("tokenward.providers")
    names = [
        entry.name
        for entry in root.iterdir()
        if entry.is_dir()
        and re.fullmatch(r"[a-z][a-z0-9_]*", entry.name)
        and (entry / "provider.yaml").is_file()
    ]
    return sorted(names)


class Catalogs:
    """Several providers' catalogs behind one catalog's reading interface."""

    def __init__(self, catalogs: Iterable[Catalog]) -> None:
        self._catalogs = list(catalogs)
        self._owner: dict[str, Catalog] = {}
        for catalog in self._catalogs:
            for name in catalog.names():
                if name in self._owner:
                    raise ConfigError(f"tool {name!r} is defined by two providers")
                self._owner[name] = catalog

    @classmethod
    def load(cls, names: Iterable[str] | None = None) -> Catalogs:
        """The catalogs of ``names`` (default: every installed provider)."""
        return cls(Catalog.load(n) for n in (installed_providers() if names is None else names))

    def provider(self, name: str) -> Catalog:
        """One provider's catalog; ValidationError naming ``provider`` when none is installed."""
        for catalog in self._catalogs:
            if catalog.provider.name == name:
                return catalog
        known = ", ".join(c.provider.name for c in self._catalogs)
        reason = f"unknown provider {name[:64]!r}; known: {known}"
        raise ValidationError(f"provider: {reason}", fields={"provider": reason})

    def catalog_of(self, tool_name: str) -> Catalog:
        catalog = self._owner.get(tool_name)
        if catalog is None:
            raise ToolNotFound(f"no tool named {tool_name!r}", details={"tool_name": tool_name})
        return catalog

    def tools(self) -> list[ToolSpec]:
        return [tool for catalog in self._catalogs for tool in catalog.tools()]

    def names(self) -> list[str]:
        return list(self._owner)

    def get(self, name: str) -> ToolSpec:
        return self.catalog_of(name).get(name)

    def description(self, name: str) -> str:
        return self.catalog_of(name).description(name)
