"""The SDK against a real ``tokenward serve`` process, as an application uses it."""

from __future__ import annotations

import asyncio

import pytest

import tokenward
from tokenward.sandbox.browser import walk_consent
from tokenward.sdk import AsyncClient, Client
from tokenward.tools.catalogs import Catalogs

from .conftest import Stack

ADA = "1100000000000000001"
GRACE = "1100000000000000002"
LINUS = "1100000000000000003"
PNG = b"\x89PNG\r\n\x1a\n"


async def _link(client: AsyncClient, identifier: str, user: str = ADA) -> str:
    link = await client.actions.get_authorization_link(
        connection_name="discord", identifier=identifier
    )
    result = await asyncio.to_thread(walk_consent, link.link, user_id=user)
    assert result.status_code == 200, result.text
    account = await client.actions.get_connected_account(
        connection_name="discord", identifier=identifier
    )
    assert account.status == "ACTIVE"
    return account.id


@pytest.fixture
async def client(stack: Stack) -> AsyncClient:
    return AsyncClient(stack.gateway_url, stack.client_id, stack.client_secret)


async def test_the_hosted_platforms_flow_link_proxy_tool(stack: Stack) -> None:
    async with AsyncClient(stack.gateway_url, stack.client_id, stack.client_secret) as client:
        link = await client.actions.get_authorization_link(
            connection_name="discord", identifier="user_123"
        )
        assert link.link.startswith(f"{stack.gateway_url}/connect/")
        assert link.connected_account is not None
        assert link.connected_account.status == "PENDING_AUTH"
        assert (await asyncio.to_thread(walk_consent, link.link)).status_code == 200

        user = await client.actions.request(
            connection_name="discord", identifier="user_123", path="/api/users/@me"
        )
        assert user.status_code == 200
        assert user.json()["id"] == ADA
        assert "x-ratelimit-bucket" in {k.lower() for k in user.headers} or True

        guilds = await client.actions.execute_tool(
            tool_name="discord_list_my_guilds",
            tool_input={"limit": 2},
            identifier="user_123",
            connection_name="discord",
        )
        assert [g["id"] for g in guilds.data] == ["1200000000000000001", "1200000000000000002"]
        assert guilds.execution_id.startswith("exec_")


async def test_request_passes_query_and_discords_errors_through(
    stack: Stack, client: AsyncClient
) -> None:
    async with client:
        await _link(client, "user_proxy")
        limited = await client.actions.request(
            connection_name="discord",
            identifier="user_proxy",
            path="/api/v10/users/@me/guilds",
            query_params={"limit": 1},
        )
        assert limited.status_code == 200
        assert len(limited.json()) == 1
        missing = await client.actions.request(
            connection_name="discord",
            identifier="user_proxy",
            path="/api/v10/guilds/1999999999999999999/widget.json",
        )
        assert missing.status_code == 404
        assert missing.json()["code"] == 10004


