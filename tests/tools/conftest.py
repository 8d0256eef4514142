"""Fixtures for the tool tests: one gateway + linked accounts per module, a container per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from integration.gateway_env import gateway_settings, start_gateway
from tokenward._serving import BackgroundServer
from tokenward.server.container import Container
from tokenward.vault.db import upgrade_async

from .env import ADA, GRACE, NARROW, NO_BOT, WITH_BOT, ToolEnv, add_connection, link


async def _populate(env: ToolEnv) -> None:
    await upgrade_async(env.settings.effective_database_url)
    async with env.container() as container:
        await add_connection(env, container, WITH_BOT, with_bot=True)
        await add_connection(env, container, NO_BOT)
        await add_connection(env, container, NARROW, scopes="identify")
        await link(container, WITH_BOT, "ada", ADA)
        await link(container, NO_BOT, "ada", ADA)
        await link(container, NARROW, "ada-narrow", ADA)
        # Never authorized: the link was made, the user did not come back.
        await container.oauth.create_link(WITH_BOT, "pending-user")
        # Authorized once, then the grant died (as after a failed refresh).
        expired = await link(container, WITH_BOT, "expired-user", GRACE)
        await container.vault.mark_expired(expired, "Discord refused the refresh token")


@pytest.fixture(scope="module")
def tool_env(
    sandbox_server: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ToolEnv]:
    """A fresh sandbox state, a gateway on loopback, three connections and linked accounts.

    Connections: ``withbot`` (every catalog scope and the application's bot token), ``nobot``
    (every scope, no bot token), ``narrow`` (``identify`` only). Accounts: ``ada`` on withbot and
    nobot, ``ada-narrow`` on narrow, ``pending-user`` (PENDING_AUTH) and ``expired-user``
    (EXPIRED) on withbot.
    """
    sandbox_url = sandbox_server.url
    httpx.post(f"{sandbox_url}/_sandbox/reset").raise_for_status()
    fixtures = httpx.get(f"{sandbox_url}/_sandbox/fixtures").raise_for_status().json()
    settings = gateway_settings(tmp_path_factory.mktemp("gateway"), sandbox_url)
    gateway = start_gateway(settings, sandbox_url)
    env = ToolEnv(settings, gateway, sandbox_url, fixtures)
    try:
        asyncio.run(_populate(env))
        yield env
    finally:
        env.http.close()
        gateway.server.stop()


@pytest.fixture
async def container(tool_env: ToolEnv) -> AsyncIterator[Container]:
    """A container of its own per test, on the module's database (as another process would)."""
    tool_env.clear_faults()
    async with tool_env.container() as c:
        yield c
    tool_env.clear_faults()
