"""Signed webhooks to the application (issue 11, "Webhooks out"), end to end.

A real gateway (uvicorn on loopback, its delivery worker running) on the sandbox, and a real
receiver on loopback. Signatures are checked with the ``standardwebhooks`` package, not ours.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from tokenward._serving import BackgroundServer, free_port
from tokenward.sandbox.browser import walk_consent
from tokenward.server.container import Container

from ..gateway_env import Gateway, gateway_settings, local_container, make_connection, start_gateway
from ..test_oauth_lifecycle import ADA, link_account
from ..webhook_receiver import Receiver, start_receiver
from .conftest import FAST, FAST_ENV, api_token


def verified(secret: str, received: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


async def test_a_dead_grant_is_pushed_signed_with_a_working_link_and_so_is_the_recovery(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    endpoint = await container.webhook_service.create(receiver.url)
    secret = endpoint.secret.get_secret_value()
    assert secret.startswith("whsec_")
    _connection, app = await make_connection(container, gateway.sandbox_url)
    account_id = await link_account(container, gateway)
    created = receiver.wait_for("connected_account.created", id=account_id)
    assert verified(secret, created[0])["data"]["identifier"] == "user_123"
    receiver.wait_for("connected_account.status_updated", new_status="ACTIVE")

    # The user removes the app in Discord; the next call finds out.
    account = await container.vault.get_account(account_id)
    assert account.refresh_token is not None
    httpx.post(
        f"{gateway.sandbox_url}/api/oauth2/token/revoke",
        data={"token": account.refresh_token.get_secret_value()},
        auth=(app["client_id"], app["client_secret"]),
    ).raise_for_status()
    token = await api_token(container, gateway.url)
    call = httpx.post(
        f"{gateway.url}/api/v1/tools/execute",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "tool_name": "discord_get_my_user",
            "connection_name": "discord",
            "identifier": "user_123",
            "tool_input": {},
        },
    )
    assert call.status_code == 401, call.text

    [expired] = receiver.wait_for("connected_account.status_updated", new_status="EXPIRED")
    payload = verified(secret, expired)
    data = payload["data"]
    assert payload["type"] == "connected_account.status_updated"
    assert data["id"] == account_id
    assert data["connection_name"] == "discord"
    assert data["identifier"] == "user_123"
    assert data["old_status"] == "ACTIVE"
    assert "invalid_grant" in (data["reason"] or "")
    # The link works: the user authorizes again, and the recovery is pushed too.
    result = await asyncio.to_thread(walk_consent, data["authorization_link"], user_id=ADA)
    assert result.status_code == 200, result.text
    [recovered] = receiver.wait_for(
        "connected_account.status_updated", new_status="ACTIVE", old_status="EXPIRED"
    )
    assert verified(secret, recovered)["data"]["id"] == account_id
    # No token or secret travels in any event.
    tokens = httpx.get(f"{gateway.sandbox_url}/_sandbox/tokens").json()
    values = tokens["access_tokens"] + tokens["refresh_tokens"]
    for received in receiver.received:
        assert not any(v in received.body.decode() for v in values)


async def test_a_receiver_answering_500_gets_the_event_again_later(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    receiver.status = 500
    endpoint = await container.webhook_service.create(receiver.url, ["connected_account.created"])
    await make_connection(container, gateway.sandbox_url)
    await container.oauth.create_link("discord", "late_reader")
    first = receiver.wait_for("connected_account.created", count=2)  # the first one and a retry
    assert first[0].headers["webhook-id"] == first[1].headers["webhook-id"]
    receiver.status = 204
    deadline = time.monotonic() + 10
    while True:
        [(delivery, attempts)] = await container.webhook_service.deliveries(endpoint.endpoint.id)
        if delivery.status == "succeeded":
            break
        assert time.monotonic() < deadline, delivery
        await asyncio.sleep(0.05)
    codes = [a.status_code for a in attempts]
    assert codes[:2] == [500, 500]
    assert codes[-1] == 204
    assert all(a.latency_ms >= 0 for a in attempts)
    # Re-sending makes a new delivery of the same event.
    again = await container.webhook_service.resend(endpoint.endpoint.id, delivery.id)
    assert again.event_id == delivery.event_id
    receiver.wait_for("connected_account.created", count=len(codes) + 1)


async def test_only_the_event_types_an_endpoint_asked_for_are_sent(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    await container.webhook_service.create(receiver.url, ["connected_account.deleted"])
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "short_lived")
    await container.oauth.delete_account(link.account.id)
    receiver.wait_for("connected_account.deleted", id=link.account.id)
    assert {r.payload["type"] for r in receiver.received} == {"connected_account.deleted"}


async def test_two_gateways_on_one_database_deliver_each_event_once(
    tmp_path: Path, sandbox_url: str, receiver: Receiver
) -> None:
    settings = gateway_settings(tmp_path, sandbox_url, **FAST)
    first = start_gateway(settings, sandbox_url)
    second = start_gateway(settings.model_copy(update={"port": free_port()}), sandbox_url)
    try:
        async with local_container(settings) as c:
            await c.webhook_service.create(receiver.url, ["connected_account.created"])
            await make_connection(c, sandbox_url)
            for n in range(40):
                await c.oauth.create_link("discord", f"user_{n}")
        events = receiver.wait_for("connected_account.created", count=40)
        await asyncio.sleep(0.5)  # room for any duplicate to arrive
        ids = [r.headers["webhook-id"] for r in receiver.of_type("connected_account.created")]
        assert len(ids) == 40 == len(set(ids)) == len(events)
    finally:
        first.server.stop()
        second.server.stop()


async def test_an_endpoint_failing_for_too_long_is_disabled_with_an_event_of_its_own(
    tmp_path: Path, sandbox_url: str, receiver: Receiver
) -> None:
    failing = start_receiver(status=500)
    settings = gateway_settings(tmp_path, sandbox_url, **FAST, webhooks_disable_after_seconds=0.5)
    gw = start_gateway(settings, sandbox_url)
    try:
        async with local_container(settings) as c:
            broken = await c.webhook_service.create(failing.url, ["connected_account.created"])
            await c.webhook_service.create(receiver.url, ["webhook_endpoint.status_updated"])
            await make_connection(c, sandbox_url)
            await c.oauth.create_link("discord", "someone")
            [event] = receiver.wait_for(
                "webhook_endpoint.status_updated", id=broken.endpoint.id, new_status="disabled"
            )
            assert "failed for more than" in event.payload["data"]["reason"]
            endpoint = await c.webhook_service.get(broken.endpoint.id)
            assert endpoint.status == "disabled"
            count = len(failing.received)
            await c.oauth.create_link("discord", "someone_else")
            await asyncio.sleep(0.5)
            assert len(failing.received) == count  # nothing more goes to a disabled endpoint
            enabled = await c.webhook_service.enable(broken.endpoint.id)
            assert enabled.status == "enabled"
    finally:
        gw.server.stop()
        assert failing.server is not None
        failing.server.stop()


async def test_kill_9_between_the_change_and_its_delivery_loses_no_event(
    tmp_path: Path, sandbox_url: str
) -> None:
    from e2e.processes import ServiceProcess, gateway_environment, new_encryption_keys

    port = free_port()
    hook_port = free_port()
    env = gateway_environment(
        data_dir=tmp_path / "data",
        port=port,
        sandbox_url=sandbox_url,
        encryption_keys=new_encryption_keys(),
        extra=FAST_ENV,
    )
    settings = gateway_settings(
        tmp_path,
        sandbox_url,
        data_dir=tmp_path / "data",
        encryption_keys=env["TOKENWARD_ENCRYPTION_KEYS"],
        public_url=f"http://127.0.0.1:{port}",
        **FAST,
    )

    def serve() -> ServiceProcess:
        return ServiceProcess(
            "serve", ["serve"], env, health_url=f"http://127.0.0.1:{port}/healthz", log_dir=tmp_path
        ).start()

    first = serve()
    try:
        async with local_container(settings) as c:
            # Nothing listens at the receiver's address yet: deliveries fail and wait.
            await c.webhook_service.create(
                f"http://127.0.0.1:{hook_port}/hook", ["connected_account.created"]
            )
            await make_connection(c, sandbox_url)
            link = await c.oauth.create_link("discord", "survivor")
        await asyncio.sleep(0.3)  # the gateway has claimed and tried it at least once
    finally:
        first.kill()

    receiver = Receiver()
    receiver.server = BackgroundServer(receiver.app(), port=hook_port).start()
    second = serve()
    try:
        [event] = receiver.wait_for("connected_account.created", id=link.account.id, timeout=15)
        assert event.headers["webhook-id"].startswith("msg_")
    finally:
        second.stop()
        receiver.server.stop()
