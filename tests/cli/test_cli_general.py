"""The CLI as a whole (issue 9, "CLI"): one line for every failure, ``--version``, which vault a
listing comes from, ``--json`` documents equal to the API's, Ctrl-C in ``tokenward mcp``, and
start-up time."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from e2e.processes import tokenward_command
from tokenward import __version__

from .conftest import GRACE, Workspace

pytestmark = pytest.mark.slow  # one `tokenward` process per command


def test_version(workspace: Workspace) -> None:
    assert workspace.cli.ok("--version").stdout == f"tokenward {__version__}\n"


def test_usage_mistakes_are_one_line(workspace: Workspace) -> None:
    cli = workspace.cli
    for args, line in (
        (
            ("connections", "create"),
            "error: Missing option '--name'. (see `tokenward connections create --help`)",
        ),
        (("nope",), "error: No such command 'nope'. (see `tokenward --help`)"),
    ):
        result = cli.run(*args)
        assert result.code == 2, result.describe()  # a usage mistake, as Click counts it
        assert result.stdout == ""
        assert result.stderr.splitlines() == [line]
    refused = cli.run("keys", "rotate", "--batch-size", "0", "--json")
    assert refused.code == 2
    assert json.loads(refused.stdout)["error"]["code"] == "USAGE_ERROR"
    assert "Traceback" not in refused.stderr


def test_tables_name_the_vault_and_json_does_not(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")
    ws.link("user_1")
    database = ws.data_dir / "tokenward.db"
    for group in ("accounts", "connections"):
        table = ws.cli.ok(group, "list").stdout
        assert table.splitlines()[0] == (f"SQLite database {database} (data dir {ws.data_dir})"), (
            table
        )
        assert str(ws.data_dir) not in ws.cli.ok(group, "list", "--json").stdout


def test_json_lists_equal_the_api(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")
    ws.consent("user_1", user_id=GRACE)  # starts the gateway
    ws.link("user_2")
    client = ws.cli.json("api-clients", "create", "--name", "compare")
    token = httpx.post(
        f"{ws.public_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    ).json()["access_token"]

    def api(path: str) -> Any:
        response = httpx.get(f"{ws.public_url}{path}", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return response.json()

    accounts = ws.cli.json("accounts", "list")
    assert set(accounts) == {"connected_accounts", "next_page_token"}
    assert accounts == api("/api/v1/connected-accounts?page_size=200")
    assert len(accounts["connected_accounts"]) == 2
    assert ws.cli.json("connections", "list") == api("/api/v1/connections")
    assert ws.cli.json("tools", "list") == api("/api/v1/tools")


def test_ctrl_c_ends_tokenward_mcp_in_a_terminal(workspace: Workspace) -> None:
    ws = workspace
    ws.connect("discord")
    pid, fd = pty.fork()
    if pid == 0:  # the child: `tokenward mcp` with the pty as its terminal
        command = tokenward_command()
        args = [*command, "mcp", "--connection", "discord", "--identifier", "me"]
        os.execve(args[0], args, ws.cli.env)
    output = b""

    def read_until(marker: bytes, timeout: float) -> bool:
        nonlocal output
        deadline = time.monotonic() + timeout
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    return marker in output
                if not chunk:
                    break
                output += chunk
        return marker in output

    try:
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "pty-test", "version": "1"},
            },
        }
        os.write(fd, json.dumps(initialize).encode() + b"\n")
        assert read_until(b'"serverInfo"', 30), output.decode(errors="replace")
        # The server now waits on stdin, as it does between an assistant's requests.
        os.write(fd, b"\x03")  # Ctrl-C: the terminal sends SIGINT
        pressed = time.monotonic()
        code: int | None = None
        while time.monotonic() - pressed < 10:
            read_until(b"\x00", 0.1)  # keep draining the terminal
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
        took = time.monotonic() - pressed
    finally:
        if code is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert code == 130, f"tokenward mcp did not end on Ctrl-C within 10 s:\n{text}"
    assert took < 5, took
    assert "Traceback" not in text


def test_help_starts_in_under_0_4_s(workspace: Workspace) -> None:
    def best(command: list[str], runs: int = 5) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(
                command,
                env=workspace.cli.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            times.append(time.perf_counter() - started)
        return min(times)

    help_s = best([*tokenward_command(), "--help"])
    python_s = best([sys.executable, "-c", "pass"])
    assert help_s < 0.4, (
        f"`tokenward --help` took {help_s:.3f} s (best of 5); "
        f"`python -c pass` takes {python_s:.3f} s on this machine"
    )
