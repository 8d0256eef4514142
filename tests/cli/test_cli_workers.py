"""``tokenward serve --workers N``: N processes on one port, refused without Redis, supervised."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from .conftest import Workspace
from .serving import Serve, run_serve

pytestmark = pytest.mark.slow  # real `tokenward serve` processes


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children)


def replaced(supervisor: int, victim: int) -> bool:
    current = workers_of(supervisor)
    return len(current) == 2 and victim not in current


def wait_for(check: object, timeout: float = 20.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_more_than_one_worker_without_redis_is_refused(workspace: Workspace, how: str) -> None:
    env = without(workspace.cli.env, "TOKENWARD_PUBLIC_URL", "TOKENWARD_REDIS_URL")
    args = ["--port", "0"]
    if how == "flag":
        args += ["--workers", "2"]
    else:
        env["TOKENWARD_WORKERS"] = "2"
    refused = run_serve(env, *args)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        "error: --workers 2 needs TOKENWARD_REDIS_URL: without Redis each worker would keep its "
        "own rate limits and together they would exceed Discord's; set TOKENWARD_REDIS_URL (e.g. "
        "redis://127.0.0.1:6379/0) or run one worker"
    ]


@pytest.mark.redis
def test_two_workers_serve_one_port_and_are_supervised(
    workspace: Workspace, tmp_path: Path, redis_server_url: str, redis_prefix: str
) -> None:
    env = {
        **without(workspace.cli.env, "TOKENWARD_PUBLIC_URL", "TOKENWARD_PORT"),
        "TOKENWARD_REDIS_URL": redis_server_url,
        "TOKENWARD_REDIS_PREFIX": redis_prefix,
    }
    served = Serve(env, tmp_path, "--port", "0", "--workers", "2").start()
    try:
        assert served.proc is not None
        supervisor = served.proc.pid
        assert "workers     2 (rate limits shared through Redis)" in served.stdout()
        wait_for(lambda: len(workers_of(supervisor)) == 2)
        first = workers_of(supervisor)

        def ready() -> bool:
            try:
                response = httpx.get(f"{served.url}/readyz", trust_env=False, timeout=5)
            except httpx.TransportError:
                return False
            return response.status_code == 200

        wait_for(ready)
        body = httpx.get(f"{served.url}/readyz", trust_env=False).json()
        assert body["checks"]["redis"]["mode"] == "shared"

        # Each worker alone keeps the port served: kill one, the other answers; the supervisor
        # starts a replacement; then kill the other original.
        for victim in first:
            os.kill(victim, signal.SIGKILL)
            for _ in range(20):
                with httpx.Client(trust_env=False, timeout=5) as fresh:
                    assert fresh.get(f"{served.url}/healthz").status_code == 200
            wait_for(lambda v=victim: replaced(supervisor, v))  # type: ignore[misc]
        assert set(workers_of(supervisor)).isdisjoint(first)
        assert "starting another" in served.stderr()
        wait_for(ready)
        children = workers_of(supervisor)
    finally:
        code = served.stop()
    assert code == 0, served.output()
    for child in children:
        assert not Path(f"/proc/{child}").exists()  # stopped and reaped by the supervisor
