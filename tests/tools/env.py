"""A real gateway wired to the session's sandbox, with connections and linked accounts for the
tool tests: the same pieces a deployment has, driven through the real consent flow.

``ToolEnv`` is built once per test module (linking through the consent page is the slow part)
and each test gets its own :class:`~tokenward.server.container.Container` on the same database,
as a second process would. Tests that break an account (revoke, expire) make their own
connection, so the shared accounts stay usable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from integration.gateway_env import Gateway
from tokenward.clock import SystemClock
from tokenward.config import Settings
from tokenward.sandbox.browser import walk_consent
from tokenward.server.container import Container
from tokenward.vault.repository import ConnectionRecord

ADA = "1100000000000000001"
GRACE = "1100000000000000002"
LINUS = "1100000000000000003"
ALL_SCOPES = "identify email guilds guilds.members.read connections openid"

WITH_BOT = "withbot"
NO_BOT = "nobot"
NARROW = "narrow"


@dataclass
class ToolEnv:
    """Names and facts the tests need; secrets only as far as a test must use them."""

    settings: Settings
    gateway: Gateway
    sandbox_url: str
    fixtures: dict[str, Any]
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """connection name → the sandbox application (client_id, client_secret, bot_token)."""
    http: httpx.Client = field(default_factory=lambda: httpx.Client(trust_env=False))
    """One keep-alive client for the sandbox's control API."""

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = (
            self.http.get(f"{self.sandbox_url}/_sandbox/stats").raise_for_status().json()
        )
        return body

    def total(self) -> int:
        return int(self.stats()["requests"]["total"])

    def fault(self, **rule: Any) -> None:
        self.http.post(f"{self.sandbox_url}/_sandbox/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete(f"{self.sandbox_url}/_sandbox/faults").raise_for_status()

    def expire_tokens(self, **match: str) -> int:
        body = self.http.post(f"{self.sandbox_url}/_sandbox/tokens/expire", json=match)
        return int(body.raise_for_status().json()["expired"])

    def revoke(self, connection_name: str, token: str) -> None:
        app = self.apps[connection_name]
        self.http.post(
            f"{self.sandbox_url}/api/oauth2/token/revoke",
            data={"token": token},
            auth=(app["client_id"], app["client_secret"]),
        ).raise_for_status()

    @asynccontextmanager
    async def container(self, clock: Any = None, **overrides: Any) -> AsyncIterator[Container]:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        container = Container(settings, clock)
        await container.start(migrate=False)
        try:
            yield container
        finally:
            await container.close()


class AheadClock(SystemClock):
    """The system clock with wall time moved ``offset`` seconds ahead (monotonic untouched):
    the gateway sees every stored expiry that far closer."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


async def add_connection(
    env: ToolEnv,
    container: Container,
    name: str,
    *,
    scopes: str = ALL_SCOPES,
    with_bot: bool = False,
) -> ConnectionRecord:
    """Register a sandbox application and a connection for it (optionally with its bot token)."""
    app = (
        httpx.post(
            f"{env.sandbox_url}/_sandbox/applications",
            json={"redirect_uris": ["http://127.0.0.1:9/x"], "name": f"app-{name}"},
        )
        .raise_for_status()
        .json()
    )
    connection = await container.vault.create_connection(
        name=name,
        provider="discord",
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        scopes=scopes.split(),
        bot_token=app["bot_token"] if with_bot else None,
    )
    httpx.patch(
        f"{env.sandbox_url}/_sandbox/applications/{app['client_id']}",
        json={"redirect_uris": [container.oauth.redirect_uri(connection.id)]},
    ).raise_for_status()
    env.apps[name] = app
    return connection


async def link(container: Container, connection_name: str, identifier: str, user: str) -> str:
    """Link ``identifier`` to the sandbox ``user`` through the real consent page; the account id."""
    created = await container.oauth.create_link(connection_name, identifier)
    result = await asyncio.to_thread(walk_consent, created.link, user_id=user)
    assert result.status_code == 200, result.text
    account = await container.vault.get_account(created.account.id)
    assert account.status.value == "ACTIVE", account.status
    return account.id
