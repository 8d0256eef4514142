"""``/mcp`` driven by the official MCP client over real HTTP on loopback, against a gateway and
the sandbox: tools, results, errors, and who a session can act as."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from integration.gateway_env import local_container
from tokenward.clock import ManualClock
from tokenward.config import Settings
from tokenward.mcp.sessions import SessionTokens
from tokenward.sandbox.browser import walk_consent
from tokenward.sandbox.state import token_label
from tokenward.tools.catalog import Catalog
from tokenward.tools.schemas import input_schema
from tokenward.vault.crypto import load_keyring

from .env import (
    ADA,
    GRACE,
    HUB,
    LINUS,
    McpEnv,
    access_token,
    connect,
    error_of,
    png_size,
)

CATALOG = Catalog.load()
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def post_initialize(env: McpEnv, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return env.http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **(headers or {})})


def assert_refused(response: httpx.Response, reason: str) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert body["error"]["code"] == types.INVALID_REQUEST
    error: dict[str, Any] = {"message": body["error"]["message"], **body["error"]["data"]}
    assert error["details"]["reason"] == reason
    return error


def bearer_url(env: McpEnv) -> str:
    return f"{env.url}/mcp"


# -- tools/list ----------------------------------------------------------------------------------


async def test_lists_every_tool_with_catalog_schemas_hints_and_deprecation(
    mcp_env: McpEnv,
) -> None:
    session = mcp_env.mint("ada")
    async with connect(session["url"]) as client:
        listed = (await client.list_tools()).tools

    assert [t.name for t in listed] == CATALOG.names()
    assert len(listed) == 34  # the discord connector's tools
    for tool in listed:
        spec = CATALOG.get(tool.name)
        assert tool.input_schema == input_schema(spec)
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is spec.annotations.read_only
        assert tool.annotations.idempotent_hint is spec.annotations.idempotent
        assert tool.annotations.destructive_hint is spec.annotations.destructive
        assert tool.annotations.open_world_hint is spec.annotations.open_world
        assert tool.title is not None
        assert tool.title.startswith(spec.title)
        assert tool.meta is not None
        assert tool.meta["tokenward/output"] == spec.output
    deprecated = [t for t in listed if CATALOG.get(t.name).annotations.deprecated]
    assert [t.name for t in deprecated] == ["discord_get_invite_deprecated"]
    (old,) = deprecated
    assert old.description is not None
    assert old.description.startswith("DEPRECATED: use discord_resolve_invite")
    assert old.title is not None
    assert old.title.endswith("(deprecated)")
    assert old.meta is not None
    assert old.meta["tokenward/deprecated"] is True
    assert old.meta["tokenward/replaced_by"] == "discord_resolve_invite"
    current = next(t for t in listed if t.name == "discord_get_my_user")
    assert current.meta is not None
    assert "tokenward/deprecated" not in current.meta


async def test_a_restricted_session_sees_and_runs_only_its_tools(mcp_env: McpEnv) -> None:
    session = mcp_env.mint("ada", tools=["discord_get_my_user", "discord_get_guild_widget_png"])
    assert session["tools"] == ["discord_get_my_user", "discord_get_guild_widget_png"]
    before = mcp_env.stats()["requests"]["total"]
    async with connect(session["url"]) as client:
        listed = (await client.list_tools()).tools
        assert sorted(t.name for t in listed) == [
            "discord_get_guild_widget_png",
            "discord_get_my_user",
        ]
        with pytest.raises(MCPError) as refused:
            await client.call_tool("discord_list_my_guilds", {})
        assert refused.value.code == types.INVALID_PARAMS
        assert "discord_list_my_guilds" in refused.value.message
        with pytest.raises(MCPError):
            await client.call_tool("no_such_tool", {})
    assert mcp_env.stats()["requests"]["total"] == before  # nothing reached Discord


# -- tools/call results --------------------------------------------------------------------------


async def test_a_json_tool_returns_the_linked_users_data(mcp_env: McpEnv) -> None:
    session = mcp_env.mint("ada")
    async with connect(session["url"]) as client:
        result = await client.call_tool("discord_get_my_user", {})

    assert result.is_error is False
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["id"] == ADA
    assert result.structured_content["username"] == "ada"
    (text,) = result.content
    assert isinstance(text, types.TextContent)
    assert json.loads(text.text) == result.structured_content
    assert result.meta is not None
    assert str(result.meta["tokenward/execution_id"]).startswith("exec_")


async def test_a_list_result_is_wrapped_in_an_object(mcp_env: McpEnv) -> None:
    session = mcp_env.mint("ada")
    async with connect(session["url"]) as client:
        result = await client.call_tool("discord_list_my_guilds", {"limit": 2})

    assert result.is_error is False
    assert isinstance(result.structured_content, dict)
    guilds = result.structured_content["result"]
    assert isinstance(guilds, list)
    assert 1 <= len(guilds) <= 2


async def test_the_png_tool_returns_image_content(mcp_env: McpEnv) -> None:
    session = mcp_env.mint("ada")
    async with connect(session["url"]) as client:
        result = await client.call_tool(
            "discord_get_guild_widget_png", {"guild_id": HUB, "style": "banner2"}
        )

    assert result.is_error is False
    (image,) = result.content
    assert isinstance(image, types.ImageContent)
    assert image.mime_type == "image/png"
    assert png_size(base64.b64decode(image.data)) == (320, 76)


async def test_bad_arguments_are_a_tool_error_naming_the_field(mcp_env: McpEnv) -> None:
    session = mcp_env.mint("ada")
    before = mcp_env.stats()["requests"]["total"]
    async with connect(session["url"]) as client:
        result = await client.call_tool("discord_get_guild_widget_png", {"guild_id": "nope"})

    error = error_of(result)
    assert error["code"] == "VALIDATION_ERROR"
    assert "guild_id" in error["details"]["fields"]
    assert mcp_env.stats()["requests"]["total"] == before


async def test_an_unlinked_user_gets_an_authorization_link_and_then_the_tools_work(
    mcp_env: McpEnv,
) -> None:
    session = mcp_env.mint("newcomer")  # never linked: no account exists yet
    async with connect(session["url"]) as client:
        result = await client.call_tool("discord_get_my_user", {})
        error = error_of(result)
        assert error["code"] == "ACCOUNT_NOT_ACTIVE"
        assert "not connected Discord" in error["message"]
        link = error["details"]["authorization_link"]
        assert link.startswith(f"{mcp_env.url}/connect/")
        assert "authorization link" in error["details"]["hint"]

        # A second call while the user has not approved yet: still a link (the account is now
        # PENDING_AUTH), and the tools that need no user keep working.
        again = error_of(await client.call_tool("discord_get_my_user", {}))
        assert again["code"] == "ACCOUNT_NOT_ACTIVE"
        assert again["details"]["status"] == "PENDING_AUTH"
        public = await client.call_tool("discord_get_guild_widget", {"guild_id": HUB})
        assert public.is_error is False

        # The agent hands the link to its user, who approves as Linus: same session, now works.
        consent = await asyncio.to_thread(walk_consent, link, user_id=LINUS)
        assert consent.status_code == 200, consent.text
        done = await client.call_tool("discord_get_my_user", {})
        assert done.is_error is False
        assert isinstance(done.structured_content, dict)
        assert done.structured_content["id"] == LINUS


async def test_an_expired_grant_says_so_and_carries_a_fresh_link(mcp_env: McpEnv) -> None:
    """A user whose Discord grant died (e.g. refused refresh): a tool error, not an obscure one."""
    async with local_container(mcp_env.settings) as container:
        created = await container.oauth.create_link("discord", "lapsed")
        consent = await asyncio.to_thread(walk_consent, created.link, user_id=LINUS)
        assert consent.status_code == 200
        await container.vault.mark_expired(created.account.id, "Discord refused the refresh token")
    session = mcp_env.mint("lapsed")
    before = mcp_env.stats()["requests"]["total"]
    async with connect(session["url"]) as client:
        error = error_of(await client.call_tool("discord_get_my_user", {}))
    assert error["code"] == "REAUTHORIZATION_REQUIRED"
    assert "Discord refused the refresh token" in error["message"]
    assert error["details"]["status"] == "EXPIRED"
    assert error["details"]["authorization_link"].startswith(f"{mcp_env.url}/connect/")
    assert mcp_env.stats()["requests"]["total"] == before


# -- authentication ------------------------------------------------------------------------------


async def test_an_expired_session_token_is_refused(mcp_env: McpEnv) -> None:
    settings = mcp_env.settings
    keyring = load_keyring(settings.encryption_keys, settings.data_dir)
    past = ManualClock(start=time.time() - 3600)
    token, _ = SessionTokens(settings, keyring, past).mint(
        connection_name="discord", identifier="ada", tools=None, ttl_seconds=60
    )
    before = mcp_env.stats()["requests"]["total"]

    error = assert_refused(post_initialize(mcp_env, f"{mcp_env.url}/mcp/s/{token}"), "expired")
    assert error["code"] == "INVALID_TOKEN"
    assert "expired" in error["message"]
    assert "POST /api/v1/mcp/sessions" in error["message"]
    # The official client surfaces the refusal's message.
    with pytest.raises(ExceptionGroup) as failed:
        async with connect(f"{mcp_env.url}/mcp/s/{token}"):
            pass
    refusal = failed.value.subgroup(MCPError)
    assert refusal is not None
    assert "the MCP session has expired" in repr(refusal)
    assert mcp_env.stats()["requests"]["total"] == before


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    doc: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return doc


async def test_forged_and_foreign_tokens_are_refused(mcp_env: McpEnv) -> None:
    ada = mcp_env.mint("ada")["token"]
    header, _payload_part, signature = ada.split(".")
    claims = _payload(ada)
    claims["sub"] = "grace"
    swapped = f"{header}.{_b64url(json.dumps(claims).encode())}.{signature}"
    claims["tools"] = ["discord_get_my_user"]
    none_header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{none_header}.{_b64url(json.dumps(claims).encode())}."
    other = Settings(
        data_dir=mcp_env.settings.data_dir,
        encryption_keys="k1:" + base64.b64encode(b"\x01" * 32).decode(),
    )
    foreign, _ = SessionTokens(
        other, load_keyring(other.encryption_keys, other.data_dir), ManualClock(start=10**10)
    ).mint(connection_name="discord", identifier="ada", tools=None)
    before = mcp_env.stats()["requests"]["total"]

    for token in (swapped, unsigned, foreign, mcp_env.api_token, "not-a-token", ada[:-3] + "abc"):
        assert_refused(post_initialize(mcp_env, f"{mcp_env.url}/mcp/s/{token}"), "invalid")
        assert_refused(
            post_initialize(mcp_env, bearer_url(mcp_env), {"Authorization": f"Bearer {token}"}),
            "invalid",
        )
    missing = assert_refused(post_initialize(mcp_env, bearer_url(mcp_env)), "missing")
    assert missing["code"] == "UNAUTHENTICATED"
    assert_refused(
        post_initialize(mcp_env, bearer_url(mcp_env), {"Authorization": "Basic abc"}), "malformed"
    )
    assert mcp_env.stats()["requests"]["total"] == before


async def test_the_url_alone_the_query_form_and_the_bearer_header_all_work(
    mcp_env: McpEnv,
) -> None:
    session = mcp_env.mint("ada")
    assert session["url"] == f"{mcp_env.settings.public_base}/mcp/s/{session['token']}"
    forms: list[tuple[str, dict[str, str] | None]] = [
        (session["url"], None),
        (f"{mcp_env.url}/mcp?token={session['token']}", None),
        (bearer_url(mcp_env), {"Authorization": f"Bearer {session['token']}"}),
    ]
    for url, headers in forms:
        async with connect(url, headers) as client:
            result = await client.call_tool("discord_get_my_user", {})
        assert isinstance(result.structured_content, dict)
        assert result.structured_content["id"] == ADA


async def test_the_high_level_client_on_the_newest_protocol_works_with_the_url(
    mcp_env: McpEnv,
) -> None:
    session = mcp_env.mint("grace", tools=["discord_get_my_user"])
    async with Client(session["url"]) as client:
        listed = await client.list_tools()
        result = await client.call_tool("discord_get_my_user", {})
    assert [t.name for t in listed.tools] == ["discord_get_my_user"]
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["id"] == GRACE


# -- isolation between users ---------------------------------------------------------------------


async def test_another_users_session_token_never_reaches_this_users_account(
    mcp_env: McpEnv,
) -> None:
    """Two identifiers linked to two different Discord users: each session acts only as its own
    user, and nothing in a request (arguments, headers, a second token) can change that."""
    ada_session = mcp_env.mint("ada")
    grace_session = mcp_env.mint("grace")
    ada_label = token_label(await access_token(mcp_env.settings, "ada"))
    grace_label = token_label(await access_token(mcp_env.settings, "grace"))

    def used(label: str) -> int:
        return int(mcp_env.stats()["requests"]["by_token"].get(label, 0))

    async with connect(ada_session["url"]) as as_ada, connect(grace_session["url"]) as as_grace:
        mine, theirs = await asyncio.gather(
            as_ada.call_tool("discord_get_my_user", {}),
            as_grace.call_tool("discord_get_my_user", {}),
        )
        assert isinstance(mine.structured_content, dict)
        assert isinstance(theirs.structured_content, dict)
        assert mine.structured_content["id"] == ADA
        assert theirs.structured_content["id"] == GRACE

        grace_before = used(grace_label)
        ada_before = used(ada_label)
        # Arguments cannot name another user: the schema has no such field and it is refused.
        for arguments in (
            {"identifier": "grace"},
            {"connection_name": "discord", "identifier": "grace"},
        ):
            error = error_of(await as_ada.call_tool("discord_get_my_user", arguments))
            assert error["code"] == "VALIDATION_ERROR"
        assert used(grace_label) == grace_before
        assert used(ada_label) == ada_before

    # Headers the proxy understands mean nothing here: still Ada.
    async with connect(
        ada_session["url"], {"identifier": "grace", "connection-name": "discord"}
    ) as client:
        result = await client.call_tool("discord_get_my_user", {})
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["id"] == ADA
    assert used(grace_label) == grace_before

    # Grace's token beside Ada's URL is refused outright rather than picking either.
    conflicting = post_initialize(
        mcp_env, ada_session["url"], {"Authorization": f"Bearer {grace_session['token']}"}
    )
    assert_refused(conflicting, "conflicting")
    conflicting = post_initialize(mcp_env, f"{ada_session['url']}?token={grace_session['token']}")
    assert_refused(conflicting, "conflicting")
    assert used(grace_label) == grace_before


async def test_session_tokens_stay_out_of_logs(
    mcp_env: McpEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = mcp_env.mint("ada")
    token = session["token"]
    async with connect(session["url"]) as client:
        await client.call_tool("discord_get_my_user", {})
    async with connect(f"{mcp_env.url}/mcp?token={token}") as client:
        await client.call_tool("discord_get_my_user", {})
    expired = token[:-4] + "AAAA"
    assert_refused(post_initialize(mcp_env, f"{mcp_env.url}/mcp/s/{expired}"), "invalid")

    access = [r for r in caplog.records if r.name == "tokenward.access"]
    assert access, "the gateway logs each request"
    assert {getattr(r, "route", None) for r in access} <= {"/mcp", "/mcp/s/{token}", None}
    # The gateway's side (this test's own HTTP clients log the URLs they call; that is theirs).
    server_side = ("tokenward", "mcp.server", "uvicorn", "starlette", "fastapi")
    for record in caplog.records:
        if not record.name.startswith(server_side):
            continue
        text = record.getMessage() + json.dumps(record.__dict__, default=str)
        assert token not in text
        assert expired not in text
