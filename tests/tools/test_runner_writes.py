"""Writes through the tool runner (issue 10, contract 3): the body, ``Content-Type``, headers
(``X-Audit-Log-Reason``), ``retry_safe`` and notes the catalog prepares reach Discord and the
result; no blind retry; a read-only run refuses writes.

Until the generated catalog lands, no packaged tool has a JSON body, so these tests give the
``discordbot`` provider a one-tool catalog whose ``prepare`` fills the contract-3 fields as the
generated catalog will, and stand in for Discord with a :class:`MockTransport` that keeps
Discord's nonce rule (the sandbox does not serve message writes yet). Everything else is real:
the vault, the bot-token check, the runner, the proxy core.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from integration.gateway_env import gateway_settings
from tokenward.connectors import Connectors
from tokenward.errors import ProviderError, ToolNotAllowed, UpstreamUnavailable
from tokenward.providers.hooks import HookRegistry
from tokenward.providers.loader import load_provider_from_text
from tokenward.proxy.retry import ErrorKind
from tokenward.proxy.transport import (
    MockTransport,
    TransportError,
    UpstreamRequest,
    UpstreamResponse,
)
from tokenward.server.container import Container
from tokenward.tools.catalog import Catalog, PreparedRequest

BOT_TOKEN = "MTMwMDAwMDAwMDAwMDAwOTAx.Gbot.writes-test-token-value"
BOT_ID = "1300000000000000901"
CHANNEL = "1300000000000000010"

HOOKS = HookRegistry()
PROVIDER_YAML = (
    Path(__file__).parents[2] / "src/tokenward/providers/discordbot/provider.yaml"
).read_text()
TOOLS_YAML = """
provider: discordbot
tools:
  - name: discordbot_create_message
    title: Send a message
    description: Sends a message to a channel as the bot (a stand-in for the generated tool).
    endpoint: {method: POST, path: "/channels/{channel_id}/messages"}
    auth: bot
    annotations: {read_only: false, idempotent: false}
    params:
      - name: channel_id
        type: snowflake
        required: true
        location: path
        description: The channel to post in.
      - name: content
        type: string
        location: ignored
        description: The message text, sent in the body.
      - name: nonce
        type: string
        location: ignored
        description: A nonce; the catalog sets one when absent.
      - name: audit_log_reason
        type: string
        location: ignored
        description: Why, for the audit log entry.
  - name: discordbot_create_interaction_response
    title: Answer an interaction
    description: >-
      Answers an interaction through its callback route (a stand-in for the generated tool).
    endpoint: {method: POST, path: "/interactions/{interaction_id}/{interaction_token}/callback"}
    auth: none
    annotations: {read_only: false, idempotent: false}
    params:
      - name: interaction_id
        type: snowflake
        required: true
        location: path
        description: The interaction id.
      - name: interaction_token
        type: string
        required: true
        location: path
        description: The interaction token.
  - name: discordbot_get_current_user
    title: Get the bot's own user
    description: Returns the bot's own user object, to check which bot an account acts as.
    endpoint: {method: GET, path: /users/@me}
    auth: bot
    annotations: {read_only: true, idempotent: true}
