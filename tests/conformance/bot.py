"""A bot's view of the sandbox for the conformance tests: one sandbox per module (rate limits
off unless a test asks), reset before each test, with the fixtures' ids at hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tokenward._serving import BackgroundServer
from tokenward.clock import Clock
from tokenward.sandbox import SandboxSettings, SandboxState, create_sandbox_app

from .helpers import issue_token

APP = "1300000000000000001"
BOT = "1300000000000000901"
HUB = "1200000000000000001"
ENGINE = "1200000000000000002"  # the bot is not a member
CREW = "1200000000000000003"  # the bot may only read, send and react
GENERAL = "1600000000000000102"
STAFF_ONLY = "1600000000000000106"
READ_ONLY = "1600000000000000107"
NEWS = "1600000000000000108"
FORUM = "1600000000000000109"
CREW_ANNOUNCEMENTS = "1600000000000000301"
ENGINE_NOTES = "1600000000000000201"
ADA = "1100000000000000001"
GRACE = "1100000000000000002"
LINUS = "1100000000000000003"
WUMPUS = "1100000000000000010"
SPAMMER = "1100000000000000011"
ADMIN_ROLE = "1700000000000000101"
MODERATOR = "1700000000000000102"
BOT_ROLE = "1700000000000000103"
PNG = "data:image/png;base64,iVBORw0KGgo="


@dataclass
class Bot:
    client: httpx.Client
    state: SandboxState
    fixtures: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bot {self.state.default_application.bot_token}"}

    def bearer(self, user: str, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.state, user, scopes)}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", self.headers)
        return self.client.request(method, "/api/v10" + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def send(self, channel: str = GENERAL, **body: Any) -> dict[str, Any]:
        payload = {"content": "hello", **body}
        result: dict[str, Any] = self.ok(self.post(f"/channels/{channel}/messages", json=payload))
        return result

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        params = {"channel_id": channel} if channel else {}
        body = self.client.get("/_sandbox/messages", params=params).json()
        result: list[dict[str, Any]] = body["messages"]
        return result


def error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """Discord's error body with this status and JSON code."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    return body


def serve(settings: SandboxSettings | None = None, clock: Clock | None = None) -> Iterator[Bot]:
    app = create_sandbox_app(settings or SandboxSettings(rate_limits=False), clock)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield Bot(client, app.state.sandbox)
