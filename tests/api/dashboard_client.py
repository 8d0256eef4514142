"""A cookie-keeping client for the dashboard's tests, and helpers that read the vault."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from tokenward.config import Settings
from tokenward.server.container import Container

PASSWORD = "a long operator password"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def create_admin(settings: Settings, username: str, password: str = PASSWORD) -> None:
    async def make() -> None:
        container = Container(settings)
        await container.start()
        try:
            await container.admins.create(username, password)
        finally:
            await container.close()

    asyncio.run(make())


def events_of(settings: Settings, kind: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        container = Container(settings)
        await container.start()
        try:
            return [e.data for e in await container.vault.list_events(kind=kind)]
        finally:
            await container.close()

    return asyncio.run(read())


class Browser:
    """A cookie-keeping HTTP client that signs in like the form does."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, trust_env=False, timeout=30)

    def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        page = self.client.get("/dashboard/sign-in")
        token = re.search(r'name="form_token" value="([^"]+)"', page.text)
        assert token is not None
        return self.client.post(
            "/dashboard/sign-in",
            data={
                "username": username,
                "password": password,
                "form_token": token.group(1),
                "next": "/dashboard",
            },
        )

    def csrf(self, path: str = "/dashboard/api-clients") -> str:
        match = CSRF_RE.search(self.client.get(path).text)
        assert match is not None
        return match.group(1)
