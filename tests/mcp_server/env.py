"""The MCP tests' gateway: uvicorn on loopback, wired to the session's sandbox, with a
connection, two identifiers linked to two different sandbox users through the real consent page,
an API client to mint MCP sessions with, and MCP client helpers."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from integration.gateway_env import gateway_settings, make_connection
from tokenward._serving import BackgroundServer
from tokenward.config import Settings
from tokenward.sandbox.browser import walk_consent
from tokenward.server.app import create_app
from tokenward.server.container import Container
from tokenward.vault.db import upgrade_async

ADA = "1100000000000000001"
GRACE = "1100000000000000002"
LINUS = "1100000000000000003"
HUB = "1200000000000000001"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONNECTION = "discord"


@dataclass
class McpEnv:
    settings: Settings
    server: BackgroundServer
    sandbox_url: str
    client_id: str
    client_secret: str
    api_token: str = ""
    http: httpx.Client = field(default_factory=lambda: httpx.Client(trust_env=False, timeout=30))

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_token}", **kwargs.pop("headers", {})}
        return self.http.request(method, self.url + path, headers=headers, **kwargs)

    def mint(self, identifier: str, **body: Any) -> dict[str, Any]:
        """``POST /api/v1/mcp/sessions`` for ``identifier``; the response body."""
        response = self.api(
            "POST",
            "/api/v1/mcp/sessions",
            json={"connection_name": CONNECTION, "identifier": identifier, **body},
        )
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = (
            self.http.get(f"{self.sandbox_url}/_sandbox/stats").raise_for_status().json()
        )
        return body

    def sandbox_tokens(self) -> dict[str, Any]:
        body: dict[str, Any] = (
            self.http.get(f"{self.sandbox_url}/_sandbox/tokens").raise_for_status().json()
        )
        return body


async def access_token(settings: Settings, identifier: str) -> str:
    """The stored Discord access token of ``identifier`` (to follow it in the sandbox's stats)."""
    container = Container(settings)
    try:
        connection = await container.vault.get_connection_by_name(CONNECTION)
        account = await container.vault.find_account(connection.id, identifier)
    finally:
        await container.vault.close()
    assert account is not None
    assert account.access_token is not None
    return account.access_token.get_secret_value()


async def _link(container: Container, identifier: str, user: str) -> None:
    created = await container.oauth.create_link(CONNECTION, identifier)
    result = await asyncio.to_thread(walk_consent, created.link, user_id=user)
    assert result.status_code == 200, result.text


async def _populate(settings: Settings, sandbox_url: str) -> tuple[str, str]:
    await upgrade_async(settings.effective_database_url)
    container = Container(settings)
    await container.start(migrate=False)
    try:
        await make_connection(container, sandbox_url, CONNECTION)
        await _link(container, "ada", ADA)
        await _link(container, "grace", GRACE)
        record, secret = await container.vault.create_api_client("mcp-tests")
    finally:
        await container.close()
    return record.client_id, secret.get_secret_value()


def build_app(settings: Settings) -> Any:
    """The gateway exactly as ``tokenward serve`` builds it."""
    return create_app(settings, setup_logging=False)


def start_env(sandbox_url: str, tmp: Path) -> McpEnv:
    """Reset the sandbox, start a gateway, link ``ada`` (Ada) and ``grace`` (Grace)."""
    httpx.post(f"{sandbox_url}/_sandbox/reset").raise_for_status()
    settings = gateway_settings(tmp, sandbox_url)
    server = BackgroundServer(build_app(settings), port=settings.port).start()
    try:
        client_id, secret = asyncio.run(_populate(settings, sandbox_url))
        env = McpEnv(settings, server, sandbox_url, client_id, secret)
        token = env.http.post(
            f"{env.url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        env.api_token = token.raise_for_status().json()["access_token"]
    except BaseException:
        server.stop()
        raise
    return env


@asynccontextmanager
async def connect(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session over Streamable HTTP (the official client)."""
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def error_of(result: types.CallToolResult) -> dict[str, Any]:
    """The structured error of a tool error result (and its text says the same)."""
    assert result.is_error is True
    assert isinstance(result.structured_content, dict)
    error: dict[str, Any] = result.structured_content["error"]
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    assert json.loads(text.text) == result.structured_content
    return error


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
