"""End-to-end fixtures: ``tokenward sandbox`` and ``tokenward serve`` as real processes on free
loopback ports, and the ``tokenward`` CLI run against the same settings.

Each test gets its own sandbox, gateway and data directory. The processes are stopped at the end
(terminate, wait, kill); when a test fails, their stderr is printed with the test's report.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tokenward._serving import free_port

from .processes import (
    TEST_OUTPUT,
    Cli,
    ServiceProcess,
    base_environment,
    gateway_environment,
    new_encryption_keys,
)

_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_CALL_REPORT] = report


def _failed(request: pytest.FixtureRequest) -> bool:
    report = request.node.stash.get(_CALL_REPORT, None)
    return report is None or report.failed


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """``test-output/e2e/<test name>/`` at the repository root (git-ignored, kept after the run)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = TEST_OUTPUT / "e2e" / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Deployment:
    """A sandbox and a gateway running as separate processes, and a CLI pointed at them."""

    sandbox: ServiceProcess
    gateway: ServiceProcess
    sandbox_url: str
    gateway_url: str
    cli: Cli


@pytest.fixture
def sandbox_process(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServiceProcess]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        "sandbox",
        ["sandbox", "--port", str(port)],
        base_environment(),
        health_url=f"{url}/_sandbox/stats",
        log_dir=tmp_path / "logs",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        if _failed(request):
            print(process.output())


@pytest.fixture
def deployment(
    tmp_path: Path, sandbox_process: ServiceProcess, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    sandbox_url = sandbox_process.health_url.removesuffix("/_sandbox/stats")
    port = free_port()
    env = gateway_environment(
        data_dir=tmp_path / "data",
        port=port,
        sandbox_url=sandbox_url,
        encryption_keys=new_encryption_keys(),
    )
    gateway = ServiceProcess(
        "serve", ["serve"], env, health_url=f"http://127.0.0.1:{port}/healthz", log_dir=tmp_path
    )
    gateway.start()
    try:
        yield Deployment(
            sandbox=sandbox_process,
            gateway=gateway,
            sandbox_url=sandbox_url,
            gateway_url=f"http://127.0.0.1:{port}",
            cli=Cli(env=env, cwd=tmp_path),
        )
    finally:
        gateway.stop()
        if _failed(request):
            print(gateway.output())
