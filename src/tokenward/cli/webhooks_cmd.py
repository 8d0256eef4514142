"""``tokenward webhooks``: endpoints that receive tokenward's signed events, and their deliveries.

The same service as ``/api/v1/webhooks`` (one code path). The signing secret is printed once,
at creation and at rotation.
"""

from __future__ import annotations

from typing import Any

import typer

from tokenward.cli.app import app
from tokenward.cli.output import JSON_OPTION, local_container, print_json, print_table, run_command

webhooks_app = typer.Typer(
    help="Webhook endpoints: where tokenward sends signed events (account status changes, "
    "Discord interactions).",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")


def _print_secret(doc: dict[str, Any], headline: str) -> None:
    typer.echo(headline)
    typer.echo(f"  id:     {doc['id']}")
    typer.echo(f"  url:    {doc['url']}")
    typer.echo(f"  events: {' '.join(doc['events']) or 'all'}")
    typer.echo(f"  secret: {doc['secret']}")
    typer.echo(
        "Store the secret now: it is not shown again. Verify each delivery's webhook-signature "
        "with it (Standard Webhooks).",
        err=True,
    )


@webhooks_app.command("create")
@run_command
async def webhooks_create(
    url: str = typer.Option(..., "--url", help="Where to POST events (https)."),
    events: str | None = typer.Option(
        None, "--events", help="Comma-separated event types (default: all)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an endpoint and print its signing secret (shown only once)."""
    async with local_container() as container:
        created = await container.webhook_service.create(url, events)
    doc = created.public()
    if as_json:
        print_json(doc)
        return
    _print_secret(doc, "Created webhook endpoint.")


@webhooks_app.command("list")
@run_command
async def webhooks_list(as_json: bool = JSON_OPTION) -> None:
    """List endpoints (never their secrets)."""
    async with local_container() as container:
        docs = [e.public() for e in await container.webhook_service.endpoints()]
    if as_json:
        print_json({"webhooks": docs})
        return
    print_table(
        "Webhook endpoints",
        ["id", "url", "events", "status", "failing since"],
        [
            [
                d["id"],
                d["url"],
                " ".join(d["events"]) or "all",
                d["status"] + (f" ({d['disabled_reason']})" if d["disabled_reason"] else ""),
                d["failing_since"] or "-",
            ]
            for d in docs
        ],
    )


@webhooks_app.command("delete")
@run_command
async def webhooks_delete(
    endpoint_id: str = typer.Argument(..., help="Endpoint id."), as_json: bool = JSON_OPTION
) -> None:
    """Delete an endpoint (its pending deliveries go with it)."""
    async with local_container() as container:
        await container.webhook_service.delete(endpoint_id)
    if as_json:
        print_json({"deleted": True, "id": endpoint_id})
    else:
        typer.echo(f"Deleted webhook endpoint {endpoint_id}.")


@webhooks_app.command("rotate-secret")
@run_command
async def webhooks_rotate_secret(
    endpoint_id: str = typer.Argument(..., help="Endpoint id."), as_json: bool = JSON_OPTION
) -> None:
    """Give an endpoint a new signing secret (printed once); deliveries use it from now on."""
    async with local_container() as container:
        rotated = await container.webhook_service.rotate_secret(endpoint_id)
    doc = rotated.public()
    if as_json:
        print_json(doc)
        return
    _print_secret(doc, "Rotated the signing secret.")


@webhooks_app.command("enable")
@run_command
async def webhooks_enable(
    endpoint_id: str = typer.Argument(..., help="Endpoint id."), as_json: bool = JSON_OPTION
) -> None:
    """Enable an endpoint that was disabled after failing for too long."""
    async with local_container() as container:
        endpoint = await container.webhook_service.enable(endpoint_id)
    if as_json:
        print_json(endpoint.public())
    else:
        typer.echo(f"Webhook endpoint {endpoint_id} is {endpoint.status}.")


@webhooks_app.command("deliveries")
@run_command
async def webhooks_deliveries(
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    status: str | None = typer.Option(None, "--status", help="pending, succeeded or failed."),
    limit: int = typer.Option(50, "--limit", help="How many, newest first (1-200)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """An endpoint's deliveries, newest first, with every attempt."""
    async with local_container() as container:
        rows = await container.webhook_service.deliveries(endpoint_id, status=status, limit=limit)
    docs = [{**d.public(), "attempt_log": [a.public() for a in attempts]} for d, attempts in rows]
    if as_json:
        print_json({"deliveries": docs})
        return
    print_table(
        "Deliveries",
        ["id", "event", "status", "attempts", "last answer", "created"],
        [
            [
                d["id"],
                f"{d['event_type']} ({d['event_id']})",
                d["status"],
                str(d["attempts"]),
                str(d["last_status_code"] or d["last_error"] or "-"),
                d["created_at"],
            ]
            for d in docs
        ],
    )


@webhooks_app.command("resend")
@run_command
async def webhooks_resend(
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    delivery_id: str = typer.Argument(..., help="Delivery id (from `webhooks deliveries`)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send a delivery's event again (a new delivery, same webhook-id)."""
    async with local_container() as container:
        delivery = await container.webhook_service.resend(endpoint_id, delivery_id)
    if as_json:
        print_json(delivery.public())
    else:
        typer.echo(f"Queued delivery {delivery.id} of event {delivery.event_id}.")
