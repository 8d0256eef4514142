"""Managing webhook endpoints: the one code path the API, the CLI and the SDK share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from tokenward.config import Settings
from tokenward.events import signing
from tokenward.events.urls import check_webhook_url
from tokenward.vault.webhooks import (
    AttemptRecord,
    DeliveryRecord,
    EndpointRecord,
    WebhookStore,
    parse_event_types,
)


@dataclass(frozen=True)
class NewEndpoint:
    """A created endpoint and its secret (shown this once)."""

    endpoint: EndpointRecord
    secret: SecretStr

    def public(self) -> dict[str, Any]:
        return {**self.endpoint.public(), "secret": self.secret.get_secret_value()}


class WebhookService:
    def __init__(self, store: WebhookStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def create(self, url: str, events: str | Iterable[str] | None = None) -> NewEndpoint:
        checked = check_webhook_url(url, allow_insecure=self.settings.webhooks_allow_insecure)
        wanted = parse_event_types(events)
        secret = signing.new_secret()
        endpoint = await self.store.create_endpoint(checked, wanted, secret)
        return NewEndpoint(endpoint, SecretStr(secret))

    async def endpoints(self) -> list[EndpointRecord]:
        return await self.store.list_endpoints()

    async def get(self, endpoint_id: str) -> EndpointRecord:
        return await self.store.get_endpoint(endpoint_id)

    async def delete(self, endpoint_id: str) -> None:
        await self.store.delete_endpoint(endpoint_id)

    async def rotate_secret(self, endpoint_id: str) -> NewEndpoint:
        secret = signing.new_secret()
        endpoint = await self.store.rotate_secret(endpoint_id, secret)
        return NewEndpoint(endpoint, SecretStr(secret))

    async def enable(self, endpoint_id: str) -> EndpointRecord:
        await self.store.set_enabled(endpoint_id, True, "enabled again by an operator")
        return await self.store.get_endpoint(endpoint_id)

    async def deliveries(
        self,
        endpoint_id: str,
        *,
        status: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[tuple[DeliveryRecord, list[AttemptRecord]]]:
        return await self.store.list_deliveries(
            endpoint_id, status=status, limit=limit, before=before
        )

    async def resend(self, endpoint_id: str, delivery_id: str) -> DeliveryRecord:
        return await self.store.resend(endpoint_id, delivery_id)
