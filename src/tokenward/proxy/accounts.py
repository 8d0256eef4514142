"""Vault-backed credentials for the proxy core, with the hot path kept off the database.

A proxied call or a tool call names a ``(connection_name, identifier)``. ``AccountDirectory``
resolves that to the connection (client id, decrypted bot token) and the connected account
(decrypted access token, expiry, version) and keeps both in memory, so a call whose token is
fresh touches no database at all (the performance anchors show what one SQL write per call costs
a peer). Freshness rules:

- an entry is re-read from the database once it is ``ttl`` seconds old (another process may have
  deleted, expired or re-linked the account). The re-read happens in the background while the
  entry keeps serving, for at most ``max_stale`` seconds more; past that, callers wait for it;
- loads are single-flight per key: when an entry expires under load, one query refreshes it
  instead of every concurrent caller querying at once (that stampede was the proxy's p99 tail);
- only ``ACTIVE`` accounts are cached, so an account the user has just approved is usable at once;
- a refresh done here replaces the entry with the stored result (``TokenManager`` persists first);
- a 401 always re-reads the row before deciding to refresh (``TokenManager.after_unauthorized``),
  so a token refreshed by another process is picked up instead of refreshing again.

The credentials of one account serve only calls made for that ``(connection, identifier)``: the
cache is keyed by both, and the rate-limit identity is the account id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tokenward.clock import Clock
from tokenward.errors import (
    AccountNotActive,
    AccountNotFound,
    BotTokenRequired,
    ReauthorizationRequired,
)
from tokenward.oauth.refresh import TokenManager
from tokenward.proxy.client import ANONYMOUS, Credential
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import AccountRecord, ConnectionRecord, Vault

log = logging.getLogger("tokenward.directory")
T = TypeVar("T")


@dataclass
class _Entry:
    value: object
    until: float


class AccountDirectory:
    """Bounded in-memory cache of connections and accounts by name (see the module doc)."""

    def __init__(
        self,
        vault: Vault,
        clock: Clock,
        *,
        ttl: float = 15.0,
        max_stale: float = 30.0,
        max_entries: int = 50_000,
    ):
        self.vault = vault
        self.clock = clock
        self.ttl = ttl
        self.max_stale = max_stale
        self.max_entries = max_entries
        self._connections: dict[str, _Entry] = {}
        self._accounts: dict[tuple[str, str], _Entry] = {}
        self._loading: dict[tuple[str, ...], asyncio.Task[Any]] = {}

    def _fresh(self, entry: _Entry | None) -> object | None:
        if entry is None or entry.until <= self.clock.monotonic():
            return None
        return entry.value

    def _usable(self, entry: _Entry | None) -> tuple[object | None, bool]:
        """``(value, needs_reload)``: a value still within ``max_stale`` serves while reloading."""
        if entry is None:
            return None, True
        now = self.clock.monotonic()
        if entry.until > now:
            return entry.value, False
        if entry.until + self.max_stale > now:
            return entry.value, True
        return None, True

    def _trim(self, table: dict[Any, _Entry]) -> None:
        if len(table) >= self.max_entries:
            now = self.clock.monotonic()
            for key in [k for k, e in table.items() if e.until + self.max_stale <= now]:
                del table[key]
            if len(table) >= self.max_entries:
                table.clear()

    def _load(self, key: tuple[str, ...], loader: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """One load per key at a time; later callers share it."""
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(loader())
            self._loading[key] = task
            task.add_done_callback(lambda t: self._loaded(key, t))
        return task

    def _loaded(self, key: tuple[str, ...], task: asyncio.Task[Any]) -> None:
        self._loading.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so a background reload's failure is logged, not lost; callers that
            # awaited the task got the exception themselves.
            log.debug("directory load %s failed: %s", key[0], type(task.exception()).__name__)

    async def _load_connection(self, name: str) -> ConnectionRecord:
        connection = await self.vault.get_connection_by_name(name)
        self._trim(self._connections)
        self._connections[name] = _Entry(connection, self.clock.monotonic() + self.ttl)
        return connection

    async def _load_account(self, connection: ConnectionRecord, identifier: str) -> AccountRecord:
        account = await self.vault.find_account(connection.id, identifier)
        if account is None:
            self.forget(connection.id, identifier)
            first = (
                "create an authorization link for it first"
                if connection.client_id is not None
                else "create it with its bot token first (POST /api/v1/connected-accounts)"
            )
            raise AccountNotFound(
                f"no connected account for identifier {identifier!r} on connection "
                f"{connection.name!r}; {first}",
                details={"connection_name": connection.name, "identifier": identifier},
            )
        if account.status == AccountStatus.ACTIVE:
            # Only usable accounts are cached: one waiting for its user's approval must be seen
            # as ACTIVE the moment the callback completes.
            self.remember(account)
        else:
            self.forget(connection.id, identifier)
        return account

    async def connection(self, name: str) -> ConnectionRecord:
        cached, reload = self._usable(self._connections.get(name))
        if not reload and isinstance(cached, ConnectionRecord):
            return cached
        task = self._load(("connection", name), lambda: self._load_connection(name))
        if isinstance(cached, ConnectionRecord):
            return cached  # still within max_stale: serve it while the reload runs
        return await asyncio.shield(task)

    async def account(self, connection: ConnectionRecord, identifier: str) -> AccountRecord:
        cached, reload = self._usable(self._accounts.get((connection.id, identifier)))
        if not reload and isinstance(cached, AccountRecord):
            return cached
        task = self._load(
            ("account", connection.id, identifier),
            lambda: self._load_account(connection, identifier),
        )
        if isinstance(cached, AccountRecord):
            return cached
        return await asyncio.shield(task)

    def remember(self, account: AccountRecord) -> None:
        self._trim(self._accounts)
        key = (account.connection_id, account.identifier)
        current = self._fresh(self._accounts.get(key))
        if isinstance(current, AccountRecord) and current.version > account.version:
            return
        self._accounts[key] = _Entry(account, self.clock.monotonic() + self.ttl)

    def forget(self, connection_id: str, identifier: str) -> None:
        self._accounts.pop((connection_id, identifier), None)

    def latest(self, account: AccountRecord) -> AccountRecord:
        """The newest known version of ``account`` (a refresh elsewhere in this process may have
        replaced it since the caller read it)."""
        entry = self._accounts.get((account.connection_id, account.identifier))
        cached = entry.value if entry is not None else None
        if (
            isinstance(cached, AccountRecord)
            and cached.id == account.id
            and cached.version > account.version
        ):
            return cached
        return account

    def forget_by_id(self, account_id: str) -> None:
        for key, entry in list(self._accounts.items()):
            if isinstance(entry.value, AccountRecord) and entry.value.id == account_id:
                del self._accounts[key]

    def forget_connection(self, name: str) -> None:
        self._connections.pop(name, None)

    def clear(self) -> None:
        """Forget everything (another process may have changed anything)."""
        self._connections.clear()
        self._accounts.clear()


class AccountCredentials:
    """The connected account's OAuth2 access token, refreshed when due or after a 401."""

    def __init__(
        self,
        tokens: TokenManager,
        directory: AccountDirectory,
        account: AccountRecord,
        *,
        scheme: str = "Bearer",
    ) -> None:
        self._tokens = tokens
        self._directory = directory
        self._account = account
        self._scheme = scheme
        # The credential last made, and the record it was made from (a call asks twice: before
        # queueing for its rate-limit slot and once it has one).
        self._made: tuple[AccountRecord, Credential] | None = None

    def __repr__(self) -> str:
        return f"AccountCredentials(account_id={self._account.id!r})"

    def _credential(self, account_id: str, token: str) -> Credential:
        return Credential("bearer", token, f"acct:{account_id}", self._scheme)

    async def get(self) -> Credential:
        account = self._account = self._directory.latest(self._account)
        due = self._tokens.is_due(account)
        if account.can_call and not due:
            # The common case, without the token manager's awaits: the stored token, usable.
            made = self._made
            if made is None or made[0] is not account:
                assert account.access_token is not None  # can_call
                token = account.access_token.get_secret_value()
                made = (account, self._credential(account.id, token))
                self._made = made
            return made[1]
        if due:
            grant = await self._tokens.grant(self._account.id)
            await self._remember_latest()
        else:
            grant = await self._tokens.grant(self._account)
        return self._credential(grant.account_id, grant.access_token)

    async def invalidate(self, failed_token: str | None) -> Credential | None:
        grant = await self._tokens.after_unauthorized(self._account.id, failed_token or "")
        await self._remember_latest()
        if failed_token is not None and grant.access_token == failed_token:
            return None
        return self._credential(grant.account_id, grant.access_token)

    async def _remember_latest(self) -> None:
        latest = await self._tokens.vault.get_account(self._account.id)
        self._account = latest
        self._directory.remember(latest)


