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


# A typer CLI with a sub-app and two commands: the floor of any `--help` on this machine.
_MINIMAL_CLI = """
import typer
app = typer.Typer()
things = typer.Typer()
app.add_typer(things, name="things")
@app.command()
def serve(port: int = 8080) -> None:
    "Serve."
@things.command()
def show(json: bool = False) -> None:
    "Show."
app()
"""
# What made `--help` take most of a second: none of it is needed to print help.
_HEAVY = ("sqlalchemy", "aiohttp", "fastapi", "starlette", "uvicorn", "httpx", "mcp", "pydantic")


def test_help_starts_fast_and_imports_no_server_stack(workspace: Workspace) -> None:
    """`tokenward --help` imports none of the server, database or SDK stacks, and takes at most
    twice a minimal typer CLI's `--help` measured in the same run (an absolute bound would
    depend on the machine: 0.4 s was 2.3x the time on one, 0.95x on a slower one)."""

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

    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv = ['tokenward', '--help']\n"
            "from tokenward.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)",
        ],
        env=workspace.cli.env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr.split()
    assert (
        "Usage"
        in subprocess.run(
            [*tokenward_command(), "--help"], env=workspace.cli.env, capture_output=True, text=True
        ).stdout
    )
    heavy = sorted(m for m in loaded if m.split(".")[0] in _HEAVY or m.startswith("tokenward.sdk"))
    assert heavy == [], heavy

    help_s = best([*tokenward_command(), "--help"])
    floor_s = best([sys.executable, "-c", _MINIMAL_CLI, "--help"])
    assert help_s < 2 * floor_s, (
        f"`tokenward --help` took {help_s:.3f} s (best of 5); a minimal typer CLI's --help "
        f"takes {floor_s:.3f} s on this machine"
    )
