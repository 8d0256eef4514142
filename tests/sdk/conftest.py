"""A real ``tokenward serve`` process and a real ``tokenward sandbox`` process for SDK tests,
shared by the module (each test uses its own identifiers), plus an API client made with the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from e2e.processes import (
    Cli,
    ServiceProcess,
    gateway_environment,
    new_encryption_keys,
    register_application,
    set_redirect_uri,
    start_sandbox,
)
from tokenward._serving import free_port


@dataclass
class Stack:
    sandbox_url: str
    gateway_url: str
    client_id: str
    client_secret: str
    cli: Cli
    sandbox: httpx.Client

    def stats(self) -> dict[str, object]:
        body: dict[str, object] = self.sandbox.get("/_sandbox/stats").json()
        return body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("sdk")
    sandbox, sandbox_url = start_sandbox(tmp / "logs", rate_limits=False)
    port = free_port()
    env = gateway_environment(
        data_dir=tmp / "data",
        port=port,
        sandbox_url=sandbox_url,
        encryption_keys=new_encryption_keys(),
        # Webhook tests deliver to a receiver on loopback, quickly.
        extra={
            "TOKENWARD_WEBHOOKS_ALLOW_INSECURE": "true",
            "TOKENWARD_WEBHOOKS_POLL_INTERVAL_SECONDS": "0.05",
        },
    )
    gateway = ServiceProcess(
        "serve", ["serve"], env, health_url=f"http://127.0.0.1:{port}/healthz", log_dir=tmp
    ).start()
    control = httpx.Client(base_url=sandbox_url, trust_env=False)
    try:
        cli = Cli(env=env, cwd=tmp)
        app = register_application(sandbox_url)
        connection = cli.json(
            "connections",
            "create",
            "--name",
            "discord",
            "--client-id",
            app["client_id"],
            "--client-secret-stdin",
            "--bot-token",
            app["bot_token"],
            "--json",
            input=app["client_secret"] + "\n",
        )
        set_redirect_uri(sandbox_url, app["client_id"], connection["redirect_uri"])
        api_client = cli.json("api-clients", "create", "--name", "sdk-tests", "--json")
        yield Stack(
            sandbox_url=sandbox_url,
            gateway_url=f"http://127.0.0.1:{port}",
            client_id=api_client["client_id"],
            client_secret=api_client["client_secret"],
            cli=cli,
            sandbox=control,
        )
    finally:
        control.close()
        gateway.stop()
        sandbox.stop()
