"""Every installed provider's tools as one catalog.

``tokenward tools list``, ``GET /api/v1/tools`` and the SDK's schema exports show the tools of
every provider folder (``discord_*`` and ``discordbot_*``); tool names are unique across providers
because each starts with its provider's name. A call still runs on a connection of the tool's own
provider (:mod:`tokenward.connectors`).
"""

from __future__ import annotations

import re
from importlib import resources

from tokenward.tools.catalog import Catalogs

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
