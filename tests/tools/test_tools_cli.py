"""``tokenward tools list|show|run`` as a user runs them: each command is its own process, with
the ``TOKENWARD_*`` environment pointing at this module's gateway database and the sandbox."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.processes import Cli, gateway_environment
from tokenward.tools.catalogs import Catalogs

from .env import ADA, NARROW, WITH_BOT, ToolEnv

pytestmark = pytest.mark.slow  # each command is a fresh interpreter (about a second apiece)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOOLS = Catalogs.load().names()  # every provider's tools: discord_* and discordbot_*


@pytest.fixture(scope="module")
def cli(tool_env: ToolEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    settings = tool_env.settings
    env = gateway_environment(
        data_dir=settings.data_dir,
        port=settings.port,
        sandbox_url=tool_env.sandbox_url,
        encryption_keys=settings.encryption_keys,
    )
    runner = Cli(env=env, cwd=tmp_path_factory.mktemp("cli"))
    yield runner
    secrets = _sandbox_secrets(tool_env.sandbox_url)
    assert runner.leaked(secrets) == []


def _sandbox_secrets(sandbox_url: str) -> list[str]:
    body = httpx.get(f"{sandbox_url}/_sandbox/tokens").raise_for_status().json()
    values: list[str] = []
    for key in ("access_tokens", "refresh_tokens", "codes", "client_secrets", "bot_tokens"):
        values.extend(v if isinstance(v, str) else v["value"] for v in body.get(key, []))
    return values


def test_list(cli: Cli) -> None:
    table = cli.ok("tools", "list", env={"COLUMNS": "200"}).stdout
    for name in TOOLS:
        assert name in table
    assert "deprecated" in table
    assert "guilds.members.read" in table

    doc = cli.json("tools", "list")
    assert [t["name"] for t in doc["tools"]] == TOOLS
    by_name: dict[str, Any] = {t["name"]: t for t in doc["tools"]}
    assert by_name["discord_list_my_guilds"]["auth"] == "user"
    assert by_name["discord_list_my_guilds"]["scopes"] == ["guilds"]
    assert by_name["discord_get_invite_deprecated"]["annotations"]["deprecated"] is True
    assert by_name["discord_get_guild_widget_png"]["output"] == "image"
    reads = [
        t for t in doc["tools"] if t["name"] in ("discord_get_my_user", "discord_list_my_guilds")
    ]
    assert reads
    assert all(t["annotations"]["read_only"] for t in reads)
    assert by_name["discord_leave_lobby"]["annotations"]["destructive"] is True
    assert by_name["discordbot_delete_message"]["annotations"]["destructive"] is True


def test_show(cli: Cli) -> None:
    doc = cli.json("tools", "show", "discord_get_invite_deprecated")
    assert doc["description"].startswith("DEPRECATED: use discord_resolve_invite")
    assert doc["input_schema"]["required"] == ["invite_code"]
    assert set(doc["input_schema"]["properties"]) == {
        "invite_code",
        "with_counts",
        "with_expiration",
        "guild_scheduled_event_id",
    }
    assert doc["input_schema"]["additionalProperties"] is False
    assert doc["annotations"]["replaced_by"] == "discord_resolve_invite"

    text = cli.ok("tools", "show", "discord_list_my_guilds").stdout
    assert "input schema:" in text
    assert '"limit"' in text
    assert "annotations:" in text

    line = cli.error_line("tools", "show", "discord_nope")
    assert "discord_nope" in line
    assert "TOOL_NOT_FOUND" in line


def test_run_prints_the_data(cli: Cli) -> None:
    args = ("tools", "run", "discord_get_my_user", "--connection", WITH_BOT, "--identifier", "ada")
    data = cli.ok(*args).json()
    assert data["id"] == ADA
    assert data["username"] == "ada"

    doc = cli.json(
        "tools",
        "run",
        "discord_list_my_guilds",
        "--connection",
        WITH_BOT,
        "--identifier",
        "ada",
        "--input",
        '{"limit": 2}',
    )
    assert [g["name"] for g in doc["data"]] == ["Sandbox Hub", "Analytical Engine Club"]
    assert doc["execution_id"].startswith("exec_")


def test_run_image(cli: Cli, tmp_path: Path) -> None:
    args = (
        *("tools", "run", "discord_get_guild_widget_png", "--connection", WITH_BOT),
        *("--identifier", "ada", "--input", '{"guild_id": "1200000000000000001"}'),
    )
    doc = cli.ok(*args).json()
    assert doc["type"] == "image"
    assert doc["media_type"] == "image/png"
    assert base64.b64decode(doc["data"]).startswith(PNG_SIGNATURE)

    target = tmp_path / "widget.png"
    written = cli.json(*args, "--output", str(target))
    assert target.read_bytes().startswith(PNG_SIGNATURE)
    assert written["bytes"] == target.stat().st_size
    assert written["media_type"] == "image/png"


def test_run_errors(cli: Cli) -> None:
    account = ("--connection", WITH_BOT, "--identifier", "ada")
    line = cli.error_line(
        "tools", "run", "discord_list_my_guilds", *account, "--input", '{"limit": 0}'
    )
    assert "VALIDATION_ERROR" in line
    assert "limit" in line

    doc = cli.json_error(
        "tools", "run", "discord_list_my_guilds", *account, "--input", '{"limit": 0, "x": 1}'
    )
    assert doc["error"]["code"] == "VALIDATION_ERROR"
    assert set(doc["error"]["details"]["fields"]) == {"limit", "x"}

    line = cli.error_line("tools", "run", "discord_get_my_user", *account, "--input", "{not json")
    assert "--input is not valid JSON" in line

    line = cli.error_line(
        "tools", "run", "discord_get_my_user", "--connection", WITH_BOT, "--identifier", "nobody"
    )
    assert "ACCOUNT_NOT_FOUND" in line
    assert "nobody" in line

    doc = cli.json_error(
        "tools",
        "run",
        "discord_list_my_guilds",
        "--connection",
        NARROW,
        "--identifier",
        "ada-narrow",
    )
    assert doc["error"]["code"] == "MISSING_SCOPE"
    assert doc["error"]["details"]["missing_scopes"] == ["guilds"]
    assert doc["error"]["details"]["authorization_link"].startswith("http://127.0.0.1:")

    line = cli.error_line(
        "tools",
        "run",
        "discord_get_guild_widget",
        *account,
        "--input",
        '{"guild_id": "1200000000000000002"}',
    )
    assert "50004" in line or "Widget Disabled" in line
    assert "hint:" in line
