"""Benchmark: how many calls succeed when 20 % of Discord's answers fail, tokenward beside
clients that do not retry, measured in the same run.

Starts ``tokenward sandbox --no-rate-limits`` (this measures faults, not rate limits),
``tokenward serve`` and ``bench/naive_proxy.py`` as processes on loopback, links N users through
the real consent page, then for each fault mode — 20 % of every ``/api/v10`` answer a 500, 502,
503 or 504 (``5xx``), or the connection dropped mid-answer after the status and headers
(``dropped``) — drives four paths with the same calls:

* ``tools``:  ``POST /api/v1/tools/execute`` over the catalog's GET tools (user and anonymous);
* ``proxy``:  ``GET /proxy/api/v10/...`` over the same routes;
* ``naive``:  the naive proxy (an aiohttp session forwarding each call once);
* ``direct``: an aiohttp client calling the sandbox itself with the user's token, once.

A call succeeds when it gets a 200 with the whole answer (a tool's ``data``; a body that parses
as JSON). Prints, per mode and path, the success rate, p50/p99 latency and the requests Discord
saw per call (the retries' cost), and exits non-zero when tokenward's tools or proxy succeed less
than 99.9 % of the time in any mode.

    .venv/bin/python bench/faults.py [--calls 3000] [--users 16] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tokenward._serving import free_port
from tokenward.sandbox.browser import walk_consent

TOKENWARD = str(Path(sys.executable).parent / "tokenward")
TARGET = 0.999
FAULT_RATE = 0.2
FAULT_MODES: dict[str, dict[str, Any]] = {
    "5xx": {"statuses": [500, 502, 503, 504]},
    "dropped": {"drop_connection": True},
}
HUB, CREW = "1200000000000000001", "1200000000000000003"
# (tool, input, the path the tool calls): the same route for all four paths. Anonymous tools run
# under the gateway's address, which Discord limits to 50 requests/s in all (tokenward keeps to
# that), so they are one call in ten; the user tools run under each user's own token.
USER_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("discord_get_my_user", {}, "/api/v10/users/@me"),
    ("discord_list_my_guilds", {}, "/api/v10/users/@me/guilds"),
    ("discord_retrieve_user_connections", {}, "/api/v10/users/@me/connections"),
    ("discord_get_my_guild_member", {"guild_id": HUB}, f"/api/v10/users/@me/guilds/{HUB}/member"),
    (
        "discord_get_my_guild_member",
        {"guild_id": CREW},
        f"/api/v10/users/@me/guilds/{CREW}/member",
    ),
    ("discord_get_my_oauth2_authorization", {}, "/api/v10/oauth2/@me"),
    ("discord_get_openid_connect_userinfo", {}, "/api/v10/oauth2/userinfo"),
]
ANONYMOUS_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("discord_get_gateway", {}, "/api/v10/gateway"),
    ("discord_get_guild_widget", {"guild_id": HUB}, f"/api/v10/guilds/{HUB}/widget.json"),
    (
        "discord_get_guild_template",
        {"template_code": "SbxHubTmpl26"},
        "/api/v10/guilds/templates/SbxHubTmpl26",
    ),
    ("discord_resolve_invite", {"invite_code": "Hb7xQp2K"}, "/api/v10/invites/Hb7xQp2K"),
    ("discord_list_sticker_packs", {}, "/api/v10/sticker-packs"),
]
PATHS = ("tools", "proxy", "naive", "direct")


def start(args: list[str], env: dict[str, str], health: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(health, timeout=1).status_code < 500:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{args[:2]} did not start:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@dataclass
class Run:
    calls: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    upstream: int = 0

    @property
    def rate(self) -> float:
        return self.ok / self.calls if self.calls else 0.0

    def fail(self, what: str) -> None:
        self.failures[what] = self.failures.get(what, 0) + 1


@dataclass
class Setup:
    sandbox_url: str
    gateway_url: str
    naive_url: str
    api_token: str
    identifiers: list[str]
    discord_tokens: dict[str, str]


async def drive(setup: Setup, path: str, calls: int, concurrency: int) -> Run:
    run = Run()
    users = len(setup.identifiers)
    jobs = [
        (
            setup.identifiers[n % users],
            ANONYMOUS_CALLS[(n // 10) % len(ANONYMOUS_CALLS)]
            if n % 10 == 9
            else USER_CALLS[(n // users) % len(USER_CALLS)],
        )
        for n in range(calls)
    ]
    queue: asyncio.Queue[tuple[str, tuple[str, dict[str, Any], str]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    api = {"Authorization": f"Bearer {setup.api_token}"}

    async def one(session: aiohttp.ClientSession, identifier: str, call: Any) -> None:
        tool, tool_input, route = call
        who = {"connection_name": "discord", "identifier": identifier}
        if path == "tools":
            request = session.post(
                f"{setup.gateway_url}/api/v1/tools/execute",
                json={**who, "tool_name": tool, "tool_input": tool_input},
                headers=api,
            )
        elif path == "proxy":
            request = session.get(f"{setup.gateway_url}/proxy{route}", headers={**api, **who})
        elif path == "naive":
            request = session.get(f"{setup.naive_url}/proxy{route}", headers=who)
        else:
            token = setup.discord_tokens[identifier]
            request = session.get(
                f"{setup.sandbox_url}{route}", headers={"Authorization": f"Bearer {token}"}
            )
        run.calls += 1
        started = time.perf_counter()
        try:
            async with request as response:
                body = await response.read()
                status = response.status
        except aiohttp.ClientError as exc:
            run.latencies.append(time.perf_counter() - started)
            run.fail(type(exc).__name__)
            return
        run.latencies.append(time.perf_counter() - started)
        try:
            parsed = json.loads(body)
        except ValueError:
            run.fail(f"{status} (incomplete or not JSON)")
            return
        if status == 200 and (path != "tools" or parsed.get("data") is not None):
            run.ok += 1
        else:
            error = parsed.get("error") if isinstance(parsed, dict) else None
            code = error.get("code") if isinstance(error, dict) else ""
            run.fail(f"{status} {code}".strip())

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            identifier, call = queue.get_nowait()
            await one(session, identifier, call)

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return run


def sandbox_total(sandbox_url: str) -> int:
    return int(httpx.get(f"{sandbox_url}/_sandbox/stats").json()["requests"]["total"])


def prepare(tmp: Path, users: int, env: dict[str, str]) -> tuple[Setup, list[Any]]:
    processes: list[subprocess.Popen[bytes]] = []
    sandbox_port, gateway_port, naive_port = free_port(), free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    naive_url = f"http://127.0.0.1:{naive_port}"
    processes.append(
        start(
            [TOKENWARD, "sandbox", "--port", str(sandbox_port), "--no-rate-limits"],
            env,
            f"{sandbox_url}/_sandbox/stats",
            tmp / "sandbox.log",
        )
    )
    genv = {
        **env,
        "TOKENWARD_DATA_DIR": str(tmp / "data"),
        "TOKENWARD_ENCRYPTION_KEYS": "b:" + base64.b64encode(os.urandom(32)).decode(),
        "TOKENWARD_PUBLIC_URL": gateway_url,
        "TOKENWARD_PORT": str(gateway_port),
        "TOKENWARD_DISCORD_BASE_URL": sandbox_url,
        "TOKENWARD_LOG_LEVEL": "WARNING",
    }
    processes.append(start([TOKENWARD, "serve"], genv, f"{gateway_url}/healthz", tmp / "gw.log"))

    def cli(*argv: str, stdin: str | None = None) -> dict[str, Any]:
        done = subprocess.run(
            [TOKENWARD, *argv, "--json"],
            env=genv,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        )
        return dict(json.loads(done.stdout))

    app = httpx.post(
        f"{sandbox_url}/_sandbox/applications", json={"redirect_uris": ["http://127.0.0.1:9/"]}
    ).json()
    connection = cli(
        "connections",
        "create",
        "--name",
        "discord",
        "--client-id",
        app["client_id"],
        "--scopes",
        "identify email guilds guilds.members.read connections openid",
        "--client-secret-stdin",
        stdin=app["client_secret"] + "\n",
    )
    httpx.patch(
        f"{sandbox_url}/_sandbox/applications/{app['client_id']}",
        json={"redirect_uris": [connection["redirect_uri"]]},
    ).raise_for_status()
    api_client = cli("api-clients", "create", "--name", "faults-bench")
    token = httpx.post(
        f"{gateway_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": str(api_client["client_id"]),
            "client_secret": str(api_client["client_secret"]),
        },
    ).json()["access_token"]
    identifiers = [f"bench_user_{i}" for i in range(users)]

    def link(identifier: str) -> None:
        body = httpx.post(
            f"{gateway_url}/api/v1/connected-accounts/authorization-link",
            json={"connection_name": "discord", "identifier": identifier},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert walk_consent(body["link"]).status_code == 200

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(link, identifiers))
    # Every user is the sandbox's first user, so any of the issued tokens serves as "theirs".
    issued = httpx.get(f"{sandbox_url}/_sandbox/tokens").json()["access_tokens"]
    discord_tokens = dict(zip(identifiers, issued, strict=False))
    processes.append(
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("naive_proxy.py")),
                str(naive_port),
                sandbox_url,
                json.dumps(discord_tokens),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    for _ in range(200):
        try:
            httpx.get(naive_url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    setup = Setup(sandbox_url, gateway_url, naive_url, token, identifiers, discord_tokens)
    return setup, processes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per path and fault mode")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tokenward-faults-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        setup, processes = prepare(tmp, args.users, env)
        # Warm every path (connection pools, account caches) without faults.
        for path in PATHS:
            asyncio.run(drive(setup, path, 50, 8))
        results: dict[tuple[str, str], Run] = {}
        for mode, rule in FAULT_MODES.items():
            httpx.post(
                f"{setup.sandbox_url}/_sandbox/faults",
                json={"route": "/api/v10", "probability": FAULT_RATE, **rule},
            ).raise_for_status()
            for path in PATHS:
                before = sandbox_total(setup.sandbox_url)
                run = asyncio.run(drive(setup, path, args.calls, args.concurrency))
                run.upstream = sandbox_total(setup.sandbox_url) - before
                results[(mode, path)] = run
            httpx.delete(f"{setup.sandbox_url}/_sandbox/faults").raise_for_status()

        print(
            f"success at {FAULT_RATE:.0%} faults on every /api/v10 answer, loopback, "
            f"{args.users} users, {args.calls} calls per path and mode, "
            f"concurrency {args.concurrency}"
        )
        print(
            f"{'mode':<8} {'path':<7} {'ok':>6} {'calls':>6} {'success':>9} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'req/call':>8}  failures"
        )
        missed = []
        for (mode, path), run in results.items():
            cuts = statistics.quantiles(run.latencies, n=100)
            failures = ", ".join(f"{k}×{v}" for k, v in sorted(run.failures.items())) or "-"
            print(
                f"{mode:<8} {path:<7} {run.ok:>6} {run.calls:>6} {run.rate:>9.2%} "
                f"{cuts[49] * 1000:>8.1f} {cuts[98] * 1000:>8.1f} "
                f"{run.upstream / run.calls:>8.2f}  {failures}"
            )
            if path in ("tools", "proxy") and run.rate < TARGET:
                missed.append(f"{mode}/{path} {run.rate:.2%}")
        print(
            f"target: tokenward tools and proxy ≥ {TARGET:.1%} in every mode: "
            + (f"MISSED ({', '.join(missed)})" if missed else "met")
        )
        return 1 if missed else 0
    finally:
        for proc in reversed(processes):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
