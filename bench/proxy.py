"""Benchmark: what the /proxy hop adds, measured against calling the sandbox directly.

Starts ``tokenward sandbox --no-rate-limits`` and ``tokenward serve`` as separate processes on
loopback, links N users through the real consent flow, then drives both paths with ``wrk``
(Debian's package) in interleaved rounds:

* direct: ``GET {sandbox}/api/v10/users/@me`` with each user's Discord token;
* proxy:  ``GET {gateway}/proxy/api/v10/users/@me`` with the API token and each user's
  ``connection_name`` / ``identifier`` headers (the gateway resolves the account, injects its
  token, runs the rate limiter and the path guard, and streams the answer back).

Requests rotate over the N users (a Lua script), so the gateway's per-token limit of 50
requests/s is respected as it would be in production. Prints p50/p99 latency at concurrency 1,
throughput at concurrency 32, the added latency and the throughput ratio, and exits non-zero when
a target is missed (added p50 ≤ 1 ms, added p99 ≤ 5 ms at c=1; proxy ≥ 50 % of direct at c=32).

    .venv/bin/python bench/proxy.py [--users 64] [--duration 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tokenward._serving import free_port
from tokenward.sandbox.browser import walk_consent

TOKENWARD = str(Path(sys.executable).parent / "tokenward")
PATH = "/api/v10/users/@me"


def start(args: list[str], env: dict[str, str], health: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        proc = subprocess.Popen([TOKENWARD, *args], env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{args[0]} did not start:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def lua_rotating(headers_per_user: list[dict[str, str]], path: str) -> str:
    rows = ",\n".join(
        "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in h.items()) + "}" for h in headers_per_user
    )
    return f"""
local users = {{
{rows}
}}
local n = #users
local i = 0
request = function()
  i = (i % n) + 1
  return wrk.format("GET", "{path}", users[i])
