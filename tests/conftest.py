"""Shared fixtures: a real sandbox on a loopback socket, and the CI rules for optional services."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tokenward._serving import BackgroundServer, free_port
from tokenward.sandbox import SandboxSettings, create_sandbox_app

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(available: bool, reason: str) -> None:
    """Skip where a service is missing, but fail in CI, where every service must run."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this test must not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[BackgroundServer]:
    """One sandbox for the session, with short rate-limit windows; reset before each test."""
    settings = SandboxSettings(window_scale=0.2)
    with BackgroundServer(create_sandbox_app(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def _control_client() -> Iterator[httpx.Client]:
    with httpx.Client(verify=False, trust_env=False) as client:
        yield client


@pytest.fixture
def sandbox_url(sandbox_server: BackgroundServer, _control_client: httpx.Client) -> str:
    _control_client.post(f"{sandbox_server.url}/_sandbox/reset").raise_for_status()
    return sandbox_server.url


# -- Redis -----------------------------------------------------------------------------------

REDIS_URL = os.environ.get("TOKENWARD_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The shared test Redis (``TOKENWARD_TEST_REDIS_URL`` or 127.0.0.1:6379); never restarted."""
    require_service(_redis_answers(REDIS_URL), f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_server_url: str) -> Iterator[str]:
    """A key prefix of this test's own in the shared Redis; its keys are deleted afterwards."""
    import redis

    prefix = f"twtest:{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(redis_server_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class PrivateRedis:
    """A ``redis-server`` of the test's own on a free loopback port, to stop and start at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(self.url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self._process is not None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A private Redis (started); needs ``redis-server`` on PATH."""
    require_service(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def closed_port_url() -> str:
    """A Redis URL where nothing listens (a port that was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"redis://127.0.0.1:{port}/0"
