"""``/api/v1/webhooks``: endpoints that receive tokenward's signed events, and their deliveries.

A created endpoint's ``secret`` (``whsec_…``) is in the answer to its creation (and to a secret
rotation) only; tokenward keeps it encrypted and never shows it again.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from tokenward.server.api.auth import scoped
from tokenward.server.api.errors import error_responses
from tokenward.server.container import Container
from tokenward.vault.webhooks import EVENT_TYPES

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

IdPath = Path(min_length=1, max_length=40, description="The webhook endpoint's id.")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2048,
        description="Where to POST events: https (http to loopback only with "
        "TOKENWARD_WEBHOOKS_ALLOW_INSECURE).",
    )
    events: list[str] | None = Field(
        default=None,
        description="Event types to send (default: all). Known: " + ", ".join(EVENT_TYPES),
    )


class Webhook(BaseModel):
    id: str
    url: str
    events: list[str] = Field(description="Event types sent (empty: all).")
    status: str = Field(description="`enabled`, or `disabled` after failing for too long.")
    disabled_reason: str | None
    failing_since: str | None
    created_at: str
    updated_at: str


class WebhookWithSecret(Webhook):
    secret: str = Field(description="The signing secret (`whsec_…`), shown only here.")


class WebhookList(BaseModel):
    webhooks: list[Webhook]
    event_types: dict[str, str] = Field(description="Every event type and when it is sent.")


class Attempt(BaseModel):
    attempt: int
    at: str
    status_code: int | None
    latency_ms: float
    error: str | None


class Delivery(BaseModel):
    id: str
    event_id: str = Field(description="The event's id, sent as `webhook-id`.")
    endpoint_id: str
    event_type: str
    status: str = Field(description="`pending`, `succeeded` or `failed` (given up).")
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: str | None
    created_at: str
    attempt_log: list[Attempt]


class DeliveryList(BaseModel):
    deliveries: list[Delivery]
    next_before: str | None = Field(description="Pass as `before` for the next (older) page.")


class Deleted(BaseModel):
    deleted: bool
    id: str


def _service(request: Request) -> Any:
    container: Container = request.app.state.container
    return container.webhook_service


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    summary="Create a webhook endpoint",
    responses=error_responses(400, 401),
    dependencies=[scoped("webhooks:write")],
)
async def create_webhook(body: WebhookCreate, request: Request) -> WebhookWithSecret:
    """Events are signed per Standard Webhooks with the returned `secret` (shown only here)."""
    created = await _service(request).create(body.url, body.events)
    return WebhookWithSecret(**created.public())


@router.get(
    "",
    response_model=WebhookList,
    summary="List webhook endpoints",
    responses=error_responses(401),
    dependencies=[scoped("webhooks:read")],
)
async def list_webhooks(request: Request) -> WebhookList:
    endpoints = await _service(request).endpoints()
    return WebhookList(
        webhooks=[Webhook(**e.public()) for e in endpoints], event_types=dict(EVENT_TYPES)
    )


@router.get(
    "/{endpoint_id}",
    response_model=Webhook,
    summary="Get a webhook endpoint",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("webhooks:read")],
)
async def get_webhook(request: Request, endpoint_id: str = IdPath) -> Webhook:
    return Webhook(**(await _service(request).get(endpoint_id)).public())


@router.delete(
    "/{endpoint_id}",
    response_model=Deleted,
    summary="Delete a webhook endpoint",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("webhooks:write")],
)
async def delete_webhook(request: Request, endpoint_id: str = IdPath) -> Deleted:
    """Its pending deliveries are dropped with it."""
    await _service(request).delete(endpoint_id)
    return Deleted(deleted=True, id=endpoint_id)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Rotate a webhook endpoint's signing secret",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("webhooks:write")],
)
async def rotate_secret(request: Request, endpoint_id: str = IdPath) -> WebhookWithSecret:
    """Deliveries from now on are signed with the new secret (shown only here)."""
    rotated = await _service(request).rotate_secret(endpoint_id)
    return WebhookWithSecret(**rotated.public())


@router.post(
    "/{endpoint_id}/enable",
    response_model=Webhook,
    summary="Enable a disabled webhook endpoint again",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("webhooks:write")],
)
async def enable_webhook(request: Request, endpoint_id: str = IdPath) -> Webhook:
    return Webhook(**(await _service(request).enable(endpoint_id)).public())


def _delivery(record: Any, attempts: list[Any]) -> Delivery:
    return Delivery(**record.public(), attempt_log=[Attempt(**a.public()) for a in attempts])


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryList,
    summary="A webhook endpoint's deliveries, newest first, with every attempt",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("webhooks:read")],
)
async def list_deliveries(
    request: Request,
    endpoint_id: str = IdPath,
    delivery_status: str | None = Query(
        None, alias="status", description="`pending`, `succeeded` or `failed`."
    ),
    limit: int = Query(50, description="1 to 200."),
    before: str | None = Query(None, max_length=40, description="From `next_before`."),
) -> DeliveryList:
    rows = await _service(request).deliveries(
        endpoint_id, status=delivery_status, limit=limit, before=before
    )
    return DeliveryList(
        deliveries=[_delivery(r, a) for r, a in rows],
        next_before=rows[-1][0].id if len(rows) == limit else None,
    )


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/resend",
    status_code=status.HTTP_201_CREATED,
    response_model=Delivery,
    summary="Send a delivery's event again",
    responses=error_responses(400, 401, 404),
    dependencies=[scoped("webhooks:write")],
)
async def resend_delivery(
    request: Request,
    endpoint_id: str = IdPath,
    delivery_id: str = Path(min_length=1, max_length=40),
) -> Delivery:
    """A new delivery of the same event (same `webhook-id`), due now."""
    record = await _service(request).resend(endpoint_id, delivery_id)
    return _delivery(record, [])