end
"""


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNIT[match.group(2)]


def wrk(url: str, script: Path, connections: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = {}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        assert match, out
        result[f"p{pct}"] = _ms(match.group(1))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    result["rps"] = float(rps.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["errors"] = float(non2xx.group(1)) if non2xx else 0.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        result["errors"] += sum(float(x) for x in errors.groups())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per case")
    parser.add_argument(
        "--profile", metavar="SVG", help="record the gateway with py-spy during one c=32 run"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="tokenward-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    sandbox_port, gateway_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    sandbox = start(
        ["sandbox", "--port", str(sandbox_port), "--no-rate-limits"],
        env,
        f"{sandbox_url}/_sandbox/stats",
        tmp / "sandbox.log",
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
    gateway = start(["serve"], genv, f"{gateway_url}/healthz", tmp / "gateway.log")
    try:
        app = httpx.post(
            f"{sandbox_url}/_sandbox/applications", json={"redirect_uris": ["http://127.0.0.1:9/"]}
        ).json()

        def cli(*argv: str, stdin: str | None = None) -> dict[str, object]:
            done = subprocess.run(
                [TOKENWARD, *argv, "--json"],
                env=genv,
                input=stdin,
                capture_output=True,
                text=True,
                check=True,
            )
            return dict(json.loads(done.stdout))

        connection = cli(
            "connections",
            "create",
            "--name",
            "discord",
            "--client-id",
            app["client_id"],
            "--client-secret-stdin",
            stdin=app["client_secret"] + "\n",
        )
        httpx.patch(
            f"{sandbox_url}/_sandbox/applications/{app['client_id']}",
            json={"redirect_uris": [connection["redirect_uri"]]},
        ).raise_for_status()
        api_client = cli("api-clients", "create", "--name", "bench")
        token = httpx.post(
            f"{gateway_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": str(api_client["client_id"]),
                "client_secret": str(api_client["client_secret"]),
            },
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        identifiers = [f"bench_user_{i}" for i in range(args.users)]

        def link(identifier: str) -> None:
            body = httpx.post(
                f"{gateway_url}/api/v1/connected-accounts/authorization-link",
                json={"connection_name": "discord", "identifier": identifier},
                headers=auth,
            ).json()
            assert walk_consent(body["link"]).status_code == 200

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(link, identifiers))
        discord_tokens = httpx.get(f"{sandbox_url}/_sandbox/tokens").json()["access_tokens"]
        assert len(discord_tokens) >= args.users

        naive_port = free_port()
        naive_tokens = json.dumps(dict(zip(identifiers, discord_tokens, strict=False)))
        naive = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("naive_proxy.py")),
                str(naive_port),
                sandbox_url,
                naive_tokens,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        naive_url = f"http://127.0.0.1:{naive_port}"
        for _ in range(100):
            try:
                httpx.get(naive_url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        direct_lua = tmp / "direct.lua"
        direct_lua.write_text(
            lua_rotating([{"Authorization": f"Bearer {t}"} for t in discord_tokens], PATH)
        )
        proxy_lua = tmp / "proxy.lua"
        proxy_lua.write_text(
            lua_rotating(
                [
                    {**auth, "connection_name": "discord", "identifier": ident}
                    for ident in identifiers
                ],
                "/proxy" + PATH,
            )
        )
        # Warm both paths (connection pools, caches, bucket discovery).
        wrk(sandbox_url, direct_lua, 4, 1)
        wrk(gateway_url, proxy_lua, 4, 1)
        wrk(naive_url, proxy_lua, 4, 1)

        if args.profile:
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--format",
                    "raw",
                    "-o",
                    args.profile,
                    "-d",
                    str(args.duration),
                    "-r",
                    "400",
                    "-p",
                    str(gateway.pid),
                    "--nonblocking",
                ]
            )
            wrk(gateway_url, proxy_lua, 32, args.duration)
            spy.wait()
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for connections in (1, 32):
            for _ in range(args.rounds):
                for name, url, script in (
                    ("direct", sandbox_url, direct_lua),
                    ("proxy", gateway_url, proxy_lua),
                    ("naive", naive_url, proxy_lua),
                ):
                    results.setdefault((name, connections), []).append(
                        wrk(url, script, connections, args.duration)
                    )

        def med(name: str, c: int, key: str) -> float:
            return statistics.median(r[key] for r in results[(name, c)])

        print(
            f"tokenward /proxy vs direct (and a naive proxy), loopback, {args.users} users, "
            f"wrk -t1, {args.rounds}×{args.duration}s interleaved rounds (medians)"
        )
        print(f"{'path':<8} {'conns':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'errors':>7}")
        for c in (1, 32):
            for name in ("direct", "proxy", "naive"):
                print(
                    f"{name:<8} {c:>5} {med(name, c, 'p50'):>8.3f} {med(name, c, 'p99'):>8.3f} "
                    f"{med(name, c, 'rps'):>9.0f} {med(name, c, 'errors'):>7.0f}"
                )
        added_p50 = med("proxy", 1, "p50") - med("direct", 1, "p50")
        added_p99 = med("proxy", 1, "p99") - med("direct", 1, "p99")
        ratio = med("proxy", 32, "rps") / med("direct", 32, "rps")
        naive_ratio = med("naive", 32, "rps") / med("direct", 32, "rps")
        errors = sum(
            r["errors"] for (name, _c), runs in results.items() if name != "naive" for r in runs
        )
        print(
            f"added latency at c=1: p50 +{added_p50:.3f} ms (target ≤ 1), "
            f"p99 +{added_p99:.3f} ms (target ≤ 5)"
        )
        print(
            f"throughput at c=32: proxy/direct = {ratio:.0%} (target ≥ 50%); "
            f"naive 30-line aiohttp proxy/direct = {naive_ratio:.0%}; "
            f"tokenward/naive = {ratio / naive_ratio:.0%}"
        )
        print(
            f"added p50 at c=1 by the naive proxy: "
            f"+{med('naive', 1, 'p50') - med('direct', 1, 'p50'):.3f} ms"
        )
        stats = httpx.get(f"{sandbox_url}/_sandbox/stats").json()
        print(
            f"sandbox: {stats['requests']['total']} requests, {stats['rate_limited']} 429s, "
            f"{stats['unauthorized']} 401s; non-2xx/socket errors in wrk runs: {errors:.0f}"
        )
        met = added_p50 <= 1.0 and added_p99 <= 5.0 and ratio >= 0.5 and errors == 0
        print("targets:", "met" if met else "MISSED")
        return 0 if met else 1
    finally:
        if "naive" in locals():
            naive.terminate()
        stop(gateway)
        stop(sandbox)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
