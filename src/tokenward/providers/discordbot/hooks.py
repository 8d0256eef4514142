"""The Discord Bot connector's hooks: the same functions as the ``discord`` connector's (see
:mod:`tokenward.providers.discord.hooks`), registered for the bot tools that name them."""

from __future__ import annotations

from tokenward.providers.discord.hooks import ensure_nonce, permission_names
from tokenward.providers.hooks import HookRegistry

HOOKS = HookRegistry(
    input={"ensure_nonce": ensure_nonce, "permission_names": permission_names},
)
