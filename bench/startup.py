"""Benchmark: how long ``tokenward serve`` takes from exec to ready, against two references.

Restarts of an existing deployment are what is measured: a fresh temporary data directory
(SQLite, the default) with ``TOKENWARD_ENCRYPTION_KEYS`` set is created and migrated by a first,
unmeasured ``tokenward serve``; then, interleaved over N rounds, each case is started as a real
process and timed from just before exec until it answers:

* serve:  ``tokenward serve`` on a free port, until ``GET /readyz`` answers 200 (database
  reachable and migrated, keys loaded);
* naive:  ``bench/naive_proxy.py`` (thirty lines of Starlette on uvicorn, the floor for any
  Python ASGI server here), until any HTTP answer (its 404 counts);
* help:   ``tokenward --help``, until it exits (the command people type).

Python's bytecode cache: an installed tokenward has its modules compiled (pip writes the
``.pyc`` files), so by default every case runs with ``PYTHONPYCACHEPREFIX`` pointing at a
temporary directory (and ``PYTHONDONTWRITEBYTECODE`` unset), which the unmeasured first runs
fill; a source checkout is left untouched. ``--no-bytecode-cache`` keeps the environment's
settings instead (with ``PYTHONDONTWRITEBYTECODE=1`` an editable install compiles every
tokenward module at every start, about 0.2 s more).

Prints min/p50/max per case and "serve ready p50 X s (target ≤ 1.5 s) met/MISSED"; exits
non-zero when the target is missed. The URL is polled every 10 ms, so figures are ±10 ms.

    .venv/bin/python bench/startup.py [--rounds 5] [--target 1.5] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tokenward._serving import free_port

TOKENWARD = str(Path(sys.executable).parent / "tokenward")
NAIVE = str(Path(__file__).with_name("naive_proxy.py"))
POLL = 0.01


def _wait(
    proc: subprocess.Popen[bytes], url: str, answered: Callable[[httpx.Response], bool]
) -> float:
    """Poll ``url`` until ``answered`` says yes; the ``time.monotonic()`` of that answer."""
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=1) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{proc.args!r} exited with status {proc.returncode}")
            try:
                if answered(client.get(url)):
                    return time.monotonic()
            except httpx.TransportError:
                pass
            time.sleep(POLL)
    raise SystemExit(f"{url} did not answer within 30 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def time_serve(env: dict[str, str], log: Path) -> float:
    port = free_port()
    run_env = {
        **env,
        "TOKENWARD_PORT": str(port),
        "TOKENWARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    with log.open("ab") as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            [TOKENWARD, "serve"], env=run_env, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        ready = _wait(proc, f"http://127.0.0.1:{port}/readyz", lambda r: r.status_code == 200)
    finally:
        _stop(proc)
    return ready - start


def time_naive(env: dict[str, str]) -> float:
    port = free_port()
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, NAIVE, str(port), "http://127.0.0.1:9", "{}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        answered = _wait(proc, f"http://127.0.0.1:{port}/", lambda r: True)
    finally:
        _stop(proc)
    return answered - start


def time_help(env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run([TOKENWARD, "--help"], env=env, stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case")
    parser.add_argument("--target", type=float, default=1.5, help="seconds, serve's p50")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the environment's bytecode settings (see above)",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tokenward-bench-startup-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    env.update(
        {
            "TOKENWARD_DATA_DIR": str(tmp / "data"),
            "TOKENWARD_ENCRYPTION_KEYS": "b:" + base64.b64encode(os.urandom(32)).decode(),
            "TOKENWARD_LOG_LEVEL": "WARNING",
        }
    )
    if not args.no_bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    log = tmp / "serve.log"
    try:
        cases: dict[str, Callable[[], float]] = {
            "serve": lambda: time_serve(env, log),
            "naive": lambda: time_naive(env),
            "help": lambda: time_help(env),
        }
        # Not measured: serve's first run creates and migrates the database; every first run
        # fills the bytecode cache.
        first = {name: run() for name, run in cases.items()}
        print("first runs (not counted): " + "  ".join(f"{k} {v:.3f} s" for k, v in first.items()))
        results: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(args.rounds):
            for name, run in cases.items():
                results[name].append(run())
            print(
                f"round {round_ + 1}/{args.rounds}: "
                + "  ".join(f"{name} {results[name][-1]:.3f} s" for name in cases),
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    labels = {
        "serve": "tokenward serve → /readyz 200",
        "naive": "naive Starlette/uvicorn → first answer",
        "help": "tokenward --help → exit",
    }
    print()
    print(f"{'case':<40} {'min':>7} {'p50':>7} {'max':>7}")
    for name, values in results.items():
        print(
            f"{labels[name]:<40} {min(values):>6.3f}s {statistics.median(values):>6.3f}s "
            f"{max(values):>6.3f}s"
        )
    p50 = statistics.median(results["serve"])
    over = p50 - statistics.median(results["naive"])
    print(f"\nserve over the naive app: {over:+.3f} s")
    met = p50 <= args.target
    print(f"serve ready p50 {p50:.3f} s (target ≤ {args.target} s) {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
