"""Benchmark: does tokenward stay as fast with a million connected accounts as with a thousand?

Two PostgreSQL databases are made and migrated: a *small* one holding ``--small`` connected
accounts (default 1,000) and a *large* one holding ``--accounts`` (default 1,000,000). Each gets
its own ``tokenward serve`` process, both against one ``tokenward sandbox`` on loopback. On each
gateway ``--users`` identifiers are linked through the real consent flow; the rest of the rows
are seeded straight into the table with PostgreSQL's ``COPY`` (encrypted tokens, bound to their
rows like the vault's own, ``ACTIVE``, spread over the identifiers ``seed_0000000``…), which
takes about a minute per million rows here.

Then, in interleaved rounds so both gateways see the same machine:

* a tool call (``POST /api/v1/tools/execute``, ``discord_get_my_user``) and a proxied call
  (``GET /proxy/api/v10/users/@me``), rotating over the linked users, one connection (``wrk``):
  p50 and p99 on the large database against the small one (target: p50 within 10 %);
* listing accounts 100 at a time (``GET /api/v1/connected-accounts``): the first page, a page
  after the millionth row (keyset ``page_token``), and a lookup by ``identifier`` alone, timed
  sequentially (target: the last page within 10 % of the first, or within 1 ms);
* the large gateway's resident memory after the run (target: < 200 MB).

    .venv/bin/python bench/scale.py [--accounts 1000000] [--small 1000] [--users 32]
        [--duration 5] [--rounds 3] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Needs ``wrk`` (``apt-get install -y wrk``) and a PostgreSQL server whose user may create
databases (the two are dropped at the end). Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))

from proxy import TOKENWARD, start, stop, wrk

from tokenward._serving import free_port
from tokenward.sandbox.browser import walk_consent
from tokenward.vault.crypto import aad, load_keyring
from tokenward.vault.db import normalize_database_url, upgrade
from tokenward.vault.models import new_id
from tokenward.vault.repository import _encode_page_token

SEED_BATCH = 20_000


@dataclass
class Gateway:
    label: str
    database: str
    url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    token: str = ""
    identifiers: list[str] = field(default_factory=list)
    rows: int = 0

    def cli(self, *argv: str, stdin: str | None = None) -> dict[str, Any]:
        done = subprocess.run(
            [TOKENWARD, *argv, "--json"],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        )
        return dict(json.loads(done.stdout))

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def _admin(server_url: str, *sql: str) -> None:
    import asyncpg

    url = make_url(server_url)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "test",
    )
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _seed(database_url: str, connection_id: str, count: int, keys: str) -> float:
    """COPY ``count`` ACTIVE accounts with encrypted tokens into ``connected_accounts``."""
    import asyncpg

    keyring = load_keyring(keys, Path(tempfile.gettempdir()))
    url = make_url(database_url)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    columns = (
        "id",
        "connection_id",
        "identifier",
        "status",
        "granted_scopes",
        "provider_user_id",
        "access_token_enc",
        "refresh_token_enc",
        "expires_at",
        "version",
        "created_at",
        "updated_at",
    )
    started = time.perf_counter()
    now = time.time()
    try:
        done = 0
        while done < count:
            rows = []
            for i in range(done, min(count, done + SEED_BATCH)):
                rid = new_id(now + i / 1000)
                rows.append(
                    (
                        rid,
                        connection_id,
                        f"seed_{i:07d}",
                        "ACTIVE",
                        "identify guilds",
                        str(1_000_000_000_000_000_000 + i),
                        keyring.encrypt(
                            secrets.token_urlsafe(22),
                            aad("connected_accounts", "access_token_enc", rid),
                        ),
                        keyring.encrypt(
                            secrets.token_urlsafe(22),
                            aad("connected_accounts", "refresh_token_enc", rid),
                        ),
                        now + 604_800,
                        1,
                        now,
                        now,
                    )
                )
            await conn.copy_records_to_table("connected_accounts", records=rows, columns=columns)
            done += len(rows)
            if done % 100_000 < SEED_BATCH or done == count:
                rate = done / (time.perf_counter() - started)
                print(f"  seeded {done:,}/{count:,} ({rate:,.0f} rows/s)", flush=True)
        await conn.execute("ANALYZE connected_accounts")
    finally:
        await conn.close()
    return time.perf_counter() - started


def _timed_get(client: httpx.Client, url: str, headers: dict[str, str], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        response = client.get(url, headers=headers)
        samples.append((time.perf_counter() - t) * 1000)
        response.raise_for_status()
    return samples


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TOKENWARD_TEST_POSTGRES_URL")
        or f"postgresql://{os.environ.get('PGUSER', 'postgres')}@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="tokenward-scale-"))
    server = normalize_database_url(args.postgres)
    suffix = secrets.token_hex(4)
    keys = "b:" + base64.b64encode(os.urandom(32)).decode()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    gateways: list[Gateway] = []
    for label in ("small", "large"):
        name = f"tw_scale_{label}_{suffix}"
        database = make_url(server).set(database=name).render_as_string(hide_password=False)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **base_env,
            "TOKENWARD_DATA_DIR": str(tmp / label),
            "TOKENWARD_DATABASE_URL": database,
            "TOKENWARD_ENCRYPTION_KEYS": keys,
            "TOKENWARD_PUBLIC_URL": url,
            "TOKENWARD_PORT": str(port),
            "TOKENWARD_DISCORD_BASE_URL": sandbox_url,
            "TOKENWARD_LOG_LEVEL": "WARNING",
        }
        gateways.append(Gateway(label, database, url, env))
    small, large = gateways
    asyncio.run(
        _admin(server, *(f'CREATE DATABASE "{make_url(g.database).database}"' for g in gateways))
    )
    sandbox = start(
        ["sandbox", "--port", str(sandbox_port), "--no-rate-limits"],
        base_env,
        f"{sandbox_url}/_sandbox/stats",
        tmp / "sandbox.log",
    )
    try:
        for g, rows in ((small, args.small), (large, args.accounts)):
            upgrade(g.database)
            g.proc = start(["serve"], g.env, f"{g.url}/healthz", tmp / f"{g.label}.log")
            app = httpx.post(
                f"{sandbox_url}/_sandbox/applications",
                json={"redirect_uris": ["http://127.0.0.1:9/"]},
            ).json()
            connection = g.cli(
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
            client = g.cli("api-clients", "create", "--name", "bench")
            g.token = httpx.post(
                f"{g.url}/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": str(client["client_id"]),
                    "client_secret": str(client["client_secret"]),
                },
            ).json()["access_token"]
            g.identifiers = [f"linked_{i}" for i in range(args.users)]

            def link(identifier: str, g: Gateway = g) -> None:
                body = httpx.post(
                    f"{g.url}/api/v1/connected-accounts/authorization-link",
                    json={"connection_name": "discord", "identifier": identifier},
                    headers=g.auth,
                ).json()
                assert walk_consent(body["link"]).status_code == 200

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(link, g.identifiers))
            seed = max(0, rows - args.users)
            print(f"{g.label}: seeding {seed:,} accounts", flush=True)
            took = asyncio.run(_seed(g.database, str(connection["id"]), seed, keys))
            g.rows = seed + args.users
            print(f"{g.label}: {g.rows:,} accounts ({took:.0f} s to seed)", flush=True)

        scripts: dict[tuple[str, str], Path] = {}
        for g in gateways:
            users = ",\n".join(
                "{"
                + ", ".join(
                    f'["{k}"] = "{v}"'
                    for k, v in {**g.auth, "Content-Type": "application/json"}.items()
                )
                + "}"
                for _ in g.identifiers
            )
            idents = ", ".join(f'"{i}"' for i in g.identifiers)
            tool = tmp / f"{g.label}-tool.lua"
            tool.write_text(
                f"""
