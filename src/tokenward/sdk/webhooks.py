"""``client.webhooks``: the endpoints that receive tokenward's signed events, and a helper to
verify a delivery in the application's receiver.

::

    hook = client.webhooks.create(url="https://app.example.com/tokenward-events")
    hook.secret                     # whsec_..., shown only now: store it
    # in the receiver:
    event = tokenward.verify_webhook(body, request.headers, secret)   # raises if forged or stale
    if event["type"] == "connected_account.status_updated": ...
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from tokenward.errors import WebhookSignatureError
from tokenward.events import signing

if TYPE_CHECKING:
    from tokenward.sdk.client import AsyncClient

__all__ = [
    "AsyncWebhooks",
    "Webhook",
    "WebhookDelivery",
    "WebhookSignatureError",
    "Webhooks",
    "verify_webhook",
]


def verify_webhook(
    body: bytes | str, headers: Mapping[str, str], secret: str, *, tolerance: float = 300
) -> dict[str, Any]:
    """Check a delivery's Standard Webhooks signature with the endpoint's ``whsec_`` secret and
    return the event (``{"type", "timestamp", "data"}``). Raises :class:`WebhookSignatureError`
    for a forged body, another secret, or a timestamp more than ``tolerance`` seconds away.
    Pass the raw body, exactly as received."""
    event: dict[str, Any] = signing.verify(
        secret, body, headers, now=time.time(), tolerance=tolerance
    )
    return event


class Webhook(BaseModel):
    """A webhook endpoint. ``secret`` is set only on creation and rotation."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    url: str
    events: list[str]
    status: str
    disabled_reason: str | None = None
    failing_since: str | None = None
    created_at: str
    updated_at: str
    secret: str | None = None

    def __repr__(self) -> str:  # never the secret
        return f"Webhook(id={self.id!r}, url={self.url!r}, status={self.status!r})"

    __str__ = __repr__


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    event_id: str
    endpoint_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    attempt_log: list[dict[str, Any]] = []


class AsyncWebhooks:
    """``client.webhooks`` (async)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, *, url: str, events: Sequence[str] | None = None) -> Webhook:
        body: dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = list(events)
        return Webhook.model_validate(await self._c._call("POST", "/api/v1/webhooks", json=body))

    async def list(self) -> list[Webhook]:
        data = await self._c._call("GET", "/api/v1/webhooks")
        return [Webhook.model_validate(w) for w in data["webhooks"]]

    async def get(self, webhook_id: str) -> Webhook:
        return Webhook.model_validate(await self._c._call("GET", f"/api/v1/webhooks/{webhook_id}"))

    async def delete(self, webhook_id: str) -> None:
        await self._c._call("DELETE", f"/api/v1/webhooks/{webhook_id}")

    async def rotate_secret(self, webhook_id: str) -> Webhook:
        data = await self._c._call("POST", f"/api/v1/webhooks/{webhook_id}/rotate-secret")
        return Webhook.model_validate(data)

    async def enable(self, webhook_id: str) -> Webhook:
        data = await self._c._call("POST", f"/api/v1/webhooks/{webhook_id}/enable")
        return Webhook.model_validate(data)

    async def deliveries(
        self, webhook_id: str, *, status: str | None = None, limit: int = 50
    ) -> builtins.list[WebhookDelivery]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        data = await self._c._call(
            "GET", f"/api/v1/webhooks/{webhook_id}/deliveries", params=params
        )
        return [WebhookDelivery.model_validate(d) for d in data["deliveries"]]

    async def resend(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        data = await self._c._call(
            "POST", f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/resend"
        )
        return WebhookDelivery.model_validate(data)


class Webhooks:
    """``client.webhooks`` (sync; see :class:`AsyncWebhooks`)."""

    def __init__(self, webhooks: AsyncWebhooks, run: Callable[[Awaitable[Any]], Any]) -> None:
        self._a = webhooks
        self._run = run

    def create(self, *, url: str, events: Sequence[str] | None = None) -> Webhook:
        result: Webhook = self._run(self._a.create(url=url, events=events))
        return result

    def list(self) -> builtins.list[Webhook]:
        result: builtins.list[Webhook] = self._run(self._a.list())
        return result

    def get(self, webhook_id: str) -> Webhook:
        result: Webhook = self._run(self._a.get(webhook_id))
        return result

    def delete(self, webhook_id: str) -> None:
        self._run(self._a.delete(webhook_id))

    def rotate_secret(self, webhook_id: str) -> Webhook:
        result: Webhook = self._run(self._a.rotate_secret(webhook_id))
        return result

    def enable(self, webhook_id: str) -> Webhook:
        result: Webhook = self._run(self._a.enable(webhook_id))
        return result

    def deliveries(
        self, webhook_id: str, *, status: str | None = None, limit: int = 50
    ) -> builtins.list[WebhookDelivery]:
        result: builtins.list[WebhookDelivery] = self._run(
            self._a.deliveries(webhook_id, status=status, limit=limit)
        )
        return result

    def resend(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        result: WebhookDelivery = self._run(self._a.resend(webhook_id, delivery_id))
        return result
