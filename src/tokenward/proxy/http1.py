"""A pooled HTTP/1.1 client for the upstream hop, on asyncio protocols and ``httptools``.

:class:`tokenward.proxy.transport.Http1Transport` sends every call to Discord through it. It
exists because the generic client cost more than any other part of a proxied call: measured
with ``bench/proxy.py`` (nginx upstream, 32 connections, two runs), the naive proxy spent about
350-380 µs of CPU per request on an ``aiohttp`` session and 240-260 µs on this client, and
tokenward's own ``/proxy`` 810-830 µs against 560 µs.

What it does, and no more: keep-alive connections pooled per (scheme, host, port) under one
limit for the process (a caller waits for a free one, within its deadline); TLS with the
system's trust store; a request head written in one ``write``; a body given as bytes (with its
``Content-Length``) or as chunks (``Transfer-Encoding: chunked``, written as the socket drains);
the answer parsed by ``httptools`` (chunked, fixed length, or until the server closes) and
handed on whole or as it arrives, reading paused while the caller has 256 KiB unread. A
connection goes back to the pool only when its answer was read to the end and the server keeps
it alive. Deadlines are timers on the event loop, not wrappers around each await.

An idempotent request whose reused connection turns out to be closed by the server before any
byte of an answer came back is sent once more on a new connection (a server may close an idle
keep-alive connection at any moment); nothing else is resent here (retries are
:mod:`tokenward.proxy.retry`'s business).

Failures are :class:`~tokenward.proxy.transport.TransportError` with an
:class:`~tokenward.proxy.retry.ErrorKind`; their messages never include the URL.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterable, Callable
from typing import Any, cast

import httptools

from tokenward.proxy.retry import ErrorKind

# Raised as tokenward.proxy.transport.TransportError; imported lazily there to avoid a cycle.
MakeError = Callable[[ErrorKind, str | None], Exception]

PAUSE_READING_ABOVE = 256 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _has_line_break(text: str) -> bool:
    return "\r" in text or "\n" in text or "\x00" in text


PoolKey = tuple[str, str, int]  # scheme, host, port


class Connection(asyncio.Protocol):
    """One keep-alive connection and the answer currently being read on it."""

    def __init__(self, pool: Pool, key: PoolKey, make_error: MakeError) -> None:
        self.pool = pool
        self.key = key
        self._error = make_error
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.counted = True  # in the pool's count of open connections
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._reset_exchange()

    # -- the exchange in progress ----------------------------------------------------------

    def _reset_exchange(self) -> None:
        self.head_only = False
        self.got_bytes = False
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.declared_length: int | None = None  # Content-Length, when the answer gives one
        self.content_encoding = ""
        self.head: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.done = False  # the whole answer has been parsed
        self.keep_alive = False
        self.failure: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._until_close = False

    def begin(self, head_only: bool) -> asyncio.Future[None]:
        self._reset_exchange()
        self.head_only = head_only
        self.head = self.loop.create_future()
        return self.head

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # An asyncio or uvloop TCP/TLS transport (uvloop's are not asyncio.Transport subclasses).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.head is None:  # bytes nobody asked for, on an idle connection: not reusable
            self.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(self._error(ErrorKind.PROTOCOL, "the provider switched protocols"))
            self.close()
        except httptools.HttpParserError:
            self._fail(self._error(ErrorKind.PROTOCOL, "the provider's answer is not valid HTTP"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self.pool.forget(self)
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self.done:
            return
        if self.head is not None and self.head.done() and self._until_close:
            # No length and not chunked: the body is whatever came before the server closed.
            self.done = True
            self.keep_alive = False
            self._wake()
            return
        if self.head is not None:
            self._fail(self._error(ErrorKind.CONNECTION_RESET, None))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.headers = []  # an interim answer (100 Continue, 103 Early Hints): wait on
            return
        self.status = status
        self.keep_alive = bool(self.parser.should_keep_alive())
        length = chunked = False
        for name, value in self.headers:
            low = name.lower()
            if low == "content-length":
                length = True
                if value.strip().isdigit():
                    self.declared_length = int(value)
            elif low == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif low == "content-encoding":
                self.content_encoding = value.strip().lower()
        self._until_close = not length and not chunked and status not in (204, 304)
        if self.head_only:
            # The parser would wait for a body a HEAD answer does not have: done here, and the
            # connection is not used again (its parser state is past saving).
            self.done = True
            self.keep_alive = False
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.done:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_READING_ABOVE and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.status or self.done:
            return  # the end of an interim answer, or a HEAD answer already done
        self.done = True
        self._wake()

    # -- helpers for the pool and the transport ------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.failure is None:
            self.failure = error
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved by whoever awaits it; never "never retrieved"
        self._wake()

    def write(self, data: bytes) -> None:
        if self.transport is None:
            raise self._error(ErrorKind.CONNECTION_RESET, None)
        self.transport.write(data)

    async def drain(self) -> None:
        if self._write_paused and not self.closed:
            self._drained = self.loop.create_future()
            await self._drained
        if self.closed:
            raise self._error(ErrorKind.CONNECTION_RESET, None)

    async def wait(self, future: asyncio.Future[None], deadline: Deadline) -> None:
        """Await ``future`` until the deadline or the read timeout, whichever comes first."""
        if future.done():
            future.result()
            return
        when, kind = deadline.next_read(self.loop.time())
        timer = self.loop.call_at(when, _expire, future, self._error, kind)
        try:
            await future
        finally:
            timer.cancel()

    async def read_chunk(self, deadline: Deadline) -> bytes:
        """The next part of the body; ``b""`` at its end. Raises TransportError on a break."""
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self.buffered <= PAUSE_READING_ABOVE // 2:
                    self._resume_reading()
                return chunk
            if self.done:
                return b""
            if self.failure is not None:
                raise self.failure
            self._waiter = self.loop.create_future()
            try:
                await self.wait(self._waiter, deadline)
            finally:
                self._waiter = None

    async def read_all(self, deadline: Deadline) -> bytes:
        if self.done and self.failure is None:  # all here already: no awaiting
            parts = list(self.chunks)
            self.chunks.clear()
            self.buffered = 0
            self._resume_reading()
        else:
            parts = []
            while chunk := await self.read_chunk(deadline):
                parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    @property
    def reusable(self) -> bool:
        return self.done and self.keep_alive and not self.closed and self.failure is None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.closed = True
        self.pool.forget(self)


def _expire(future: asyncio.Future[None], make_error: MakeError, kind: ErrorKind) -> None:
    if not future.done():
        future.set_exception(make_error(kind, None))


class Deadline:
    """A call's total deadline and its read timeout (between two reads), on the loop's clock."""

    __slots__ = ("read_timeout", "total")

    def __init__(self, total: float, read_timeout: float | None) -> None:
        self.total = total
        self.read_timeout = read_timeout

    def next_read(self, now: float) -> tuple[float, ErrorKind]:
        if self.read_timeout is not None and now + self.read_timeout < self.total:
            return now + self.read_timeout, ErrorKind.READ_TIMEOUT
        return self.total, ErrorKind.TIMEOUT


class Pool:
    """Open connections by (scheme, host, port), at most ``limit`` in all."""

    def __init__(
        self,
        *,
        limit: int,
        keepalive_seconds: float,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None,
        make_error: MakeError,
    ) -> None:
        self.limit = limit
        self.keepalive = keepalive_seconds
        self.connect_timeout = connect_timeout
        self._ssl = ssl_context
        self._error = make_error
        self._idle: dict[PoolKey, list[Connection]] = {}
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._in_use: set[Connection] = set()

    @property
    def open_connections(self) -> int:
        return self._open

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def take_idle(self, key: PoolKey) -> Connection | None:
        """A kept-alive connection to ``key``, if one is idle and fresh enough."""
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if connection.loop.time() - connection.idle_since > self.keepalive:
                connection.close()
                continue
            self._in_use.add(connection)
            return connection
        return None

    async def acquire(self, key: PoolKey, deadline: Deadline) -> tuple[Connection, bool]:
        """A connection to ``key`` and whether it was used before."""
        loop = asyncio.get_running_loop()
        while True:
            connection = self.take_idle(key)
            if connection is not None:
                return connection, True
            if self._open < self.limit or self._evict_idle():
                break
            waiter = loop.create_future()
            self._waiters.append(waiter)
            timer = loop.call_at(deadline.total, _expire, waiter, self._error, ErrorKind.TIMEOUT)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the free place goes to the next
                raise
            finally:
                timer.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._open += 1
        try:
            connection = await self._connect(key, deadline)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise
        self._in_use.add(connection)
        return connection, False

    async def _connect(self, key: PoolKey, deadline: Deadline) -> Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        # Whichever ends first, nothing has been sent yet: a connect timeout either way.
        timeout = max(0.0, min(self.connect_timeout, deadline.total - loop.time()))
        holder: list[Connection] = []

        def factory() -> Connection:
            connection = Connection(self, key, self._error)
            holder.append(connection)
            return connection

        tls = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    factory, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except (OSError, ssl.SSLError, ValueError) as exc:  # TimeoutError is an OSError
            for connection in holder:
                connection.counted = False
                connection.close()
            kind = ErrorKind.CONNECT_TIMEOUT if isinstance(exc, TimeoutError) else ErrorKind.CONNECT
            raise self._error(kind, None) from exc
        return holder[0]

    def release(self, connection: Connection) -> None:
        """Back to the pool when its answer was read to the end and it may be kept; else closed."""
        self._in_use.discard(connection)
        if connection.reusable:
            connection.head = None  # idle: any byte that arrives now is unasked for
            connection.idle_since = connection.loop.time()
            self._idle.setdefault(connection.key, []).append(connection)
            self._wake_one()
        else:
            connection.close()

    def forget(self, connection: Connection) -> None:
        """A connection closed (by either side): it no longer counts against the limit."""
        self._in_use.discard(connection)
        idle = self._idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)
        if connection.counted:
            connection.counted = False
            self._open -= 1
            self._wake_one()

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection to any host to make room; False if none is idle."""
        oldest: Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is None:
            return False
        oldest.close()
        return True

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for idle in list(self._idle.values()):
            for connection in list(idle):
                connection.close()
        for connection in list(self._in_use):
            connection.close()
        self._idle.clear()


