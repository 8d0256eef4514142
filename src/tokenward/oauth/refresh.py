"""Race-free, crash-safe token refresh.

Discord's refresh tokens are single-use: a refresh answers with a new refresh token and the old
one is dead (discord-api-docs#5942). Two refreshes with the same refresh token therefore destroy
the user's grant: the second gets ``invalid_grant`` and the account can only be repaired by the
user authorizing again. And a refresh whose answer is lost (the process dies after Discord
answered, before the new tokens are saved) destroys it just the same. Every design choice below
follows from that.

**One refresh per account at a time, in a process.** ``TokenManager`` keeps one in-flight
``asyncio.Task`` per account (single-flight): the first caller that finds the token due starts the
refresh, every other caller awaits the same task and gets its result.

**One refresh per account at a time, across processes.** Processes that share the database take
a *lease* on the account row before refreshing: a single conditional ``UPDATE ... SET
refresh_lease_owner = me, refresh_lease_until = now + ttl WHERE id = ? AND (owner IS NULL OR
lease_until < now)``. Exactly one writer's update matches, on SQLite and PostgreSQL alike. The
winner **re-reads** the row after acquiring: if another process refreshed meanwhile (the stored
token is fresh, or is no longer the token that failed), it uses that and does not refresh. Losers
whose current token still works use it instead of waiting; the others poll the row with a short
backoff until the lease is gone or the credentials changed.

**Leases name their holder** (:mod:`tokenward.oauth.holder`): host, boot, process and its start
time. A lease whose holder is certainly gone (same host, process dead or its pid reused) is taken
over at once; otherwise its expiry decides. The lease's lifetime covers the whole retry budget
(every attempt's timeout plus the backoff between them, plus a margin), and before each attempt
the holder checks, in the same statement that records the attempt, that it still holds the lease,
that the credentials are still the version it read, and that enough of the lease is left for the
attempt. A worker that lost its lease therefore never sends a refresh token, never stores tokens
and never marks the account expired over another worker's good tokens.

**Intent before the call, recovery after a crash.** Just before the refresh token is sent, the
holder records ``refresh_started_at`` on the row; the transaction that stores Discord's answer
clears it. The store runs on a connection checked out before the call, from a small pool that
serves only refreshes (:class:`~tokenward.vault.repository.RefreshWriter`), so the window between
Discord's answer and the commit is one short transaction. An intent left behind means a refresh
was in flight when its process died (or its answer was lost): on start-up, and whenever a lease of
a dead holder is taken over, such accounts are **re-checked** by refreshing with the stored
refresh token. If Discord accepts it, the account is ``ACTIVE`` with working tokens; if it answers
``invalid_grant``, the interrupted refresh had spent it, and the account becomes ``EXPIRED`` with
the reason "refresh interrupted" and its event. Never ``ACTIVE`` with a dead grant.

**Failures.** Only ``invalid_grant`` means the grant is dead (revoked, app removed by the user, or
spent): the account becomes ``EXPIRED`` with a reason, and callers get
``ReauthorizationRequired`` with a fresh authorization link. Every other failure is transient:
another OAuth error (``invalid_client`` after a secret was rotated, an odd 400), network errors,
timeouts and 5xx. Those retry with bounded backoff inside the budget; the account stays
``ACTIVE``; if the current access token has not expired yet callers keep using it, otherwise the
call fails with a retryable ``UPSTREAM_UNAVAILABLE`` carrying ``retry_after``.

**Shutdown.** :meth:`TokenManager.drain` waits for refreshes in flight, so ``SIGTERM`` never cuts
one between Discord's answer and the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn

from tokenward.clock import Clock
from tokenward.errors import (
    AccountNotActive,
    ConflictError,
    ReauthorizationRequired,
    UpstreamUnavailable,
)
from tokenward.oauth.endpoints import (
    ClientCredentials,
    OAuthEndpoints,
    OAuthRejected,
    OAuthUnavailable,
)
from tokenward.oauth.holder import ProcessIdentity
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import AccountRecord, ConnectionRecord, RefreshWriter, Vault

log = logging.getLogger("tokenward.refresh")

INTERRUPTED_REASON = (
    "refresh interrupted: the process refreshing this account stopped after sending its refresh "
    "token, and Discord no longer accepts it; the user must authorize again"
)
INVALID_GRANT_REASON = (
    "Discord refused the refresh token (invalid_grant): the user revoked access, removed the app, "
    "or the grant was otherwise ended"
)
_RETRY_AFTER = 1.0  # what a caller is told to wait after a transient refresh failure


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


def _client_credentials(connection: ConnectionRecord) -> ClientCredentials:
    if connection.client_id is None or connection.client_secret is None:
        # Accounts of a provider without OAuth hold bot tokens, which never reach a refresh.
        raise ConflictError(
            f"connection {connection.name!r} has no OAuth client, so its accounts cannot be "
            "refreshed",
            details={"connection_name": connection.name},
        )
    return ClientCredentials(connection.client_id, connection.client_secret.get_secret_value())


class _Why(Enum):
    DUE = "due"  # the token expires within the leeway
    UNAUTHORIZED = "unauthorized"  # Discord answered 401 to a token
    RECOVERY = "recovery"  # a refresh intent was left behind


class TokenManager:
    """Hands out valid access tokens for accounts, refreshing them race-free (see module doc)."""

    def __init__(
        self,
        vault: Vault,
        endpoints: OAuthEndpoints,
        clock: Clock,
        *,
        leeway: float = 300.0,
        attempt_timeout: float = 30.0,
        max_attempts: int = 4,
        backoff_base: float = 0.25,
        backoff_cap: float = 4.0,
        lease_margin: float = 15.0,
        poll_interval: float = 0.05,
        recovery_interval: float = 30.0,
        rng: random.Random | None = None,
        link_factory: LinkFactory | None = None,
        on_refresh: Callable[[str], None] | None = None,
        identity: ProcessIdentity | None = None,
        endpoints_for: Callable[[ConnectionRecord], OAuthEndpoints] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.vault = vault
        self.endpoints = endpoints
        # Each account refreshes at its connection's provider (default: ``endpoints`` for all).
        self._endpoints_for = endpoints_for or (lambda _connection: endpoints)
        self.clock = clock
        self.leeway = leeway
        self.attempt_timeout = attempt_timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lease_margin = lease_margin
        self.poll_interval = poll_interval
        self.recovery_interval = recovery_interval
        self.identity = identity or ProcessIdentity.current()
        self._rng = rng or random.Random()
        self._inflight: dict[str, asyncio.Task[AccountRecord]] = {}
        self._link_factory = link_factory
        self.refreshes = 0  # completed refreshes in this process (metrics)
        self._on_refresh = on_refresh
        self._recovery: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def retry_budget(self) -> float:
        """The longest one refresh can take: every attempt's timeout and the backoff between."""
        waits = sum(self._backoff_ceiling(n) for n in range(1, self.max_attempts))
        return self.max_attempts * self.attempt_timeout + waits

    @property
    def lease_ttl(self) -> float:
        """A lease covers the whole retry budget, with a margin for the store."""
        return self.retry_budget + self.lease_margin

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
            account = await self._single_flight(account.id, None, _Why.DUE)
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
        account = await self._single_flight(account_id, failed_token, _Why.UNAUTHORIZED)
        return self._to_grant(account)

    async def refresh_now(self, account_id: str) -> AccountRecord:
        """Refresh the account's token now, whether or not it is due (an operator asked).

        The same single flight and lease as every refresh; the token read here is treated like
        one Discord refused, so a refresh another worker finished meanwhile counts and the
        refresh token is still used at most once."""
        account = await self.vault.get_account(account_id)
        await self.require_active(account)
        current = account.access_token.get_secret_value() if account.access_token else None
        return await self._single_flight(account_id, current, _Why.UNAUTHORIZED)

    async def mark_unusable(self, account_id: str, reason: str) -> None:
        """The token was refused even after a refresh: stop using it, ask for re-authorization.

        A refused refresh has already marked the account with its real cause (``invalid_grant``);
        that reason is kept: only an account still ``ACTIVE`` is marked here, and only while its
        credentials are the ones just read (a re-link meanwhile is not overwritten)."""
        account = await self.vault.get_account(account_id)
        if account.status == AccountStatus.ACTIVE:
            await self.vault.mark_expired(account_id, reason, expected_version=account.version)

    async def recover_interrupted(self) -> int:
        """Re-check every account whose refresh intent was left behind by a process that is gone
        (or whose lease ran out); returns how many were re-checked. Safe to run any time: a
        refresh in flight elsewhere, under a live lease, is left alone."""
        checked = 0
        for account in await self.vault.list_interrupted_refreshes():
            if self._closing:
                break
            if account.id in self._inflight or not self._lease_free_or_dead(account):
                continue
            checked += 1
            try:
                await self._single_flight(account.id, None, _Why.RECOVERY)
            except (ReauthorizationRequired, AccountNotActive):
                pass  # marked EXPIRED ("refresh interrupted"), with its event
            except UpstreamUnavailable as exc:
                log.warning(
                    "re-check of interrupted refresh of account %s failed (%s); retrying later",
                    account.id,
                    exc.message,
                )
        return checked

    def start_recovery(self) -> None:
        """Re-check interrupted refreshes now, then every ``recovery_interval`` seconds."""
        if self._recovery is None or self._recovery.done():
            self._closing = False
            self._recovery = asyncio.ensure_future(self._recovery_loop())

    async def drain(self, grace: float | None = None) -> None:
        """Stop re-checking and wait (at most ``grace`` seconds) for refreshes in flight, so
        none is cut between Discord's answer and the commit."""
        self._closing = True
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None
        pending = list(self._inflight.values())
        if not pending:
            return
        log.info("waiting for %d token refresh(es) in flight", len(pending))
        done, not_done = await asyncio.wait(pending, timeout=grace)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: the callers that awaited it saw it already
        if not_done:
            log.warning("%d token refresh(es) still in flight at shutdown", len(not_done))

    # -- internals ----------------------------------------------------------------------------

    def _report(self, outcome: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(outcome)

    def _backoff_ceiling(self, attempt: int) -> float:
        return min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))

    def _lease_free_or_dead(self, account: AccountRecord) -> bool:
        owner = account.refresh_lease_owner
        if owner is None or account.refresh_lease_until is None:
            return True
        if account.refresh_lease_until < self.vault.clock.time():
            return True
        return self.identity.holder_is_gone(owner)

    async def _recovery_loop(self) -> None:
        while not self._closing:
            try:
                checked = await self.recover_interrupted()
                if checked:
                    log.info("re-checked %d account(s) with an interrupted refresh", checked)
            except Exception:  # a database hiccup must not end the loop
                log.exception("re-checking interrupted refreshes failed")
            # A schedule in real seconds, not a measured duration: a test's ManualClock (whose
            # sleep moves time forward at once) must not be spun forward by this loop.
            await asyncio.sleep(self.recovery_interval)

    async def require_active(self, account: AccountRecord) -> None:
        """Raise, with a fresh authorization link, unless the account can call Discord: the one
        answer tool calls, proxied calls, MCP and refresh all give."""
        if account.can_call:
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

    async def _single_flight(
        self, account_id: str, failed_token: str | None, why: _Why
    ) -> AccountRecord:
        task = self._inflight.get(account_id)
        if task is None:
            task = asyncio.ensure_future(
                self._refresh_across_processes(account_id, failed_token, why)
            )
            self._inflight[account_id] = task
            task.add_done_callback(lambda _t: self._inflight.pop(account_id, None))
        return await asyncio.shield(task)

    def _still_needs_refresh(
        self, account: AccountRecord, failed_token: str | None, why: _Why
    ) -> bool:
        if account.refresh_started_at is not None:
            return True  # a refresh was interrupted: re-check it whatever else holds
        if why is _Why.RECOVERY:
            return False  # someone finished it meanwhile
        if account.access_token is None:
            return True
        if failed_token is not None:
            return account.access_token.get_secret_value() == failed_token
        return self.is_due(account)

    def _still_works(self, account: AccountRecord) -> bool:
        """The stored access token has not expired yet (a caller may use it while it waits)."""
        return (
            account.access_token is not None
            and account.expires_at is not None
            and account.expires_at > self.clock.time() + 1.0
        )

    async def _refresh_across_processes(
        self, account_id: str, failed_token: str | None, why: _Why
    ) -> AccountRecord:
        owner = self.identity.holder()
        deadline = self.clock.monotonic() + self.lease_ttl
        wait = self.poll_interval
        take_over: str | None = None
        while True:
            if await self.vault.acquire_refresh_lease(
                account_id, owner, self.lease_ttl, take_over=take_over
            ):
                try:
                    account = await self.vault.get_account(account_id)  # re-read under the lease
                    if account.status != AccountStatus.ACTIVE:
                        await self.require_active(account)
                    if not self._still_needs_refresh(account, failed_token, why):
                        self._report("skipped")
                        return account
                    return await self._refresh_holding_lease(account, owner)
                finally:
                    # No-op when the store or the expiry already released it. The intent stays:
                    # only a refresh that certainly did not reach Discord clears it.
                    await self.vault.release_refresh_lease(account_id, owner)
            # Another worker holds the lease.
            account = await self.vault.get_account(account_id)
            if account.status != AccountStatus.ACTIVE:
                await self.require_active(account)
            if not self._still_needs_refresh(account, failed_token, why):
                return account
            holder = account.refresh_lease_owner
            if holder is not None and self.identity.holder_is_gone(holder):
                log.warning(
                    "taking over the refresh lease of account %s from a process that is gone",
                    account_id,
                )
                take_over = holder
                continue
            if why is _Why.RECOVERY:
                return account  # a live worker has it in hand
            if failed_token is None and self._still_works(account):
                return account  # due soon but still valid: no need to wait for the refresh
            if self.clock.monotonic() > deadline:
                raise UpstreamUnavailable(
                    "Timed out waiting for another worker to refresh the token; try again shortly",
                    details={"account_id": account_id, "retry_after": _RETRY_AFTER},
                )
            await self.clock.sleep(wait)
            wait = min(wait * 1.5, 0.5)

    async def _refresh_holding_lease(self, account: AccountRecord, owner: str) -> AccountRecord:
        interrupted = account.refresh_started_at is not None
        if account.refresh_token is None:
            expired = await self.vault.mark_expired(
                account.id,
                "no refresh token is stored; the user must authorize again",
                owner=owner,
                expected_version=account.version,
            )
            if expired is None:
                return await self._after_lost_lease(account.id)
            return await self._raise_expired(expired)
        connection = await self.vault.get_connection(account.connection_id)
        credentials = _client_credentials(connection)
        endpoints = self._endpoints_for(connection)
        refresh_token = account.refresh_token.get_secret_value()
        lease_needed = self.attempt_timeout + self.lease_margin
        maybe_spent = interrupted  # may Discord have used the stored refresh token already?
        async with self.vault.refresh_writer() as writer:
            attempt = 0
            while True:
                attempt += 1
                if not await writer.begin_attempt(
                    account.id, owner, account.version, lease_needed=lease_needed
                ):
                    return await self._after_lost_lease(account.id)
                try:
                    tokens = await endpoints.refresh(credentials, refresh_token)
                except OAuthRejected as exc:
                    if exc.error == "invalid_grant":
                        return await self._expire(writer, account, owner, exc, interrupted)
                    # Discord answered, and not with invalid_grant: it did not use the token
                    # (nor, if this is the first answer, any earlier attempt).
                    await writer.note_failure(
                        account.id,
                        account.connection_id,
                        {"error": exc.error, "status": exc.status, "attempt": attempt},
                        settle_owner=owner,
                        clear_intent=True,
                    )
                    self._report("error")
                    log.warning(
                        "refresh of account %s refused with %s (HTTP %s); the account stays "
                        "active and the next call tries again",
                        account.id,
                        exc.error,
                        exc.status,
                    )
                    why = f"Discord refused the refresh ({exc.error})"
                    return self._current_or_retryable(account, attempt, why)
                except OAuthUnavailable as exc:
                    maybe_spent = maybe_spent or exc.sent
                    last = attempt >= self.max_attempts
                    await writer.note_failure(
                        account.id,
                        account.connection_id,
                        {"error": "unavailable", "reason": exc.reason, "attempt": attempt},
                        settle_owner=owner if last else None,
                        clear_intent=not maybe_spent,
                    )
                    self._report("error")
                    if last:
                        why = "Discord could not be reached to refresh the token"
                        return self._current_or_retryable(account, attempt, why)
                    ceiling = self._backoff_ceiling(attempt)
                    await self.clock.sleep(self._rng.uniform(ceiling / 2, ceiling))
                    continue
                stored = await writer.store(
                    account.id,
                    owner,
                    access_token=tokens.access_token,
                    refresh_token=tokens.refresh_token,
                    expires_at=self.clock.time() + tokens.expires_in,
                    granted_scopes=tokens.scopes or None,
                )
                break
        if stored is None:
            # The lease was taken over between the attempt and the store (this worker stalled
            # past it): the new tokens could not be persisted and must not be used.
            raise UpstreamUnavailable(
                "The refresh lease was lost before the new tokens could be stored",
                details={"account_id": account.id, "retry_after": _RETRY_AFTER},
            )
        self.refreshes += 1
        self._report("success")
        if interrupted:
            log.info("account %s: interrupted refresh re-checked, tokens renewed", account.id)
        return stored

    async def _expire(
        self,
        writer: RefreshWriter,
        account: AccountRecord,
        owner: str,
        exc: OAuthRejected,
        interrupted: bool,
    ) -> AccountRecord:
        reason = INTERRUPTED_REASON if interrupted else INVALID_GRANT_REASON
        data: dict[str, Any] = {"error": exc.error, "status": exc.status}
        if interrupted:
            data["interrupted"] = True
        self._report("invalid_grant")
        expired = await writer.expire(account.id, owner, account.version, reason, data)
        if expired is None:
            # Not ours to mark any more: someone else refreshed or re-linked meanwhile.
            return await self._after_lost_lease(account.id)
        log.warning("account %s is EXPIRED: %s", account.id, reason)
        return await self._raise_expired(expired)

    async def _raise_expired(self, expired: AccountRecord) -> NoReturn:
        await self.require_active(expired)
        raise AssertionError("an EXPIRED account passed require_active")  # pragma: no cover

    async def _after_lost_lease(self, account_id: str) -> AccountRecord:
        """The lease or the row changed under this worker: whatever is stored now is the truth."""
        account = await self.vault.get_account(account_id)
        await self.require_active(account)
        if account.refresh_started_at is None and self._still_works(account):
            return account
        raise UpstreamUnavailable(
            "Another worker took over this account's refresh; try again shortly",
            details={"account_id": account_id, "retry_after": _RETRY_AFTER},
        )

    def _current_or_retryable(
        self, account: AccountRecord, attempts: int, why: str
    ) -> AccountRecord:
        """After a transient failure: keep using a token that still works, else a retryable
        error. The account stays ACTIVE either way."""
        if self._still_works(account):
            log.warning(
                "refresh of account %s failed %d time(s); using the current token",
                account.id,
                attempts,
            )
            return account
        raise UpstreamUnavailable(
            f"{why}; try again shortly",
            details={"account_id": account.id, "attempts": attempts, "retry_after": _RETRY_AFTER},
        )
