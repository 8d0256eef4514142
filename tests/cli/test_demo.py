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