def request_head(
    method: str,
    target: str,
    host_header: str,
    headers: list[tuple[str, str]],
    body: bytes | AsyncIterable[bytes] | None,
    make_error: MakeError,
) -> bytes:
    """The request line and headers, with Host, a body's framing and the default headers."""
    if " " in target or _has_line_break(target):
        raise make_error(ErrorKind.PROTOCOL, "the request path holds a space or a line break")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
    seen = set()
    for name, value in headers:
        if not name:
            raise make_error(ErrorKind.PROTOCOL, "a request header has no name")
        seen.add(name.lower())
        lines.append(f"{name}: {value}")
    if _has_line_break("".join(lines[2:])):  # one scan of every header, not one per header
        raise make_error(ErrorKind.PROTOCOL, "a request header holds a line break")
    if isinstance(body, bytes):
        if body or method not in _NO_BODY_METHODS:
            lines.append(f"Content-Length: {len(body)}")
    elif body is None:
        if method not in _NO_BODY_METHODS:
            lines.append("Content-Length: 0")  # Discord answers 411 without it
    elif "content-length" not in seen:
        lines.append("Transfer-Encoding: chunked")
    if "accept" not in seen:
        lines.append("Accept: */*")
    if "accept-encoding" not in seen:
        lines.append("Accept-Encoding: gzip, deflate")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise make_error(
            ErrorKind.PROTOCOL, "a request header holds characters outside ISO-8859-1"
        ) from exc


class Decoder:
    """Undoes ``Content-Encoding: gzip`` or ``deflate`` (zlib-wrapped or raw); a body that does
    not decode is a PROTOCOL error."""

    def __init__(self, encoding: str, make_error: MakeError) -> None:
        self.encoding = encoding
        self._error = make_error
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._inflate: Any = zlib.decompressobj(wbits)
        self._started = False

    @staticmethod
    def handles(encoding: str) -> bool:
        return encoding in ("gzip", "x-gzip", "deflate")

    def decode(self, data: bytes, limit: int) -> bytes:
        """Decoded bytes; at most ``limit + 1`` of them (enough to tell a body is too large)."""
        if not self._started and self.encoding == "deflate" and data[:1] and data[0] & 0x0F != 8:
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
        self._started = True
        try:
            return bytes(self._inflate.decompress(data, limit + 1))
        except zlib.error as exc:
            raise self._undecodable() from exc

    def flush(self) -> bytes:
        try:
            return bytes(self._inflate.flush())
        except zlib.error as exc:
            raise self._undecodable() from exc

    def _undecodable(self) -> Exception:
        return self._error(
            ErrorKind.PROTOCOL, f"the provider's {self.encoding} body does not decode"
        )
