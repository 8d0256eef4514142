"""Benchmark: what the /proxy hop costs, against the practical limit and a naive proxy.

Starts ``tokenward sandbox --no-rate-limits`` (for the consent flow and token exchange) and
``tokenward serve`` as separate processes on loopback, links N users through the real consent
flow, then drives every path with ``wrk`` (Debian's package) in interleaved rounds.

With ``--upstream nginx`` (the default) Discord's ``GET /api/v10/users/@me`` is answered by
nginx with a fixed, Discord-shaped JSON body (everything else goes on to the sandbox), so the
upstream costs next to nothing and what is measured is the proxies themselves:

* direct:   ``GET {upstream}/api/v10/users/@me`` with each user's Discord token;
* nginx:    nginx ``proxy_pass`` to the upstream, setting the Authorization header (the
  practical limit of a proxy hop here);
* naive:    a 30-line Starlette + aiohttp proxy looking the token up in a dict;
* naive-h1: the naive proxy on tokenward's HTTP/1.1 client instead of aiohttp's;
* tw-1:     ``GET {gateway}/proxy/api/v10/users/@me`` with the API token and each user's
  ``connection_name`` / ``identifier`` headers (the gateway checks the API token, resolves the
  account, injects its token, runs the rate limiter and the path guard, counts metrics);
* tw-g:     tw-1's app under granian (Rust HTTP server, uvloop) instead of uvicorn;
* tw-1a:    tw-1 with ``TOKENWARD_UPSTREAM_CLIENT=aiohttp``: aiohttp's client instead of
  tokenward's own HTTP/1.1 client for the hop to the upstream (the choice, measured);
* tw-2:     the same on ``tokenward serve --workers 2`` sharing limits through Redis (when the
  installed ``serve`` has ``--workers`` and Redis answers at ``--redis``).

``--baseline SRC`` adds ``tw-base``: the same ``serve`` with ``PYTHONPATH=SRC``, the ``src``
folder of another checkout (``git worktree add /tmp/base HEAD~1``), so a change is measured
against the code before it in the same run. ``--pin`` puts the proxies on the first core and
wrk and nginx on the second, so one proxy's CPU is what limits it and small differences stand
out of the noise (``tw-2``'s workers and granian's threads then share that one core too:
compare those without it).

``--upstream sandbox`` measures against the sandbox instead (it answers in about 0.1 ms of
Python, on the same two cores).

At c=32 it also reads the CPU time each process used during each run (``/proc`` for the proxies,
nginx and redis-server; ``getrusage`` for wrk) and prints it per request. wrk and nginx share the
machine's cores with the proxies, so two workers cannot be faster than
``cores / (CPU per request of the workers + wrk + nginx + Redis)``; the bench prints that ceiling
beside the two workers' figure.

Requests rotate over the N users (a Lua script), so the gateway's per-token limit of 50
requests/s is respected as it would be in production (N × 50 caps the gateway's throughput: keep
N large). Prints p50/p99 latency at concurrency 1 and throughput at concurrency 32, then the
comparisons, and exits non-zero when a target is missed: added p50 ≤ 0.5 ms at c=1; tw-1 ≥ the
naive proxy's throughput at c=32; tw-2 ≥ 1.6 × tw-1.

    .venv/bin/python bench/proxy.py [--users 256] [--duration 5] [--rounds 2]
        [--upstream nginx|sandbox] [--redis redis://127.0.0.1:6379/15]
        [--baseline ../other-checkout/src] [--pin]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import resource
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


def start(
    args: list[str],
    env: dict[str, str],
    health: str,
    log: Path,
    *,
    program: str = TOKENWARD,
    any_answer: bool = False,
) -> subprocess.Popen[bytes]:
    """``program args`` (tokenward by default), once ``health`` answers 200 (any status with
    ``any_answer``: a server without a health route)."""
    with log.open("wb") as err:
        proc = subprocess.Popen([program, *args], env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(health, timeout=1).status_code == 200 or any_answer:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{Path(program).name} {args[0]} did not start:\n{log.read_text()}")


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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (from /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it (the workers of ``serve --workers``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


# Set by --pin: the core wrk runs on (the proxies are pinned to another).
WRK_CORE: int | None = None


def pin(pid: int, core: int) -> None:
    """Every thread of ``pid`` (threads made later inherit it) onto ``core``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), {core})


