"""Benchmark: 1,000 concurrent tool calls on an account whose token just expired.

Starts a sandbox (rate limits off: this measures tokenward, not the sandbox's buckets) and a
gateway on loopback in a temporary directory, links two accounts through the real consent page,
then, in the same run:

* ``fresh``: N concurrent ``discord_get_my_user`` calls for an account whose token is valid
  (no refresh expected) — the comparison;
* ``expired``: the other account's token is expired at the sandbox *and* the gateway sees it as
  due (its clock runs one token lifetime ahead), then N concurrent calls. Target: exactly one
  refresh at the sandbox, zero failed calls, zero 401s;
* ``401`` (with ``--discord-only``): the token is expired at the sandbox only, so every in-flight
  call gets a 401 and asks for a refresh. Target: exactly one refresh, zero failed calls.

Both runs go through ``Container.runner`` (validation, vault, refresh single-flight, the rate
limiter, the aiohttp transport). The gateway keeps each token under Discord's global limit of 50
requests per second, so N calls on one account take at least N / 50 seconds.

    .venv/bin/python bench/refresh_storm.py [--calls 1000] [--discord-only]

Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tokenward._serving import BackgroundServer, free_port
from tokenward.clock import Clock, SystemClock
from tokenward.config import Settings
from tokenward.errors import TokenwardError
from tokenward.sandbox import SandboxSettings, create_sandbox_app
from tokenward.sandbox.browser import walk_consent
from tokenward.server.app import create_app
from tokenward.server.container import Container

ADA = "1100000000000000001"
GRACE = "1100000000000000002"
LINUS = "1100000000000000003"
TOKEN_LIFETIME = 604_800
TOOL = "discord_get_my_user"


class AheadClock(SystemClock):
    """The system clock with wall time ``offset`` seconds ahead: stored expiries look due."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


@dataclass
class Run:
    name: str
    calls: int
    failures: int
    errors: dict[str, int]
    refreshes: int
    refresh_attempts: int
    unauthorized: int
    upstream_requests: int
    wall: float

    def line(self) -> str:
        errors = ", ".join(f"{k}×{v}" for k, v in self.errors.items()) or "-"
        return (
            f"{self.name:<8} calls {self.calls:>5}  failures {self.failures:>3}  "
            f"refreshes {self.refreshes:>2} (token requests {self.refresh_attempts})  "
            f"401s {self.unauthorized:>4}  upstream {self.upstream_requests:>5}  "
            f"wall {self.wall:6.2f} s  ({self.calls / self.wall:6.0f} calls/s)  errors {errors}"
        )


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(trust_env=False, timeout=30)

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get(f"{self.url}/_sandbox/stats").json()
        return body

    def register(self) -> dict[str, Any]:
        response = self.http.post(
            f"{self.url}/_sandbox/applications",
            json={"redirect_uris": ["http://127.0.0.1:9/x"], "name": "refresh storm"},
        )
        body: dict[str, Any] = response.raise_for_status().json()
        return body

    def set_redirect(self, client_id: str, uri: str) -> None:
        self.http.patch(
            f"{self.url}/_sandbox/applications/{client_id}", json={"redirect_uris": [uri]}
        ).raise_for_status()

    def expire(self, **match: str) -> int:
        response = self.http.post(f"{self.url}/_sandbox/tokens/expire", json=match)
        return int(response.raise_for_status().json()["expired"])


async def open_container(settings: Settings, clock: Clock | None = None) -> Container:
    container = Container(settings, clock)
    await container.start()
    return container


async def setup(settings: Settings, sandbox: Sandbox) -> str:
    """One connection, three linked accounts; returns the connection's client id."""
    container = await open_container(settings)
    try:
        app = sandbox.register()
        connection = await container.vault.create_connection(
            name="bench",
            provider="discord",
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            scopes=["identify", "email"],
        )
        sandbox.set_redirect(app["client_id"], container.oauth.redirect_uri(connection.id))
        for identifier, user in (("fresh", ADA), ("expired", GRACE), ("refused", LINUS)):
            link = await container.oauth.create_link("bench", identifier)
            result = await asyncio.to_thread(walk_consent, link.link, user_id=user)
            if result.status_code != 200:
                raise SystemExit(f"linking {identifier!r} failed: HTTP {result.status_code}")
        return str(app["client_id"])
    finally:
        await container.close()


