"""Discord in: interactions and webhook events from Discord, end to end.

The sandbox plays Discord: it signs each interaction and event with the application's Ed25519
key, sends it to the URLs set in its application (the connection's `interactions_endpoint_url`
and `event_webhooks_url`, on a real gateway over loopback), enforces the 3-second deadline and
records the answer. The application is a real webhook receiver on loopback; the signatures it
gets are checked with the `standardwebhooks` package. Follow-ups go through tokenward's
`discordbot_*` tools, as an application would send them.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import text
from standardwebhooks import Webhook

from tokenward.sandbox.browser import walk_consent
from tokenward.server.container import Container
from tokenward.vault.models import AccountStatus

from ..gateway_env import Gateway, make_connection
from ..test_oauth_lifecycle import ADA, GRACE
from ..webhook_receiver import Receiver
from .conftest import api_token

PONG_FROM_APP = {"type": 4, "data": {"content": "pong from the application"}}


@dataclass
class DiscordApp:
    """A Discord application (at the sandbox) wired to tokenward as its developer would."""

    app: dict[str, Any]
    connection_id: str
    urls: dict[str, str]
    api_token: str
    secret: str  # the webhook endpoint's whsec_ secret

    @property
    def client_id(self) -> str:
        return str(self.app["client_id"])


async def wire_up(
    container: Container, gateway: Gateway, receiver: Receiver, events: list[str] | None = None
) -> DiscordApp:
    """The developer's steps: a connection for the app with its public key (through the API),
    the two URLs set in the app (Discord's way: Discord checks them with a PING and a forged
    PING first), a bot connection for follow-ups, and a webhook endpoint for the events."""
    connection, app = await make_connection(container, gateway.sandbox_url)
    token = await api_token(container, gateway.url)
    auth = {"Authorization": f"Bearer {token}"}
    patched = httpx.patch(
        f"{gateway.url}/api/v1/connections/discord",
        headers=auth,
        json={"public_key": app["verify_key"]},
    )
    assert patched.status_code == 200, patched.text
    view = patched.json()["connection"]
    urls = {
        "interactions_endpoint_url": view["interactions_endpoint_url"],
        "event_webhooks_url": view["event_webhooks_url"],
    }
    assert urls["interactions_endpoint_url"] == (
        f"{gateway.url}/discord/{connection.id}/interactions"
    )
    portal = httpx.patch(
        f"{gateway.sandbox_url}/api/v10/applications/@me",
        headers={"Authorization": f"Bot {app['bot_token']}"},
        json={**urls, "event_webhooks_status": 2},
    )
    assert portal.status_code == 200, portal.text  # Discord verified both URLs
    bots = httpx.post(
        f"{gateway.url}/api/v1/connections",
        headers=auth,
        json={"name": "bots", "provider": "discordbot"},
    )
    assert bots.status_code == 201, bots.text
    bot = httpx.post(
        f"{gateway.url}/api/v1/connected-accounts",
        headers=auth,
        json={
            "connection_name": "bots",
            "identifier": "bot",
            "credentials": {"bot_token": app["bot_token"]},
        },
    )
    assert bot.status_code == 201, bot.text
    endpoint = await container.webhook_service.create(receiver.url, events)
    return DiscordApp(app, connection.id, urls, token, endpoint.secret.get_secret_value())


def invoke(gateway: Gateway, app: DiscordApp, **fields: Any) -> dict[str, Any]:
    body = {"application_id": app.client_id, "command": "ping", **fields}
    answer = httpx.post(
        f"{gateway.sandbox_url}/_sandbox/interactions/invoke", json=body, timeout=10
    )
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


def interaction_state(gateway: Gateway, interaction_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway.sandbox_url}/_sandbox/interactions/{interaction_id}")
    state: dict[str, Any] = answer.raise_for_status().json()
    return state


def run_tool(gateway: Gateway, app: DiscordApp, tool: str, **tool_input: Any) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/api/v1/tools/execute",
        headers={"Authorization": f"Bearer {app.api_token}"},
        json={
            "tool_name": tool,
            "connection_name": "bots",
            "identifier": "bot",
            "tool_input": tool_input,
        },
        timeout=10,
    )


def verified(app: DiscordApp, received: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(app.secret).verify(received.body, received.headers)
    return payload


async def settled(container: Container, endpoint_count: int = 1) -> list[Any]:
    """The deliveries of every endpoint once none is pending (at most 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        found = []
        for endpoint in await container.webhook_service.endpoints():
            found += await container.webhook_service.deliveries(endpoint.id)
        if found and all(d.status != "pending" for d, _ in found):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


# -- interactions --------------------------------------------------------------------------------


async def test_a_slash_command_reaches_the_application_and_its_reply_is_the_response(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    app = await wire_up(container, gateway, receiver, ["discord.interaction"])
    receiver.reply = PONG_FROM_APP

    record = invoke(gateway, app, options=[{"name": "loud", "value": True}], user_id=GRACE)

    assert record["status"] == "answered", record
    assert record["response"] == PONG_FROM_APP
    assert record["elapsed_ms"] < 3000
    # The application got the interaction, signed, with everything it needs to follow up.
    [received] = receiver.of_type("discord.interaction")
    payload = verified(app, received)
    data = payload["data"]
    assert payload["type"] == "discord.interaction"
    assert (data["connection_id"], data["connection_name"]) == (app.connection_id, "discord")
    interaction = data["interaction"]
    assert interaction["id"] == record["interaction_id"]
    assert interaction["token"] == record["token"]
    assert interaction["data"]["name"] == "ping"
    assert interaction["data"]["options"] == [{"name": "loud", "type": 5, "value": True}]
    assert interaction["member"]["user"]["id"] == GRACE
    # Discord shows the application's reply.
    state = interaction_state(gateway, record["interaction_id"])
    assert state["response_type"] == 4
    assert state["original_message"]["content"] == "pong from the application"
    # The synchronous delivery is logged like any other: one attempt, 200, settled.
    [(delivery, attempts)] = await settled(container)
    assert (delivery.event_type, delivery.status) == ("discord.interaction", "succeeded")
    assert [a.status_code for a in attempts] == [200]
    assert delivery.event_id == received.headers["webhook-id"]
    # The interaction's token is not stored in clear (the event's data is sealed).
    async with container.vault.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT payload, data_enc FROM outbox_events"))).all()
    stored = json.dumps([[str(v) for v in row] for row in rows])
    assert record["token"] not in stored
    assert "pong" not in stored
    assert record["interaction_id"] not in stored
    assert inbound(gateway)[("interaction", "relayed")] == 1


async def test_a_slow_application_gets_a_deferred_response_in_time_and_its_follow_ups_land(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    app = await wire_up(container, gateway, receiver, ["discord.interaction"])
    receiver.reply = PONG_FROM_APP  # too late to count
    receiver.delay = 2.6

    record = invoke(gateway, app)

    assert record["status"] == "deferred", record
    assert record["response"] == {"type": 5}
    assert 1900 <= record["elapsed_ms"] < 3000  # waited for the application, not past Discord's
    state = interaction_state(gateway, record["interaction_id"])
    assert state["original_pending"] is True  # "thinking…"
    # The application follows up through tokenward with the token it was sent.
    [received] = receiver.wait_for("discord.interaction")
    interaction = verified(app, received)["data"]["interaction"]
    edited = run_tool(
        gateway,
        app,
        "discordbot_edit_original_interaction_response",
        application_id=interaction["application_id"],
        interaction_token=interaction["token"],
        content="done, after some thought",
    )
    assert edited.status_code == 200, edited.text
    followed = run_tool(
        gateway,
        app,
        "discordbot_execute_webhook",
        webhook_id=interaction["application_id"],
        webhook_token=interaction["token"],
        wait=True,
        content="and one more thing",
    )
    assert followed.status_code == 200, followed.text
    state = interaction_state(gateway, record["interaction_id"])
    assert state["original_pending"] is False
    assert state["original_message"]["content"] == "done, after some thought"
    assert [m["content"] for m in state["followups"]] == ["and one more thing"]
    assert interaction["token"] not in edited.text + followed.text
    # The late 200 settled the delivery: logged with its latency, and not sent again.
    [(delivery, attempts)] = await settled(container)
    assert delivery.status == "succeeded"
    assert [a.status_code for a in attempts] == [200]
    assert attempts[0].latency_ms >= 2500
    await asyncio.sleep(0.5)
    assert len(receiver.of_type("discord.interaction")) == 1


async def test_without_an_application_answer_discord_gets_a_deferred_response_and_the_event_later(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    app = await wire_up(container, gateway, receiver, ["discord.interaction"])
    receiver.status = 500  # the application is down for now

    record = invoke(gateway, app)

    assert record["status"] == "deferred", record
    assert record["response"] == {"type": 5}
    assert record["elapsed_ms"] < 3000
    # At least once: the worker sends the same event again until the application takes it.
    first, second = receiver.wait_for("discord.interaction", count=2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    receiver.status = 204
    [(delivery, attempts)] = await settled(container)
    assert delivery.status == "succeeded"
    assert [a.status_code for a in attempts][:2] == [500, 500]
    assert attempts[-1].status_code == 204
    late = verified(app, receiver.of_type("discord.interaction")[-1])
    assert late["data"]["interaction"]["id"] == record["interaction_id"]


async def test_an_application_without_a_webhook_for_interactions_still_answers_in_time(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    app = await wire_up(container, gateway, receiver, ["connected_account.created"])
    record = invoke(gateway, app)
    assert record["status"] == "deferred", record
    assert record["elapsed_ms"] < 1000  # nobody to wait for
    assert receiver.of_type("discord.interaction") == []


async def test_bad_and_stale_signatures_are_refused_with_401(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    app = await wire_up(container, gateway, receiver, ["discord.interaction"])
    receiver.reply = PONG_FROM_APP
    for signature in ("bad", "stale"):
        record = invoke(gateway, app, signature=signature)
        assert record["status"] == "refused", record
        assert (record["http_status"], record["refused_bad_signature"]) == (401, True)
        assert record["endpoint_removed"] is False
    assert receiver.of_type("discord.interaction") == []  # nothing forged reached the app
    # Discord's routine probes: a forged PING before the delivery is refused, the real one works.
    httpx.patch(
        f"{gateway.sandbox_url}/_sandbox/applications/{app.client_id}",
        json={"bad_signature_every": 1},
    ).raise_for_status()
    record = invoke(gateway, app)
    assert record["status"] == "answered", record
    assert record["probe"]["http_status"] == 401
    assert record["refused_bad_signature"] is True
    # The events URL too.
    for signature in ("bad", "stale"):
        sent = httpx.post(
            f"{gateway.sandbox_url}/_sandbox/applications/{app.client_id}/events",
            json={"type": "ENTITLEMENT_CREATE", "data": {"id": "1"}, "signature": signature},
        ).json()
        assert (sent["status"], sent["http_status"]) == ("refused", 401), sent
    check = httpx.post(
        f"{gateway.sandbox_url}/_sandbox/applications/{app.client_id}/ping-interactions-endpoint"
    ).json()
    assert check["ok"] is True, check


def inbound(gateway: Gateway) -> dict[tuple[str, str], float]:
    """``tokenward_discord_inbound`` from the gateway's /metrics: (kind, outcome) -> count."""
    found: dict[tuple[str, str], float] = {}
    for line in httpx.get(f"{gateway.url}/metrics").raise_for_status().text.splitlines():
        if line.startswith("tokenward_discord_inbound_total{"):
            labels, value = line.removeprefix("tokenward_discord_inbound_total{").split("} ")
            pairs = dict(part.split("=") for part in labels.split(","))
            found[(pairs["kind"].strip('"'), pairs["outcome"].strip('"'))] = float(value)
    return found


# -- webhook events ------------------------------------------------------------------------------


async def link(container: Container, identifier: str, user: str) -> str:
    made = await container.oauth.create_link("discord", identifier)
    result = await asyncio.to_thread(walk_consent, made.link, user_id=user)
    assert result.status_code == 200, result.text
    return made.account.id


async def test_deauthorizing_in_discord_disconnects_the_users_accounts_at_once_with_the_event(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    app = await wire_up(container, gateway, receiver, ["connected_account.status_updated"])
    ada_work = await link(container, "ada-work", ADA)
    ada_home = await link(container, "ada-home", ADA)
    grace = await link(container, "grace", GRACE)
    receiver.wait_for("connected_account.status_updated", count=3, new_status="ACTIVE")

    started = time.monotonic()
    answer = httpx.post(
        f"{gateway.sandbox_url}/_sandbox/users/{ADA}/deauthorize",
        json={"client_id": app.client_id},
    )
    answer.raise_for_status()
    outcome = answer.json()
    assert outcome["event"]["status"] == "delivered", outcome
    assert outcome["event"]["http_status"] == 204
    while True:
        statuses = [
            (await container.vault.get_account(a)).status for a in (ada_work, ada_home, grace)
        ]
        if statuses[:2] == [AccountStatus.DISCONNECTED] * 2:
            break
        assert time.monotonic() - started < 1.0, statuses
        await asyncio.sleep(0.02)
    assert time.monotonic() - started < 1.0
    assert statuses[2] == AccountStatus.ACTIVE  # another user's account is untouched
    for account_id in (ada_work, ada_home):
        account = await container.vault.get_account(account_id)
        assert account.status_reason == "deauthorized in Discord"
        assert account.access_token is None
        assert account.refresh_token is None
        [event] = receiver.wait_for(
            "connected_account.status_updated", id=account_id, new_status="DISCONNECTED"
        )
        data = verified(app, event)["data"]
        assert (data["old_status"], data["reason"]) == ("ACTIVE", "deauthorized in Discord")
        assert data["connection_name"] == "discord"
        assert data["authorization_link"].startswith(f"{gateway.url}/connect/")
    # Discord sends the event again (it retries): nothing changes, no second status event.
    again = httpx.post(
        f"{gateway.sandbox_url}/_sandbox/applications/{app.client_id}/events",
        json={"type": "APPLICATION_DEAUTHORIZED", "data": {"user": {"id": ADA}}},
    ).json()
    assert again["http_status"] == 204, again
    await asyncio.sleep(0.3)
    assert len(receiver.of_type("connected_account.status_updated")) == 5
    # The link in the event brings the user back.
    link_url = verified(
        app, receiver.wait_for("connected_account.status_updated", id=ada_work)[-1]
    )["data"]["authorization_link"]
    back = await asyncio.to_thread(walk_consent, link_url, user_id=ADA)
    assert back.status_code == 200, back.text
    assert (await container.vault.get_account(ada_work)).status == AccountStatus.ACTIVE


async def test_a_late_deauthorization_leaves_an_account_linked_again_since_alone(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    """Discord retries event deliveries: a deauthorization raised before the user linked again
    must not end the new grant; one raised after the link still does."""
    app = await wire_up(container, gateway, receiver, ["connected_account.status_updated"])
    ada = await link(container, "ada", ADA)
    events_url = f"{gateway.sandbox_url}/_sandbox/applications/{app.client_id}/events"

    def deauthorize(raised_seconds_ago: float) -> None:
        outcome = httpx.post(
            events_url,
            json={
                "type": "APPLICATION_DEAUTHORIZED",
                "user_id": ADA,
                "raised_seconds_ago": raised_seconds_ago,
            },
        ).json()
        assert outcome["http_status"] == 204, outcome

    deauthorize(60)  # raised a minute ago, before the link: a retry of an old event
    account = await container.vault.get_account(ada)
    assert account.status == AccountStatus.ACTIVE
    assert account.access_token is not None
    deauthorize(0)  # raised now, after the link
    account = await container.vault.get_account(ada)
    assert account.status == AccountStatus.DISCONNECTED
    assert account.status_reason == "deauthorized in Discord"
    assert inbound(gateway)[("event", "deauthorized")] == 2
    # The sandbox refuses a date it cannot give, naming the field.
    refused = httpx.post(
        events_url,
        json={"type": "APPLICATION_DEAUTHORIZED", "user_id": ADA, "raised_seconds_ago": -1},
    )
    assert refused.status_code == 400
    assert "raised_seconds_ago" in refused.json()["error"]["details"]["fields"]


async def test_other_webhook_events_reach_the_application_and_pings_get_204(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    app = await wire_up(container, gateway, receiver, ["discord.event"])
    ping = httpx.post(
        f"{gateway.sandbox_url}/_sandbox/applications/{app.client_id}/ping-event-webhooks"
    ).json()
    assert (ping["http_status"], ping["acknowledged"]) == (204, True), ping
    entitlement = {"id": "1900000000000000001", "sku_id": "1", "user_id": GRACE, "type": 8}
    sent = httpx.post(
        f"{gateway.sandbox_url}/_sandbox/applications/{app.client_id}/events",
        json={"type": "ENTITLEMENT_CREATE", "data": entitlement},
    ).json()
    assert (sent["status"], sent["http_status"]) == ("delivered", 204), sent
    assert sent["elapsed_ms"] < 3000
    [received] = receiver.wait_for("discord.event")
    data = verified(app, received)["data"]
    assert (data["connection_id"], data["connection_name"]) == (app.connection_id, "discord")
    assert data["event"]["type"] == "ENTITLEMENT_CREATE"
    assert data["event"]["data"] == entitlement
    assert len(receiver.received) == 1  # the PING is not forwarded
    counted = inbound(gateway)
    # Two PINGs: Discord checks the URL when it is saved (wire_up), then the one sent here.
    assert (counted[("event", "ping")], counted[("event", "queued")]) == (2, 1)


# -- requests signed here (the interaction kinds the sandbox does not send) ---------------------


def new_key() -> tuple[Ed25519PrivateKey, str]:
    private = Ed25519PrivateKey.generate()
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def post_signed(
    url: str, private: Ed25519PrivateKey, body: Any, stamp: int | None = None
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    when = str(int(time.time()) if stamp is None else stamp)
    headers = {
        "X-Signature-Ed25519": private.sign(when.encode() + raw).hex(),
        "X-Signature-Timestamp": when,
        "Content-Type": "application/json",
    }
    return httpx.post(url, content=raw, headers=headers, timeout=10)


async def test_each_kind_of_interaction_gets_a_fitting_answer(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    private, public = new_key()
    connection = await container.vault.create_connection(
        name="signed-here", provider="discordbot", client_id=None, client_secret=None,
        scopes=[], public_key=public,
    )  # fmt: skip
    url = f"{gateway.url}/discord/{connection.id}/interactions"
    base = {"id": "1", "application_id": "2", "token": "t0k", "version": 1}

    assert post_signed(url, private, {**base, "type": 1}).json() == {"type": 1}
    # No endpoint: deferred answers that fit each kind.
    assert post_signed(url, private, {**base, "type": 3}).json() == {"type": 6}
    assert post_signed(url, private, {**base, "type": 4}).json() == {
        "type": 8,
        "data": {"choices": []},
    }
    assert post_signed(url, private, {**base, "type": 5}).json() == {"type": 5}
    # An endpoint answering 200 without an interaction response: deferred as well.
    await container.webhook_service.create(receiver.url, ["discord.interaction"])
    receiver.reply = {"ok": True}
    assert post_signed(url, private, {**base, "type": 2}).json() == {"type": 5}
    receiver.reply = {"type": 8, "data": {"choices": [{"name": "Ada", "value": "ada"}]}}
    answer = post_signed(url, private, {**base, "type": 4})
    assert answer.json() == receiver.reply
    # Signed, but not JSON: 400.
    broken = post_signed(url, private, b"{not json")
    assert broken.status_code == 400, broken.text
    assert broken.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_every_refusal_is_the_same_401(
    container: Container, gateway: Gateway, receiver: Receiver
) -> None:
    private, public = new_key()
    keyed = await container.vault.create_connection(
        name="keyed", provider="discordbot", client_id=None, client_secret=None, scopes=[],
        public_key=public,
    )  # fmt: skip
    keyless = await container.vault.create_connection(
        name="keyless", provider="discordbot", client_id=None, client_secret=None, scopes=[]
    )
    ping = {"id": "1", "application_id": "2", "type": 1, "version": 1}
    other, _ = new_key()
    cases = {
        "a stale timestamp": post_signed(
            f"{gateway.url}/discord/{keyed.id}/interactions", private, ping, int(time.time()) - 400
        ),
        "a timestamp from the future": post_signed(
            f"{gateway.url}/discord/{keyed.id}/events", private, ping, int(time.time()) + 400
        ),
        "another key": post_signed(f"{gateway.url}/discord/{keyed.id}/interactions", other, ping),
        "no key on the connection": post_signed(
            f"{gateway.url}/discord/{keyless.id}/interactions", private, ping
        ),
        "no such connection": post_signed(
            f"{gateway.url}/discord/01JUNKJUNKJUNKJUNKJUNKJUNK/events", private, ping
        ),
        "no headers": httpx.post(f"{gateway.url}/discord/{keyed.id}/interactions", json=ping),
    }
    for case, response in cases.items():
        assert response.status_code == 401, (case, response.text)
        assert response.json()["error"]["code"] == "DISCORD_SIGNATURE_INVALID", case
    # An unknown connection and one without a key cannot be told from a wrong signature.
    messages = {
        cases[c].json()["error"]["message"]
        for c in ("another key", "no key on the connection", "no such connection")
    }
    assert messages == {"the signature does not match"}
    too_big = post_signed(
        f"{gateway.url}/discord/{keyed.id}/events", private, b"x" * (1024 * 1024 + 1)
    )
    assert too_big.status_code == 413
    # The key removed: refused from then on.
    fine = post_signed(f"{gateway.url}/discord/{keyed.id}/events", private, {"type": 0})
    assert fine.status_code == 204
    await container.vault.update_connection(keyed.id, public_key=None)
    gone = post_signed(f"{gateway.url}/discord/{keyed.id}/events", private, {"type": 0})
    assert gone.status_code == 401
