"""tokenward's HTTP/1.1 client (Http1Transport) against scripted loopback servers: what the
shared transport suite (test_transport.py) cannot show — connection reuse and its limits, a
keep-alive connection the server dropped, TLS, framing both ways, and deadlines."""

from __future__ import annotations

import asyncio
import gzip
import inspect
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvloop

from tokenward.compat.certs import create_dev_certificates
from tokenward.proxy.http1 import PAUSE_READING_ABOVE, Connection, Deadline, Pool
from tokenward.proxy.retry import ErrorKind
from tokenward.proxy.transport import Http1Transport, Timeouts, TransportError, UpstreamRequest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Seen:
    """What a scripted server saw: connections opened, requests (head + body) read."""

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's head and body (Content-Length or chunked); None at EOF."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = await reader.readline()
        if not line:
            return None
        head += line
    lower = head.lower()
    body = b""
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readline()).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    return head + body


def answer(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    headers = "".join(f"{line}\r\n" for line in extra)
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


@asynccontextmanager
async def scripted(
    respond: Callable[[bytes, int], Awaitable[bytes | None]],
    *,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[int, Seen]]:
    """A keep-alive server: ``respond(request, number_on_this_connection)`` gives the bytes to
    write (None: close the connection without answering)."""
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        seen.open += 1
        seen.most_open = max(seen.most_open, seen.open)
        try:
            number = 0
            while (request := await read_request(reader)) is not None:
                seen.requests.append(request)
                number += 1
                out = await respond(request, number)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                if b"\r\nconnection: close\r\n" in out.lower():
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            seen.open -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()


async def ok(request: bytes, number: int) -> bytes:
    return answer(b'{"ok":true}', "Content-Type: application/json")


@pytest.fixture
async def transport() -> AsyncIterator[Http1Transport]:
    async with Http1Transport(timeouts=Timeouts(total=5.0, connect=2.0)) as instance:
        yield instance


async def test_connections_are_reused(transport: Http1Transport) -> None:
    async with scripted(ok) as (port, seen):
        for _ in range(5):
            response = await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
            assert response.json() == {"ok": True}
    assert seen.connections == 1
    assert len(seen.requests) == 5
    assert seen.requests[0].startswith(b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_a_dropped_keepalive_connection_is_resent_only_when_idempotent(
    transport: Http1Transport,
) -> None:
    """The server answers the first request on each connection, then closes on the second
    without answering (as a server that timed the idle connection out would)."""

    async def once(request: bytes, number: int) -> bytes | None:
        return await ok(request, number) if number == 1 else None

    async with scripted(once) as (port, seen):
        url = f"http://127.0.0.1:{port}/a"
        await transport.send(UpstreamRequest("GET", url))
        again = await transport.send(UpstreamRequest("GET", url))
        assert again.json() == {"ok": True}
        assert seen.connections == 2  # sent again on a new connection

        with pytest.raises(TransportError) as caught:
            await transport.send(UpstreamRequest("POST", url, body=b"{}"))
        assert caught.value.kind is ErrorKind.CONNECTION_RESET
        assert sum(r.startswith(b"POST") for r in seen.requests) == 1  # never twice


async def test_the_pool_limit_holds_and_callers_wait_for_a_connection() -> None:
    async def slow(request: bytes, number: int) -> bytes:
        await asyncio.sleep(0.05)
        return await ok(request, number)

    async with (
        scripted(slow) as (port, seen),
        Http1Transport(timeouts=Timeouts(total=5.0), pool_size=2) as transport,
    ):
        url = f"http://127.0.0.1:{port}/a"
        answers = await asyncio.gather(
            *(transport.send(UpstreamRequest("GET", url)) for _ in range(8))
        )
        assert [a.status for a in answers] == [200] * 8
        assert seen.most_open == 2
        assert transport.pool.open_connections == 2


async def test_waiting_for_a_connection_counts_against_the_deadline() -> None:
    async def slow(request: bytes, number: int) -> bytes:
        await asyncio.sleep(1.0)
        return await ok(request, number)

    async with (
        scripted(slow) as (port, _seen),
        Http1Transport(timeouts=Timeouts(total=5.0), pool_size=1) as transport,
    ):
        url = f"http://127.0.0.1:{port}/a"
        first = asyncio.ensure_future(transport.send(UpstreamRequest("GET", url)))
        await asyncio.sleep(0.05)
        with pytest.raises(TransportError) as caught:
            await transport.send(UpstreamRequest("GET", url, timeout=0.2))
        assert caught.value.kind is ErrorKind.TIMEOUT
        assert (await first).status == 200


async def test_tls_with_a_trusted_authority(tmp_path: Path) -> None:
    certs = create_dev_certificates(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certs.cert, certs.key)
    trusting = ssl.create_default_context(cafile=str(certs.ca))
    async with scripted(ok, tls=server_tls) as (port, seen):
        async with Http1Transport(ssl_context=trusting) as transport:
            response = await transport.send(UpstreamRequest("GET", f"https://localhost:{port}/a"))
            assert response.json() == {"ok": True}
        assert seen.requests[0].startswith(f"GET /a HTTP/1.1\r\nHost: localhost:{port}".encode())
        # The system's store does not know the development authority: refused, nothing sent.
        async with Http1Transport() as transport:
            with pytest.raises(TransportError) as caught:
                await transport.send(UpstreamRequest("GET", f"https://localhost:{port}/b"))
            assert caught.value.kind is ErrorKind.CONNECT
        assert len(seen.requests) == 1


async def test_request_framing(transport: Http1Transport) -> None:
    async with scripted(ok) as (port, seen):
        url = f"http://127.0.0.1:{port}/a?x=1"
        await transport.send(UpstreamRequest("POST", url))  # no body: Content-Length: 0

        async def parts() -> AsyncIterator[bytes]:
            yield b"abc"
            yield b""
            yield b"defg"

        await transport.send(UpstreamRequest("PUT", url, body=parts()))
        await transport.send(UpstreamRequest("GET", url, (("Accept-Encoding", "identity"),)))
    bare, chunked, plain = seen.requests
    assert bare.startswith(b"POST /a?x=1 HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 0\r\n" in bare
    assert b"\r\nTransfer-Encoding: chunked\r\n" in chunked
    assert chunked.endswith(b"\r\n\r\nabcdefg")
    assert b"Content-Length" not in plain
    assert b"Accept-Encoding: identity\r\n" in plain
    assert plain.count(b"Accept-Encoding") == 1


async def test_a_header_with_a_line_break_is_refused_before_sending(
    transport: Http1Transport,
) -> None:
    async with scripted(ok) as (port, seen):
        with pytest.raises(TransportError) as caught:
            await transport.send(
                UpstreamRequest(
                    "GET", f"http://127.0.0.1:{port}/a", (("X-Reason", "a\r\nHost: evil"),)
                )
            )
        assert caught.value.kind is ErrorKind.PROTOCOL
    assert seen.requests == []


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        # No length, not chunked: the body runs until the server closes.
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close", b"until-close"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"abcde",
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
        # An interim answer comes first and is passed over.
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", b"hi"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", b"zipped"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n%s",
            b"raw deflate",
        ),
    ],
)
async def test_answer_framing(transport: Http1Transport, raw: bytes, body: bytes) -> None:
    if b"gzip" in raw:
        packed = gzip.compress(body)
        raw = raw % (len(packed), packed)
    elif b"deflate" in raw:
        squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        packed = squeeze.compress(body) + squeeze.flush()
        raw = raw % (b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed))

    async def respond(request: bytes, number: int) -> bytes:
        return raw

    async with scripted(respond) as (port, _seen):
        response = await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
        assert await response.read() == body
        assert response.status in (200, 204)
        assert "Content-Encoding" not in response.headers


