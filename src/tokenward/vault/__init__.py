"""The encrypted store: tables and migrations, AES-256-GCM with key ids, the repository, and
online key rotation.

Start at :class:`~tokenward.vault.repository.Vault` (``Vault.from_settings(settings, clock)``).
"""

from __future__ import annotations

from tokenward.vault.crypto import Keyring, aad, load_keyring
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import (
    AccountPage,
    AccountRecord,
    ApiClientRecord,
    AuthRequestRecord,
    ConnectionRecord,
    EventRecord,
    Vault,
)

__all__ = [
    "AccountPage",
    "AccountRecord",
    "AccountStatus",
    "ApiClientRecord",
    "AuthRequestRecord",
    "ConnectionRecord",
    "EventRecord",
    "Keyring",
    "Vault",
    "aad",
    "load_keyring",
]