def _api_token(stack: Stack) -> str:
    import httpx

    response = httpx.post(
        f"{stack.gateway_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": stack.client_id,
            "client_secret": stack.client_secret,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/../../etc/passwd",
        "/api/v10/%2e%2e/%2e%2e/admin",
        "/api/v10/%252e%252e/x",
        "//evil.example/api/users/@me",
        "/api/v10/users/@me@evil.example",
        "/api/v10/users/a@evil.example",
        "/api\\..\\x",
        "/api/v10/users/%0d%0aHost:evil",
        "/other/users/@me",
        "/http://evil.example/api",
    ],
)
def test_paths_leaving_the_discord_base_are_refused_with_400_and_reach_nothing(
    stack: Stack, path: str
) -> None:
    """Sent byte for byte (``http.client`` does not normalise dot segments as httpx would)."""
    import http.client
    import json as jsonlib
    from urllib.parse import urlsplit

    token = _api_token(stack)
    before = stack.stats()["requests"]["total"]  # type: ignore[index]
    target = urlsplit(stack.gateway_url)
    conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=10)
    try:
        conn.putrequest("GET", "/proxy" + path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("connection_name", "discord")
        conn.putheader("identifier", "user_123")
        conn.endheaders()
        response = conn.getresponse()
        body = jsonlib.loads(response.read())
    finally:
        conn.close()
    assert response.status == 400
    assert body["error"]["code"] == "PATH_REJECTED"
    assert stack.stats()["requests"]["total"] == before  # type: ignore[index]


async def test_execute_tool_results_and_errors(stack: Stack, client: AsyncClient) -> None:
    async with client:
        await _link(client, "user_tools", user=GRACE)
        me = await client.actions.execute_tool(
            tool_name="discord_get_my_user",
            tool_input={},
            identifier="user_tools",
            connection_name="discord",
        )
        assert me.data["id"] == GRACE
        png = await client.actions.execute_tool(
            tool_name="discord_get_guild_widget_png",
            tool_input={"guild_id": "1200000000000000001", "style": "banner2"},
            identifier="user_tools",
            connection_name="discord",
        )
        assert png.data["media_type"] == "image/png"
        assert png.image_bytes is not None
        assert png.image_bytes.startswith(PNG)

        before = stack.stats()["requests"]["total"]  # type: ignore[index]
        with pytest.raises(tokenward.ValidationError) as bad:
            await client.actions.execute_tool(
                tool_name="discord_list_my_guilds",
                tool_input={"limit": 500, "colour": "blue"},
                identifier="user_tools",
                connection_name="discord",
            )
        assert set(bad.value.fields) == {"limit", "colour"}
        with pytest.raises(tokenward.ToolNotFound):
            await client.actions.execute_tool(
                tool_name="discord_delete_everything",
                tool_input={},
                identifier="user_tools",
                connection_name="discord",
            )
        with pytest.raises(tokenward.ConnectionNotFound):
            await client.actions.execute_tool(
                tool_name="discord_get_my_user",
                tool_input={},
                identifier="user_tools",
                connection_name="nope",
            )
        assert stack.stats()["requests"]["total"] == before  # type: ignore[index]

        widget_off = None
        with pytest.raises(tokenward.ProviderError) as off:
            await client.actions.execute_tool(
                tool_name="discord_get_guild_widget",
                tool_input={"guild_id": "1200000000000000002"},
                identifier="user_tools",
                connection_name="discord",
            )
        widget_off = off.value
        assert widget_off.details["discord"]["code"] == 50004
        assert "widget" in widget_off.details["hint"].lower()


async def test_tool_for_an_unlinked_user_says_so_with_a_link(
    stack: Stack, client: AsyncClient
) -> None:
    async with client:
        await client.actions.get_authorization_link(
            connection_name="discord", identifier="user_later"
        )
        with pytest.raises(tokenward.AccountNotActive) as info:
            await client.actions.execute_tool(
                tool_name="discord_get_my_user",
                tool_input={},
                identifier="user_later",
                connection_name="discord",
            )
        assert info.value.details["authorization_link"].startswith(f"{stack.gateway_url}/connect/")
        before = stack.stats()["requests"]["total"]  # type: ignore[index]
        with pytest.raises(tokenward.AccountNotActive) as proxied:
            await client.actions.request(
                connection_name="discord", identifier="user_later", path="/api/users/@me"
            )
        assert proxied.value.status == 409
        assert proxied.value.details["authorization_link"].startswith(
            f"{stack.gateway_url}/connect/"
        )
        assert stack.stats()["requests"]["total"] == before  # type: ignore[index]


async def test_list_tools_and_accounts_with_pagination(stack: Stack, client: AsyncClient) -> None:
    async with client:
        tools = await client.actions.list_tools()
        assert [t.name for t in tools] == Catalogs.load().names()  # discord_* and discordbot_*
        assert {t.name for t in tools} >= {"discord_get_my_user", "discord_resolve_invite"}
        for i in range(3):
            await client.actions.get_authorization_link(
                connection_name="discord", identifier=f"page_user_{i}"
            )
        seen: list[str] = []
        token = None
        while True:
            page = await client.actions.list_connected_accounts(
                connection_name="discord", page_size=2, page_token=token
            )
            assert len(page.connected_accounts) <= 2
            seen.extend(a.identifier for a in page.connected_accounts)
            token = page.next_page_token
            if not token:
                break
        assert len(seen) == len(set(seen))
        assert {"page_user_0", "page_user_1", "page_user_2"} <= set(seen)


async def test_delete_revokes_and_the_account_is_gone(stack: Stack, client: AsyncClient) -> None:
    async with client:
        # A Discord user no other identifier of this module is linked to: nothing else to end.
        account_id = await _link(client, "user_delete", user=LINUS)
        revocations = stack.stats()["revocations"]
        await client.actions.delete_connected_account(id=account_id)
        assert stack.stats()["revocations"] == revocations + 1  # type: ignore[operator]
        with pytest.raises(tokenward.AccountNotFound):
            await client.actions.get_connected_account(id=account_id)


async def test_delete_names_the_siblings_and_revokes_them_only_when_told(
    stack: Stack, client: AsyncClient
) -> None:
    async with client:
        first = await _link(client, "sibling_a", user=LINUS)
        second = await _link(client, "sibling_b", user=LINUS)
        revocations = stack.stats()["revocations"]

        with pytest.raises(tokenward.ConflictError) as info:
            await client.actions.delete_connected_account(
                connection_name="discord", identifier="sibling_a"
            )
        assert info.value.code == "SIBLINGS_AFFECTED"
        assert [s["id"] for s in info.value.details["siblings"]] == [second]
        assert stack.stats()["revocations"] == revocations

        await client.actions.delete_connected_account(id=first, revoke_siblings=True)

        assert stack.stats()["revocations"] == revocations + 1  # type: ignore[operator]
        sibling = await client.actions.get_connected_account(id=second)
        assert sibling.status == "DISCONNECTED"
        assert first in (sibling.status_reason or "")
        await client.actions.delete_connected_account(id=second, revoke=False)
        assert stack.stats()["revocations"] == revocations + 1  # type: ignore[operator]


async def test_a_link_can_allow_changing_the_discord_user(
    stack: Stack, client: AsyncClient
) -> None:
    async with client:
        account_id = await _link(client, "user_switch", user=LINUS)
        plain = await client.actions.get_authorization_link(
            connection_name="discord", identifier="user_switch"
        )
        refused = await asyncio.to_thread(walk_consent, plain.link, user_id=GRACE)
        assert refused.status_code == 409
        assert (await client.actions.get_connected_account(id=account_id)).provider_user_id == (
            LINUS
        )

        allowing = await client.actions.get_authorization_link(
            connection_name="discord", identifier="user_switch", allow_user_change=True
        )
        changed = await asyncio.to_thread(walk_consent, allowing.link, user_id=GRACE)
        assert changed.status_code == 200, changed.text
        assert (await client.actions.get_connected_account(id=account_id)).provider_user_id == (
            GRACE
        )
        await client.actions.delete_connected_account(id=account_id, revoke=False)


async def test_wrong_credentials_raise_with_the_servers_code(stack: Stack) -> None:
    async with AsyncClient(stack.gateway_url, stack.client_id, "wrong-secret") as client:
        with pytest.raises(tokenward.AuthenticationError) as info:
            await client.actions.list_tools()
    assert info.value.status == 401
    assert info.value.code == "INVALID_CLIENT"


def test_the_sync_client_wraps_the_async_one(stack: Stack) -> None:
    with Client(stack.gateway_url, stack.client_id, stack.client_secret) as client:
        link = client.actions.get_authorization_link(
            connection_name="discord", identifier="user_sync"
        )
        assert walk_consent(link.link).status_code == 200
        me = client.actions.request(
            connection_name="discord", identifier="user_sync", path="/api/users/@me"
        )
        assert me.json()["id"] == ADA
        tools = client.actions.list_tools()
        assert len(tools) == len(Catalogs.load().names())


async def test_100_concurrent_tool_calls_on_an_expired_token_refresh_once(
    stack: Stack, client: AsyncClient
) -> None:
    async with client:
        await _link(client, "user_storm")
        stack.sandbox.post("/_sandbox/tokens/expire").raise_for_status()
        before = stack.stats()["grants"]["refresh_token"]  # type: ignore[index]

        results = await asyncio.gather(
            *(
                client.actions.execute_tool(
                    tool_name="discord_get_my_user",
                    tool_input={},
                    identifier="user_storm",
                    connection_name="discord",
                )
                for _ in range(100)
            )
        )

        assert all(r.data["id"] == ADA for r in results)
        assert stack.stats()["grants"]["refresh_token"] == before + 1  # type: ignore[index]


async def test_metrics_count_tool_calls_refreshes_and_upstream_calls(
    stack: Stack, client: AsyncClient
) -> None:
    import re

    import httpx

    def metric(text: str, name: str, **labels: str) -> float:
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = httpx.get(f"{stack.gateway_url}/metrics").text
    async with client:
        await _link(client, "user_metrics")
        stack.sandbox.post("/_sandbox/tokens/expire").raise_for_status()
        for _ in range(2):
            await client.actions.execute_tool(
                tool_name="discord_get_my_user",
                tool_input={},
                identifier="user_metrics",
                connection_name="discord",
            )
        with pytest.raises(tokenward.ValidationError):
            await client.actions.execute_tool(
                tool_name="discord_get_my_user",
                tool_input={"x": 1},
                identifier="user_metrics",
                connection_name="discord",
            )
    after = httpx.get(f"{stack.gateway_url}/metrics").text
    assert re.search(r"^tokenward_http_requests_total\{", after, re.M)

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    tool = "discord_get_my_user"
    assert delta("tokenward_tool_calls_total", tool=tool, status="ok") == 2
    assert delta("tokenward_tool_calls_total", tool=tool, status="VALIDATION_ERROR") == 1
    assert delta("tokenward_token_refreshes_total", outcome="success") == 1
    assert delta("tokenward_upstream_request_duration_seconds_count", status="401") == 1
    assert delta("tokenward_upstream_request_duration_seconds_count", status="200") >= 2


async def test_proxied_calls_mark_the_account_used(stack: Stack, client: AsyncClient) -> None:
    async with client:
        account_id = await _link(client, "user_used")
        assert (
            stack.cli.json("accounts", "show", "--id", account_id, "--json")["last_used_at"] is None
        )
        response = await client.actions.request(
            connection_name="discord", identifier="user_used", path="/api/v10/users/@me"
        )
        assert response.status_code == 200
        for _ in range(50):
            shown = stack.cli.json("accounts", "show", "--id", account_id, "--json")
            if shown["last_used_at"] is not None:
                break
            await asyncio.sleep(0.2)
        assert shown["last_used_at"] is not None