async def test_head_answers_have_no_body(transport: Http1Transport) -> None:
    async def respond(request: bytes, number: int) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"

    async with scripted(respond) as (port, _seen):
        response = await transport.send(UpstreamRequest("HEAD", f"http://127.0.0.1:{port}/a"))
        assert response.headers["Content-Length"] == "500"
        assert await response.read() == b""


async def test_broken_answers(transport: Http1Transport) -> None:
    async def garbage(request: bytes, number: int) -> bytes:
        return b"NOT HTTP AT ALL\r\n\r\n"

    async with scripted(garbage) as (port, _seen):
        with pytest.raises(TransportError) as caught:
            await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
        assert caught.value.kind is ErrorKind.PROTOCOL

    async def bad_gzip(request: bytes, number: int) -> bytes:
        return answer(b"\x1f\x8bnot really gzip", "Content-Encoding: gzip")

    async with scripted(bad_gzip) as (port, _seen):
        with pytest.raises(TransportError) as caught:
            await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
        assert caught.value.kind is ErrorKind.PROTOCOL


async def test_read_timeout_between_reads() -> None:
    async def stalls(request: bytes, number: int) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"  # and then nothing

    async with (
        scripted(stalls) as (port, _seen),
        Http1Transport(timeouts=Timeouts(total=5.0, read=0.2)) as transport,
    ):
        response = await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
        with pytest.raises(TransportError) as caught:
            await response.read()
        assert caught.value.kind is ErrorKind.READ_TIMEOUT
        assert transport.pool.open_connections == 0  # a half-read connection is not kept


