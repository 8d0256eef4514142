"""A real gateway on a loopback socket, an API client, and helpers to call the HTTP API.

Every response the tests receive is kept (``ApiEnv.responses``) so leak checks can scan them all.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenward._serving import BackgroundServer, free_port
from tokenward.clock import Clock
from tokenward.config import Settings
from tokenward.server.app import create_app
from tokenward.server.container import Container

from .dashboard_client import Browser, create_admin


def new_keys(kid: str = "k1") -> str:
    return f"{kid}:" + base64.b64encode(os.urandom(32)).decode()


def api_settings(tmp: Path, sandbox_url: str, **overrides: Any) -> Settings:
    port = free_port()
    values: dict[str, Any] = {
        "data_dir": tmp,
        "encryption_keys": new_keys(),
        "public_url": f"http://127.0.0.1:{port}",
        "port": port,
        "discord_base_url": sandbox_url,
    }
    values.update(overrides)
    return Settings(**values)


def create_api_client(
    settings: Settings, name: str = "tests", scopes: str = "admin"
) -> tuple[str, str]:
    """An API client made the way `tokenward api-clients create` makes one (same vault)."""

    async def make() -> tuple[str, str]:
        container = Container(settings)
        await container.start()
        try:
            record, secret = await container.vault.create_api_client(name, scopes)
        finally:
            await container.close()
        return record.client_id, secret.get_secret_value()

    return asyncio.run(make())


def delete_api_client(settings: Settings, client_id: str) -> None:
    async def drop() -> None:
        container = Container(settings)
        await container.start()
        try:
            await container.vault.delete_api_client(client_id)
        finally:
            await container.close()

    asyncio.run(drop())


@dataclass
class ApiEnv:
    settings: Settings
    server: BackgroundServer
    sandbox_url: str
    client_id: str
    client_secret: str
    token: str = ""
    responses: list[httpx.Response] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def app(self) -> Any:
        return self.server._server.config.app

    def request(
        self, method: str, path: str, *, token: str | None = None, auth: bool = True, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", None) or {})
        if auth:
            headers.setdefault("Authorization", f"Bearer {token or self.token}")
        response = httpx.request(
            method, self.url + path, headers=headers, timeout=30, trust_env=False, **kw
        )
        self.responses.append(response)
        return response

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def scoped_token(self, scope: str) -> str:
        """An API token with only ``scope`` (space-separated), from this admin client."""
        response = self.issue_token(scope=scope)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def issue_token(self, **form: str) -> httpx.Response:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            **form,
        }
        return self.request("POST", "/oauth/token", auth=False, data=data)

    def register_app(self) -> dict[str, Any]:
        """A Discord application at the sandbox (as a developer makes one in the portal)."""
        body: dict[str, Any] = (
            httpx.post(
                f"{self.sandbox_url}/_sandbox/applications",
                json={"redirect_uris": ["http://127.0.0.1:9/placeholder"]},
            )
            .raise_for_status()
            .json()
        )
        return body

    def connect(self, name: str = "discord", scopes: Any = None) -> dict[str, Any]:
        """POST /api/v1/connections for a new sandbox app, then register its redirect URI."""
        sandbox_app = self.register_app()
        response = self.post(
            "/api/v1/connections",
            json={
                "name": name,
                "provider": "discord",
                "client_id": sandbox_app["client_id"],
                "client_secret": sandbox_app["client_secret"],
                "scopes": scopes or "identify email guilds guilds.members.read connections",
            },
        )
        assert response.status_code == 201, response.text
        connection: dict[str, Any] = response.json()["connection"]
        httpx.patch(
            f"{self.sandbox_url}/_sandbox/applications/{sandbox_app['client_id']}",
            json={"redirect_uris": [connection["redirect_uri"]]},
        ).raise_for_status()
        return connection


def start_api(
    settings: Settings, sandbox_url: str, *, clock: Clock | None = None
) -> tuple[BackgroundServer, Container]:
    container = Container(settings, clock=clock)
    server = BackgroundServer(create_app(container=container), port=settings.port).start()
    return server, container


@pytest.fixture
def api(tmp_path: Path, sandbox_url: str) -> Iterator[ApiEnv]:
    settings = api_settings(tmp_path, sandbox_url)
    server, _container = start_api(settings, sandbox_url)
    try:
        client_id, secret = create_api_client(settings)
        env = ApiEnv(settings, server, sandbox_url, client_id, secret)
        response = env.issue_token()
        assert response.status_code == 200, response.text
        env.token = response.json()["access_token"]
        yield env
    finally:
        server.stop()


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the error envelope with this status and code; returns ``error``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


def sandbox_secrets(sandbox_url: str) -> list[str]:
    """Every token, code and secret the sandbox has handed out."""
    body = httpx.get(f"{sandbox_url}/_sandbox/tokens").raise_for_status().json()
    values: list[str] = []
    for key in ("access_tokens", "refresh_tokens", "codes", "client_secrets", "bot_tokens"):
        for item in body.get(key, []):
            values.append(item if isinstance(item, str) else item["value"])
    return values


@pytest.fixture
def browser(api: ApiEnv) -> Iterator[Browser]:
    """A signed-out dashboard client; the operator ``alice`` exists (password ``PASSWORD``)."""
    create_admin(api.settings, "alice")
    b = Browser(api.url)
    try:
        yield b
    finally:
        b.client.close()