class BotCredentials:
    """The connection's bot token (``Authorization: Bot``); a 401 cannot be repaired here."""

    def __init__(
        self, connection: ConnectionRecord, *, required: bool, scheme: str = "Bot"
    ) -> None:
        if connection.bot_token is None and required:
            raise BotTokenRequired(
                "This call needs the connection's bot token, and the connection has none. "
                f"Add one: `tokenward connections create --name {connection.name} ... "
                '--bot-token TOKEN` or PATCH /api/v1/connections/{name} {"bot_token": ...}.',
                details={"connection_name": connection.name},
            )
        self._credential = (
            Credential(
                "bot", connection.bot_token.get_secret_value(), f"bot:{connection.id}", scheme
            )
            if connection.bot_token is not None
            else ANONYMOUS
        )

    def __repr__(self) -> str:
        return f"BotCredentials(kind={self._credential.kind!r})"

    async def get(self) -> Credential:
        return self._credential

    async def invalidate(self, failed_token: str | None) -> Credential | None:
        return None


BOT_TOKEN_REJECTED_REASON = (
    "Discord rejected the bot token (401): it was reset in the Developer Portal or the bot was "
    "deleted; store the bot's current token for this account"
)


def bot_token_hint(connection_name: str, identifier: str) -> str:
    """How to give a bot account a new token (shown in errors; never containing one)."""
    return (
        f"Give the account its bot's current token: `tokenward accounts create --connection "
        f"{connection_name} --identifier {identifier} --bot-token-stdin`, or POST "
        "/api/v1/connected-accounts with credentials.bot_token."
    )


