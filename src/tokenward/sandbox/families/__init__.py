"""Stateful emulation of Discord's core resource families, one module per family.

Importing this package registers each module's handlers with ``rest.handles``; operations
without a handler are answered from their response schema (``rest.synthesized``).
"""

from __future__ import annotations

from tokenward.sandbox.families import (
    applications,
    channels,
    guilds,
    lobbies,
    messages,
    misc,
    webhooks,
)

__all__ = ["applications", "channels", "guilds", "lobbies", "messages", "misc", "webhooks"]