local headers = {{ {users} }}
local idents = {{ {idents} }}
local n = #idents
local i = 0
request = function()
  i = (i % n) + 1
  local body = '{{"tool_name": "discord_get_my_user", "connection_name": "discord", ' ..
    '"identifier": "' .. idents[i] .. '", "tool_input": {{}}}}'
  return wrk.format("POST", "/api/v1/tools/execute", headers[i], body)
end
"""
            )
            proxy = tmp / f"{g.label}-proxy.lua"
            proxy.write_text(
                f"""
local idents = {{ {idents} }}
local n = #idents
local i = 0
request = function()
  i = (i % n) + 1
  return wrk.format("GET", "/proxy/api/v10/users/@me", {{
    ["Authorization"] = "Bearer {g.token}",
    ["connection_name"] = "discord", ["identifier"] = idents[i]}})
end
"""
            )
            scripts[(g.label, "tool")] = tool
            scripts[(g.label, "proxy")] = proxy
            for kind in ("tool", "proxy"):  # warm caches, pools, buckets
                wrk(g.url, scripts[(g.label, kind)], 2, 1)

        calls: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for kind in ("tool", "proxy"):
                for g in gateways:
                    calls.setdefault((g.label, kind), []).append(
                        wrk(g.url, scripts[(g.label, kind)], 1, args.duration)
                    )

        def med(label: str, kind: str, key: str) -> float:
            return statistics.median(r[key] for r in calls[(label, kind)])

        lists: dict[tuple[str, str], float] = {}
        with httpx.Client(trust_env=False, timeout=30) as http:
            for g in gateways:
                last = asyncio.run(_nth_id(g.database, g.rows - 100))
                probe = f"seed_{max(0, g.rows - args.users - 50):07d}"
                cases = {
                    "first page": f"{g.url}/api/v1/connected-accounts?page_size=100",
                    "page after the last 100 rows": (
                        f"{g.url}/api/v1/connected-accounts?page_size=100"
                        f"&page_token={_encode_page_token(last)}"
                    ),
                    "identifier alone": (f"{g.url}/api/v1/connected-accounts?identifier={probe}"),
                    "identifier + connection": (
                        f"{g.url}/api/v1/connected-accounts?connection_name=discord"
                        f"&identifier={probe}"
                    ),
                }
                for case, url in cases.items():
                    _timed_get(http, url, g.auth, 3)
                    lists[(g.label, case)] = statistics.median(_timed_get(http, url, g.auth, 25))
        assert large.proc is not None
        rss = _rss_mb(large.proc.pid)

        print()
        print(
            f"tokenward with {large.rows:,} vs {small.rows:,} connected accounts (PostgreSQL), "
            f"{args.users} linked users each, wrk -c1, {args.rounds}×{args.duration}s "
            "interleaved rounds (medians)"
        )
        print(
            f"{'call':<7} {'accounts':>10} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}"
        )
        ok = True
        errors = 0.0
        for kind in ("tool", "proxy"):
            for g in gateways:
                errors += sum(r["errors"] for r in calls[(g.label, kind)])
                print(
                    f"{kind:<7} {g.rows:>10,} {med(g.label, kind, 'p50'):>8.3f} "
                    f"{med(g.label, kind, 'p99'):>8.3f} {med(g.label, kind, 'rps'):>8.0f} "
                    f"{sum(r['errors'] for r in calls[(g.label, kind)]):>7.0f}"
                )
            ratio = med("large", kind, "p50") / med("small", kind, "p50")
            verdict = ratio <= 1.10
            ok &= verdict
            print(
                f"  {kind} p50 large/small = {ratio:.2f} (target ≤ 1.10) "
                f"{'ok' if verdict else 'MISSED'}"
            )
        print()
        print(f"{'listing (100 per page)':<32} {'accounts':>10} {'median ms':>10}")
        for case in (
            "first page",
            "page after the last 100 rows",
            "identifier alone",
            "identifier + connection",
        ):
            for g in gateways:
                print(f"{case:<32} {g.rows:>10,} {lists[(g.label, case)]:>10.2f}")
        first, last_page = (
            lists[("large", "first page")],
            lists[("large", "page after the last 100 rows")],
        )
        verdict = last_page <= max(first * 1.10, first + 1.0)
        ok &= verdict
        print(
            f"  last page / first page at {large.rows:,} rows = {last_page / first:.2f} "
            f"(target ≤ 1.10 or within 1 ms) {'ok' if verdict else 'MISSED'}"
        )
        lookup = lists[("large", "identifier alone")]
        verdict = lookup <= max(first * 1.10, first + 1.0)
        ok &= verdict
        print(
            f"  identifier alone at {large.rows:,} rows: {lookup:.2f} ms vs first page "
            f"{first:.2f} ms {'ok' if verdict else 'MISSED'}"
        )
        verdict = rss < 200
        ok &= verdict
        print(
            f"serve RSS with {large.rows:,} accounts after the run: {rss:.0f} MB (target < 200) "
            f"{'ok' if verdict else 'MISSED'}"
        )
        ok &= errors == 0
        print(f"non-2xx/socket errors in wrk runs: {errors:.0f}")
        print("targets:", "met" if ok else "MISSED")
        return 0 if ok else 1
    finally:
        for g in gateways:
            if g.proc is not None:
                stop(g.proc)
        stop(sandbox)
        asyncio.run(
            _admin(
                server,
                *(
                    f'DROP DATABASE IF EXISTS "{make_url(g.database).database}" WITH (FORCE)'
                    for g in gateways
                ),
            )
        )
        shutil.rmtree(tmp, ignore_errors=True)


async def _nth_id(database_url: str, n: int) -> str:
    import asyncpg

    url = make_url(database_url)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        value = await conn.fetchval(
            "SELECT id FROM connected_accounts ORDER BY id OFFSET $1 LIMIT 1", max(0, n - 1)
        )
    finally:
        await conn.close()
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
