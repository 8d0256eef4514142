"""A connection's public key (Discord in) through the SDK, against real ``tokenward serve`` and
``tokenward sandbox`` processes."""

from __future__ import annotations

import pytest

import tokenward
from e2e.processes import register_application
from tokenward.sdk import AsyncClient, Client

from .conftest import Stack


async def test_the_public_key_is_set_shown_with_the_discord_urls_and_removed(stack: Stack) -> None:
    app = register_application(stack.sandbox_url)
    async with AsyncClient(stack.gateway_url, stack.client_id, stack.client_secret) as client:
        actions = client.actions
        with pytest.raises(tokenward.ValidationError) as refused:
            await actions.create_connection(
                name="keyed", provider="discordbot", public_key=app["verify_key"][:-2]
            )
        assert "64 hex characters" in refused.value.fields["public_key"]
        connection = await actions.create_connection(
            name="keyed", provider="discordbot", public_key=app["verify_key"]
        )
        base = f"{stack.gateway_url}/discord/{connection.id}"
        assert connection.public_key == app["verify_key"]
        assert connection.interactions_endpoint_url == f"{base}/interactions"
        assert connection.event_webhooks_url == f"{base}/events"
        removed = await actions.update_connection(name="keyed", public_key=None)
        assert (removed.public_key, removed.interactions_endpoint_url) == (None, None)


def test_the_sync_client_sets_the_public_key(stack: Stack) -> None:
    app = register_application(stack.sandbox_url)
    with Client(stack.gateway_url, stack.client_id, stack.client_secret) as client:
        client.actions.create_connection(name="synckeyed", provider="discordbot")
        changed = client.actions.update_connection(name="synckeyed", public_key=app["verify_key"])
        assert changed.event_webhooks_url is not None
        assert changed.event_webhooks_url.endswith(f"/discord/{changed.id}/events")
        assert client.actions.get_connection(name="synckeyed").public_key == app["verify_key"]
