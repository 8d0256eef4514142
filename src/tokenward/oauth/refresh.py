"""Race-free token refresh.

Discord's refresh tokens are single-use: a refresh answers with a new refresh token and the old
one is dead (discord-api-docs#5942). Two refreshes with the same refresh token therefore destroy
the user's grant: the second gets ``invalid_grant`` and the account can only be repaired by the
user authorizing again. Every design choice below follows from that.

**One refresh per account at a time, in a process.** ``TokenManager`` keeps one in-flight
``asyncio.Task`` per account (single-flight): the first caller that finds the token due starts the
refresh, every other caller awaits the same task and gets its result.

**One refresh per account at a time, across processes.** Processes that share the database take
a *lease* on the account row before refreshing: a single conditional ``UPDATE ... SET
refresh_lease_owner = me, refresh_lease_until = now + ttl WHERE id = ? AND (owner IS NULL OR
lease_until < now)``. Exactly one writer's update matches, on SQLite and PostgreSQL alike. The
winner **re-reads** the row after acquiring: if another process refreshed meanwhile (the stored
token is fresh, or is no longer the token that failed), it uses that and does not refresh. Losers
poll the row with a short backoff until the lease is gone or the credentials changed, then re-read.
The lease's lifetime is longer than the whole refresh attempt, so it can only expire under a
process that crashed; that is what makes it safe to steal.

**Persist before use.** The new tokens are written (compare-and-swap on the lease owner, bumping
the version counter) before anyone is handed the new access token. If Discord omits a refresh
token, the old one is kept (authlib does the same).

**Failures.** ``invalid_grant`` means the grant is dead (revoked, app removed by the user, or a
lost race elsewhere): the account becomes ``EXPIRED`` with a reason, and callers get
``ReauthorizationRequired`` with a fresh authorization link. Network errors, timeouts and 5xx
are transient: bounded exponential backoff, and the account stays ``ACTIVE``; if the current
access token has not actually expired yet, callers keep using it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tokenward.clock import Clock
from tokenward.errors import AccountNotActive, ReauthorizationRequired, UpstreamUnavailable
from tokenward.oauth.discord import (
    ClientCredentials,
    OAuthEndpoints,
    OAuthRejected,
    OAuthUnavailable,
)
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import AccountRecord, Vault

log = logging.getLogger("tokenward.refresh")


@dataclass(frozen=True)
class AccessGrant:
    """What a caller needs to call Discord for an account: never logged, never serialised."""

    account_id: str
    access_token: str
    expires_at: float
    version: int
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"AccessGrant(account_id={self.account_id!r}, version={self.version})"


LinkFactory = Callable[[str], Awaitable[str | None]]


class TokenManager:
    """Hands out valid access tokens for accounts, refreshing them race-free (see module doc)."""

    def __init__(
        self,
        vault: Vault,
        endpoints: OAuthEndpoints,
        clock: Clock,
        *,
        leeway: float = 300.0,
        lease_ttl: float = 90.0,
        max_attempts: int = 4,
        backoff_base: float = 0.25,
        backoff_cap: float = 4.0,
        poll_interval: float = 0.05,
        rng: random.Random | None = None,
        link_factory: LinkFactory | None = None,
        on_refresh: Callable[[str], None] | None = None,
    ) -> None:
        self.vault = vault
        self.endpoints = endpoints
        self.clock = clock
        self.leeway = leeway
        self.lease_ttl = lease_ttl
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.poll_interval = poll_interval
        self._rng = rng or random.Random()
        self._inflight: dict[str, asyncio.Task[AccountRecord]] = {}
        self._link_factory = link_factory
        self.refreshes = 0  # completed refreshes in this process (metrics)
        self._on_refresh = on_refresh

    # -- public -------------------------------------------------------------------------------

    def is_due(self, account: AccountRecord) -> bool:
        return account.expires_at is not None and (
            account.expires_at - self.clock.time() <= self.leeway
        )

    async def grant(self, account: AccountRecord | str) -> AccessGrant:
        """A usable access token for the account; refreshes first when it is due."""
        if isinstance(account, str):
            account = await self.vault.get_account(account)
        await self.require_active(account)
        if self.is_due(account):
            account = await self._single_flight(account.id, failed_token=None)
        return self._to_grant(account)

    async def after_unauthorized(self, account_id: str, failed_token: str) -> AccessGrant:
        """Discord answered 401 to ``failed_token``. If the stored token is another one (someone
        refreshed already), use it; otherwise refresh once. Callers that get a 401 again must
        report re-authorization (``mark_unusable``)."""
        account = await self.vault.get_account(account_id)
        await self.require_active(account)
        stored = account.access_token.get_secret_value() if account.access_token else None
        if stored is not None and stored != failed_token:
            return self._to_grant(account)
        account = await self._single_flight(account_id, failed_token=failed_token)
        return self._to_grant(account)

    async def mark_unusable(self, account_id: str, reason: str) -> None:
        """The token was refused even after a refresh: stop using it, ask for re-authorization.

        A refused refresh has already marked the account with its real cause (``invalid_grant``);
        that reason is kept: only an account still ``ACTIVE`` is marked here."""
        account = await self.vault.get_account(account_id)
        if account.status == AccountStatus.ACTIVE:
            await self.vault.mark_expired(account_id, reason)

    # -- internals ----------------------------------------------------------------------------

    def _report(self, outcome: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(outcome)

    async def require_active(self, account: AccountRecord) -> None:
        """Raise, with a fresh authorization link, unless the account can call Discord: the one
        answer tool calls, proxied calls, MCP and refresh all give."""
        if account.status == AccountStatus.ACTIVE and account.access_token is not None:
            return
        link = await self._link_factory(account.id) if self._link_factory else None
        details: dict[str, object] = {
            "account_id": account.id,
            "status": account.status.value,
            "status_reason": account.status_reason,
        }
        if link:
            details["authorization_link"] = link
            details["hint"] = "Send the user this authorization link; calls work once they approve."
        if account.status == AccountStatus.EXPIRED:
            raise ReauthorizationRequired(
                "The user's Discord authorization is no longer valid"
                f" ({account.status_reason or 'expired'}); send them a new authorization link.",
                details=details,
            )
        raise AccountNotActive(
            f"The user has not connected Discord yet (status {account.status.value}); send "
            "them the authorization link.",
            details=details,
        )

    @staticmethod
    def _to_grant(account: AccountRecord) -> AccessGrant:
        assert account.access_token is not None
        return AccessGrant(
            account_id=account.id,
            access_token=account.access_token.get_secret_value(),
            expires_at=account.expires_at or 0.0,
            version=account.version,
            scopes=account.granted_scopes,
        )

    async def _single_flight(self, account_id: str, failed_token: str | None) -> AccountRecord:
        task = self._inflight.get(account_id)
        if task is None:
            task = asyncio.ensure_future(self._refresh_across_processes(account_id, failed_token))
            self._inflight[account_id] = task
            task.add_done_callback(lambda _t: self._inflight.pop(account_id, None))
        return await asyncio.shield(task)

    def _still_needs_refresh(self, account: AccountRecord, failed_token: str | None) -> bool:
        if account.access_token is None:
            return True
        if failed_token is not None:
            return account.access_token.get_secret_value() == failed_token
        return self.is_due(account)

    async def _refresh_across_processes(
        self, account_id: str, failed_token: str | None
    ) -> AccountRecord:
        owner = uuid.uuid4().hex
        deadline = self.clock.monotonic() + self.lease_ttl * 2
        wait = self.poll_interval
        while True:
            if await self.vault.acquire_refresh_lease(account_id, owner, self.lease_ttl):
                try:
                    account = await self.vault.get_account(account_id)  # re-read under the lease
                    if account.status != AccountStatus.ACTIVE:
                        await self.require_active(account)
                    if not self._still_needs_refresh(account, failed_token):
                        self._report("skipped")
                        return account
                    return await self._refresh_holding_lease(account, owner)
                finally:
                    await self.vault.release_refresh_lease(account_id, owner)
            # Another process holds the lease: wait for it to finish, then re-read.
            account = await self.vault.get_account(account_id)
            if account.status != AccountStatus.ACTIVE:
                await self.require_active(account)
            if not self._still_needs_refresh(account, failed_token):
                return account
            if self.clock.monotonic() > deadline:
                raise UpstreamUnavailable(
                    "Timed out waiting for another worker to refresh the token",
                    details={"account_id": account_id},
                )
            await self.clock.sleep(wait)
            wait = min(wait * 1.5, 0.5)

    async def _refresh_holding_lease(self, account: AccountRecord, owner: str) -> AccountRecord:
        if account.refresh_token is None:
            expired = await self.vault.mark_expired(
                account.id, "no refresh token is stored; the user must authorize again", owner=owner
            )
            await self.require_active(expired)
            return expired  # pragma: no cover - require_active raised
        connection = await self.vault.get_connection(account.connection_id)
        credentials = ClientCredentials(
            connection.client_id, connection.client_secret.get_secret_value()
        )
        refresh_token = account.refresh_token.get_secret_value()
        attempt = 0
        while True:
            attempt += 1
            try:
                tokens = await self.endpoints.refresh(credentials, refresh_token)
                break
            except OAuthRejected as exc:
                reason = (
                    "Discord refused the refresh token (invalid_grant): the user revoked access, "
                    "removed the app, or the grant was otherwise ended"
                    if exc.error == "invalid_grant"
                    else f"Discord refused the refresh ({exc.error})"
                )
                await self.vault.record_event(
                    "account.refresh_failed",
                    connection_id=account.connection_id,
                    account_id=account.id,
                    data={"error": exc.error, "status": exc.status, "final": True},
                )
                self._report("invalid_grant" if exc.error == "invalid_grant" else "error")
                expired = await self.vault.mark_expired(account.id, reason, owner=owner)
                await self.require_active(expired)
                raise  # pragma: no cover - require_active raised
            except OAuthUnavailable as exc:
                await self.vault.record_event(
                    "account.refresh_failed",
                    connection_id=account.connection_id,
                    account_id=account.id,
                    data={"error": "unavailable", "reason": exc.reason, "attempt": attempt},
                )
                self._report("error")
                if attempt >= self.max_attempts:
                    if account.expires_at is not None and account.expires_at > self.clock.time():
                        log.warning(
                            "refresh of account %s failed %d times; using the current token",
                            account.id,
                            attempt,
                        )
                        return account
                    raise UpstreamUnavailable(
                        "Discord could not be reached to refresh the token; try again shortly",
                        details={"account_id": account.id, "attempts": attempt},
                    ) from exc
                delay = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
                await self.clock.sleep(self._rng.uniform(delay / 2, delay))
        stored = await self.vault.store_refreshed_tokens(
            account.id,
            owner,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=self.clock.time() + tokens.expires_in,
            granted_scopes=tokens.scopes or None,
        )
        if stored is None:
            # The lease was lost (only possible if this worker stalled past its ttl): the new
            # tokens could not be persisted and must not be used.
            raise UpstreamUnavailable(
                "The refresh lease was lost before the new tokens could be stored",
                details={"account_id": account.id},
            )
        self.refreshes += 1
        self._report("success")
        return stored
