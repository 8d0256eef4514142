"""``tokenward db upgrade`` and ``tokenward keys rotate`` run as subprocesses."""

from __future__ import annotations

import stat

import httpx
import pytest

from e2e.processes import new_encryption_keys

from .conftest import GRACE, Workspace, WorkspaceFactory, me_status

pytestmark = pytest.mark.slow  # one `tokenward` process per command


def refresh_grants(ws: Workspace) -> int:
    stats = httpx.get(f"{ws.sandbox_url}/_sandbox/stats").raise_for_status().json()
    return int(stats["grants"]["refresh_token"])


def test_db_upgrade_migrates_once_and_then_reports_the_revision(workspace: Workspace) -> None:
    ws = workspace
    first = ws.cli.json("db", "upgrade")
    assert first["backend"] == "sqlite"
    assert first["from"] is None
    assert first["revision"]
    assert (ws.data_dir / "tokenward.db").exists()
    again = ws.cli.json("db", "upgrade")
    assert again == {"backend": "sqlite", "from": first["revision"], "revision": first["revision"]}
    assert "already at revision" in ws.cli.ok("db", "upgrade").stdout


def test_keys_rotate_with_the_key_file_keeps_accounts_working(
    make_workspace: WorkspaceFactory,
) -> None:
    ws = make_workspace(encryption_keys=None)
    ws.connect("discord")
    key_file = ws.data_dir / "encryption-keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ws.consent("user_1", user_id=GRACE)
    account_id = ws.show("user_1")["id"]
    (old_kid,) = ws.envelope_kids()

    report = ws.cli.json("keys", "rotate")

    assert report["active_kid"] != old_kid
    assert report["key_added"] is True
    assert report["remaining"] == 0
    assert report["failed"] == []
    assert report["values_reencrypted"] >= 3  # client secret, access token, refresh token
    assert ws.envelope_kids() == {report["active_kid"]}
    assert ws.show("user_1")["status"] == "ACTIVE"
    # The token is still readable: a refresh uses the re-encrypted refresh token and stores the
    # new tokens under the new key.
    before = refresh_grants(ws)
    token = ws.refresh(account_id)
    assert refresh_grants(ws) == before + 1
    assert me_status(ws.sandbox_url, token) == 200
    assert ws.envelope_kids() == {report["active_kid"]}
    # The running gateway picked up the new key from the file: a new consent still completes.
    assert "Discord connected" in ws.consent("user_2").text
    assert ws.envelope_kids() == {report["active_kid"]}


def test_keys_rotate_with_environment_keys_leaves_nothing_under_the_old_key(
    make_workspace: WorkspaceFactory,
) -> None:
    ws = make_workspace()
    old_keys = ws.encryption_keys
    assert old_keys is not None
    ws.connect("discord")
    ws.consent("user_1", user_id=GRACE)
    account_id = ws.show("user_1")["id"]
    assert ws.envelope_kids() == {"k1"}
    new_key = new_encryption_keys("k2")

    report = ws.cli.json(
        "keys", "rotate", env={"TOKENWARD_ENCRYPTION_KEYS": f"{new_key},{old_keys}"}
    )

    assert report["active_kid"] == "k2"
    assert report["key_added"] is False
    assert report["remaining"] == 0
    assert ws.envelope_kids() == {"k2"}
    # The old key can now be dropped: everything opens with the new key alone ...
    only_new = {"TOKENWARD_ENCRYPTION_KEYS": new_key}
    shown = ws.cli.json("accounts", "show", "--id", account_id, env=only_new)
    assert shown["status"] == "ACTIVE"
    ws.cli.json("connections", "list", env=only_new)
    token = ws.refresh(account_id, encryption_keys=new_key)
    assert me_status(ws.sandbox_url, token) == 200
    # ... and nothing opens with the old key alone, which says which key is missing.
    line = ws.cli.error_line("accounts", "show", "--id", account_id)
    assert "'k2'" in line
    assert "not configured" in line
