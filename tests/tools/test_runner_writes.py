"""Writes through the tool runner (issue 10, "Writes, done right"), with the generated catalog
against the stateful sandbox over loopback: the body, headers (``X-Audit-Log-Reason``), the bot's
token and notes reach Discord and the result; a message is created exactly once when its answer is
lost; no other write is ever resent; a read-only run refuses writes; interaction callbacks carry
no bot token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from integration.gateway_env import gateway_settings
from tokenward.errors import ProviderError, ToolNotAllowed, UpstreamUnavailable
from tokenward.sandbox.state import token_label
from tokenward.server.container import Container

GUILD = "1200000000000000001"  # Sandbox Hub: the bot may do almost anything there
GENERAL = "1600000000000000102"
MESSAGES = "/api/v10/channels/{channel_id}/messages"


class Env:
    def __init__(self, container: Container, sandbox_url: str, bot_token: str) -> None:
        self.container = container
        self.sandbox = httpx.Client(base_url=sandbox_url, trust_env=False)
        self.bot_token = bot_token

    async def run(self, tool: str, read_only: bool = False, **tool_input: Any) -> Any:
        return await self.container.runner.execute(
            tool, tool_input, connection_name="bots", identifier="team_1", read_only=read_only
        )

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.sandbox.get("/_sandbox/stats").json()["requests"]
        return body

    def routed(self, method: str, template: str) -> int:
        return int(self.stats()["by_route"].get(f"{method} {template}", 0))

    def fault(self, **rule: Any) -> None:
        self.sandbox.post("/_sandbox/faults", json=rule).raise_for_status()

    def messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.sandbox.get(
            "/_sandbox/messages", params={"channel_id": GENERAL}
        ).json()["messages"]
        return found


@pytest.fixture
async def env(tmp_path: Path, sandbox_url: str) -> AsyncIterator[Env]:
    apps = httpx.get(f"{sandbox_url}/_sandbox/applications").json()
    bot_token = apps[0]["bot_token"]  # the default application's bot: a member of Sandbox Hub
    container = Container(gateway_settings(tmp_path, sandbox_url))
    await container.start()
    try:
        await container.vault.create_connection(
            name="bots", provider="discordbot", client_id=None, client_secret=None, scopes=[]
        )
        await container.bot_accounts.create("bots", "team_1", bot_token)
        env = Env(container, sandbox_url, bot_token)
        try:
            yield env
        finally:
            env.sandbox.close()
    finally:
        await container.close()


async def test_a_write_sends_its_body_headers_and_bot_token_and_returns_notes(env: Env) -> None:
    message = await env.run("discordbot_create_message", channel_id=GENERAL, content="hello")
    assert message.data["content"] == "hello"
    stored = [m for m in env.messages() if m["id"] == message.data["id"]]
    assert len(stored) == 1
    assert stored[0]["nonce"]  # the catalog set one, with enforce_nonce

    role = await env.run(
        "discordbot_create_guild_role",
        guild_id=GUILD,
        name="Helpers",
        audit_log_reason="spam clean-up ✅",
    )
    log = await env.run("discordbot_get_guild_audit_log", guild_id=GUILD)
    entries = [e for e in log.data["audit_log_entries"] if e.get("target_id") == role.data["id"]]
    assert [e["reason"] for e in entries] == ["spam clean-up ✅"]  # decoded as Discord does
    assert env.stats()["by_token"][token_label(env.bot_token)] >= 3  # as the bot, every time

    invite = await env.run(
        "discordbot_resolve_invite", invite_code="Hb7xQp2K", with_expiration=True
    )
    assert any("with_expiration" in note for note in invite.notes)


async def test_a_message_is_created_exactly_once_when_its_answer_is_lost(env: Env) -> None:
    before = env.routed("POST", MESSAGES)
    # Discord creates the message, then the connection drops before the answer.
    env.fault(
        route=f"/api/v10/channels/{GENERAL}/messages",
        method="POST",
        drop_connection=True,
        after_handler=True,
        count=1,
    )
    result = await env.run("discordbot_create_message", channel_id=GENERAL, content="once only")
    assert env.routed("POST", MESSAGES) - before == 2  # sent, lost, resent with the same nonce
    same = [m for m in env.messages() if m["content"] == "once only"]
    assert len(same) == 1
    assert result.data["id"] == same[0]["id"]


async def test_a_write_that_is_not_retry_safe_is_never_resent(env: Env) -> None:
    roles = "/api/v10/guilds/{guild_id}/roles"
    before = env.routed("POST", roles)
    env.fault(
        route=f"/api/v10/guilds/{GUILD}/roles",
        method="POST",
        drop_connection=True,
        after_handler=True,
        count=1,
    )
    with pytest.raises(UpstreamUnavailable) as caught:
        await env.run("discordbot_create_guild_role", guild_id=GUILD, name="Once")
    assert "may have reached Discord" in caught.value.message
    assert env.routed("POST", roles) - before == 1
    listed = await env.run("discordbot_list_guild_roles", guild_id=GUILD)
    assert [r["name"] for r in listed.data].count("Once") == 1  # created, never twice

    env.fault(route=f"/api/v10/guilds/{GUILD}/roles", method="POST", status=503, count=1)
    with pytest.raises(ProviderError) as second:
        await env.run("discordbot_create_guild_role", guild_id=GUILD, name="Twice?")
    assert second.value.status == 503
    assert env.routed("POST", roles) - before == 2  # one more request, not retried


async def test_a_read_only_run_refuses_a_write_and_sends_nothing(env: Env) -> None:
    total = env.stats()["total"]
    with pytest.raises(ToolNotAllowed) as caught:
        await env.run("discordbot_create_message", read_only=True, channel_id=GENERAL, content="x")
    assert caught.value.details["policy"] == "mcp_session.read_only"
    assert env.stats()["total"] == total
    me = await env.run("discordbot_get_current_user", read_only=True)
    assert me.data["bot"] is True


async def test_an_interaction_callback_carries_no_bot_token(env: Env) -> None:
    interaction = env.sandbox.post("/_sandbox/interactions", json={}).json()
    as_bot = env.stats()["by_token"].get(token_label(env.bot_token), 0)
    result = await env.run(
        "discordbot_create_interaction_response",
        interaction_id=interaction["id"],
        interaction_token=interaction["token"],
        type=4,
        data={"content": "pong"},
    )
    assert result.data is None or isinstance(result.data, dict)
    assert env.stats()["by_token"].get(token_label(env.bot_token), 0) == as_bot
    state = env.sandbox.post("/_sandbox/interactions", json={})  # a fresh one still works
    assert state.status_code == 201