async def storm(
    name: str,
    settings: Settings,
    sandbox: Sandbox,
    identifier: str,
    expected_user: str,
    calls: int,
    clock: Clock | None = None,
) -> Run:
    container = await open_container(settings, clock)
    try:
        before = sandbox.stats()
        errors: dict[str, int] = {}

        async def one() -> bool:
            try:
                result = await container.runner.execute(
                    TOOL, {}, connection_name="bench", identifier=identifier
                )
            except TokenwardError as exc:
                errors[exc.code] = errors.get(exc.code, 0) + 1
                return False
            return bool(result.data.get("id") == expected_user)

        started = time.perf_counter()
        outcomes = await asyncio.gather(*(one() for _ in range(calls)))
        wall = time.perf_counter() - started
        after = sandbox.stats()
    finally:
        await container.close()

    def delta(*path: str) -> int:
        a: Any = after
        b: Any = before
        for key in path:
            a, b = a.get(key, 0), b.get(key, 0)
        return int(a) - int(b)

    return Run(
        name=name,
        calls=calls,
        failures=outcomes.count(False),
        errors=errors,
        refreshes=delta("grants", "refresh_token"),
        refresh_attempts=delta("requests", "by_route", "POST /api/oauth2/token"),
        unauthorized=delta("unauthorized"),
        upstream_requests=delta("requests", "total"),
        wall=wall,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="concurrent calls per run")
    parser.add_argument(
        "--discord-only",
        action="store_true",
        help="also run the case where only Discord knows the token expired (401 → refresh)",
    )
    args = parser.parse_args()

    sandbox_settings = SandboxSettings(rate_limits=False, token_lifetime=TOKEN_LIFETIME)
    with (
        tempfile.TemporaryDirectory(prefix="tokenward-bench-") as tmp,
        BackgroundServer(create_sandbox_app(sandbox_settings)) as sandbox_server,
    ):
        sandbox = Sandbox(sandbox_server.url)
        port = free_port()
        settings = Settings(
            data_dir=Path(tmp),
            encryption_keys="k1:" + base64.b64encode(os.urandom(32)).decode(),
            public_url=f"http://127.0.0.1:{port}",
            port=port,
            discord_base_url=sandbox.url,
            log_level="WARNING",
        )
        gateway = BackgroundServer(create_app(settings), port=port).start()
        try:
            client_id = asyncio.run(setup(settings, sandbox))
            print(
                f"{args.calls} concurrent {TOOL} calls per run, one account per run; "
                f"sandbox {sandbox.url} (rate limits off), gateway {gateway.url}"
            )
            runs = [asyncio.run(storm("fresh", settings, sandbox, "fresh", ADA, args.calls))]
            # Just expired: dead at Discord, and due in the gateway's eyes.
            sandbox.expire(user_id=GRACE, client_id=client_id)
            ahead = AheadClock(TOKEN_LIFETIME + 60)
            runs.append(
                asyncio.run(
                    storm("expired", settings, sandbox, "expired", GRACE, args.calls, ahead)
                )
            )
            if args.discord_only:
                sandbox.expire(user_id=LINUS, client_id=client_id)
                runs.append(
                    asyncio.run(storm("401", settings, sandbox, "refused", LINUS, args.calls))
                )
        finally:
            gateway.stop()

    for run in runs:
        print(run.line())
    fresh, expired = runs[0], runs[1]
    checks = [
        ("fresh: no refresh, no failure", fresh.refreshes == 0 and fresh.failures == 0),
        (
            "expired: exactly 1 refresh, 0 failures, 0 401s",
            expired.refreshes == 1 and expired.failures == 0 and expired.unauthorized == 0,
        ),
    ]
    if args.discord_only:
        refused = runs[2]
        checks.append(
            ("401: exactly 1 refresh, 0 failures", refused.refreshes == 1 and refused.failures == 0)
        )
    overhead = expired.wall - fresh.wall
    print(f"expired vs fresh: {overhead:+.2f} s wall for the refresh storm")
    ok = True
    for label, passed in checks:
        print(f"target {label}: {'met' if passed else 'NOT met'}")
        ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