"""


@dataclass(frozen=True)
class WritePrepared(PreparedRequest):
    """PreparedRequest with the fields contract 3 adds (the generated catalog's shape)."""

    body: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    retry_safe: bool = False
    notes: tuple[str, ...] = ()


class WriteCatalog(Catalog):
    """Fills the write fields for the message tool as the generated catalog and its hook will:
    a JSON body, a nonce with enforce_nonce when the caller gave none, the audit-log reason as a
    URL-encoded header, and a note for an input Discord ignores."""

    def prepare(
        self, name: str, tool_input: object, *, bot_token_available: bool
    ) -> PreparedRequest:
        base = super().prepare(name, tool_input, bot_token_available=bot_token_available)
        if name != "discordbot_create_message":
            return WritePrepared(**{f: getattr(base, f) for f in base.__dataclass_fields__})
        assert isinstance(tool_input, Mapping)
        body: dict[str, Any] = {"content": tool_input["content"]}
        body["nonce"] = tool_input.get("nonce", "tw-generated-nonce")
        body["enforce_nonce"] = True
        headers = ()
        if "audit_log_reason" in tool_input:
            headers = (("X-Audit-Log-Reason", "spam%20clean%2Dup%20%E2%9C%85"),)
        fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
        return WritePrepared(
            **fields,
            body=json.dumps(body).encode(),
            content_type="application/json",
            headers=headers,
            retry_safe=True,
            notes=("tts has no effect: Discord dropped it",),
        )


class FakeDiscord:
    """Answers the bot-token check and message writes, creating at most one message per nonce
    (Discord's enforce_nonce rule); ``drop_after_create`` loses the answer of that many writes
    after the message was created."""

    def __init__(self) -> None:
        self.requests: list[UpstreamRequest] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.drop_after_create = 0
        self.status: int | None = None

    def __call__(self, request: UpstreamRequest) -> UpstreamResponse:
        self.requests.append(request)
        if request.url.endswith("/users/@me"):
            return UpstreamResponse.from_json(
                200, {"id": BOT_ID, "username": "writer", "bot": True}
            )
        if "/interactions/" in request.url:
            return UpstreamResponse(204, {})
        if self.status is not None:
            return UpstreamResponse.from_json(self.status, {"code": 0, "message": "boom"})
        payload = json.loads(request.body or b"{}")
        nonce = payload.get("nonce")
        message = self.messages.get(nonce) if payload.get("enforce_nonce") else None
        if message is None:
            message = {"id": str(1300000000000001000 + len(self.messages)), **payload}
            self.messages[nonce or message["id"]] = message
        if self.drop_after_create:
            self.drop_after_create -= 1
            raise TransportError(ErrorKind.CONNECTION_RESET)
        return UpstreamResponse.from_json(200, message)


@pytest.fixture
def discord() -> FakeDiscord:
    return FakeDiscord()


@pytest.fixture
async def container(tmp_path: Path, discord: FakeDiscord) -> Iterator[Container]:
    settings = gateway_settings(tmp_path, "https://discord.com")
    c = Container(settings, transport=MockTransport(discord))
    await c.start()
    loaded = load_provider_from_text(PROVIDER_YAML, TOOLS_YAML, HOOKS)
    bot = c.connectors.provider("discordbot")
    others = [p for p in c.connectors.providers() if p.name != "discordbot"]
    c.connectors = Connectors([*others, replace(bot, catalog=WriteCatalog(loaded))])
    c.catalog = c.connectors
    await c.vault.create_connection(
        name="bots", provider="discordbot", client_id=None, client_secret=None, scopes=[]
    )
    await c.bot_accounts.create("bots", "team_1", BOT_TOKEN)
    try:
        yield c
    finally:
        await c.close()


async def send(container: Container, **tool_input: Any) -> Any:
    return await container.runner.execute(
        "discordbot_create_message",
        {"channel_id": CHANNEL, "content": "hello", **tool_input},
        connection_name="bots",
        identifier="team_1",
    )


async def test_a_write_sends_its_body_headers_and_bot_token_and_returns_notes(
    container: Container, discord: FakeDiscord
) -> None:
    result = await send(container, audit_log_reason="spam clean-up ✅")
    request = discord.requests[-1]
    assert request.method == "POST"
    assert request.url.endswith(f"/api/v10/channels/{CHANNEL}/messages")
    assert request.header("Authorization") == f"Bot {BOT_TOKEN}"
    assert request.header("Content-Type") == "application/json"
    assert request.header("X-Audit-Log-Reason") == "spam%20clean%2Dup%20%E2%9C%85"
    assert json.loads(request.body or b"") == {
        "content": "hello",
        "nonce": "tw-generated-nonce",
        "enforce_nonce": True,
    }
    assert result.data["content"] == "hello"
    assert result.notes == ("tts has no effect: Discord dropped it",)


async def test_a_nonce_message_is_created_exactly_once_when_its_answer_is_lost(
    container: Container, discord: FakeDiscord
) -> None:
    discord.drop_after_create = 1  # Discord creates the message, then the connection drops
    before = len(discord.requests)
    result = await send(container, nonce="tw-once")
    assert len(discord.requests) - before == 2  # resent once
    assert list(discord.messages) == ["tw-once"]  # exactly one message
    assert result.data["id"] == discord.messages["tw-once"]["id"]


async def test_a_write_that_is_not_retry_safe_is_never_resent(
    container: Container, discord: FakeDiscord
) -> None:
    class Plain(WriteCatalog):
        def prepare(self, name: str, tool_input: object, **kw: Any) -> PreparedRequest:
            prepared = super().prepare(name, tool_input, **kw)
            assert isinstance(prepared, WritePrepared)
            return replace(prepared, retry_safe=False)

    bot = container.connectors.provider("discordbot")
    container.runner.connectors = Connectors(
        [
            *(p for p in container.connectors.providers() if p.name != "discordbot"),
            replace(bot, catalog=Plain(load_provider_from_text(PROVIDER_YAML, TOOLS_YAML, HOOKS))),
        ]
    )
    discord.drop_after_create = 1
    before = len(discord.requests)
    with pytest.raises(UpstreamUnavailable) as caught:
        await send(container)
    assert len(discord.requests) - before == 1
    assert "may have reached Discord" in caught.value.message
    discord.status = 503
    with pytest.raises(ProviderError) as second:
        await send(container)
    assert len(discord.requests) - before == 2  # one more, not retried
    assert second.value.status == 503


async def test_a_read_only_run_refuses_a_write_and_sends_nothing(
    container: Container, discord: FakeDiscord
) -> None:
    before = len(discord.requests)
    with pytest.raises(ToolNotAllowed) as caught:
        await container.runner.execute(
            "discordbot_create_message",
            {"channel_id": CHANNEL, "content": "hello"},
            connection_name="bots",
            identifier="team_1",
            read_only=True,
        )
    assert caught.value.details["policy"] == "mcp_session.read_only"
    assert len(discord.requests) == before
    me = await container.runner.execute(
        "discordbot_get_current_user",
        {},
        connection_name="bots",
        identifier="team_1",
        read_only=True,
    )
    assert me.data["id"] == BOT_ID


async def test_an_interaction_callback_carries_no_bot_token_and_answers_none(
    container: Container, discord: FakeDiscord
) -> None:
    result = await container.runner.execute(
        "discordbot_create_interaction_response",
        {"interaction_id": "1300000000000000777", "interaction_token": "aW50ZXJhY3Rpb24tdG9rZW4"},
        connection_name="bots",
        identifier="team_1",
    )
    request = discord.requests[-1]
    assert "/interactions/1300000000000000777/" in request.url
    assert request.header("Authorization") is None
    assert result.data is None  # 204
