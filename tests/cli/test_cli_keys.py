"""The key file as an operator meets it: lost, incomplete, listed and retired (issue 9).

A missing ``encryption-keys.json`` in front of a database that holds ciphertext used to be
replaced silently by a fresh key, which could open nothing that was stored; every command and
``serve`` now refuse, in one line, and say how to restore it.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from e2e.processes import new_encryption_keys
from tokenward.vault.crypto import add_key_to_file, ensure_key_file

from .conftest import GRACE, Workspace, WorkspaceFactory
from .serving import run_serve

pytestmark = pytest.mark.slow  # one `tokenward` process per command

# Commands that open the vault; each must refuse a lost key file the same way.
VAULT_COMMANDS = [
    ("connections", "list"),
    ("accounts", "list"),
    ("api-clients", "list"),
    ("link", "--connection", "discord", "--identifier", "user_1"),
    ("keys", "list"),
    ("keys", "rotate"),
    ("keys", "retire", "k-nope"),
    ("tools", "run", "discord_get_my_user", "--connection", "discord", "--identifier", "u"),
]


def key_file(ws: Workspace) -> Path:
    return ws.data_dir / "encryption-keys.json"


def file_kids(ws: Workspace) -> list[str]:
    return [e["kid"] for e in json.loads(key_file(ws).read_text())["keys"]]


def serve_refusal(ws: Workspace) -> subprocess.CompletedProcess[str]:
    """``tokenward serve --port 0`` that must stop before serving."""
    return run_serve(ws.cli.env, "--port", "0")


def test_a_fresh_database_gets_a_key_file(make_workspace: WorkspaceFactory) -> None:
    ws = make_workspace(encryption_keys=None)
    assert not key_file(ws).exists()
    assert ws.cli.json("connections", "list") == {"connections": []}
    assert stat.S_IMODE(key_file(ws).stat().st_mode) == 0o600
    kids = file_kids(ws)
    ws.connect("discord")
    assert file_kids(ws) == kids, "the key file must be generated once"
    assert ws.envelope_kids() == set(kids)


def test_a_lost_key_file_is_refused_by_every_command_and_by_serve(
    make_workspace: WorkspaceFactory,
) -> None:
    ws = make_workspace(encryption_keys=None)
    ws.connect("discord")
    (kid,) = file_kids(ws)
    backup = ws.data_dir.parent / "backup-keys.json"
    key_file(ws).rename(backup)

    for command in VAULT_COMMANDS:
        line = ws.cli.error_line(*command)
        assert f"encryption key file {key_file(ws)} is missing" in line, line
        assert "TOKENWARD_ENCRYPTION_KEYS is unset" in line
        assert "database holds encrypted secrets" in line
        assert repr(kid) in line
        assert "restore the key file from your backup" in line
        assert not key_file(ws).exists(), f"{command} generated a new key file"
    refused = ws.cli.json_error("accounts", "list")
    assert refused["error"]["code"] == "KEY_FILE_MISSING"
    assert refused["error"]["details"]["kids"] == {kid: 1}

    served = serve_refusal(ws)
    assert served.returncode == 1, served
    assert served.stdout == "", "no banner before the refusal"
    lines = served.stderr.strip().splitlines()
    assert len(lines) == 1, served.stderr
    assert lines[0].startswith("error: encryption key file ")
    assert "restore the key file" in lines[0]
    assert not key_file(ws).exists()

    # Restored, everything works again, with the same key.
    backup.rename(key_file(ws))
    assert [c["name"] for c in ws.cli.json("connections", "list")["connections"]] == ["discord"]
    assert file_kids(ws) == [kid]


def test_a_key_file_without_a_key_the_database_uses_is_refused(
    make_workspace: WorkspaceFactory,
) -> None:
    ws = make_workspace(encryption_keys=None)
    ws.connect("discord")
    (old,) = file_kids(ws)
    # Someone replaced the key file with another one (a different install's, say).
    key_file(ws).unlink()
    ensure_key_file(key_file(ws))
    (other,) = file_kids(ws)

    line = ws.cli.error_line("accounts", "list")
    assert f"key id(s) {old!r} (1 row)" in line
    assert "not configured" in line
    assert f"key file {key_file(ws)} has {other!r}" in line
    assert ws.cli.json_error("connections", "list")["error"]["code"] == "KEY_MISSING"

    # The same with keys from the environment that lack the stored key id.
    env = {"TOKENWARD_ENCRYPTION_KEYS": new_encryption_keys("k9")}
    line = ws.cli.error_line("connections", "list", env=env)
    assert f"{old!r} (1 row)" in line
    assert "TOKENWARD_ENCRYPTION_KEYS has 'k9'" in line
    served = serve_refusal(ws)
    assert served.returncode == 1
    assert "not configured" in served.stderr
    assert served.stdout == ""


def test_keys_list_shows_the_active_key_and_the_rows_each_key_opens(
    make_workspace: WorkspaceFactory,
) -> None:
    ws = make_workspace(encryption_keys=None)
    ws.connect("discord")
    ws.consent("user_1", user_id=GRACE)  # an account with tokens; its auth request too
    (first,) = file_kids(ws)

    listed = ws.cli.json("keys", "list")
    assert listed["source"] == "file"
    assert listed["key_file"] == str(key_file(ws))
    # connection + account + auth request each hold values under the one key
    assert [(k["kid"], k["active"], k["rows"]) for k in listed["keys"]] == [(first, True, 3)]
    assert listed["keys"][0]["created_at"]

    second = add_key_to_file(key_file(ws))  # a new active key, nothing re-encrypted yet
    listed = ws.cli.json("keys", "list")
    assert [(k["kid"], k["active"], k["rows"]) for k in listed["keys"]] == [
        (second, True, 0),
        (first, False, 3),
    ]
    table = ws.cli.ok("keys", "list").stdout
    assert first in table
    assert second in table
    assert str(key_file(ws)) in table


def test_keys_retire_refuses_a_key_in_use_or_active_then_removes_it(
    make_workspace: WorkspaceFactory,
) -> None:
    ws = make_workspace(encryption_keys=None)
    ws.connect("discord")
    ws.consent("user_1", user_id=GRACE)
    (old,) = file_kids(ws)
    new = add_key_to_file(key_file(ws))

    line = ws.cli.error_line("keys", "retire", old)
    assert f"3 row(s) still use key {old!r}" in line
    assert "run `tokenward keys rotate` first" in line
    assert ws.cli.json_error("keys", "retire", old)["error"]["code"] == "KEY_IN_USE"
    line = ws.cli.error_line("keys", "retire", new)
    assert f"{new!r} is the active key" in line
    assert "keys rotate" in line
    assert ws.cli.json_error("keys", "retire", "k-nope")["error"]["code"] == "KEY_NOT_FOUND"
    assert file_kids(ws) == [new, old], "a refused retire changes nothing"

    rotated = ws.cli.json("keys", "rotate")
    assert rotated["remaining"] == 0
    active = rotated["active_kid"]
    assert ws.cli.json("keys", "retire", new) == {
        "retired": new,
        "key_file": str(key_file(ws)),
        "keys": [active, old],
    }
    done = ws.cli.ok("keys", "retire", old).stdout
    assert f"Retired key {old!r}" in done
    assert file_kids(ws) == [active]
    assert stat.S_IMODE(key_file(ws).stat().st_mode) == 0o600
    # Everything still opens with the one key left.
    assert ws.show("user_1")["status"] == "ACTIVE"
    assert ws.envelope_kids() == {active}


def test_keys_retire_with_environment_keys_says_to_edit_the_variable(
    make_workspace: WorkspaceFactory,
) -> None:
    ws = make_workspace()  # keys from TOKENWARD_ENCRYPTION_KEYS ("k1:...")
    ws.connect("discord")
    both = {"TOKENWARD_ENCRYPTION_KEYS": f"{new_encryption_keys('k2')},{ws.encryption_keys}"}

    line = ws.cli.error_line("keys", "retire", "k1", env=both)
    assert "keys come from TOKENWARD_ENCRYPTION_KEYS" in line
    assert "1 row(s) still use it" in line
    assert "keys rotate" in line
    assert "remove 'k1' from that variable" in line
    ws.cli.json("keys", "rotate", env=both)
    refused = ws.cli.json_error("keys", "retire", "k1", env=both)
    assert refused["error"]["code"] == "KEYS_FROM_ENVIRONMENT"
    assert "no row uses it" in refused["error"]["message"]
    listed = ws.cli.json("keys", "list", env=both)
    assert listed["source"] == "env"
    assert listed["key_file"] is None
    assert [(k["kid"], k["rows"]) for k in listed["keys"]] == [("k2", 1), ("k1", 0)]
    assert not key_file(ws).exists()
