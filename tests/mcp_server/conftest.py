"""One gateway per test module with two linked users (see :mod:`.env`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tokenward._serving import BackgroundServer

from .env import McpEnv, start_env


@pytest.fixture(scope="module")
def mcp_env(
    sandbox_server: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[McpEnv]:
    """A fresh sandbox state; a gateway; ``ada`` linked to Ada and ``grace`` to Grace."""
    env = start_env(sandbox_server.url, tmp_path_factory.mktemp("mcp-gateway"))
    try:
        yield env
    finally:
        env.http.close()
        env.server.stop()
