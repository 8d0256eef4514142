"""``tokenward serve`` as an operator starts it: the port, the public URL, readiness, the janitor
(issue 9, "Public URL", "Database", "Stale PENDING_AUTH accounts")."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tokenward.cli.serving import public_url_notes
from tokenward.config import Settings

from .conftest import Workspace
from .serving import Serve, run_serve

pytestmark = pytest.mark.slow  # real `tokenward serve` processes


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


def api_token(ws: Workspace, url: str, env: dict[str, str]) -> str:
    created = ws.cli.json("api-clients", "create", "--name", "ops-tests", env=env)
    form = {
        "grant_type": "client_credentials",
        "client_id": created["client_id"],
        "client_secret": created["client_secret"],
    }
    response = httpx.post(f"{url}/oauth/token", data=form, trust_env=False)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_port_0_serves_on_a_free_port_and_links_follow_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    env = without(ws.cli.env, "TOKENWARD_PUBLIC_URL", "TOKENWARD_PORT")
    with Serve(env, tmp_path, "--port", "0") as served:
        port = int(served.url.rsplit(":", 1)[1])
        assert port not in (0, 8080)
        assert served.url == f"http://127.0.0.1:{port}"
        banner = served.stdout()
        assert f"public URL  http://127.0.0.1:{port} (derived from the bind address" in banner
        assert "TOKENWARD_PUBLIC_URL" in banner
        assert "warning" not in served.stderr()
        assert httpx.get(f"{served.url}/healthz", trust_env=False).status_code == 200
        ready = httpx.get(f"{served.url}/readyz", trust_env=False)
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ready"
        assert {name: check["ok"] for name, check in body["checks"].items()} == {
            "database": True,
            "schema": True,
            "keys": True,
        }
        assert body["checks"]["schema"]["current"] == body["checks"]["schema"]["head"]

        # Links and the redirect URI the server builds point at the port it really listens on.
        auth = {"Authorization": f"Bearer {api_token(ws, served.url, env)}"}
        created = httpx.post(
            f"{served.url}/api/v1/connections",
            json={
                "name": "discord",
                "provider": "discord",
                "client_id": "123456789",
                "client_secret": "secret-not-used-here",
                "scopes": "identify",
            },
            headers=auth,
            trust_env=False,
        )
        assert created.status_code == 201, created.text
        redirect_uri = created.json()["connection"]["redirect_uri"]
        assert redirect_uri.startswith(f"http://127.0.0.1:{port}/sso/v1/oauth/")
        link = httpx.post(
            f"{served.url}/api/v1/connected-accounts/authorization-link",
            json={"connection_name": "discord", "identifier": "user_1"},
            headers=auth,
            trust_env=False,
        )
        assert link.status_code == 200, link.text
        assert link.json()["link"].startswith(f"http://127.0.0.1:{port}/connect/")


def test_a_public_url_on_another_port_is_warned_about(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    stale = {**ws.cli.env, "TOKENWARD_PUBLIC_URL": "http://127.0.0.1:8080"}
    with Serve(stale, tmp_path / "stale", "--port", "0") as served:
        port = served.url.rsplit(":", 1)[1]
        warning = served.stderr()
        assert (
            "warning: TOKENWARD_PUBLIC_URL http://127.0.0.1:8080 names port 8080 but serve "
            f"listens on port {port}"
        ) in warning
        assert "public URL  http://127.0.0.1:8080 (TOKENWARD_PUBLIC_URL)" in served.stdout()
    proxied = {**ws.cli.env, "TOKENWARD_PUBLIC_URL": "https://tokenward.example.com"}
    with Serve(proxied, tmp_path / "proxied", "--port", "0") as served:
        assert "warning" not in served.stderr()
        assert "public URL  https://tokenward.example.com (TOKENWARD_PUBLIC_URL)" in served.stdout()


@pytest.mark.parametrize(
    ("public_url", "host", "warned"),
    [
        (None, "127.0.0.1", None),
        (None, "0.0.0.0", "cannot know the host name browsers use"),
        (None, "::", "cannot know the host name browsers use"),
        ("http://127.0.0.1:9000", "127.0.0.1", "names port 9000 but serve listens on port 8123"),
        ("http://127.0.0.1:8123/", "127.0.0.1", None),
        ("http://localhost", "127.0.0.1", "names port 80 but serve listens on port 8123"),
        ("http://gw.example.com:9000", "0.0.0.0", "names port 9000"),
        ("http://gw.example.com", "0.0.0.0", None),
        ("https://gw.example.com", "127.0.0.1", None),  # TLS ends in a proxy
        ("https://gw.example.com:8443", "127.0.0.1", None),
        ("gw.example.com:8123", "127.0.0.1", "is not an http(s) URL with a host"),
    ],
)
def test_public_url_warnings(public_url: str | None, host: str, warned: str | None) -> None:
    settings = Settings(public_url=public_url, host=host, port=8123)
    note, warnings = public_url_notes(settings, 8123)
    if public_url is None:
        expected = "http://127.0.0.1:8123"  # an all-interfaces bind names no usable host
        assert note.startswith(f"{expected} (derived from the bind address")
        assert settings.public_base == expected
    else:
        assert note == f"{public_url.rstrip('/')} (TOKENWARD_PUBLIC_URL)"
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warned in warnings[0]


def test_a_busy_port_is_one_line_before_any_banner(workspace: Workspace) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        refused = run_serve(without(workspace.cli.env, "TOKENWARD_PUBLIC_URL"), "--port", str(port))
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another tokenward?); stop that "
        "process or choose another --port (--port 0 picks a free one)"
    ]


def test_the_janitor_runs_inside_serve(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    ws.connect("discord")
    ws.link("kept")  # a live ten-minute link keeps its account
    env = {
        **ws.cli.env,
        "TOKENWARD_LINK_TTL_SECONDS": "1",
        "TOKENWARD_PENDING_ACCOUNT_TTL_SECONDS": "1",
        "TOKENWARD_JANITOR_INTERVAL_SECONDS": "0.2",
    }
    ws.cli.json("link", "--connection", "discord", "--identifier", "gone", env=env)

    def pending() -> list[str]:
        listed = ws.cli.json("accounts", "list")["connected_accounts"]
        return sorted(a["identifier"] for a in listed)

    assert pending() == ["gone", "kept"]
    with Serve(env, tmp_path, "--port", "0") as served:
        deadline = time.monotonic() + 30
        while pending() != ["kept"]:
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.3)
    with sqlite3.connect(ws.data_dir / "tokenward.db") as db:
        rows = db.execute(
            "SELECT data FROM events WHERE kind = 'accounts.pending_deleted'"
        ).fetchall()
    assert len(rows) == 1
    deleted = json.loads(rows[0][0])
    assert deleted["count"] == 1
    assert [a["identifier"] for a in deleted["accounts"]] == ["gone"]