def require_bot_account(account: AccountRecord, connection_name: str) -> None:
    """Raise unless the bot account can call Discord (ACTIVE, holding its token)."""
    if account.can_call:
        return
    details: dict[str, object] = {
        "account_id": account.id,
        "status": account.status.value,
        "status_reason": account.status_reason,
        "hint": bot_token_hint(connection_name, account.identifier),
    }
    if account.status == AccountStatus.EXPIRED:
        raise ReauthorizationRequired(
            f"The account's bot token no longer works ({account.status_reason or 'expired'}); "
            "give the account a new one.",
            details=details,
        )
    raise AccountNotActive(
        f"The bot account is {account.status.value}; give it a bot token.", details=details
    )


class BotAccountCredentials:
    """A bot account's own token (a ``discordbot`` connected account), sent with the provider's
    bot scheme. Bot tokens neither expire nor refresh: a 401 means the token was reset or the
    bot deleted, so the account is marked ``EXPIRED`` with a reason (and its event), forgotten
    by the directory, and the call fails with ``REAUTHORIZATION_REQUIRED`` saying how to give it
    a new token. Rate-limit identity: the bot user (Discord limits per bot)."""

    def __init__(
        self,
        vault: Vault,
        directory: AccountDirectory,
        account: AccountRecord,
        *,
        connection_name: str,
        scheme: str = "Bot",
    ) -> None:
        require_bot_account(account, connection_name)
        assert account.access_token is not None
        self._vault = vault
        self._directory = directory
        self._account = account
        self._connection_name = connection_name
        self._credential = Credential(
            "bot",
            account.access_token.get_secret_value(),
            f"bot:{account.provider_user_id or account.id}",
            scheme,
        )

    def __repr__(self) -> str:
        return f"BotAccountCredentials(account_id={self._account.id!r})"

    async def get(self) -> Credential:
        return self._credential

    async def invalidate(self, failed_token: str | None) -> Credential | None:
        account = self._account
        expired = await self._vault.mark_expired(
            account.id,
            BOT_TOKEN_REJECTED_REASON,
            expected_version=account.version,
            active_only=True,
            data={"status": 401, "credential": "bot_token"},
        )
        self._directory.forget_by_id(account.id)
        if expired is not None:
            log.warning(
                "account %s (connection %r) is EXPIRED: Discord rejected its token (401)",
                account.id,
                self._connection_name,
            )
        current = expired or await self._vault.get_account(account.id)
        if current.version != account.version and current.status == AccountStatus.ACTIVE:
            # A new token was stored meanwhile: the next call uses it.
            raise ReauthorizationRequired(
                "Discord rejected the bot token this call used; the account has a new one "
                "since, try again",
                details={"account_id": account.id, "retry": True},
            )
        require_bot_account(current, self._connection_name)
        raise AssertionError(
            "an EXPIRED bot account passed require_bot_account"
        )  # pragma: no cover
