"""A real gateway (uvicorn on loopback) wired to the session's sandbox, for lifecycle tests."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tokenward._serving import BackgroundServer, free_port
from tokenward.config import Settings
from tokenward.server.app import create_app
from tokenward.server.container import Container
from tokenward.vault.repository import ConnectionRecord


def new_keys() -> str:
    return "k1:" + base64.b64encode(os.urandom(32)).decode()


def gateway_settings(tmp: Path, sandbox_url: str, **overrides: Any) -> Settings:
    port = free_port()
    base: dict[str, Any] = {
        "data_dir": tmp,
        "encryption_keys": new_keys(),
        "public_url": f"http://127.0.0.1:{port}",
        "port": port,
        "discord_base_url": sandbox_url,
    }
    base.update(overrides)
    return Settings(**base)


@dataclass
class Gateway:
    settings: Settings
    server: BackgroundServer
    sandbox_url: str

    @property
    def url(self) -> str:
        return self.server.url


def start_gateway(settings: Settings, sandbox_url: str) -> Gateway:
    server = BackgroundServer(create_app(settings), port=settings.port).start()
    return Gateway(settings, server, sandbox_url)


@asynccontextmanager
async def local_container(settings: Settings) -> AsyncIterator[Container]:
    """The same vault and services a CLI command or a second replica would use."""
    container = Container(settings)
    await container.start()
    try:
        yield container
    finally:
        await container.close()


async def make_connection(
    container: Container, sandbox_url: str, name: str = "discord", scopes: str | None = None
) -> tuple[ConnectionRecord, dict[str, Any]]:
    """Register an application at the sandbox and a connection for it in the vault, with the
    connection's callback as the application's only redirect URI (as a developer would)."""
    app = (
        httpx.post(
            f"{sandbox_url}/_sandbox/applications", json={"redirect_uris": ["http://127.0.0.1:9/x"]}
        )
        .raise_for_status()
        .json()
    )
    connection = await container.vault.create_connection(
        name=name,
        provider="discord",
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        scopes=(scopes or "identify email guilds guilds.members.read connections openid").split(),
    )
    httpx.patch(
        f"{sandbox_url}/_sandbox/applications/{app['client_id']}",
        json={"redirect_uris": [container.oauth.redirect_uri(connection.id)]},
    ).raise_for_status()
    return connection, app


def sandbox_stats(sandbox_url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{sandbox_url}/_sandbox/stats").raise_for_status().json()
    return body


def sandbox_secrets(sandbox_url: str) -> list[str]:
    """Every token and secret the sandbox has handed out."""
    body = httpx.get(f"{sandbox_url}/_sandbox/tokens").raise_for_status().json()
    values: list[str] = []
    for key in ("access_tokens", "refresh_tokens", "codes", "client_secrets", "bot_tokens"):
        for item in body.get(key, []):
            values.append(item if isinstance(item, str) else item["value"])
    return values
