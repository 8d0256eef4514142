"""A real ``tokenward sandbox`` and a real ``tokenward serve --compat-port`` for the compatibility
tests: one stack with plain h2c + HTTP/1.1 on the compatibility port, one with TLS from
``tokenward certs dev`` (each shared by its module; tests use their own identifiers)."""

from __future__ import annotations

import ssl
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

CONNECTION = "discord"


@dataclass
class CompatStack:
    sandbox_url: str
    gateway_url: str
    compat_url: str
    """The environment URL an SDK is given: ``http://127.0.0.1:P`` or ``https://localhost:P``."""
    client_id: str
    client_secret: str
    cli: Cli
    ca: Path | None
    tmp: Path
    gateway: ServiceProcess

    @property
    def tls(self) -> bool:
        return self.ca is not None

    @property
    def target(self) -> str:
        """host:port for a gRPC channel."""
        return self.compat_url.split("://", 1)[1]

    def client_environment(self) -> dict[str, str]:
        """What an SDK process needs to trust the dev CA (nothing over h2c)."""
        if self.ca is None:
            return {}
        return {
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(self.ca),
            "REQUESTS_CA_BUNDLE": str(self.ca),
            "NODE_EXTRA_CA_CERTS": str(self.ca),
        }

    def http(self) -> httpx.Client:
        """A client for the compatibility port's REST routes."""
        verify: ssl.SSLContext | bool = False
        if self.ca is not None:
            verify = ssl.create_default_context(cafile=str(self.ca))
        return httpx.Client(base_url=self.compat_url, verify=verify, trust_env=False)

    def token(self, client_id: str | None = None, client_secret: str | None = None) -> str:
        with self.http() as client:
            response = client.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id or self.client_id,
                    "client_secret": client_secret or self.client_secret,
                },
            )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def link_account(stack: CompatStack, identifier: str, user: str) -> None:
    """Link ``identifier`` to the sandbox's ``user`` through the REST API of the compatibility
    port and the consent page."""
    from tokenward.sandbox.browser import walk_consent

    with stack.http() as http:
        response = http.post(
            "/api/v1/connected-accounts/authorization-link",
            json={"connection_name": CONNECTION, "identifier": identifier},
            headers={"Authorization": f"Bearer {stack.token()}"},
        )
    response.raise_for_status()
    assert walk_consent(response.json()["link"], user_id=user).status_code == 200


def start_stack(
    tmp: Path, *, tls: bool, extra: dict[str, str] | None = None
) -> tuple[CompatStack, ServiceProcess]:
    sandbox, sandbox_url = start_sandbox(tmp / "logs", rate_limits=False)
    port, compat_port = free_port(), free_port()
    env = gateway_environment(
        data_dir=tmp / "data",
        port=port,
        sandbox_url=sandbox_url,
        encryption_keys=new_encryption_keys(),
        extra={"TOKENWARD_COMPAT_PORT": str(compat_port), **(extra or {})},
    )
    cli = Cli(env=env, cwd=tmp)
    ca = None
    if tls:
        certs = cli.json("certs", "dev", "--out", str(tmp / "certs"))
        env["TOKENWARD_TLS_CERT"] = certs["cert"]
        env["TOKENWARD_TLS_KEY"] = certs["key"]
        ca = Path(certs["ca"])
    try:
        gateway = ServiceProcess(
            "serve", ["serve"], env, health_url=f"http://127.0.0.1:{port}/healthz", log_dir=tmp
        ).start()
    except BaseException:
        sandbox.stop()
        raise
    app = register_application(sandbox_url)
    connection = cli.json(
        "connections",
        "create",
        "--name",
        CONNECTION,
        "--client-id",
        app["client_id"],
        "--client-secret-stdin",
        input=app["client_secret"] + "\n",
    )
    set_redirect_uri(sandbox_url, app["client_id"], connection["redirect_uri"])
    api_client = cli.json("api-clients", "create", "--name", "compat-tests")
    compat_url = f"https://localhost:{compat_port}" if tls else f"http://127.0.0.1:{compat_port}"
    stack = CompatStack(
        sandbox_url=sandbox_url,
        gateway_url=f"http://127.0.0.1:{port}",
        compat_url=compat_url,
        client_id=api_client["client_id"],
        client_secret=api_client["client_secret"],
        cli=cli,
        ca=ca,
        tmp=tmp,
        gateway=gateway,
    )
    return stack, sandbox


@pytest.fixture(scope="module", params=["h2c", "tls"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CompatStack]:
    """The compatibility port over plain h2c + HTTP/1.1, then over TLS."""
    tmp = tmp_path_factory.mktemp(f"compat-{request.param}")
    built, sandbox = start_stack(tmp, tls=request.param == "tls")
    try:
        yield built
    finally:
        built.gateway.stop()
        sandbox.stop()


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompatStack]:
    tmp = tmp_path_factory.mktemp("compat-tls")
    built, sandbox = start_stack(tmp, tls=True)
    try:
        yield built
    finally:
        built.gateway.stop()
        sandbox.stop()
