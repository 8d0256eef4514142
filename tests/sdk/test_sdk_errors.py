"""Every way an SDK call can fail is a ``tokenward.TokenwardError`` subclass (issue 9, "SDK"):
a wrong secret, a closed port, a server that never answers, a proxy in front answering HTML, bad
arguments (caught before anything is sent), a missing scope."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

import tokenward
from tokenward._serving import BackgroundServer, free_port
from tokenward.sdk import AsyncClient, Client

from .conftest import Stack


@pytest.fixture
def closed_url() -> str:
    """A loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


class FrontProxy:
    """A reverse proxy in front of the gateway, as an operator might run one, that forwards
    everything except ``broken`` paths, which get its own non-JSON error page."""

    def __init__(self, upstream: str, broken: dict[str, tuple[int, str, bytes]]) -> None:
        self.upstream = upstream
        self.broken = broken

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path in self.broken or "*" in self.broken:
            status, content_type, body = self.broken.get(path) or self.broken["*"]
            headers = [(b"content-type", content_type.encode())]
        else:
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            query = scope["query_string"].decode()
            async with httpx.AsyncClient(trust_env=False) as client:
                upstream = await client.request(
                    scope["method"],
                    f"{self.upstream}{path}" + (f"?{query}" if query else ""),
                    headers=[(k.decode(), v.decode()) for k, v in scope["headers"] if k != b"host"],
                    content=b"".join(chunks),
                )
            status, body = upstream.status_code, upstream.content
            headers = [(b"content-type", upstream.headers.get("content-type", "").encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


BAD_GATEWAY = (502, "text/html", b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>")


async def test_a_wrong_secret_is_an_authentication_error(stack: Stack) -> None:
    async with AsyncClient(stack.gateway_url, stack.client_id, "tws_wrong") as client:
        with pytest.raises(tokenward.AuthenticationError) as info:
            await client.actions.list_tools()
    assert info.value.code == "INVALID_CLIENT"
    assert info.value.status == 401
    assert "tws_wrong" not in str(info.value)


async def test_a_closed_port_is_server_unreachable(closed_url: str) -> None:
    async with AsyncClient(closed_url, "twc_x", "tws_x") as client:
        with pytest.raises(tokenward.ServerUnreachable) as info:
            await client.actions.list_tools()
    error = info.value
    assert isinstance(error, tokenward.TokenwardError)
    assert error.code == "SERVER_UNREACHABLE"
    assert error.details["reason"] == "connect"
    assert error.details["url"] == closed_url
    assert error.details["request_sent"] is False
    assert closed_url in error.message
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_the_sync_client_raises_the_same(closed_url: str) -> None:
    with Client(closed_url, "twc_x", "tws_x") as client:
        with pytest.raises(tokenward.ServerUnreachable):
            client.actions.get_connected_account(id="acc_1")
        with pytest.raises(tokenward.ServerUnreachable):
            client.actions.request(connection_name="discord", identifier="u", path="/api/users/@me")


async def test_a_server_that_never_answers_is_a_timeout(silent_url: str) -> None:
    async with AsyncClient(silent_url, "twc_x", "tws_x", timeout=0.3) as client:
        with pytest.raises(tokenward.ServerUnreachable) as info:
            await client.actions.list_tools()
    assert info.value.details["reason"] == "timeout"


@pytest.mark.parametrize(
    ("tool_input", "reason"),
    [
        (["limit", 2], "must be a dict (a JSON object), not list"),
        ("{'limit': 2}", "must be a dict (a JSON object), not str"),
        (42, "must be a dict (a JSON object), not int"),
        ({"limit": float("nan")}, "must not contain NaN or infinity"),
        ({"ids": {1, 2}}, "must be JSON-serializable"),
        ({1: "one"}, "keys must be strings"),
    ],
)
async def test_a_bad_tool_input_is_refused_before_anything_is_sent(
    closed_url: str, tool_input: Any, reason: str
) -> None:
    # The server is unreachable: getting ValidationError rather than ServerUnreachable shows
    # that nothing was sent.
    async with AsyncClient(closed_url, "twc_x", "tws_x") as client:
        with pytest.raises(tokenward.ValidationError) as info:
            await client.actions.execute_tool(
                tool_name="discord_list_my_guilds",
                tool_input=tool_input,
                identifier="user_1",
                connection_name="discord",
            )
    assert reason in info.value.fields["tool_input"]
    assert info.value.code == "VALIDATION_ERROR"


async def test_other_bad_arguments_are_validation_errors(closed_url: str) -> None:
    async with AsyncClient(closed_url, "twc_x", "tws_x") as client:
        with pytest.raises(tokenward.ValidationError) as info:
            await client.actions.execute_tool(
                tool_name="discord_get_my_user",
                tool_input={},
                identifier=None,  # type: ignore[arg-type]
                connection_name="discord",
            )
        assert set(info.value.fields) == {"identifier"}
        with pytest.raises(tokenward.ValidationError) as info:
            await client.actions.request(
                connection_name="discord", identifier="u", path="/api/x", body={"at": object()}
            )
        assert set(info.value.fields) == {"body"}
    for url in ("127.0.0.1:8080", "ftp://127.0.0.1", "", 8080):
        with pytest.raises(tokenward.ValidationError) as info:
            AsyncClient(url, "twc_x", "tws_x")  # type: ignore[arg-type]
        assert set(info.value.fields) == {"env_url"}
        with pytest.raises(tokenward.ValidationError):
            Client(url, "twc_x", "tws_x")  # type: ignore[arg-type]


async def test_a_proxy_in_front_answering_html_is_an_unexpected_response(stack: Stack) -> None:
    with BackgroundServer(FrontProxy(stack.gateway_url, {"*": BAD_GATEWAY})) as front:
        async with AsyncClient(front.url, stack.client_id, stack.client_secret) as client:
            with pytest.raises(tokenward.UnexpectedResponse) as info:
                await client.actions.list_tools()
    assert info.value.status == 502
    assert info.value.details == {"status": 502, "content_type": "text/html"}
    assert "HTTP 502" in info.value.message


async def test_non_json_answers_behind_a_working_token_endpoint(stack: Stack) -> None:
    broken = {
        "/api/v1/tools": (503, "text/plain", b"upstream connect error or disconnect/reset"),
        "/api/v1/connected-accounts": (200, "text/html", b"<html>maintenance</html>"),
    }
    with BackgroundServer(FrontProxy(stack.gateway_url, broken)) as front:
        async with AsyncClient(front.url, stack.client_id, stack.client_secret) as client:
            with pytest.raises(tokenward.UnexpectedResponse) as info:
                await client.actions.list_tools()
            assert info.value.status == 503
            with pytest.raises(tokenward.UnexpectedResponse) as info:
                await client.actions.list_connected_accounts()
            assert info.value.status == 200
            # Everything else passes through the front and works.
            link = await client.actions.get_authorization_link(
                connection_name="discord", identifier="user_front"
            )
            assert link.link.startswith(f"{stack.gateway_url}/connect/")


async def test_a_token_endpoint_answering_non_json_is_an_unexpected_response(
    stack: Stack,
) -> None:
    broken = {"/oauth/token": (200, "text/html", b"<html>login</html>")}
    with BackgroundServer(FrontProxy(stack.gateway_url, broken)) as front:
        async with AsyncClient(front.url, stack.client_id, stack.client_secret) as client:
            with pytest.raises(tokenward.UnexpectedResponse) as info:
                await client.actions.list_tools()
    assert info.value.status == 200


async def test_a_missing_scope_is_insufficient_scope(stack: Stack) -> None:
    agent = stack.cli.json(
        "api-clients", "create", "--name", "sdk-agent", "--scopes", "accounts:read", "--json"
    )
    async with AsyncClient(stack.gateway_url, agent["client_id"], agent["client_secret"]) as c:
        page = await c.actions.list_connected_accounts()
        assert page.connected_accounts is not None
        with pytest.raises(tokenward.InsufficientScope) as info:
            await c.actions.list_tools()
        assert info.value.details["required_scope"] == "tools:execute"
        assert info.value.status == 403
        with pytest.raises(tokenward.InsufficientScope):
            await c.actions.request(
                connection_name="discord", identifier="u", path="/api/users/@me"
            )


async def test_every_failure_of_every_call_is_a_tokenward_error(closed_url: str) -> None:
    async with AsyncClient(closed_url, "twc_x", "tws_x") as client:
        actions = client.actions
        calls = [
            actions.get_authorization_link(connection_name="discord", identifier="u"),
            actions.request(connection_name="discord", identifier="u", path="/api/users/@me"),
            actions.execute_tool(
                tool_name="t", tool_input={}, identifier="u", connection_name="discord"
            ),
            actions.list_tools(),
            actions.list_connected_accounts(),
            actions.get_connected_account(connection_name="discord", identifier="u"),
            actions.delete_connected_account(id="acc_1"),
            actions.verify_connected_account_user(auth_request_id="r", identifier="u"),
            actions.mcp.create_session(connection_name="discord", identifier="u"),
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        assert isinstance(result, tokenward.ServerUnreachable), result


def test_x_forwarded_for_is_not_believed_by_a_default_serve(stack: Stack) -> None:
    """``tokenward serve`` must not let a local caller pick its throttling address with
    X-Forwarded-For (uvicorn believes it from 127.0.0.1 by default)."""
    client = stack.cli.json("api-clients", "create", "--name", "xff-check", "--json")
    url = f"{stack.gateway_url}/oauth/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    with httpx.Client(
        transport=httpx.HTTPTransport(local_address="127.0.0.1"), trust_env=False
    ) as http:
        for index in range(10):  # the default limit per (client id, address)
            headers = {"X-Forwarded-For": f"198.51.100.{index}"}
            wrong = http.post(url, data={**form, "client_secret": "tws_x"}, headers=headers)
            assert wrong.status_code == 401
        # Had the header been believed, this fresh "address" would get a token.
        again = http.post(url, data=form, headers={"X-Forwarded-For": "198.51.100.200"})
    assert again.status_code == 429, again.text
    assert int(again.headers["retry-after"]) >= 1


# What a real server cannot be made to do here (a code this SDK does not know yet, a failed
# name lookup without leaving loopback) is checked with httpx's own mock transport.


def _answering(status: int, body: dict[str, Any]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 60})
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, tokenward.ValidationError),
        (401, tokenward.AuthenticationError),
        (404, tokenward.NotFoundError),
        (409, tokenward.ConflictError),
        (429, tokenward.RateLimited),
        (418, tokenward.TokenwardError),
    ],
)
async def test_unknown_codes_map_by_status(status: int, expected: type[Exception]) -> None:
    body = {"error": {"code": "SOMETHING_NEW", "message": "new", "details": {"retry_after": 2}}}
    transport = _answering(status, body)
    async with AsyncClient("http://gateway.test", "twc_x", "tws_x", transport=transport) as c:
        with pytest.raises(tokenward.TokenwardError) as info:
            await c.actions.list_tools()
    assert type(info.value) is expected
    assert info.value.code == "SOMETHING_NEW"
    assert info.value.status == status


async def test_a_failed_name_lookup_is_server_unreachable_dns() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    transport = httpx.MockTransport(handler)
    async with AsyncClient("http://gateway.test", "twc_x", "tws_x", transport=transport) as c:
        with pytest.raises(tokenward.ServerUnreachable) as info:
            await c.actions.list_tools()
    assert info.value.details["reason"] == "dns"
