"""``client.webhooks`` and ``tokenward.verify_webhook`` against a real ``tokenward serve``."""

from __future__ import annotations

import pytest

import tokenward
from integration.webhook_receiver import start_receiver

from .conftest import Stack


def test_webhooks_from_the_sdk_and_verifying_what_arrives(stack: Stack) -> None:
    receiver = start_receiver()
    client = tokenward.Client(stack.gateway_url, stack.client_id, stack.client_secret)
    try:
        hook = client.webhooks.create(url=receiver.url, events=["connected_account.created"])
        assert hook.secret is not None
        assert hook.secret.startswith("whsec_")
        assert hook.secret not in repr(hook)
        assert [h.id for h in client.webhooks.list()] == [hook.id]
        assert client.webhooks.list()[0].secret is None

        link = client.actions.get_authorization_link(
            connection_name="discord", identifier="webhook_sdk_user"
        )
        [received] = receiver.wait_for("connected_account.created", identifier="webhook_sdk_user")
        event = tokenward.verify_webhook(received.body, received.headers, hook.secret)
        assert event["data"]["id"] == link.connected_account.id
        with pytest.raises(tokenward.WebhookSignatureError):
            tokenward.verify_webhook(received.body + b" ", received.headers, hook.secret)
        rotated = client.webhooks.rotate_secret(hook.id)
        assert rotated.secret != hook.secret
        with pytest.raises(tokenward.WebhookSignatureError):
            tokenward.verify_webhook(received.body, received.headers, rotated.secret or "")

        [delivery] = client.webhooks.deliveries(hook.id)
        assert delivery.status == "succeeded"
        assert delivery.attempt_log[0]["status_code"] == 204
        with pytest.raises(tokenward.ValidationError) as info:
            client.webhooks.create(url="http://10.0.0.1/x")
        assert "url" in info.value.details["fields"]
        client.webhooks.delete(hook.id)
        with pytest.raises(tokenward.NotFoundError):
            client.webhooks.get(hook.id)
    finally:
        client.close()
        assert receiver.server is not None
        receiver.server.stop()
