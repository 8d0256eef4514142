"""``tokenward api-clients create|list|delete`` as subprocesses, against a running gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tokenward._serving import BackgroundServer
from tokenward.server.app import create_app

from .conftest import api_settings, assert_error

CLI = [sys.executable, "-c", "from tokenward.cli import main; main()"]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_json(env: dict[str, str], *args: str) -> Any:
    proc = run(env, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_create_list_delete_and_the_token_endpoint(tmp_path: Path, sandbox_url: str) -> None:
    settings = api_settings(tmp_path, sandbox_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")},
        "TOKENWARD_DATA_DIR": str(settings.data_dir),
        "TOKENWARD_ENCRYPTION_KEYS": settings.encryption_keys or "",
        "TOKENWARD_PUBLIC_URL": settings.public_url,
    }
    created = run_json(env, "api-clients", "create", "--name", "my agent")
    assert set(created) == {"client_id", "client_secret", "name", "scopes", "created_at"}
    assert created["scopes"] == ["admin"]  # no --scopes: everything, as before scopes existed
    assert created["client_id"].startswith("twc_")
    assert created["client_secret"].startswith("tws_")
    assert created["name"] == "my agent"

    listed = run_json(env, "api-clients", "list")
    assert listed == {
        "api_clients": [
            {
                "client_id": created["client_id"],
                "name": "my agent",
                "scopes": ["admin"],
                "created_at": created["created_at"],
            }
        ]
    }
    table = run(env, "api-clients", "list")
    assert table.returncode == 0
    assert created["client_id"] in table.stdout
    assert created["client_secret"] not in table.stdout + table.stderr
    # The secret is stored only as a hash.
    assert (
        created["client_secret"].encode() not in (settings.data_dir / "tokenward.db").read_bytes()
    )

    form = {
        "grant_type": "client_credentials",
        "client_id": created["client_id"],
        "client_secret": created["client_secret"],
    }
    with BackgroundServer(create_app(settings), port=settings.port) as server:
        token = httpx.post(f"{server.url}/oauth/token", data=form)
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert httpx.get(f"{server.url}/api/v1/connections", headers=auth).status_code == 200

        deleted = run_json(env, "api-clients", "delete", created["client_id"])
        assert deleted == {"deleted": True, "client_id": created["client_id"]}
        assert_error(httpx.post(f"{server.url}/oauth/token", data=form), 401, "INVALID_CLIENT")
    assert run_json(env, "api-clients", "list") == {"api_clients": []}

    again = run(env, "api-clients", "delete", created["client_id"], "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["error"]["code"] == "API_CLIENT_NOT_FOUND"
    plain = run(env, "api-clients", "delete", created["client_id"])
    assert plain.returncode == 1
    assert "does not exist" in plain.stderr
    assert "Traceback" not in plain.stderr


def test_human_output_shows_the_secret_once_and_says_so(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")},
        "TOKENWARD_DATA_DIR": str(tmp_path),
    }
    proc = run(env, "api-clients", "create", "--name", "demo")
    assert proc.returncode == 0, proc.stderr
    secrets = [w for w in proc.stdout.split() if w.startswith("tws_")]
    assert len(secrets) == 1
    assert "not shown again" in proc.stderr
    missing = run(env, "api-clients", "create")
    assert missing.returncode != 0
    assert "--name" in missing.stderr
    blank = run(env, "api-clients", "create", "--name", "  ", "--json")
    assert blank.returncode == 1
    assert json.loads(blank.stdout)["error"]["code"] == "VALIDATION_ERROR"


def test_scopes_are_chosen_at_creation_listed_and_checked(tmp_path: Path, sandbox_url: str) -> None:
    settings = api_settings(tmp_path, sandbox_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")},
        "TOKENWARD_DATA_DIR": str(settings.data_dir),
        "TOKENWARD_ENCRYPTION_KEYS": settings.encryption_keys or "",
    }
    agent = run_json(
        env, "api-clients", "create", "--name", "agent", "--scopes", "tools:execute,accounts:read"
    )
    assert agent["scopes"] == ["tools:execute", "accounts:read"]
    listed = run_json(env, "api-clients", "list")["api_clients"]
    assert [c["scopes"] for c in listed] == [["tools:execute", "accounts:read"]]
    table = run(env, "api-clients", "list")
    assert "tools:execute accounts:read" in table.stdout

    unknown = run(env, "api-clients", "create", "--name", "x", "--scopes", "tools:exec,proxy")
    assert unknown.returncode == 1
    assert "'tools:exec'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    as_json = run(env, "api-clients", "create", "--name", "x", "--scopes", "everything", "--json")
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "'everything'" in error["details"]["fields"]["scopes"]
    # Nothing was created by the refused commands.
    assert len(run_json(env, "api-clients", "list")["api_clients"]) == 1

    form = {
        "grant_type": "client_credentials",
        "client_id": agent["client_id"],
        "client_secret": agent["client_secret"],
    }
    with BackgroundServer(create_app(settings), port=settings.port) as server:
        issued = httpx.post(f"{server.url}/oauth/token", data=form)
        assert issued.status_code == 200, issued.text
        assert issued.json()["scope"] == "tools:execute accounts:read"
        auth = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert httpx.get(f"{server.url}/api/v1/connected-accounts", headers=auth).status_code == 200
        refused = httpx.get(f"{server.url}/api/v1/connections", headers=auth)
        error = assert_error(refused, 403, "INSUFFICIENT_SCOPE")
        assert error["details"]["required_scope"] == "connections:read"
