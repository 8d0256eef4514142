"""The ``tokenward`` CLI as a user meets it: every command runs as its own subprocess.

A workspace is one operator's setup: a data directory, the ``TOKENWARD_*`` variables pointing at
the session's sandbox (in-process, reset per test), and, for tests that complete a consent, a
gateway serving the callback on the workspace's public URL. When a test ends, everything the CLI
printed is checked against every token and secret the sandbox handed out.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.processes import (
    Cli,
    gateway_environment,
    new_encryption_keys,
    register_application,
    sandbox_secrets,
    set_redirect_uri,
)
from tokenward._serving import BackgroundServer, free_port
from tokenward.config import Settings
from tokenward.sandbox.browser import BrowserResult, walk_consent
from tokenward.server.app import create_app
from tokenward.server.container import Container

ADA = "1100000000000000001"
GRACE = "1100000000000000002"


@dataclass
class Workspace:
    sandbox_url: str
    data_dir: Path
    port: int
    encryption_keys: str | None
    cli: Cli
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    _gateway: BackgroundServer | None = None

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides: Any) -> Settings:
        """The same settings the CLI reads from its environment."""
        values: dict[str, Any] = {
            "data_dir": self.data_dir,
            "encryption_keys": self.encryption_keys,
            "public_url": self.public_url,
            "port": self.port,
            "discord_base_url": self.sandbox_url,
        }
        values.update(overrides)
        return Settings(**values)

    def start_gateway(self) -> None:
        """Serve the link redirect and the OAuth callback on the workspace's public URL."""
        if self._gateway is None:
            self._gateway = BackgroundServer(create_app(self.settings()), port=self.port).start()

    def stop_gateway(self) -> None:
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None

    def connect(self, name: str = "discord", *extra: str) -> dict[str, Any]:
        """Register an app at the sandbox, ``connections create`` it, add the redirect URI."""
        app = register_application(self.sandbox_url, name=f"App for {name}")
        doc: dict[str, Any] = self.cli.json(
            "connections",
            "create",
            "--name",
            name,
            "--client-id",
            app["client_id"],
            "--client-secret-stdin",
            *extra,
            input=app["client_secret"] + "\n",
        )
        set_redirect_uri(self.sandbox_url, app["client_id"], doc["redirect_uri"])
        self.apps[name] = app
        return doc

    def link(self, identifier: str, connection: str = "discord") -> str:
        doc = self.cli.json("link", "--connection", connection, "--identifier", identifier)
        return str(doc["link"])

    def consent(
        self,
        identifier: str,
        *,
        connection: str = "discord",
        user_id: str = ADA,
        action: str = "authorize",
    ) -> BrowserResult:
        """``tokenward link``, then a person's browser through consent and back."""
        self.start_gateway()
        result = walk_consent(self.link(identifier, connection), action=action, user_id=user_id)
        assert result.status_code == 200, result.text
        return result

    def show(self, identifier: str, connection: str = "discord") -> dict[str, Any]:
        doc: dict[str, Any] = self.cli.json(
            "accounts", "show", "--connection", connection, "--identifier", identifier
        )
        return doc

    def envelope_kids(self) -> set[str]:
        """The key id of every encrypted value in the database file (``tw1.<kid>.<data>``)."""
        kids: set[str] = set()
        with sqlite3.connect(self.data_dir / "tokenward.db") as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                cursor = db.execute(f'SELECT * FROM "{table}"')
                for row in cursor:
                    for value in row:
                        if isinstance(value, str) and value.startswith("tw1."):
                            kids.add(value.split(".")[1])
        return kids

    def refresh(self, account_id: str, **overrides: Any) -> str:
        """Refresh now through the token manager (a huge leeway makes every token due) and
        return the new access token."""

        async def run(container: Container) -> str:
            grant = await container.tokens.grant(account_id)
            return grant.access_token

        return str(self.run_async(run, refresh_leeway_seconds=10**9, **overrides))

    def run_async(self, fn: Callable[[Container], Any], **overrides: Any) -> Any:
        """Run ``fn(container)`` in-process on the workspace's vault, as a second replica would."""

        async def main() -> Any:
            container = Container(self.settings(**overrides))
            await container.start()
            try:
                return await fn(container)
            finally:
                await container.close()

        return asyncio.run(main())


def sandbox_access_token(sandbox_url: str, client_id: str, user_id: str) -> str:
    """The live access token the sandbox issued to ``client_id`` for ``user_id``."""
    body = httpx.get(f"{sandbox_url}/_sandbox/tokens").raise_for_status().json()
    live = [
        t["value"]
        for t in body["details"]["access_tokens"]
        if t["client_id"] == client_id and t["user_id"] == user_id and t["valid"]
    ]
    assert len(live) == 1, live
    return str(live[0])


def me_status(sandbox_url: str, access_token: str) -> int:
    response = httpx.get(
        f"{sandbox_url}/api/v10/users/@me", headers={"Authorization": f"Bearer {access_token}"}
    )
    return response.status_code


WorkspaceFactory = Callable[..., Workspace]


@pytest.fixture
def make_workspace(tmp_path: Path, sandbox_url: str) -> Iterator[WorkspaceFactory]:
    """``make_workspace(encryption_keys=...)``; ``None`` keeps the keys in the data dir's key
    file (the default for a fresh install)."""
    made: list[Workspace] = []

    def make(*, encryption_keys: str | None = "generate") -> Workspace:
        keys = new_encryption_keys() if encryption_keys == "generate" else encryption_keys
        root = tmp_path / f"ws{len(made)}"
        root.mkdir()
        port = free_port()
        env = gateway_environment(
            data_dir=root / "data", port=port, sandbox_url=sandbox_url, encryption_keys=keys
        )
        ws = Workspace(sandbox_url, root / "data", port, keys, Cli(env=env, cwd=root))
        made.append(ws)
        return ws

    try:
        yield make
    finally:
        for ws in made:
            ws.stop_gateway()
    secrets = sandbox_secrets(sandbox_url)
    for ws in made:
        assert ws.cli.leaked(secrets) == [], "a CLI command printed a token or secret"


@pytest.fixture
def workspace(make_workspace: WorkspaceFactory) -> Workspace:
    return make_workspace()
