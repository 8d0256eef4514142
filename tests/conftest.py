"""Shared fixtures: a real sandbox on a loopback socket, and the CI rules for optional services."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tokenward._serving import BackgroundServer
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
