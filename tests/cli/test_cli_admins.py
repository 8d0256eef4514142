"""``tokenward admins``: operators made with the password on stdin, listed without it, deleted;
bad input is one line naming the field and changes nothing."""

from __future__ import annotations

import sqlite3

import pytest

from .conftest import Workspace

pytestmark = pytest.mark.slow  # one `tokenward` process per command

PASSWORD = "correct horse battery staple"


def test_operators_from_the_command_line(workspace: Workspace) -> None:
    cli = workspace.cli
    created = cli.json(
        "admins", "create", "--username", "alice", "--password-stdin", input=PASSWORD + "\n"
    )
    assert created["username"] == "alice"
    listed = cli.json("admins", "list")["admins"]
    assert [a["username"] for a in listed] == ["alice"]
    assert listed[0]["last_sign_in_at"] is None
    assert PASSWORD not in cli.ok("admins", "list").stdout

    # Only a hash is stored, and not of the line break.
    with sqlite3.connect(workspace.data_dir / "tokenward.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM admins").fetchone()
    assert stored.startswith("scrypt$")
    assert PASSWORD not in stored

    line = cli.error_line(
        "admins", "create", "--username", "alice", "--password-stdin", input=PASSWORD
    )
    assert "already exists" in line
    line = cli.error_line(
        "admins", "create", "--username", "bob", "--password-stdin", input="short"
    )
    assert "password" in line
    assert "12" in line
    line = cli.error_line(
        "admins", "create", "--username", "bad name", "--password-stdin", input=PASSWORD
    )
    assert "username" in line
    line = cli.error_line("admins", "create", "--username", "bob", input=PASSWORD)
    assert "--password-stdin" in line
    line = cli.error_line("admins", "create", "--username", "bob", "--password-stdin", input="")
    assert "password" in line
    assert [a["username"] for a in cli.json("admins", "list")["admins"]] == ["alice"]

    assert cli.json("admins", "delete", "alice") == {"deleted": True, "username": "alice"}
    assert cli.json("admins", "list") == {"admins": []}
    assert "no operator" in cli.error_line("admins", "delete", "alice")
