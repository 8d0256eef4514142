"""Every documented error path of the catalog, against the sandbox: Discord's refusals, the
gateway's own refusals (which send nothing), rate limits, retries, and the token lifecycle
(revoked → re-authorization; expired → exactly one refresh)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tokenward._serving import BackgroundServer
from tokenward.errors import (
    AccountNotActive,
    AccountNotFound,
    ConnectionNotFound,
    ProviderError,
    RateLimited,
    ReauthorizationRequired,
    TokenwardError,
    ToolNotFound,
)
from tokenward.sandbox import SandboxSettings, create_sandbox_app
from tokenward.sandbox.browser import open_link
from tokenward.server.container import Container
from tokenward.tools.runner import ToolResult
from tokenward.vault.models import AccountStatus

from .env import (
    ADA,
    GRACE,
    LINUS,
    NARROW,
    NO_BOT,
    WITH_BOT,
    AheadClock,
    ToolEnv,
    add_connection,
    link,
)

HUB = "1200000000000000001"
CLUB = "1200000000000000002"  # widget off; ada is a member
QUIET = "1200000000000000004"  # widget off; ada is not a member
UNKNOWN_GUILD = "1299999999999999999"
WIDGET_ROUTE = "GET /api/v10/guilds/{guild_id}/widget.json"
TOKEN_ROUTE = "POST /api/oauth2/token"


async def run(
    container: Container,
    tool: str,
    tool_input: dict[str, Any] | None = None,
    *,
    connection: str = WITH_BOT,
    identifier: str = "ada",
) -> ToolResult:
    return await container.runner.execute(
        tool, tool_input or {}, connection_name=connection, identifier=identifier
    )


async def fails(
    container: Container,
    tool: str,
    tool_input: dict[str, Any] | None = None,
    *,
    connection: str = WITH_BOT,
    identifier: str = "ada",
) -> TokenwardError:
    with pytest.raises(TokenwardError) as caught:
        await run(container, tool, tool_input, connection=connection, identifier=identifier)
    error = caught.value
    envelope = error.to_dict()["error"]  # every error serialises to the API's envelope
    assert envelope["code"] == error.code
    assert envelope["message"] == error.message
    assert isinstance(envelope["details"], dict)
    return error


def assert_discord_error(
    error: TokenwardError, *, status: int, code: int, message: str, hint: str
) -> None:
    assert isinstance(error, ProviderError), repr(error)
    assert error.code == "PROVIDER_ERROR"
    assert error.status == status
    assert error.details["discord"] == {"status": status, "code": code, "message": message}
    assert str(status) in error.message
    assert message in error.message
    assert hint.lower() in error.details["hint"].lower(), error.details["hint"]


def route_count(env: ToolEnv, route: str) -> int:
    return int(env.stats()["requests"]["by_route"].get(route, 0))


def assert_link(env: ToolEnv, error: TokenwardError) -> None:
    link = error.details["authorization_link"]
    assert isinstance(link, str)
    assert link.startswith(f"{env.gateway.url}/connect/"), link
    # The link works: its page's button sends the browser to the sandbox's consent page.
    pressed = open_link(link, follow=False).final
    assert pressed.status_code == 303
    assert pressed.headers["location"].startswith(f"{env.sandbox_url}/oauth2/authorize?")


# -- Discord's refusals, with hints -------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "tool_input"),
    [
        ("discord_get_guild_widget", {"guild_id": UNKNOWN_GUILD}),
        ("discord_get_guild_widget_png", {"guild_id": UNKNOWN_GUILD}),
        ("discord_get_my_guild_member", {"guild_id": UNKNOWN_GUILD}),
    ],
)
async def test_unknown_guild(
    tool_env: ToolEnv, container: Container, tool: str, tool_input: dict[str, Any]
) -> None:
    error = await fails(container, tool, tool_input)
    assert_discord_error(error, status=404, code=10004, message="Unknown Guild", hint="guild")


async def test_not_a_member(tool_env: ToolEnv, container: Container) -> None:
    error = await fails(container, "discord_get_my_guild_member", {"guild_id": QUIET})
    assert_discord_error(
        error, status=404, code=10004, message="Unknown Guild", hint="not a member"
    )


@pytest.mark.parametrize("tool", ["discord_get_guild_widget", "discord_get_guild_widget_png"])
@pytest.mark.parametrize("guild_id", [CLUB, QUIET])
async def test_widget_disabled(
    tool_env: ToolEnv, container: Container, tool: str, guild_id: str
) -> None:
    error = await fails(container, tool, {"guild_id": guild_id}, connection=NO_BOT)
    assert_discord_error(
        error,
        status=403,
        code=50004,
        message="Widget Disabled",
        hint="the server has not enabled its widget",
    )


@pytest.mark.parametrize("tool", ["discord_resolve_invite", "discord_get_invite_deprecated"])
@pytest.mark.parametrize(
    "invite",
    [
        "Nope1234",  # never existed
        "https://discord.gg/Nope1234",
        "Old2023x",  # expired in 2024
        "https://discord.com/invite/Old2023x?x=1",
    ],
)
async def test_unknown_or_expired_invite(
    tool_env: ToolEnv, container: Container, tool: str, invite: str
) -> None:
    error = await fails(container, tool, {"invite_code": invite})
    assert_discord_error(
        error,
        status=404,
        code=10006,
        message="Unknown Invite",
        hint="invite code is wrong, expired",
    )


@pytest.mark.parametrize("code", ["NoSuchTmpl99", "https://discord.new/NoSuchTmpl99"])
async def test_unknown_template(tool_env: ToolEnv, container: Container, code: str) -> None:
    error = await fails(container, "discord_get_guild_template", {"template_code": code})
    assert_discord_error(
        error, status=404, code=10057, message="Unknown Guild Template", hint="template code"
    )


async def test_unknown_user_via_bot(tool_env: ToolEnv, container: Container) -> None:
    error = await fails(container, "discord_get_user", {"user_id": "1199999999999999999"})
    assert_discord_error(error, status=404, code=10013, message="Unknown User", hint="user id")


async def test_unknown_application_for_entitlements(
    tool_env: ToolEnv, container: Container
) -> None:
    error = await fails(
        container,
        "discord_get_current_user_application_entitlements",
        {"application_id": "1399999999999999999"},
    )
    assert isinstance(error, ProviderError)
    assert error.details["discord"] == {
        "status": 404,
        "code": 10002,
        "message": "Unknown Application",
    }
    assert error.details["hint"]


# -- the gateway's own refusals: nothing is sent ------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "tool_input", "missing"),
    [
        ("discord_list_my_guilds", {}, ["guilds"]),
        ("discord_get_my_guild_member", {"guild_id": HUB}, ["guilds.members.read"]),
        ("discord_retrieve_user_connections", {}, ["connections"]),
        ("discord_get_openid_connect_userinfo", {}, ["openid"]),
    ],
)
async def test_missing_scope_sends_nothing(
    tool_env: ToolEnv,
    container: Container,
    tool: str,
    tool_input: dict[str, Any],
    missing: list[str],
) -> None:
    before = tool_env.total()
    error = await fails(container, tool, tool_input, connection=NARROW, identifier="ada-narrow")
    assert tool_env.total() == before
    assert error.code == "MISSING_SCOPE"
    assert error.status == 403
    assert error.details["missing_scopes"] == missing
    assert missing[0] in error.message
    assert error.details["hint"]
    assert_link(tool_env, error)
    # Asking for a new link does not unlink the account: the tools it can use still work.
    account = await container.oauth.find_account(NARROW, "ada-narrow")
    assert account.status == AccountStatus.ACTIVE
    ok = await run(container, "discord_get_my_user", connection=NARROW, identifier="ada-narrow")
    assert ok.data["id"] == ADA


async def test_account_not_linked_yet(tool_env: ToolEnv, container: Container) -> None:
    before = tool_env.total()
    error = await fails(container, "discord_get_my_user", identifier="pending-user")
    assert tool_env.total() == before
    assert isinstance(error, AccountNotActive)
    assert error.code == "ACCOUNT_NOT_ACTIVE"
    assert error.details["status"] == "PENDING_AUTH"
    assert_link(tool_env, error)


async def test_expired_account_needs_reauthorization(
    tool_env: ToolEnv, container: Container
) -> None:
    before = tool_env.total()
    error = await fails(container, "discord_list_my_guilds", identifier="expired-user")
    assert tool_env.total() == before
    assert isinstance(error, ReauthorizationRequired)
    assert error.code == "REAUTHORIZATION_REQUIRED"
    assert error.details["status"] == "EXPIRED"
    assert "refused the refresh token" in error.details["status_reason"]
    assert_link(tool_env, error)


async def test_unknown_connection(tool_env: ToolEnv, container: Container) -> None:
    before = tool_env.total()
    error = await fails(container, "discord_get_gateway", connection="no-such-connection")
    assert isinstance(error, ConnectionNotFound)
    assert error.code == "CONNECTION_NOT_FOUND"
    assert "no-such-connection" in error.message
    assert tool_env.total() == before


async def test_unknown_identifier(tool_env: ToolEnv, container: Container) -> None:
    before = tool_env.total()
    error = await fails(container, "discord_get_my_user", identifier="nobody-here")
    assert isinstance(error, AccountNotFound)
    assert error.code == "ACCOUNT_NOT_FOUND"
    assert "nobody-here" in error.message
    assert error.details == {"connection_name": WITH_BOT, "identifier": "nobody-here"}
    assert tool_env.total() == before


async def test_unknown_tool(tool_env: ToolEnv, container: Container) -> None:
    before = tool_env.total()
    error = await fails(container, "discord_delete_everything")
    assert isinstance(error, ToolNotFound)
    assert error.code == "TOOL_NOT_FOUND"
    assert error.details["tool_name"] == "discord_delete_everything"
    assert tool_env.total() == before


# -- rate limits --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[str]:
    """A sandbox whose windows are a minute long (window_scale 60): bucket 5 per 300 s, a forced
    429 says retry_after 60 s. Longer than the gateway waits (30 s by default)."""
    with BackgroundServer(create_sandbox_app(SandboxSettings(window_scale=60))) as server:
        yield server.url


async def test_rate_limited_by_discord_reports_retry_after(
    tool_env: ToolEnv, slow_sandbox: str
) -> None:
    httpx.post(f"{slow_sandbox}/_sandbox/faults", json={"route": "/api/v10/gateway", "status": 429})
    async with tool_env.container(discord_base_url=slow_sandbox) as container:
        error = await fails(container, "discord_get_gateway", connection=NO_BOT)
    stats = httpx.get(f"{slow_sandbox}/_sandbox/stats").json()
    assert isinstance(error, RateLimited)
    assert error.code == "RATE_LIMITED"
    assert error.status == 429
    assert error.details["retry_after"] == pytest.approx(60.0)
    assert "60" in error.message
    # One 429 was enough to know the wait is too long: no second request.
    assert stats["requests"]["total"] == 1
    assert stats["rate_limited"] == 1


async def test_bucket_exhausted_is_refused_before_discord_says_no(
    tool_env: ToolEnv, slow_sandbox: str
) -> None:
    httpx.post(f"{slow_sandbox}/_sandbox/reset").raise_for_status()
    async with tool_env.container(discord_base_url=slow_sandbox) as container:
        for _ in range(5):
            await run(container, "discord_list_sticker_packs", connection=NO_BOT)
        # The bucket said 10 per 600 s for sticker packs; spend the rest, then one more.
        limit = int(httpx.get(f"{slow_sandbox}/api/v10/sticker-packs").headers["X-RateLimit-Limit"])
        for _ in range(limit - 6):
            await run(container, "discord_list_sticker_packs", connection=NO_BOT)
        error = await fails(container, "discord_list_sticker_packs", connection=NO_BOT)
    stats = httpx.get(f"{slow_sandbox}/_sandbox/stats").json()
    assert isinstance(error, RateLimited)
    assert error.details["retry_after"] > 30
    assert stats["requests"]["total"] == limit  # the refused call was never sent
    assert stats["rate_limited"] == 0


# -- retries ------------------------------------------------------------------------------------


async def test_503_on_a_get_is_retried(tool_env: ToolEnv, container: Container) -> None:
    tool_env.fault(route=f"/api/v10/guilds/{HUB}/widget.json", status=503, count=1)
    before = route_count(tool_env, WIDGET_ROUTE)
    result = await run(container, "discord_get_guild_widget", {"guild_id": HUB})
    assert result.data["id"] == HUB
    assert route_count(tool_env, WIDGET_ROUTE) == before + 2


async def test_dropped_connection_on_a_get_is_retried(
    tool_env: ToolEnv, container: Container
) -> None:
    tool_env.fault(route=f"/api/v10/guilds/{HUB}/widget.json", drop_connection=True, count=1)
    before = route_count(tool_env, WIDGET_ROUTE)
    result = await run(container, "discord_get_guild_widget", {"guild_id": HUB})
    assert result.data["name"] == "Sandbox Hub"
    assert route_count(tool_env, WIDGET_ROUTE) == before + 2


async def test_503_that_persists_becomes_a_provider_error(tool_env: ToolEnv) -> None:
    """Retried until the retry deadline (1 s here), then Discord's 503 with the attempt count
    and when to try again."""
    tool_env.fault(route=f"/api/v10/guilds/{HUB}/widget.json", status=503)
    before = route_count(tool_env, WIDGET_ROUTE)
    async with tool_env.container(retry_deadline_seconds=1.0) as container:
        error = await fails(container, "discord_get_guild_widget", {"guild_id": HUB})
    assert_discord_error(
        error, status=503, code=0, message="503: Service Unavailable", hint="retry after"
    )
    sent = route_count(tool_env, WIDGET_ROUTE) - before
    assert sent >= 3
    assert error.details["attempts"] == sent
    assert error.details["retry_after"] >= 1.0


# -- the token lifecycle ------------------------------------------------------------------------


async def test_revoked_token_refreshes_once_then_needs_reauthorization(
    tool_env: ToolEnv, container: Container
) -> None:
    await add_connection(tool_env, container, "revoked")
    account_id = await link(container, "revoked", "rita", LINUS)
    account = await container.vault.get_account(account_id)
    assert account.access_token is not None
    tool_env.revoke("revoked", account.access_token.get_secret_value())

    before = tool_env.stats()
    error = await fails(container, "discord_get_my_user", connection="revoked", identifier="rita")
    after = tool_env.stats()

    assert isinstance(error, ReauthorizationRequired)
    assert error.code == "REAUTHORIZATION_REQUIRED"
    assert error.status == 401
    assert_link(tool_env, error)
    # One 401, one refresh attempt (refused: the grant is gone), nothing else.
    assert after["unauthorized"] - before["unauthorized"] == 1
    assert (
        after["requests"]["by_route"][TOKEN_ROUTE] - before["requests"]["by_route"][TOKEN_ROUTE]
        == 1
    )
    assert after["grants"]["refresh_token"] == before["grants"]["refresh_token"]
    assert after["requests"]["total"] - before["requests"]["total"] == 2
    stored = await container.vault.get_account(account_id)
    assert stored.status == AccountStatus.EXPIRED
    assert stored.status_reason is not None
    assert "invalid_grant" in stored.status_reason  # the real cause, not overwritten
    kinds = [e.kind for e in await container.vault.list_events(account_id=account_id)]
    assert kinds.count("account.expired") == 1

    # The dead token is not used again, by this process or another one.
    again = await fails(container, "discord_get_my_user", connection="revoked", identifier="rita")
    assert isinstance(again, ReauthorizationRequired)
    async with tool_env.container() as other:
        third = await fails(other, "discord_get_my_user", connection="revoked", identifier="rita")
    assert isinstance(third, ReauthorizationRequired)
    assert tool_env.total() == after["requests"]["total"]


async def test_expired_at_discord_refreshes_once_and_retries(
    tool_env: ToolEnv, container: Container
) -> None:
    await add_connection(tool_env, container, "expiring")
    account_id = await link(container, "expiring", "eve", GRACE)
    first = await container.vault.get_account(account_id)
    assert tool_env.expire_tokens(client_id=tool_env.apps["expiring"]["client_id"]) == 1

    before = tool_env.stats()
    result = await run(container, "discord_get_my_user", connection="expiring", identifier="eve")
    after = tool_env.stats()

    assert result.data["id"] == GRACE
    assert after["grants"]["refresh_token"] - before["grants"]["refresh_token"] == 1
    assert after["unauthorized"] - before["unauthorized"] == 1
    # 401, refresh, retry.
    assert after["requests"]["total"] - before["requests"]["total"] == 3
    stored = await container.vault.get_account(account_id)
    assert stored.status == AccountStatus.ACTIVE
    assert stored.version > first.version
    assert stored.access_token is not None
    assert first.access_token is not None
    assert stored.access_token.get_secret_value() != first.access_token.get_secret_value()

    # The new token keeps working without another refresh.
    await run(container, "discord_get_my_user", connection="expiring", identifier="eve")
    assert tool_env.stats()["grants"]["refresh_token"] == after["grants"]["refresh_token"]


async def test_token_due_is_refreshed_before_the_call(
    tool_env: ToolEnv, container: Container
) -> None:
    await add_connection(tool_env, container, "due")
    await link(container, "due", "dan", GRACE)
    tool_env.expire_tokens(client_id=tool_env.apps["due"]["client_id"])
    lifetime = 604_800  # the sandbox's default token lifetime

    before = tool_env.stats()
    async with tool_env.container(clock=AheadClock(lifetime + 60)) as ahead:
        result = await run(ahead, "discord_get_my_user", connection="due", identifier="dan")
    after = tool_env.stats()

    assert result.data["id"] == GRACE
    assert after["grants"]["refresh_token"] - before["grants"]["refresh_token"] == 1
    assert after["unauthorized"] == before["unauthorized"]  # refreshed first, never refused


async def test_many_calls_on_an_expired_token_refresh_once(
    tool_env: ToolEnv, container: Container
) -> None:
    await add_connection(tool_env, container, "crowd")
    await link(container, "crowd", "cat", GRACE)
    tool_env.expire_tokens(client_id=tool_env.apps["crowd"]["client_id"])

    before = tool_env.stats()
    results = await asyncio.gather(
        *(
            run(
                container,
                "discord_get_openid_connect_userinfo",
                connection="crowd",
                identifier="cat",
            )
            for _ in range(10)
        )
    )
    after = tool_env.stats()

    assert [r.data["sub"] for r in results] == [GRACE] * 10
    assert after["grants"]["refresh_token"] - before["grants"]["refresh_token"] == 1


async def test_refused_again_after_a_refresh_needs_reauthorization(
    tool_env: ToolEnv, container: Container
) -> None:
    await add_connection(tool_env, container, "stubborn")
    account_id = await link(container, "stubborn", "sam", GRACE)
    tool_env.fault(route="/api/v10/users/@me", status=401, count=2)

    before = tool_env.stats()
    error = await fails(container, "discord_get_my_user", connection="stubborn", identifier="sam")
    after = tool_env.stats()

    assert isinstance(error, ReauthorizationRequired)
    assert error.details["status"] == 401
    assert_link(tool_env, error)
    # 401, one refresh (which worked), the retry refused again; no second refresh.
    assert after["grants"]["refresh_token"] - before["grants"]["refresh_token"] == 1
    assert after["unauthorized"] - before["unauthorized"] == 2
    stored = await container.vault.get_account(account_id)
    assert stored.status == AccountStatus.EXPIRED
    assert stored.status_reason == "Discord rejected the account's token even after a refresh"
    total = tool_env.total()
    again = await fails(container, "discord_get_my_user", connection="stubborn", identifier="sam")
    assert isinstance(again, ReauthorizationRequired)
    assert tool_env.total() == total
