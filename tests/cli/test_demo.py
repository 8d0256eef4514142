"""``tokenward demo`` (what ``make demo`` runs) works offline and quickly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_the_whole_flow_offline() -> None:
    tokenward = Path(sys.executable).parent / "tokenward"
    started = time.monotonic()
    proc = subprocess.run(
        [str(tokenward), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(Path.home())},
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "is ACTIVE (Discord user 1100000000000000001)" in out
    for tool in ("discord_get_my_user", "discord_list_my_guilds", "discord_resolve_invite"):
        assert f"✓ {tool}" in out
    assert "GET /api/users/@me → 200" in out
    assert "refreshed the token 1 time(s)" in out
    assert "Traceback" not in proc.stderr
    assert elapsed < 30


@pytest.mark.slow
def test_demo_keep_leaves_the_dashboard_up_for_its_throwaway_operator() -> None:
    import re
    import signal

    import httpx

    tokenward = Path(sys.executable).parent / "tokenward"
    proc = subprocess.Popen(
        [str(tokenward), "demo", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "300", "HOME": str(Path.home())},
    )
    try:
        assert proc.stdout is not None
        found = None
        deadline = time.monotonic() + 60
        while found is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            found = re.search(
                r"Dashboard: (http://127\.0\.0\.1:\d+/dashboard) — sign in as (\S+) with "
                r"password (\S+)",
                line,
            )
        assert found is not None, "the demo printed no dashboard line"
        url, username, password = found.groups()
        with httpx.Client(trust_env=False, timeout=30) as browser:
            page = browser.get(f"{url}/sign-in")
            token = re.search(r'name="form_token" value="([^"]+)"', page.text)
            assert token is not None
            signed_in = browser.post(
                f"{url}/sign-in",
                data={"username": username, "password": password, "form_token": token.group(1)},
            )
            assert signed_in.status_code == 303
            accounts = browser.get(f"{url}/accounts")
            assert accounts.status_code == 200
            assert "user_123" in accounts.text
            assert "ACTIVE" in accounts.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