def wrk(
    url: str,
    script: Path,
    connections: int,
    duration: int,
    watch: dict[str, list[int]] | None = None,
) -> dict[str, float]:
    """One wrk run; with ``watch`` (name -> pids) also the CPU seconds each group and wrk itself
    used during the run, per request (``cpu_<name>`` in µs)."""
    before = {name: cpu_seconds(pids) for name, pids in (watch or {}).items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    pinned = ["taskset", "-c", str(WRK_CORE)] if WRK_CORE is not None else []
    out = subprocess.run(
        [
            *pinned,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
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
    requests = re.search(r"(\d+) requests in", out)
    if watch is not None and requests:
        count = max(1, int(requests.group(1)))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        result["cpu_wrk"] = used / count * 1e6
        for name, pids in watch.items():
            result[f"cpu_{name}"] = (cpu_seconds(pids) - before[name]) / count * 1e6
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["errors"] = float(non2xx.group(1)) if non2xx else 0.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        result["errors"] += sum(float(x) for x in errors.groups())
    return result


USER_BODY = (
    '{"id":"80351110224678912","username":"nelly","discriminator":"0","global_name":"Nelly",'
    '"avatar":"8342729096ea3675442027381ff50dfe","bot":false,"mfa_enabled":true,'
    '"locale":"en-US","verified":true,"email":"nelly@example.com","flags":64,'
    '"premium_type":1,"public_flags":64}'
)


def nginx_config(workdir: Path, upstream_port: int, front_port: int, sandbox_port: int) -> str:
    """Two servers: the fast upstream (users/@me answered by nginx, the rest to the sandbox) and
    nginx as a proxy in front of it (the practical limit of one proxy hop)."""
    temp = workdir / "temp"
    return f"""
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    upstream upstream {{ server 127.0.0.1:{upstream_port}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{upstream_port} backlog=4096;
        location = {PATH} {{
            default_type application/json;
            return 200 '{USER_BODY}';
        }}
        location / {{
            proxy_pass http://127.0.0.1:{sandbox_port};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
        }}
    }}
    server {{
        listen 127.0.0.1:{front_port} backlog=4096;
        location /proxy/ {{
            proxy_pass http://upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer a-user-token";
        }}
    }}
}}
"""


def start_nginx(workdir: Path, config: str, health: str) -> subprocess.Popen[bytes]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    (workdir / "temp").mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(config)
    with (workdir / "nginx.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                nginx,
                "-p",
                str(workdir),
                "-c",
                str(conf),
                "-e",
                str(workdir / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(health, timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"nginx did not start: {(workdir / 'error.log').read_text()}")


def redis_pids() -> list[int]:
    """The redis-server processes on this machine (their CPU counts for tw-2)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "redis-server":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def serve_has_workers() -> bool:
    done = subprocess.run([TOKENWARD, "serve", "--help"], capture_output=True, text=True)
    return "--workers" in done.stdout


def redis_answers(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=256)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per case")
    parser.add_argument("--upstream", choices=("nginx", "sandbox"), default="nginx")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument(
        "--profile", metavar="SVG", help="record the gateway with py-spy during one c=32 run"
    )
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also measure serve from another checkout's src folder (tw-base)",
    )
    parser.add_argument(
        "--pin", action="store_true", help="proxies on the first core, wrk and nginx on the second"
    )
    args = parser.parse_args()
    if args.baseline and not (Path(args.baseline) / "tokenward" / "__init__.py").exists():
        print(f"--baseline: {args.baseline} holds no tokenward package", file=sys.stderr)
        return 2
    if args.pin and (shutil.which("taskset") is None or (os.cpu_count() or 1) < 2):
        print("--pin needs two cores and taskset (util-linux)", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if (
        args.upstream == "nginx"
        and shutil.which("nginx") is None
        and not Path("/usr/sbin/nginx").exists()
    ):
        print("nginx is not installed: apt-get install -y nginx", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="tokenward-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    sandbox_port, gateway_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    procs: list[subprocess.Popen[bytes]] = []
    sandbox = start(
        ["sandbox", "--port", str(sandbox_port), "--no-rate-limits"],
        env,
        f"{sandbox_url}/_sandbox/stats",
        tmp / "sandbox.log",
    )
    procs.append(sandbox)
    upstream_url, front_url = sandbox_url, None
    nginx_proc: subprocess.Popen[bytes] | None = None
    if args.upstream == "nginx":
        upstream_port, front_port = free_port(), free_port()
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        front_url = f"http://127.0.0.1:{front_port}"
        nginx_proc = start_nginx(
            tmp / "nginx",
            nginx_config(tmp / "nginx", upstream_port, front_port, sandbox_port),
            f"{upstream_url}{PATH}",
        )
        procs.append(nginx_proc)
    genv = {
        **env,
        "TOKENWARD_DATA_DIR": str(tmp / "data"),
        "TOKENWARD_ENCRYPTION_KEYS": "b:" + base64.b64encode(os.urandom(32)).decode(),
        "TOKENWARD_PUBLIC_URL": gateway_url,
        "TOKENWARD_PORT": str(gateway_port),
        "TOKENWARD_DISCORD_BASE_URL": upstream_url,
        "TOKENWARD_LOG_LEVEL": "WARNING",
    }
    gateway = start(["serve"], genv, f"{gateway_url}/healthz", tmp / "gateway.log")
    procs.append(gateway)
    two_workers_url = None
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

        def start_gateway(
            label: str, extra: dict[str, str], *serve_args: str
        ) -> tuple[subprocess.Popen[bytes], str]:
            """Another ``serve`` on the same data, on a port of its own, with ``extra`` env."""
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {**genv, "TOKENWARD_PORT": str(port), "TOKENWARD_PUBLIC_URL": url, **extra}
            proc = start(
                ["serve", *serve_args], env, f"{url}/healthz", tmp / f"gateway-{label}.log"
            )
            procs.append(proc)
            return proc, url

        two_workers: subprocess.Popen[bytes] | None = None
        if serve_has_workers() and redis_answers(args.redis):
            two_workers, two_workers_url = start_gateway(
                "2", {"TOKENWARD_REDIS_URL": args.redis}, "--workers", "2"
            )
        else:
            print("tw-2 skipped: this serve has no --workers or Redis does not answer")

        with_aiohttp, aiohttp_url = start_gateway(
            "aiohttp", {"TOKENWARD_UPSTREAM_CLIENT": "aiohttp"}
        )
        baseline: subprocess.Popen[bytes] | None = None
        if args.baseline:
            baseline, baseline_url = start_gateway(
                "baseline", {"PYTHONPATH": str(Path(args.baseline).resolve())}
            )

        naive_tokens = json.dumps(dict(zip(identifiers, discord_tokens, strict=False)))

        def start_naive(client: str) -> tuple[subprocess.Popen[bytes], str]:
            url = f"http://127.0.0.1:{(port := free_port())}"
            script = str(Path(__file__).with_name("naive_proxy.py"))
            args = [script, str(port), upstream_url, naive_tokens, client]
            log = tmp / f"naive-{client}.log"
            proc = start(args, env, url, log, program=sys.executable, any_answer=True)
            procs.append(proc)
            return proc, url

        naive, naive_url = start_naive("aiohttp")
        naive_h1, naive_h1_url = start_naive("http1")
        granian = shutil.which("granian") or str(Path(sys.executable).parent / "granian")
        under_granian: subprocess.Popen[bytes] | None = None
        if Path(granian).exists():
            port = free_port()
            granian_url = f"http://127.0.0.1:{port}"
            under_granian = start(
                [
                    "--interface",
                    "asgi",
                    "--loop",
                    "uvloop",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    "asgi_app:app",
                ],
                {
                    **genv,
                    "TOKENWARD_PORT": str(port),
                    "TOKENWARD_PUBLIC_URL": granian_url,
                    "PYTHONPATH": str(Path(__file__).parent),
                },
                f"{granian_url}/healthz",
                tmp / "granian.log",
                program=granian,
            )
            procs.append(under_granian)
        else:
            print("tw-g skipped: granian is not installed (pip install granian)")
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
        paths: list[tuple[str, str, Path]] = [("direct", upstream_url, direct_lua)]
        if front_url:
            paths.append(("nginx", front_url, proxy_lua))
        paths += [
            ("naive", naive_url, proxy_lua),
            ("naive-h1", naive_h1_url, proxy_lua),
            ("tw-1", gateway_url, proxy_lua),
            ("tw-1a", aiohttp_url, proxy_lua),
        ]
        if under_granian is not None:
            paths.append(("tw-g", granian_url, proxy_lua))
        if two_workers_url:
            paths.append(("tw-2", two_workers_url, proxy_lua))
        if baseline is not None:
            paths.append(("tw-base", baseline_url, proxy_lua))
        if args.pin:
            global WRK_CORE
            WRK_CORE = 1
            proxies = (gateway, with_aiohttp, naive, naive_h1, baseline, under_granian, two_workers)
            for core, group in ((0, proxies), (1, (nginx_proc,))):
                for proc in group:
                    if proc is not None:
                        for pid in descendants(proc.pid):
                            pin(pid, core)
        # Warm every path (connection pools, caches, bucket discovery).
        for _name, url, script in paths:
            wrk(url, script, 4, 1)

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
        at_one = {"direct", "naive", "tw-1"}
        # CPU per request at c=32: the proxy's own process(es), the upstream nginx, Redis.
        proxy_pids = {
            "naive": [naive.pid],
            "naive-h1": [naive_h1.pid],
            "tw-1": [gateway.pid],
            "tw-1a": [with_aiohttp.pid],
        }
        if under_granian is not None:
            proxy_pids["tw-g"] = descendants(under_granian.pid)
        if two_workers is not None:
            proxy_pids["tw-2"] = descendants(two_workers.pid)
        if baseline is not None:
            proxy_pids["tw-base"] = [baseline.pid]
        others = {"nginx": descendants(nginx_proc.pid) if nginx_proc else []}
        others["redis"] = [pid for pid in redis_pids() if two_workers is not None]
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for connections in (1, 32):
            for _ in range(args.rounds):
                for name, url, script in paths:
                    if connections == 1 and name not in at_one:
                        continue
                    watch = None
                    if connections == 32 and name in proxy_pids:
                        watch = {"proxy": proxy_pids[name], **others}
                    results.setdefault((name, connections), []).append(
                        wrk(url, script, connections, args.duration, watch)
                    )

        def med(name: str, c: int, key: str) -> float:
            return statistics.median(r[key] for r in results[(name, c)])

        print(
            f"tokenward /proxy against a {args.upstream} upstream, loopback, {args.users} users, "
            f"wrk -t1, {args.rounds}×{args.duration}s interleaved rounds (medians)"
        )
        print(f"{'path':<8} {'conns':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'errors':>7}")
        for name, c in results:
            print(
                f"{name:<8} {c:>5} {med(name, c, 'p50'):>8.3f} {med(name, c, 'p99'):>8.3f} "
                f"{med(name, c, 'rps'):>9.0f} {med(name, c, 'errors'):>7.0f}"
            )
        added_p50 = med("tw-1", 1, "p50") - med("direct", 1, "p50")
        naive_added = med("naive", 1, "p50") - med("direct", 1, "p50")
        tw1, naive_rps = med("tw-1", 32, "rps"), med("naive", 32, "rps")
        errors = sum(
            r["errors"]
            for (name, _c), runs in results.items()
            if name.startswith("tw")
            for r in runs
        )
        met = errors == 0
        verdict = added_p50 <= 0.5
        met &= verdict
        print(
            f"added p50 at c=1: tokenward +{added_p50:.3f} ms (target ≤ 0.5) "
            f"{'met' if verdict else 'MISSED'}; naive +{naive_added:.3f} ms"
        )
        if front_url:
            limit = med("nginx", 32, "rps")
            print(
                f"throughput at c=32 against nginx proxy_pass ({limit:.0f}/s): "
                f"naive {naive_rps / limit:.0%}, tw-1 {tw1 / limit:.0%}"
            )
        verdict = tw1 >= naive_rps
        met &= verdict
        print(
            f"tw-1 / naive at c=32 = {tw1 / naive_rps:.0%} (target ≥ 100%) "
            f"{'met' if verdict else 'MISSED'}"
        )
        tw1a, naive_h1_rps = med("tw-1a", 32, "rps"), med("naive-h1", 32, "rps")
        print(
            f"upstream client at c=32: tokenward's HTTP/1.1 client {tw1:.0f}/s, aiohttp's "
            f"{tw1a:.0f}/s ({tw1 / tw1a:.2f}×); the naive proxy on it "
            f"{naive_h1_rps / naive_rps:.2f}× on aiohttp's"
        )
        if under_granian is not None:
            twg = med("tw-g", 32, "rps")
            print(
                f"server at c=32: tokenward under granian {twg:.0f}/s, under uvicorn "
                f"{tw1:.0f}/s ({twg / tw1:.2f}×)"
            )
        if baseline is not None:
            base_rps = med("tw-base", 32, "rps")
            print(
                f"against the baseline at c=32: tw-1 {tw1:.0f}/s, tw-base {base_rps:.0f}/s "
                f"({tw1 / base_rps:.2f}×); CPU per request {med('tw-1', 32, 'cpu_proxy'):.0f} "
                f"against {med('tw-base', 32, 'cpu_proxy'):.0f} µs"
            )
        print(f"CPU per request at c=32, µs ({os.cpu_count()} cores shared by all of them):")
        print(f"{'path':<8} {'proxy':>7} {'wrk':>7} {'nginx':>7} {'redis':>7}")
        for name in proxy_pids:
            print(
                f"{name:<8} {med(name, 32, 'cpu_proxy'):>7.0f} {med(name, 32, 'cpu_wrk'):>7.0f} "
                f"{med(name, 32, 'cpu_nginx'):>7.0f} {med(name, 32, 'cpu_redis'):>7.0f}"
            )
        if two_workers_url:
            tw2 = med("tw-2", 32, "rps")
            verdict = tw2 >= 1.6 * tw1
            met &= verdict
            line = f"tw-2 / tw-1 at c=32 = {tw2 / tw1:.2f}× (target ≥ 1.6×) " + (
                "met" if verdict else "MISSED"
            )
            if args.pin:
                line += " (with --pin both workers share one core: not a measure of scaling)"
            else:
                # Two workers can at best keep every core busy: cores / (CPU per request of
                # the workers, wrk, nginx and Redis together), measured in this run.
                per_request = sum(
                    med("tw-2", 32, key)
                    for key in ("cpu_proxy", "cpu_wrk", "cpu_nginx", "cpu_redis")
                )
                ceiling = (os.cpu_count() or 1) * 1e6 / per_request
                line += (
                    f"; with wrk, nginx and Redis on the same {os.cpu_count()} cores, this "
                    f"run's CPU per request allows at most {ceiling:.0f}/s = "
                    f"{ceiling / tw1:.2f}× (two workers reached {tw2 / ceiling:.0%} of that)"
                )
            print(line)
        stats = httpx.get(f"{sandbox_url}/_sandbox/stats").json()
        print(
            f"sandbox: {stats['requests']['total']} requests, {stats['rate_limited']} 429s; "
            f"non-2xx/socket errors in tokenward's wrk runs: {errors:.0f}"
        )
        print("targets:", "met" if met else "MISSED")
        return 0 if met else 1
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
