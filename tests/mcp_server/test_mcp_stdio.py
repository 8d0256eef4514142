"""``tokenward mcp`` as a subprocess, driven by the official MCP client over stdio, on the vault
the gateway uses (the way a desktop assistant runs it)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from .env import ADA, GRACE, HUB, McpEnv, error_of, png_size

TOKENWARD = str(Path(sys.executable).with_name("tokenward"))


def tokenward_env(env: McpEnv) -> dict[str, str]:
    settings = env.settings
    assert settings.encryption_keys is not None
    return {
        "TOKENWARD_DATA_DIR": str(settings.data_dir),
        "TOKENWARD_ENCRYPTION_KEYS": settings.encryption_keys,
        "TOKENWARD_DISCORD_BASE_URL": settings.discord_base_url,
        "TOKENWARD_PUBLIC_URL": settings.public_url,
        "TOKENWARD_LOG_LEVEL": "INFO",
    }


@asynccontextmanager
async def stdio_session(env: McpEnv, errlog: IO[str], *args: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=TOKENWARD, args=["mcp", "--connection", "discord", *args], env=tokenward_env(env)
    )
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_stdio_lists_tools_and_acts_as_its_user(mcp_env: McpEnv, tmp_path: Path) -> None:
    with (tmp_path / "stderr.log").open("w+") as errlog:
        async with stdio_session(mcp_env, errlog, "--identifier", "grace") as client:
            listed = (await client.list_tools()).tools
            me = await client.call_tool("discord_get_my_user", {})
            png = await client.call_tool("discord_get_guild_widget_png", {"guild_id": HUB})
            # The identifier comes from the command line only.
            sneaky = await client.call_tool("discord_get_my_user", {"identifier": "ada"})

    assert len(listed) == 34  # the discord connector's tools
    deprecated = next(t for t in listed if t.name == "discord_get_invite_deprecated")
    assert deprecated.meta is not None
    assert deprecated.meta["tokenward/deprecated"] is True
    assert me.is_error is False
    assert isinstance(me.structured_content, dict)
    assert me.structured_content["id"] == GRACE
    (image,) = png.content
    assert isinstance(image, types.ImageContent)
    assert image.mime_type == "image/png"
    assert png_size(base64.b64decode(image.data)) == (118, 20)
    assert error_of(sneaky)["code"] == "VALIDATION_ERROR"


async def test_stdio_restricted_tools(mcp_env: McpEnv, tmp_path: Path) -> None:
    with (tmp_path / "stderr.log").open("w+") as errlog:
        async with stdio_session(
            mcp_env,
            errlog,
            "--identifier",
            "ada",
            "--tools",
            "discord_get_my_user, discord_get_gateway",
        ) as client:
            listed = (await client.list_tools()).tools
            result = await client.call_tool("discord_get_my_user", {})
            with pytest.raises(MCPError):
                await client.call_tool("discord_list_my_guilds", {})

    assert sorted(t.name for t in listed) == ["discord_get_gateway", "discord_get_my_user"]
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["id"] == ADA


async def test_stdio_unlinked_user_gets_an_authorization_link(
    mcp_env: McpEnv, tmp_path: Path
) -> None:
    with (tmp_path / "stderr.log").open("w+") as errlog:
        async with stdio_session(mcp_env, errlog, "--identifier", "stdio-newcomer") as client:
            result = await client.call_tool("discord_list_my_guilds", {})
        errlog.seek(0)
        logged = errlog.read()

    error = error_of(result)
    assert error["code"] == "ACCOUNT_NOT_ACTIVE"
    assert error["details"]["authorization_link"].startswith(f"{mcp_env.url}/connect/")
    # Logs went to stderr, never to the protocol stream, and carry no key.
    assert mcp_env.settings.encryption_keys is not None
    assert mcp_env.settings.encryption_keys.split(":", 1)[1] not in logged


def test_stdio_refuses_bad_options_with_one_line_on_stderr(mcp_env: McpEnv) -> None:
    env = {**os.environ, **tokenward_env(mcp_env)}
    cases = [
        (["--identifier", "ada", "--tools", "discord_get_my_user,bogus"], "bogus"),
        (["--identifier", "ada", "--connection", "nowhere"], "nowhere"),
    ]
    for args, named in cases:
        done = subprocess.run(
            [TOKENWARD, "mcp", "--connection", "discord", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done
        assert done.stdout == ""
        assert named in done.stderr
        assert "error:" in done.stderr