async def test_a_large_answer_streams_with_reading_paused_in_between() -> None:
    big = bytes(range(256)) * 12_000  # about 3 MB

    async def respond(request: bytes, number: int) -> bytes:
        return answer(big)

    async with (
        scripted(respond) as (port, seen),
        Http1Transport(max_response_bytes=4 * 1024 * 1024, read_whole_below=1024) as transport,
    ):
        response = await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
        assert not response.is_read
        await asyncio.sleep(0.2)  # the server has written everything; we read nothing yet
        (connection,) = transport.pool._in_use
        assert PAUSE_READING_ABOVE <= connection.buffered < len(big) // 2
        received = bytearray()
        async for chunk in response.iter_bytes():
            received += chunk
            await asyncio.sleep(0)
        assert bytes(received) == big
        again = await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/b"))
        assert not again.is_read
        assert seen.connections == 1  # read to the end, the first one went back to the pool
        await again.aclose()  # unread: closed, not pooled
        assert transport.pool.open_connections == 0


async def test_a_cancelled_call_gives_its_connection_back() -> None:
    async def never(request: bytes, number: int) -> bytes:
        await asyncio.sleep(10)
        return b""

    async with (
        scripted(never) as (port, _seen),
        Http1Transport(pool_size=1) as transport,
    ):
        call = asyncio.ensure_future(
            transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
        )
        await asyncio.sleep(0.1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert transport.pool.open_connections == 0


async def test_closing_the_transport_closes_idle_connections() -> None:
    async with scripted(ok) as (port, seen):
        transport = Http1Transport()
        await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
        assert seen.open == 1
        await transport.aclose()
        for _ in range(100):
            if seen.open == 0:
                break
            await asyncio.sleep(0.01)
        assert seen.open == 0


class FakeSocket:
    """Stands in for a socket transport: records reading paused and resumed."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def close(self) -> None:
        pass


async def test_an_answer_complete_while_reading_is_paused_resumes_reading_when_taken() -> None:
    """An answer can end in the read that takes it past the pause mark: taken whole, its
    connection must read again, or the next call on it (from the pool) would never be answered."""
    pool = Pool(
        limit=1,
        keepalive_seconds=30,
        connect_timeout=1,
        ssl_context=None,
        make_error=TransportError,
    )
    connection = Connection(pool, ("http", "127.0.0.1", 1), TransportError)
    socket = FakeSocket()
    connection.connection_made(socket)  # type: ignore[arg-type]
    connection.begin(head_only=False)
    size = PAUSE_READING_ABOVE + 1000
    connection.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    connection.data_received(b"x" * (size - 1000))
    connection.data_received(b"x" * 1000)
    assert connection.done
    assert socket.calls == ["pause"]
    body = await connection.read_all(Deadline(asyncio.get_running_loop().time() + 1, None))
    assert body == b"x" * size
    assert socket.calls == ["pause", "resume"]
    assert connection.reusable


ON_UVLOOP = [
    test_connections_are_reused,
    test_a_dropped_keepalive_connection_is_resent_only_when_idempotent,
    test_the_pool_limit_holds_and_callers_wait_for_a_connection,
    test_tls_with_a_trusted_authority,
    test_request_framing,
    test_broken_answers,
    test_read_timeout_between_reads,
    test_a_large_answer_streams_with_reading_paused_in_between,
    test_a_cancelled_call_gives_its_connection_back,
    test_an_answer_complete_while_reading_is_paused_resumes_reading_when_taken,
]


@pytest.mark.parametrize("case", ON_UVLOOP, ids=lambda case: case.__name__)
def test_on_uvloop(case: Callable[..., Awaitable[None]], tmp_path: Path) -> None:
    """``serve`` runs on uvloop (its transports are not asyncio's classes): the same cases there."""

    async def run() -> None:
        wanted = inspect.signature(case).parameters
        if "transport" in wanted:
            async with Http1Transport(timeouts=Timeouts(total=5.0, connect=2.0)) as transport:
                await case(transport)
        elif "tmp_path" in wanted:
            await case(tmp_path)
        else:
            await case()
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


def test_one_transport_used_from_two_event_loops() -> None:
    """Connections belong to the loop that opened them: a transport used again from a second
    ``asyncio.run`` opens new ones instead of touching the first loop's."""
    transport = Http1Transport()

    async def call() -> int:
        async with scripted(ok) as (port, seen):
            response = await transport.send(UpstreamRequest("GET", f"http://127.0.0.1:{port}/a"))
            assert response.json() == {"ok": True}
            assert transport.pool.open_connections == 1
            return seen.connections

    assert asyncio.run(call()) == 1
    assert asyncio.run(call()) == 1
    asyncio.run(transport.aclose())


async def test_a_bad_request_line_or_header_is_refused_before_sending(
    transport: Http1Transport,
) -> None:
    async with scripted(ok) as (port, seen):
        for url, headers in (
            (f"http://127.0.0.1:{port}/a b", ()),
            (f"http://127.0.0.1:{port}/a\r\nX: y", ()),
            (f"http://127.0.0.1:{port}/a", (("X-Audit-Log-Reason", "caf\u00e9 \u2615"),)),
        ):
            with pytest.raises(TransportError) as caught:
                await transport.send(UpstreamRequest("GET", url, headers))
            assert caught.value.kind is ErrorKind.PROTOCOL
            assert "127.0.0.1" not in caught.value.message
    assert seen.requests == []


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    """A caller woken for a free place in the pool but cancelled before it runs must not
    swallow the wake-up: the next waiter gets the place."""
    async with (
        scripted(ok) as (port, _seen),
        Http1Transport(timeouts=Timeouts(total=3.0), pool_size=1) as transport,
    ):
        url = f"http://127.0.0.1:{port}/a"
        loop = asyncio.get_running_loop()
        held, _ = await transport.pool.acquire(
            ("http", "127.0.0.1", port), Deadline(loop.time() + 3, None)
        )
        first = asyncio.ensure_future(transport.send(UpstreamRequest("GET", url)))
        second = asyncio.ensure_future(transport.send(UpstreamRequest("GET", url)))
        await asyncio.sleep(0.05)  # both wait for the pool's one place
        held.close()  # frees it: `first` is woken...
        first.cancel()  # ...and cancelled before it runs
        assert (await asyncio.wait_for(second, 2.0)).status == 200
        assert first.cancelled()
