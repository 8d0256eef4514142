"""The delivery worker: sends the outbox's events to webhook endpoints, signed, at least once.

One runs inside every ``serve`` process. It claims due deliveries (one worker per row, also across
replicas: :meth:`~tokenward.vault.webhooks.WebhookStore.claim_due`), POSTs each event's JSON with
the Standard Webhooks headers (:mod:`tokenward.events.signing`), and settles it: a 2xx answer
delivers it; anything else (another status, a refused or dropped connection, a timeout, an
address webhooks may not reach) schedules the next attempt with exponential backoff — by default
5 s, 15 s, 45 s, … up to 8 h between attempts, about a day in all — after which the delivery is
given up. An endpoint that has failed every attempt for ``disable_after`` seconds is disabled,
with a ``webhook_endpoint.status_updated`` event of its own (to the other endpoints).

Claims of a process that died on this host are freed at once (:mod:`tokenward.oauth.holder`);
others run out after their lease. A worker never follows redirects, reads at most 64 KiB of an
answer, and gives each attempt ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Protocol

import aiohttp

from tokenward import __version__
from tokenward.clock import Clock
from tokenward.events import signing
from tokenward.events.urls import SafeResolver
from tokenward.oauth.holder import ProcessIdentity
from tokenward.tasks import cancel_and_wait
from tokenward.vault.webhooks import ClaimedDelivery, WebhookStore

log = logging.getLogger("tokenward.webhooks")

USER_AGENT = f"tokenward-webhooks/{__version__}"
MAX_ANSWER_BYTES = 64 * 1024
MAX_BACKOFF_SECONDS = 8 * 3600.0


class SendFailed(Exception):
    """No HTTP answer: the reason is logged with the attempt (never the URL's secrets)."""


class WebhookSender(Protocol):
    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, limit: float
    ) -> int: ...

    async def aclose(self) -> None: ...


class AiohttpSender:
    """POSTs over a pooled session whose resolver refuses addresses webhooks may not reach;
    no redirects, no cookies, no proxy from the environment."""

    def __init__(self, *, allow_loopback: bool) -> None:
        self._allow_loopback = allow_loopback
        self._session: aiohttp.ClientSession | None = None

    def _get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=64, resolver=SafeResolver(allow_loopback=self._allow_loopback)
            )
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
            )
        return self._session

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, limit: float) -> int:
        """The answer's status; :class:`SendFailed` when there was none within ``limit`` s."""
        status, _answer = await self.exchange(url, headers, body, limit)
        return status

    async def exchange(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        limit: float,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> tuple[int, bytes]:
        """The answer's status and its first ``max_bytes`` bytes; :class:`SendFailed` when there
        was none within ``limit`` s."""
        try:
            async with self._get().post(
                url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=limit),
            ) as response:
                answer = bytearray()
                while len(answer) < max_bytes:
                    chunk = await response.content.read(max_bytes - len(answer))
                    if not chunk:
                        break
                    answer += chunk
                return response.status, bytes(answer)
        except TimeoutError:
            raise SendFailed(f"no answer within {limit:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise SendFailed(f"could not connect ({exc.os_error.strerror or exc})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise SendFailed(f"connection failed ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def backoff(attempt: int, first: float) -> float:
    """Seconds before attempt ``attempt + 1``: ``first``, then three times longer each time,
    at most eight hours."""
    return float(min(MAX_BACKOFF_SECONDS, first * 3.0 ** (attempt - 1)))


class Deliverer:
    """Claims and sends due deliveries until closed (see the module doc)."""

    def __init__(
        self,
        store: WebhookStore,
        clock: Clock,
        sender: WebhookSender,
        *,
        poll_interval: float = 1.0,
        first_retry: float = 5.0,
        max_attempts: int = 11,
        disable_after: float = 3 * 86400.0,
        timeout: float = 10.0,
        lease: float = 60.0,
        batch: int = 20,
        concurrency: int = 8,
        identity: ProcessIdentity | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sender = sender
        self.poll_interval = poll_interval
        self.first_retry = first_retry
        self.max_attempts = max_attempts
        self.disable_after = disable_after
        self.timeout = timeout
        self.lease = max(lease, timeout + 5.0)
        self.batch = batch
        self.identity = identity or ProcessIdentity.current()
        self.owner = self.identity.holder()
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed_attempts = 0

    def wake(self) -> None:
        """An event was written: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.sender.aclose()

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Exception:  # a database hiccup must not end the worker
                log.exception("webhook delivery pass failed")
                sent = 0
            if sent:
                continue  # there may be more due
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                # A schedule in real seconds (a test's ManualClock must not be spun forward).
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def run_once(self) -> int:
        """Free dead claims, claim what is due, send it; returns how many were attempted."""
        gone = [h for h in await self.store.claim_holders() if self.identity.holder_is_gone(h)]
        if gone:
            freed = await self.store.release_claims_of(gone)
            log.warning("took over %d webhook deliveries of a process that is gone", freed)
        claims = await self.store.claim_due(self.owner, self.lease, self.batch)
        if claims:
            await asyncio.gather(*(self._deliver(claim) for claim in claims))
        return len(claims)

    def signed_headers(self, claim: ClaimedDelivery) -> dict[str, str]:
        """The headers of one attempt at ``claim`` (signed now)."""
        timestamp = int(self.clock.time())
        return {
            **signing.headers(claim.secret, claim.event_id, timestamp, claim.body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }

    async def _deliver(self, claim: ClaimedDelivery) -> None:
        async with self._slots:
            headers = self.signed_headers(claim)
            started = time.perf_counter()
            status: int | None = None
            error: str | None = None
            try:
                status = await self.sender.post(claim.url, headers, claim.body, self.timeout)
            except SendFailed as exc:
                error = str(exc)
            latency_ms = (time.perf_counter() - started) * 1000
            await self.settle(claim, status, error, latency_ms)

    async def settle(
        self, claim: ClaimedDelivery, status: int | None, error: str | None, latency_ms: float
    ) -> None:
        """Log one attempt at ``claim`` (held by this worker) and settle it: delivered on a 2xx,
        otherwise due again after the backoff (or given up); disables an endpoint that has
        failed for too long. Also used for deliveries sent synchronously
        (:mod:`tokenward.events.relay`)."""
        attempt = claim.attempts + 1
        ok = status is not None and 200 <= status < 300
        if not ok and error is None:
            error = f"answered HTTP {status}"
        next_at = (
            None
            if ok or attempt >= self.max_attempts
            else self.clock.time() + backoff(attempt, self.first_retry)
        )
        too_long = await self.store.record_attempt(
            claim,
            self.owner,
            status_code=status,
            latency_ms=latency_ms,
            error=error,
            next_attempt_at=next_at,
            disable_after=self.disable_after,
        )
        if ok:
            self.delivered += 1
            return
        self.failed_attempts += 1
        log.warning(
            "webhook delivery %s to endpoint %s failed (attempt %d: %s)%s",
            claim.id,
            claim.endpoint_id,
            attempt,
            error,
            "" if next_at is not None else "; giving up",
        )
        if too_long:
            reason = f"every delivery failed for more than {self.disable_after:g} s (last: {error})"
            if await self.store.set_enabled(claim.endpoint_id, False, reason):
                log.warning("webhook endpoint %s disabled: %s", claim.endpoint_id, reason)
