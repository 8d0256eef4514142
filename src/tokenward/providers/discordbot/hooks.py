"""Discord Bot tool hooks: none yet (every tool is plain data in tools.yaml)."""

from __future__ import annotations

from tokenward.providers.hooks import HookRegistry

HOOKS = HookRegistry()
