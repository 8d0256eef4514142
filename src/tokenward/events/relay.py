"""Discord's requests, handed to the application: interactions synchronously, webhook events
through the outbox.

**Interactions.** Discord wants the answer to an interaction within 3 seconds. tokenward writes
the interaction to the outbox as a ``discord.interaction`` event (its data sealed: it holds the
interaction's token) with the deliveries already claimed by this process, and sends them at
once, signed like every delivery. The first endpoint that answers 200 with an interaction
response (a JSON object whose integer ``type`` is a callback type) within the budget
(``TOKENWARD_DISCORD_INTERACTION_TIMEOUT_SECONDS``, 2 s, counted from the request's arrival)
decides Discord's answer. Otherwise — no endpoint, a slow one, an error, a 2xx without a response
body — tokenward answers a deferred response in time (:func:`~tokenward.events.discord.
deferred_response`) and the application follows up with the interaction's token.

Nothing waits past the budget, but nothing is cut short either: a delivery still running goes on
in the background up to the usual attempt timeout and is settled like any other (logged, retried
with backoff when it failed, so the application gets the interaction at least once; the
``webhook-id`` is the same on every retry). If this process dies first, the claims run out and
the delivery worker sends them.

**Webhook events** are written to the outbox (``discord.event``) and delivered by the worker;
Discord only needs a quick 204.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tokenward.events.delivery import Deliverer, SendFailed
from tokenward.events.discord import deferred_response, is_interaction_response
from tokenward.vault.repository import ConnectionRecord
from tokenward.vault.webhooks import ClaimedDelivery, WebhookStore

log = logging.getLogger("tokenward.discord")

MAX_RESPONSE_BYTES = 256 * 1024
"""The most of an endpoint's answer read as an interaction response (longer: deferred)."""


class AnswerSender(Protocol):
    async def exchange(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        limit: float,
        max_bytes: int = ...,
    ) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


def _interaction_response(status: int | None, answer: bytes | None) -> dict[str, Any] | None:
    if status != 200 or not answer:
        return None
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    return parsed if is_interaction_response(parsed) else None


class DiscordRelay:
    """Hands Discord's interactions and webhook events to the application (see the module)."""

    def __init__(
        self,
        store: WebhookStore,
        deliverer: Deliverer,
        sender: AnswerSender,
        *,
        budget: float = 2.0,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.deliverer = deliverer
        self.sender = sender
        self.budget = budget
        # ``on_outcome(kind, outcome)``: metrics (``interaction``: relayed / deferred;
        # ``event``: queued / unwanted).
        self.on_outcome = on_outcome
        self._tasks: set[asyncio.Task[None]] = set()

    async def interaction(
        self, connection: ConnectionRecord, interaction: Mapping[str, Any], *, started: float
    ) -> dict[str, Any]:
        """The answer to ``interaction`` (not a PING): the application's, or a deferred one.
        ``started``: :func:`time.monotonic` when the request arrived (the budget counts from
        there)."""
        decided: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        data = {
            "connection_id": connection.id,
            "connection_name": connection.name,
            "interaction": dict(interaction),
        }
        self._spawn(self._deliver(data, decided))
        remaining = self.budget - (time.monotonic() - started)
        answer: dict[str, Any] | None = None
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                answer = await asyncio.wait_for(asyncio.shield(decided), remaining)
        if answer is not None:
            self._observe("interaction", "relayed")
            outcome = "relayed the application's answer"
        else:
            self._observe("interaction", "deferred")
            answer = deferred_response(interaction)
            outcome = f"answered deferred (type {answer['type']})"
        log.info(
            "interaction %s (type %s) on connection %s: %s after %.0f ms",
            interaction.get("id"),
            interaction.get("type"),
            connection.name,
            outcome,
            (time.monotonic() - started) * 1000,
        )
        return answer

    async def _deliver(
        self, data: dict[str, Any], decided: asyncio.Future[dict[str, Any] | None]
    ) -> None:
        try:
            claims = await self.store.emit_claimed(
                "discord.interaction",
                data,
                self.deliverer.owner,
                self.deliverer.lease,
                sealed=True,
            )
            if claims:
                await asyncio.gather(*(self._attempt(claim, decided) for claim in claims))
        except Exception:
            log.exception("could not hand an interaction to the application's webhooks")
        finally:
            if not decided.done():
                decided.set_result(None)

    async def _attempt(
        self, claim: ClaimedDelivery, decided: asyncio.Future[dict[str, Any] | None]
    ) -> None:
        headers = self.deliverer.signed_headers(claim)
        started = time.perf_counter()
        status: int | None = None
        answer: bytes | None = None
        error: str | None = None
        try:
            status, answer = await self.sender.exchange(
                claim.url, headers, claim.body, self.deliverer.timeout, MAX_RESPONSE_BYTES
            )
        except SendFailed as exc:
            error = str(exc)
        latency_ms = (time.perf_counter() - started) * 1000
        response = _interaction_response(status, answer)
        if response is not None and not decided.done():
            decided.set_result(response)
        await self.deliverer.settle(claim, status, error, latency_ms)

    async def event(self, connection: ConnectionRecord, event: Mapping[str, Any]) -> str | None:
        """Queue a Discord webhook event for the application (``discord.event``); its id, or
        ``None`` when no endpoint wants it."""
        queued = await self.store.publish(
            "discord.event",
            {"connection_id": connection.id, "connection_name": connection.name, "event": event},
        )
        self._observe("event", "queued" if queued is not None else "unwanted")
        return queued

    def _observe(self, kind: str, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(kind, outcome)

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, grace: float = 5.0) -> None:
        """Let deliveries in flight finish for up to ``grace`` seconds, then stop them (their
        claims run out and the worker sends them again)."""
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.sender.aclose()
