"""The transport seam: both real transports (tokenward's HTTP/1.1 client and aiohttp's) against
real loopback servers, and MockTransport."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tokenward._serving import BackgroundServer, free_port
from tokenward.proxy.retry import ErrorKind
from tokenward.proxy.transport import (
    AiohttpTransport,
    Http1Transport,
    MockTransport,
    Timeouts,
    TransportError,
    UpstreamRequest,
    UpstreamResponse,
    strip_hop_by_hop,
)


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw],
            "body_length": len(body),
        },
        headers={
            "X-Private-Hop": "secret-ish",
            "Connection": "X-Private-Hop",
            "Keep-Alive": "timeout=5",
            "Proxy-Authenticate": "Basic",
            "Upgrade": "h2c",
            "X-RateLimit-Bucket": "kept",
        },
    )


async def big(request: Request) -> Response:
    return Response(b"x" * 5000, media_type="application/octet-stream")


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("chunks", "10"))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"y" * 500
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def slow(request: Request) -> Response:
    await asyncio.sleep(2)
    return Response(b"late")


async def redirect(request: Request) -> Response:
    return RedirectResponse("http://evil.invalid/steal", status_code=302)


async def cookie(request: Request) -> Response:
    response = JSONResponse({"cookie": request.headers.get("cookie")})
    response.set_cookie("session", "abc")
    return response


async def gzipped(request: Request) -> Response:
    payload = json.dumps({"hello": "world" * 50}).encode()
    return Response(
        gzip.compress(payload),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


APP = Starlette(
    routes=[
        Route("/api/echo", echo, methods=["GET", "POST", "PUT"]),
        Route("/api/big", big),
        Route("/api/stream", stream),
        Route("/api/slow", slow),
        Route("/api/redirect", redirect),
        Route("/api/cookie", cookie),
        Route("/api/gzip", gzipped),
    ]
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with BackgroundServer(APP) as server:
        yield server.url


AnyTransport = Http1Transport | AiohttpTransport
KINDS = {"http1": Http1Transport, "aiohttp": AiohttpTransport}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> type[AnyTransport]:
    return KINDS[request.param]


@pytest.fixture
async def transport(kind: type[AnyTransport]) -> AsyncIterator[AnyTransport]:
    async with kind(timeouts=Timeouts(total=5.0, connect=2.0), max_response_bytes=4000) as instance:
        yield instance


def test_strip_hop_by_hop() -> None:
    headers = [
        ("Connection", "keep-alive, X-Foo"),
        ("Keep-Alive", "timeout=5"),
        ("X-Foo", "named in Connection"),
        ("Proxy-Authorization", "Basic abc"),
        ("Proxy-Anything", "1"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "websocket"),
        ("Content-Type", "application/json"),
        ("X-Audit-Log-Reason", "kept"),
    ]
    assert strip_hop_by_hop(headers) == [
        ("Content-Type", "application/json"),
        ("X-Audit-Log-Reason", "kept"),
    ]
    assert strip_hop_by_hop({"connection": "close", "Accept": "*/*"}) == [("Accept", "*/*")]


async def test_sends_and_strips_hop_by_hop_both_ways(
    upstream: str, transport: AnyTransport
) -> None:
    request = UpstreamRequest(
        "GET",
        upstream + "/api/echo?a=1&b=two",
        (
            ("Connection", "X-Drop-Me"),
            ("X-Drop-Me", "1"),
            ("Keep-Alive", "300"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("Upgrade", "websocket"),
            ("TE", "trailers"),
            ("Host", "evil.invalid"),
            ("User-Agent", "DiscordBot (https://example.test, 1.0)"),
            ("X-Kept", "yes"),
        ),
    )
    async with await transport.send(request) as response:
        data = json.loads(await response.read())
    sent = {name.lower(): value for name, value in data["headers"]}
    assert data["path"] == "/api/echo"
    assert data["query"] == "a=1&b=two"
    assert sent["x-kept"] == "yes"
    assert sent["user-agent"] == "DiscordBot (https://example.test, 1.0)"
    assert sent["host"].startswith("127.0.0.1")  # never the caller's Host
    for name in ("x-drop-me", "proxy-authorization", "upgrade", "te"):
        assert name not in sent
    assert sent.get("keep-alive") is None
    assert response.status == 200
    assert response.headers["X-RateLimit-Bucket"] == "kept"
    for name in ("X-Private-Hop", "Connection", "Keep-Alive", "Proxy-Authenticate", "Upgrade"):
        assert name not in response.headers


async def test_declared_oversize_body_is_refused_before_reading(
    upstream: str, transport: AnyTransport
) -> None:
    with pytest.raises(TransportError) as caught:
        await transport.send(UpstreamRequest("GET", upstream + "/api/big"))
    assert caught.value.kind is ErrorKind.RESPONSE_TOO_LARGE
    assert caught.value.code == "UPSTREAM_UNAVAILABLE"
    assert "127.0.0.1" not in caught.value.message


async def test_streamed_body_is_cut_off_past_the_cap(
    upstream: str, transport: AnyTransport
) -> None:
    response = await transport.send(UpstreamRequest("GET", upstream + "/api/stream?chunks=20"))
    received: list[bytes] = []

    async def drain() -> None:
        async for chunk in response.iter_bytes():
            received.append(chunk)

    with pytest.raises(TransportError) as caught:
        await drain()
    assert caught.value.kind is ErrorKind.RESPONSE_TOO_LARGE
    assert sum(map(len, received)) <= 4000


async def test_streams_chunks_under_the_cap(upstream: str, transport: AnyTransport) -> None:
    response = await transport.send(UpstreamRequest("GET", upstream + "/api/stream?chunks=6"))
    chunks = [chunk async for chunk in response.iter_bytes()]
    assert b"".join(chunks) == b"y" * 3000
    with pytest.raises(RuntimeError, match="already streamed"):
        await response.read()
    # The connection went back to the pool: a second call works on the same session.
    again = await transport.send(UpstreamRequest("GET", upstream + "/api/stream?chunks=1"))
    assert await again.read() == b"y" * 500


async def test_streams_a_request_body(upstream: str, transport: AnyTransport) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"z" * 1000

    response = await transport.send(
        UpstreamRequest(
            "POST", upstream + "/api/echo", (("Content-Type", "application/json"),), body()
        )
    )
    assert json.loads(await response.read())["body_length"] == 4000


async def test_timeout_on_every_call(upstream: str, kind: type[AnyTransport]) -> None:
    async with kind(timeouts=Timeouts(total=0.3, connect=0.3)) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.send(UpstreamRequest("GET", upstream + "/api/slow"))
    assert caught.value.kind in {ErrorKind.TIMEOUT, ErrorKind.READ_TIMEOUT}


async def test_per_request_timeout_overrides_the_default(
    upstream: str, transport: AnyTransport
) -> None:
    with pytest.raises(TransportError):
        await transport.send(UpstreamRequest("GET", upstream + "/api/slow", timeout=0.2))


async def test_redirects_are_not_followed(upstream: str, transport: AnyTransport) -> None:
    response = await transport.send(UpstreamRequest("GET", upstream + "/api/redirect"))
    assert response.status == 302
    assert response.headers["Location"] == "http://evil.invalid/steal"
    await response.aclose()


async def test_cookies_never_carry_over_between_calls(
    upstream: str, transport: AnyTransport
) -> None:
    first = await transport.send(UpstreamRequest("GET", upstream + "/api/cookie"))
    assert "set-cookie" in first.headers
    await first.read()
    second = await transport.send(UpstreamRequest("GET", upstream + "/api/cookie"))
    assert json.loads(await second.read()) == {"cookie": None}


async def test_decoded_body_loses_its_encoding_headers(
    upstream: str, transport: AnyTransport
) -> None:
    response = await transport.send(UpstreamRequest("GET", upstream + "/api/gzip"))
    assert json.loads(await response.read())["hello"].startswith("world")
    assert "Content-Encoding" not in response.headers
    assert "Content-Length" not in response.headers


async def test_connection_refused_is_a_connect_error(transport: AnyTransport) -> None:
    port = free_port()
    with pytest.raises(TransportError) as caught:
        await transport.send(UpstreamRequest("POST", f"http://127.0.0.1:{port}/api/x", body=b"{}"))
    assert caught.value.kind is ErrorKind.CONNECT
    assert caught.value.details == {"kind": "connect"}


async def test_dropped_connection_is_a_reset(transport: AnyTransport) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransportError) as caught:
            await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/api/x"))
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.kind in {ErrorKind.CONNECTION_RESET, ErrorKind.PROTOCOL}


async def test_an_answer_cut_off_mid_body_fails_while_buffering(
    transport: AnyTransport,
) -> None:
    """Status and headers arrive, then part of the body, then the connection closes: the
    response is handed back, and reading it raises a reset (so a caller can still retry)."""

    async def cut_off(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b'Content-Length: 2048\r\n\r\n{"')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(cut_off, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        response = await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/api/x"))
        assert response.status == 200
        with pytest.raises(TransportError) as caught:
            await response.buffer(1024 * 1024)
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.kind is ErrorKind.CONNECTION_RESET


async def test_buffer_reads_a_small_body_whole(upstream: str, transport: AnyTransport) -> None:
    response = await transport.send(UpstreamRequest("GET", upstream + "/api/stream?chunks=2"))
    assert await response.buffer(1000)
    assert response.is_read
    assert response.content == b"y" * 1000
    assert [chunk async for chunk in response.iter_bytes()] == [b"y" * 1000]


async def test_buffer_leaves_a_large_body_to_stream(upstream: str, transport: AnyTransport) -> None:
    response = await transport.send(UpstreamRequest("GET", upstream + "/api/stream?chunks=6"))
    assert not await response.buffer(1000)
    assert not await response.buffer(1000)  # asking again changes nothing
    assert not response.is_read
    assert b"".join([chunk async for chunk in response.iter_bytes()]) == b"y" * 3000
    again = await transport.send(UpstreamRequest("GET", upstream + "/api/stream?chunks=1"))
    assert await again.read() == b"y" * 500


async def test_a_small_declared_body_is_read_whole_by_send(
    upstream: str, transport: AnyTransport
) -> None:
    """An answer with a Content-Length within the caller's bound comes back already read (one
    read, its connection back in the pool); a longer one is left to stream."""
    small = await transport.send(UpstreamRequest("GET", upstream + "/api/echo"))
    assert small.is_read
    assert small.json()["path"] == "/api/echo"
    size = int(small.headers["Content-Length"])
    bounded = await transport.send(
        UpstreamRequest("GET", upstream + "/api/echo", read_whole_below=size - 1)
    )
    assert not bounded.is_read
    assert (await bounded.read())[:1] == b"{"
    chunked = await transport.send(UpstreamRequest("GET", upstream + "/api/stream?chunks=2"))
    assert not chunked.is_read  # no Content-Length: streamed as before
    await chunked.aclose()


async def test_buffer_does_not_read_a_body_declared_too_large() -> None:
    started: list[bool] = []
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        started.append(True)
        yield b"z" * 100

    async def on_close(complete: bool) -> None:
        closed.append(complete)

    response = UpstreamResponse(200, {"Content-Length": "100"}, stream=chunks(), on_close=on_close)
    assert not await response.buffer(50)
    assert started == []
    await response.aclose()
    assert closed == [False]


async def test_closing_a_partly_buffered_body_closes_the_connection() -> None:
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"z" * 100

    async def on_close(complete: bool) -> None:
        closed.append(complete)

    response = UpstreamResponse(200, {}, stream=chunks(), on_close=on_close)
    assert not await response.buffer(150)
    await response.aclose()
    assert closed == [False]


def test_request_repr_hides_url_and_headers() -> None:
    request = UpstreamRequest(
        "POST",
        "https://discord.com/api/v10/webhooks/1/SECRETwebhook",
        (("Authorization", "Bot SECRETbot"),),
        b"{}",
    )
    assert "SECRET" not in repr(request)


# -- MockTransport ---------------------------------------------------------------------------------


async def test_mock_transport_sync_and_async_handlers() -> None:
    def handler(request: UpstreamRequest) -> UpstreamResponse:
        return UpstreamResponse.from_json(200, {"path": request.url}, {"Connection": "close"})

    async def async_handler(request: UpstreamRequest) -> UpstreamResponse:
        assert isinstance(request.body, bytes)
        return UpstreamResponse(201, content=request.body)

    mock = MockTransport(handler)
    response = await mock.send(UpstreamRequest("GET", "https://d.test/api/x"))
    assert response.json() == {"path": "https://d.test/api/x"}
    assert "Connection" not in response.headers
    assert mock.requests[0].method == "GET"

    async def body() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    mock2 = MockTransport(async_handler)
    response2 = await mock2.send(
        UpstreamRequest("POST", "https://d.test/api/x", (("Keep-Alive", "1"),), body())
    )
    assert await response2.read() == b"abcd"
    assert mock2.requests[0].headers == ()


async def test_mock_transport_enforces_the_size_cap() -> None:
    mock = MockTransport(
        lambda request: UpstreamResponse(200, content=b"x" * 11), max_response_bytes=10
    )
    with pytest.raises(TransportError) as caught:
        await mock.send(UpstreamRequest("GET", "https://d.test/api/x"))
    assert caught.value.kind is ErrorKind.RESPONSE_TOO_LARGE


async def test_mock_transport_handler_can_fail_the_connection() -> None:
    def handler(request: UpstreamRequest) -> UpstreamResponse:
        raise TransportError(ErrorKind.CONNECTION_RESET)

    with pytest.raises(TransportError):
        await MockTransport(handler).send(UpstreamRequest("GET", "https://d.test/api/x"))
