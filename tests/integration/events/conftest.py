"""What the event tests (webhooks out, Discord in) share: a gateway whose delivery worker polls
fast and may deliver to loopback, a webhook receiver, and an API token (``api_token``, ``FAST``:
``FAST_ENV``: import them from here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tokenward.server.container import Container

from ..gateway_env import Gateway, gateway_settings, start_gateway
from ..webhook_receiver import Receiver, start_receiver

FAST = {
    "webhooks_allow_insecure": True,
    "webhooks_poll_interval_seconds": 0.05,
    "webhooks_first_retry_seconds": 0.2,
}
# The same settings for a `serve` process.
FAST_ENV = {
    f"TOKENWARD_{name.upper()}": "true" if value is True else str(value)
    for name, value in FAST.items()
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    try:
        yield r
    finally:
        assert r.server is not None
        r.server.stop()


@pytest.fixture
def gateway(tmp_path: Path, sandbox_url: str) -> Iterator[Gateway]:
    """The integration suite's gateway, its delivery worker polling fast (``FAST``); the
    suite's ``container`` opens this one."""
    gw = start_gateway(gateway_settings(tmp_path, sandbox_url, **FAST), sandbox_url)
    try:
        yield gw
    finally:
        gw.server.stop()


async def api_token(container: Container, url: str) -> str:
    """A bearer token of a new API client, from the gateway at ``url``."""
    client, secret = await container.vault.create_api_client("app")
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": secret.get_secret_value(),
            },
        )
    token: str = answer.raise_for_status().json()["access_token"]
    return token
