"""A gateway with two linked users (the MCP tests' environment) and SDK clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from mcp_server.env import McpEnv, start_env
from tokenward._serving import BackgroundServer
from tokenward.sdk import AsyncClient, Client


@pytest.fixture(scope="module")
def gateway(
    sandbox_server: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[McpEnv]:
    env = start_env(sandbox_server.url, tmp_path_factory.mktemp("adapters-gateway"))
    try:
        yield env
    finally:
        env.http.close()
        env.server.stop()


@pytest.fixture
async def aclient(gateway: McpEnv) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(gateway.url, gateway.client_id, gateway.client_secret) as client:
        yield client


@pytest.fixture
def client(gateway: McpEnv) -> Iterator[Client]:
    with Client(gateway.url, gateway.client_id, gateway.client_secret) as sync_client:
        yield sync_client
