"""The compatibility port with grpcio clients built from our own protos, against a real
``tokenward serve --compat-port`` and the sandbox, over h2c and over TLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
from grpc_status import rpc_status

from e2e.processes import register_application, sandbox_secrets
from tokenward.compat.proto import connected_accounts_pb2 as ca
from tokenward.compat.proto import connected_accounts_pb2_grpc as ca_grpc
from tokenward.compat.proto import errdetails_pb2
from tokenward.compat.proto import tools_pb2 as tl
from tokenward.compat.proto import tools_pb2_grpc as tl_grpc
from tokenward.sandbox.browser import walk_consent

from .conftest import CONNECTION, CompatStack

ADA = "1100000000000000001"
LINUS = "1100000000000000003"


class Clients:
    def __init__(self, stack: CompatStack) -> None:
        if stack.ca is not None:
            credentials = grpc.ssl_channel_credentials(stack.ca.read_bytes())
            self.channel = grpc.secure_channel(stack.target, credentials)
        else:
            self.channel = grpc.insecure_channel(stack.target)
        self.accounts = ca_grpc.ConnectedAccountServiceStub(self.channel)
        self.tools = tl_grpc.ToolServiceStub(self.channel)
        self.stack = stack
        self.metadata = [("authorization", f"Bearer {stack.token()}")]


@pytest.fixture(scope="module")
def clients(stack: CompatStack) -> Iterator[Clients]:
    built = Clients(stack)
    try:
        yield built
    finally:
        built.channel.close()


def error_of(call: Any) -> tuple[grpc.StatusCode, str, errdetails_pb2.ErrorInfo]:
    """Run ``call``; it must fail: its code, message and the ErrorInfo in its status details
    (whose code and message must equal the trailers', or grpc_status refuses them)."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error = raised.value
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin"
    assert len(status.details) == 1
    info = errdetails_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return error.code(), error.details(), info  # type: ignore[attr-defined]


def link(clients: Clients, identifier: str, user: str = ADA) -> ca.ConnectedAccount:
    response = clients.accounts.GetMagicLinkForConnectedAccount(
        ca.GetMagicLinkForConnectedAccountRequest(connector=CONNECTION, identifier=identifier),
        metadata=clients.metadata,
    )
    assert response.link.startswith(f"{clients.stack.gateway_url}/connect/")
    assert response.expiry.seconds > 0
    assert walk_consent(response.link, user_id=user).status_code == 200
    account = clients.accounts.GetConnectedAccountDetails(
        ca.GetConnectedAccountByIdentifierRequest(connector=CONNECTION, identifier=identifier),
        metadata=clients.metadata,
    ).connected_account
    assert account.status == ca.ACTIVE
    return account


def test_link_then_read_the_account_with_and_without_its_token(clients: Clients) -> None:
    account = link(clients, "grpc_link")
    assert account.id.startswith("ca_")
    assert account.connector == CONNECTION
    assert account.provider == "DISCORD"
    assert account.authorization_type == ca.OAUTH
    assert account.token_expires_at.seconds > 0
    assert account.updated_at.seconds > 0
    assert account.last_used_at.seconds > 0
    assert not account.HasField("authorization_details")

    with_token = clients.accounts.GetConnectedAccountAuth(
        ca.GetConnectedAccountByIdentifierRequest(id=account.id), metadata=clients.metadata
    ).connected_account
    token = with_token.authorization_details.oauth_token
    assert token.access_token in sandbox_secrets(clients.stack.sandbox_url)
    assert token.refresh_token == ""  # single-use at Discord: never handed out
    assert "identify" in token.scopes
    assert with_token.identifier == "grpc_link"


def test_a_token_only_for_admin_clients(clients: Clients, stack: CompatStack) -> None:
    link(clients, "grpc_reader")
    reader = stack.cli.json(
        "api-clients", "create", "--name", "reader", "--scopes", "accounts:read"
    )
    metadata = [
        ("authorization", f"Bearer {stack.token(reader['client_id'], reader['client_secret'])}")
    ]
    account = clients.accounts.GetConnectedAccountAuth(
        ca.GetConnectedAccountByIdentifierRequest(connector=CONNECTION, identifier="grpc_reader"),
        metadata=metadata,
    ).connected_account
    assert account.status == ca.ACTIVE
    assert not account.HasField("authorization_details")
    code, message, info = error_of(
        lambda: clients.accounts.DeleteConnectedAccount(
            ca.DeleteConnectedAccountRequest(connector=CONNECTION, identifier="grpc_reader"),
            metadata=metadata,
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "accounts:write" in message
    assert info.error_code == "INSUFFICIENT_SCOPE"


def test_not_found_drives_get_or_create(clients: Clients) -> None:
    request = ca.GetConnectedAccountByIdentifierRequest(connector=CONNECTION, identifier="fresh")
    code, message, info = error_of(
        lambda: clients.accounts.GetConnectedAccountAuth(request, metadata=clients.metadata)
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert "fresh" in message
    assert info.error_code == "ACCOUNT_NOT_FOUND"

    created = clients.accounts.CreateConnectedAccount(
        ca.CreateConnectedAccountRequest(
            connector=CONNECTION,
            identifier="fresh",
            connected_account=ca.CreateConnectedAccount(
                authorization_details=ca.AuthorizationDetails(oauth_token=ca.OauthToken())
            ),
        ),
        metadata=clients.metadata,
    ).connected_account
    assert created.status == ca.PENDING_AUTH
    assert created.identifier == "fresh"
    found = clients.accounts.GetConnectedAccountAuth(request, metadata=clients.metadata)
    assert found.connected_account.id == created.id

    code, _message, info = error_of(
        lambda: clients.accounts.CreateConnectedAccount(
            ca.CreateConnectedAccountRequest(
                connector=CONNECTION,
                identifier="fresh",
                connected_account=ca.CreateConnectedAccount(),
            ),
            metadata=clients.metadata,
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert info.error_code == "ACCOUNT_EXISTS"


def test_bad_input_names_the_field_and_changes_nothing(clients: Clients) -> None:
    cases = [
        (
            lambda: clients.accounts.GetConnectedAccountAuth(
                ca.GetConnectedAccountByIdentifierRequest(connector="dis/cord", identifier="u"),
                metadata=clients.metadata,
            ),
            "connector",
        ),
        (
            lambda: clients.accounts.GetConnectedAccountAuth(
                ca.GetConnectedAccountByIdentifierRequest(id="01HXXXXXXXXXXXXXXXXXXXXXXX"),
                metadata=clients.metadata,
            ),
            "id",
        ),
        (
            lambda: clients.accounts.GetMagicLinkForConnectedAccount(
                ca.GetMagicLinkForConnectedAccountRequest(
                    connector=CONNECTION, identifier="u", user_verify_url="ftp://x"
                ),
                metadata=clients.metadata,
            ),
            "user_verify_url",
        ),
        (
            lambda: clients.accounts.CreateConnectedAccount(
                ca.CreateConnectedAccountRequest(
                    connector=CONNECTION,
                    identifier="imported",
                    connected_account=ca.CreateConnectedAccount(
                        authorization_details=ca.AuthorizationDetails(
                            oauth_token=ca.OauthToken(access_token="from-elsewhere")
                        )
                    ),
                ),
                metadata=clients.metadata,
            ),
            "connected_account.authorization_details",
        ),
        (
            lambda: clients.tools.ListTools(
                tl.ListToolsRequest(page_size=1001), metadata=clients.metadata
            ),
            "page_size",
        ),
    ]
    for call, field in cases:
        code, message, info = error_of(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message.startswith(f"{field}:"), message
        assert info.error_code == "VALIDATION_ERROR"
    listing = clients.accounts.ListConnectedAccounts(
        ca.ListConnectedAccountsRequest(connector=CONNECTION, identifier="imported"),
        metadata=clients.metadata,
    )
    assert list(listing.connected_accounts) == []


def test_list_update_and_delete(clients: Clients) -> None:
    account = link(clients, "grpc_delete", user=LINUS)
    listing = clients.accounts.ListConnectedAccounts(
        ca.ListConnectedAccountsRequest(connector=CONNECTION, identifier="grpc_delete"),
        metadata=clients.metadata,
    )
    assert [a.id for a in listing.connected_accounts] == [account.id]
    assert listing.connected_accounts[0].status == ca.ACTIVE
    assert listing.connected_accounts[0].connector == CONNECTION

    clients.accounts.CreateConnectedAccount(
        ca.CreateConnectedAccountRequest(
            connector=CONNECTION,
            identifier="grpc_page_extra",
            connected_account=ca.CreateConnectedAccount(),
        ),
        metadata=clients.metadata,
    )
    paged = clients.accounts.ListConnectedAccounts(
        ca.ListConnectedAccountsRequest(page_size=1), metadata=clients.metadata
    )
    assert len(paged.connected_accounts) == 1
    assert paged.next_page_token
    # total_size counts every matching account, not the page.
    everyone = clients.accounts.ListConnectedAccounts(
        ca.ListConnectedAccountsRequest(page_size=100), metadata=clients.metadata
    )
    assert paged.total_size == len(everyone.connected_accounts) >= 2
    assert everyone.total_size == paged.total_size
    one = clients.accounts.ListConnectedAccounts(
        ca.ListConnectedAccountsRequest(
            connector=CONNECTION, identifier="grpc_page_extra", page_size=1
        ),
        metadata=clients.metadata,
    )
    assert one.total_size == 1
    following = clients.accounts.ListConnectedAccounts(
        ca.ListConnectedAccountsRequest(page_size=1, page_token=paged.next_page_token),
        metadata=clients.metadata,
    )
    assert following.connected_accounts[0].id != paged.connected_accounts[0].id

    updated = clients.accounts.UpdateConnectedAccount(
        ca.UpdateConnectedAccountRequest(id=account.id), metadata=clients.metadata
    ).connected_account
    assert updated.id == account.id

    revocations = httpx.get(f"{clients.stack.sandbox_url}/_sandbox/stats").json()["revocations"]
    clients.accounts.DeleteConnectedAccount(
        ca.DeleteConnectedAccountRequest(connector=CONNECTION, identifier="grpc_delete"),
        metadata=clients.metadata,
    )
    after = httpx.get(f"{clients.stack.sandbox_url}/_sandbox/stats").json()["revocations"]
    assert after == revocations + 1
    code, _message, _info = error_of(
        lambda: clients.accounts.DeleteConnectedAccount(
            ca.DeleteConnectedAccountRequest(id=account.id), metadata=clients.metadata
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_delete_leaves_the_grant_to_other_identifiers_of_the_same_user(clients: Clients) -> None:
    kept = link(clients, "grpc_sibling_kept")
    gone = link(clients, "grpc_sibling_gone")
    stats = f"{clients.stack.sandbox_url}/_sandbox/stats"
    revocations = httpx.get(stats).json()["revocations"]
    clients.accounts.DeleteConnectedAccount(
        ca.DeleteConnectedAccountRequest(id=gone.id), metadata=clients.metadata
    )
    assert httpx.get(stats).json()["revocations"] == revocations
    still = clients.accounts.GetConnectedAccountDetails(
        ca.GetConnectedAccountByIdentifierRequest(id=kept.id), metadata=clients.metadata
    )
    assert still.connected_account.status == ca.ACTIVE


def test_verify_user(clients: Clients) -> None:
    stack = clients.stack
    verify_url = f"{stack.gateway_url}/healthz"  # a page of the application's
    response = clients.accounts.GetMagicLinkForConnectedAccount(
        ca.GetMagicLinkForConnectedAccountRequest(
            connector=CONNECTION, identifier="grpc_verify", user_verify_url=verify_url, state="s1"
        ),
        metadata=clients.metadata,
    )
    walked = walk_consent(response.link, user_id=LINUS)
    landed = urlsplit(walked.visited[-1])
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == verify_url
    query = parse_qs(landed.query)
    assert query["state"] == ["s1"]
    auth_request_id = query["auth_request_id"][0]
    request = ca.GetConnectedAccountByIdentifierRequest(
        connector=CONNECTION, identifier="grpc_verify"
    )
    pending = clients.accounts.GetConnectedAccountDetails(request, metadata=clients.metadata)
    assert pending.connected_account.status == ca.PENDING_VERIFICATION

    code, message, _info = error_of(
        lambda: clients.accounts.VerifyConnectedAccountUser(
            ca.VerifyConnectedAccountUserRequest(
                auth_request_id=auth_request_id, identifier="someone_else"
            ),
            metadata=clients.metadata,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "identifier" in message
    verified = clients.accounts.VerifyConnectedAccountUser(
        ca.VerifyConnectedAccountUserRequest(
            auth_request_id=auth_request_id, identifier="grpc_verify"
        ),
        metadata=clients.metadata,
    )
    assert verified.post_user_verify_redirect_url.startswith(f"{stack.gateway_url}/sso/v1/oauth/")
    assert verified.post_user_verify_redirect_url.endswith(f"/result/{auth_request_id}")
    active = clients.accounts.GetConnectedAccountDetails(request, metadata=clients.metadata)
    assert active.connected_account.status == ca.ACTIVE


def test_verify_user_unknown_request(clients: Clients) -> None:
    code, _message, info = error_of(
        lambda: clients.accounts.VerifyConnectedAccountUser(
            ca.VerifyConnectedAccountUserRequest(auth_request_id="nope", identifier="u"),
            metadata=clients.metadata,
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert info.error_code == "AUTH_REQUEST_NOT_FOUND"


def test_tools_listing_filters_and_pages(clients: Clients) -> None:
    everything = clients.tools.ListTools(tl.ListToolsRequest(), metadata=clients.metadata)
    assert everything.total_size == len(everything.tools) == 255
    assert everything.next_page_token == ""
    first = clients.tools.ListTools(
        tl.ListToolsRequest(page_size=10, filter=tl.Filter(connector=CONNECTION)),
        metadata=clients.metadata,
    )
    assert first.total_size == 34  # the discord connection's provider: the user tools
    assert len(first.tools) == 10
    assert first.next_page_token == "10"
    second = clients.tools.ListTools(
        tl.ListToolsRequest(
            page_size=10, page_token=first.next_page_token, filter=tl.Filter(connector=CONNECTION)
        ),
        metadata=clients.metadata,
    )
    assert not set(first.tool_names) & set(second.tool_names)
    one = clients.tools.ListTools(
        tl.ListToolsRequest(filter=tl.Filter(tool_name=["discord_list_my_guilds"])),
        metadata=clients.metadata,
    )
    (tool,) = one.tools
    definition = dict(tool.definition)
    assert definition["name"] == "discord_list_my_guilds"
    schema = definition["input_schema"]
    assert schema["type"] == "object"
    assert "limit" in schema["properties"]
    assert definition["annotations"]["read_only_hint"] is True
    assert tool.provider == "DISCORD"
    assert tool.id == "tol_discord_list_my_guilds"


def test_scoped_tools_follow_the_users_accounts(clients: Clients) -> None:
    link(clients, "grpc_scoped")
    scoped = clients.tools.ListScopedTools(
        tl.ListScopedToolsRequest(identifier="grpc_scoped"), metadata=clients.metadata
    )
    assert scoped.total_size == 34
    assert {t.identifier for t in scoped.tools} == {"grpc_scoped"}
    assert all(t.connected_account_id.startswith("ca_") for t in scoped.tools)
    nobody = clients.tools.ListScopedTools(
        tl.ListScopedToolsRequest(identifier="nobody_here"), metadata=clients.metadata
    )
    assert nobody.total_size == 0


def test_execute_tool_and_its_errors(clients: Clients) -> None:
    account = link(clients, "grpc_tools")
    params: dict[str, Any] = {"limit": 2}
    request = tl.ExecuteToolRequest(
        tool_name="discord_list_my_guilds", identifier="grpc_tools", connector=CONNECTION
    )
    request.params.update(params)
    response = clients.tools.ExecuteTool(request, metadata=clients.metadata)
    guilds = [dict(g) for g in response.data["data"]]
    assert [g["id"] for g in guilds] == ["1200000000000000001", "1200000000000000002"]
    assert response.execution_id.startswith("exec_")

    me = clients.tools.ExecuteTool(
        tl.ExecuteToolRequest(tool_name="discord_get_my_user", connected_account_id=account.id),
        metadata=clients.metadata,
    )
    assert me.data["id"] == ADA

    missing = tl.ExecuteToolRequest(
        tool_name="discord_get_my_guild_member", identifier="grpc_tools", connector=CONNECTION
    )
    missing.params.update({"guild_id": "1200000000000000999"})
    code, _message, info = error_of(
        lambda: clients.tools.ExecuteTool(missing, metadata=clients.metadata)
    )
    assert info.error_code == "TOOL_ERROR"
    assert code == grpc.StatusCode.NOT_FOUND
    assert info.tool_error_info.tool_error_code == "10004", info  # Discord's Unknown Guild
    assert info.tool_error_info.tool_error_message

    code, _message, info = error_of(
        lambda: clients.tools.ExecuteTool(
            tl.ExecuteToolRequest(
                tool_name="discord_no_such_tool", identifier="grpc_tools", connector=CONNECTION
            ),
            metadata=clients.metadata,
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert info.error_code == "TOOL_NOT_FOUND"


def grpc_calls(stack: CompatStack, method: str, status: str) -> float:
    """``tokenward_grpc_calls`` for one method and status, from the gateway's /metrics."""
    with stack.http() as http:
        text = http.get("/metrics").raise_for_status().text
    prefix = f'tokenward_grpc_calls_total{{method="{method}",status="{status}"}} '
    return sum(
        float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)
    )


def test_the_servers_deadline_stops_a_slow_call_and_calls_are_counted(
    clients: Clients, stack: CompatStack
) -> None:
    """grpc-timeout is enforced by the server too: a call whose tool waits on a slow Discord
    ends DEADLINE_EXCEEDED at its deadline, not when Discord answers (the client stops waiting
    either way; the server's own count shows when it stopped)."""
    execute = "/scalekit.v1.tools.ToolService/ExecuteTool"
    link(clients, "grpc_deadline")
    before = grpc_calls(stack, execute, "DEADLINE_EXCEEDED")
    fault = {"route": "/api/v10/users/@me", "latency_ms": 4000, "count": 1}
    httpx.post(f"{stack.sandbox_url}/_sandbox/faults", json=fault).raise_for_status()
    try:
        request = tl.ExecuteToolRequest(
            tool_name="discord_get_my_user", identifier="grpc_deadline", connector=CONNECTION
        )
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as raised:
            clients.tools.ExecuteTool(request, metadata=clients.metadata, timeout=0.5)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
        while grpc_calls(stack, execute, "DEADLINE_EXCEEDED") == before:
            assert time.monotonic() - started < 2.5, "the server did not stop at the deadline"
            time.sleep(0.05)
    finally:
        httpx.delete(f"{stack.sandbox_url}/_sandbox/faults").raise_for_status()
    # Every call is counted by the method it names, unknown methods under one label.
    listed = grpc_calls(stack, "/scalekit.v1.tools.ToolService/ListTools", "OK")
    clients.tools.ListTools(tl.ListToolsRequest(page_size=1), metadata=clients.metadata)
    assert grpc_calls(stack, "/scalekit.v1.tools.ToolService/ListTools", "OK") == listed + 1
    unknown = clients.channel.unary_unary(
        "/scalekit.v1.tools.ToolService/NoSuchMethodForMetrics",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=tl.ListToolsResponse.FromString,
    )
    before_unknown = grpc_calls(stack, "unimplemented", "UNIMPLEMENTED")
    error_of(lambda: unknown(tl.ListToolsRequest()))
    assert grpc_calls(stack, "unimplemented", "UNIMPLEMENTED") == before_unknown + 1


def test_authentication(clients: Clients, stack: CompatStack) -> None:
    request = tl.ListToolsRequest(page_size=1)
    code, _message, info = error_of(lambda: clients.tools.ListTools(request))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert info.error_code == "UNAUTHENTICATED"
    code, _message, info = error_of(
        lambda: clients.tools.ListTools(request, metadata=[("authorization", "Bearer x.y.z")])
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert info.error_code == "INVALID_TOKEN"
    # The Python SDK sends its current token first and the channel's first token second.
    both = [*clients.metadata, ("authorization", "Bearer x.y.z")]
    assert clients.tools.ListTools(request, metadata=both).total_size == 255
    stale_first = [("authorization", "Bearer x.y.z"), *clients.metadata]
    code, _message, _info = error_of(lambda: clients.tools.ListTools(request, metadata=stale_first))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_unknown_method_and_rest_on_the_same_port(clients: Clients, stack: CompatStack) -> None:
    unknown = clients.channel.unary_unary(
        "/scalekit.v1.tools.ToolService/NoSuchMethod",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=tl.ListToolsResponse.FromString,
    )
    code, _message, _info = error_of(lambda: unknown(tl.ListToolsRequest()))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    with stack.http() as http:
        assert http.get("/healthz").json()["status"] == "ok"
        # The Python SDK asks for "//oauth/token" when the environment URL ends in "/".
        doubled = http.post(
            f"{stack.compat_url}//oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": stack.client_id,
                "client_secret": stack.client_secret,
            },
        )
        assert doubled.status_code == 200
        assert doubled.json()["token_type"] == "Bearer"


async def test_concurrent_calls_share_one_connection(clients: Clients) -> None:
    def call() -> int:
        return clients.tools.ListTools(
            tl.ListToolsRequest(page_size=5), metadata=clients.metadata
        ).total_size

    totals = await asyncio.gather(*(asyncio.to_thread(call) for _ in range(20)))
    assert totals == [255] * 20


def test_no_token_or_secret_in_the_servers_output(clients: Clients, stack: CompatStack) -> None:
    """Runs after the module's calls (tokens handed out, errors answered): none is logged."""
    link(clients, "grpc_logs")
    clients.accounts.GetConnectedAccountAuth(
        ca.GetConnectedAccountByIdentifierRequest(connector=CONNECTION, identifier="grpc_logs"),
        metadata=clients.metadata,
    )
    output = stack.gateway.stderr() + stack.gateway.stdout_path.read_text(errors="replace")
    assert "grpc_call" in output  # the calls are logged, one line each
    secrets = [*sandbox_secrets(stack.sandbox_url), stack.client_secret]
    secrets.append(clients.metadata[0][1].removeprefix("Bearer "))
    assert [s[:6] for s in secrets if s and s in output] == []


def test_a_bot_account_takes_its_token_through_static_auth(
    clients: Clients, stack: CompatStack
) -> None:
    app = register_application(stack.sandbox_url, name="Compat Bot")
    if "bots" not in [c["name"] for c in stack.cli.json("connections", "list")["connections"]]:
        stack.cli.json("connections", "create", "--name", "bots", "--provider", "discordbot")
    details = ca.AuthorizationDetails()
    details.static_auth.details.update({"bot_token": app["bot_token"]})
    created = clients.accounts.CreateConnectedAccount(
        ca.CreateConnectedAccountRequest(
            connector="bots",
            identifier="grpc_bot",
            connected_account=ca.CreateConnectedAccount(authorization_details=details),
        ),
        metadata=clients.metadata,
    ).connected_account
    assert created.status == ca.ACTIVE
    assert created.provider == "DISCORDBOT"
    assert created.authorization_type == ca.BEARER_TOKEN
    # The bot token is never handed back, not even to an admin client.
    read = clients.accounts.GetConnectedAccountAuth(
        ca.GetConnectedAccountByIdentifierRequest(id=created.id), metadata=clients.metadata
    ).connected_account
    assert not read.HasField("authorization_details")
    assert app["bot_token"] not in str(read)

    missing = ca.CreateConnectedAccountRequest(
        connector="bots", identifier="grpc_bot_2", connected_account=ca.CreateConnectedAccount()
    )
    code, message, _info = error_of(
        lambda: clients.accounts.CreateConnectedAccount(missing, metadata=clients.metadata)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "bot_token" in message
