"""The outbound HTTP seam.

Everything that leaves tokenward for a provider goes through a :class:`Transport`:
``await transport.send(UpstreamRequest) -> UpstreamResponse``. Three implementations:

* :class:`Http1Transport`, the production one (``TOKENWARD_UPSTREAM_CLIENT=http1``, the default):
  tokenward's own pooled HTTP/1.1 client (:mod:`tokenward.proxy.http1`). Chosen by measurement:
  in one ``bench/proxy.py`` run a proxied call cost about two thirds of the CPU it cost on
  aiohttp's client, and the naive proxy served 1.3-1.5x more on it.
* :class:`AiohttpTransport` (``TOKENWARD_UPSTREAM_CLIENT=aiohttp``): one pooled ``aiohttp``
  session. aiohttp was chosen over httpx earlier, by measurement too (under 32 concurrent
  connections a proxy on an ``aiohttp`` session served about 2,500 requests/s where the same
  proxy on ``httpx.AsyncClient`` served about 140).
* :class:`MockTransport`, which hands each request to a function, like ``httpx.MockTransport``.

The real ones keep connections alive in a pool, put a timeout on every call, follow no redirect
(a redirect could name another host), keep no cookie jar (cookies must never travel from one
user's call to another's), and ignore proxies from the environment. All of them strip hop-by-hop
headers in both directions (RFC 9110 §7.6.1: ``Connection``,
``Keep-Alive``, ``Proxy-*``, ``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``, and every
header that ``Connection`` names), cap the response size (a declared ``Content-Length`` over the
cap is refused before reading; a body that grows past it is cut off), and stream response bodies.
Failures without a response become :class:`TransportError` with an :class:`ErrorKind` that
:mod:`tokenward.proxy.retry` understands. Messages never include the URL: a path may carry a
webhook token.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import aiohttp
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from tokenward.errors import UpstreamUnavailable
from tokenward.proxy import http1
from tokenward.proxy.retry import NOT_SENT, ErrorKind

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024

Body = bytes | AsyncIterable[bytes] | None
HeaderItems = Mapping[str, str] | Iterable[tuple[str, str]]


class TransportError(UpstreamUnavailable):
    """No usable response: the connection failed, timed out, broke, or the body was too large.

    ``details``: ``kind`` (an :class:`ErrorKind` value); once a caller has given up (see
    :meth:`gave_up`), also ``attempts`` and, when trying again may help, ``retry_after``.
    """

    def __init__(self, kind: ErrorKind, message: str | None = None) -> None:
        super().__init__(
            message or f"the provider could not be reached ({kind.value})",
            details={"kind": kind.value},
        )
        self.kind = kind
        self.attempts = 1
        self.retry_after: float | None = None
        self.headers: dict[str, str] = {}

    def gave_up(
        self, *, attempts: int, seconds: float, retry_after: float | None
    ) -> TransportError:
        """A copy saying how many attempts were made in how long, and when to try again (an
        HTTP ``Retry-After`` too): what the caller sees once the retry budget is spent."""
        noun = "attempt" if attempts == 1 else "attempts"
        if self.kind is ErrorKind.RESPONSE_TOO_LARGE:
            message = self.message
        else:
            if retry_after is not None:
                tail = f"; retry after {retry_after:g}s"
            elif self.kind in NOT_SENT:
                tail = ""
            else:
                tail = "; the request may have reached Discord: check before repeating it"
            message = (
                f"Discord could not be reached ({self.kind.value}) after {attempts} {noun} "
                f"in {seconds:.1f}s{tail}"
            )
        error = TransportError(self.kind, message)
        error.attempts = attempts
        error.details["attempts"] = attempts
        if retry_after is not None:
            error.retry_after = retry_after
            error.details["retry_after"] = retry_after
            error.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        return error


class ClosedOnExit:
    """``async with thing:`` closes it (:meth:`aclose`) on the way out."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _items(headers: HeaderItems | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def strip_hop_by_hop(
    headers: HeaderItems | None, drop: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """``headers`` without hop-by-hop fields, including those listed in ``Connection``, and
    without the (lower-case) names in ``drop``. One pass; a second only when ``Connection``
    names fields (this runs three times per proxied call)."""
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    kept: list[tuple[str, str]] = []
    named: set[str] | None = None
    for name, value in pairs:
        if type(name) is not str or type(value) is not str:
            name, value = str(name), str(value)
        low = name.lower()
        if low in HOP_BY_HOP or low in drop or low.startswith("proxy-"):
            if low == "connection":
                tokens = {t for token in value.split(",") if (t := token.strip().lower())}
                named = tokens if named is None else named | tokens
            continue
        kept.append((name, value))
    if named:
        return [(name, value) for name, value in kept if name.lower() not in named]
    return kept


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One outbound call. ``url`` is absolute and already guarded (see ``paths.safe_path``)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: Body = field(default=None, repr=False)
    timeout: float | None = None  # total seconds for this call; the transport default otherwise
    # An answer declaring at most this many bytes may be read whole before send() returns (the
    # caller holds answers up to this size anyway); None: the transport's own bound.
    read_whole_below: int | None = None

    def header(self, name: str) -> str | None:
        low = name.lower()
        for key, value in self.headers:
            if key.lower() == low:
                return value
        return None

    def __repr__(self) -> str:
        # The URL path may hold a webhook token and headers hold Authorization: neither is shown.
        return f"UpstreamRequest(method={self.method!r}, headers={len(self.headers)})"


class UpstreamResponse(ClosedOnExit):
    """A provider's answer: status, headers (hop-by-hop removed) and a size-capped body.

    The body is read once, either whole (:meth:`read`, then :attr:`content` / :meth:`json`) or as
    chunks (:meth:`iter_bytes`). Close it (``async with`` or :meth:`aclose`) when streaming stops
    early so the connection is not leaked.
    """

    def __init__(
        self,
        status: int,
        headers: HeaderItems | None = None,
        *,
        content: bytes | None = None,
        stream: AsyncIterator[bytes] | None = None,
        max_bytes: int | None = None,
        on_close: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        if content is not None and stream is not None:
            raise ValueError("give content or stream, not both")
        self.status = status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(
            CIMultiDict(strip_hop_by_hop(headers))
        )
        self.max_bytes = max_bytes
        self._content = content
        self._stream = stream
        self._on_close = on_close
        self._consumed = content is not None
        self._closed = False
        # What :meth:`buffer` read of a body too large to keep, and the rest of that body.
        self._head: list[bytes] = []
        self._tail: AsyncIterator[bytes] | None = None
        # Set by the caller that retried to get this answer (ProviderClient): how many
        # attempts it took, and for a transient error status, when to try again.
        self.attempts = 1
        self.retry_after: float | None = None
        if content is not None and max_bytes is not None and len(content) > max_bytes:
            raise TransportError(
                ErrorKind.RESPONSE_TOO_LARGE, f"the response is larger than {max_bytes} bytes"
            )

    @classmethod
    def from_json(
        cls, status: int, payload: Any, headers: HeaderItems | None = None
    ) -> UpstreamResponse:
        items = [*_items(headers), ("Content-Type", "application/json")]
        return cls(status, items, content=json.dumps(payload).encode())

    def __repr__(self) -> str:
        return f"UpstreamResponse(status={self.status})"

    @property
    def is_consumed(self) -> bool:
        return self._consumed

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("the body has not been read; await read() first")
        return self._content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def is_read(self) -> bool:
        """True when the whole body is in :attr:`content`."""
        return self._content is not None

    async def read(self) -> bytes:
        if self._content is not None:
            return self._content
        chunks = [chunk async for chunk in self.iter_bytes()]
        self._content = b"".join(chunks)
        return self._content

    async def buffer(self, limit: int) -> bool:
        """Read the body into :attr:`content` when it is at most ``limit`` bytes; True then.

        A body declared (``Content-Length``) or found to be larger is left for
        :meth:`iter_bytes`, which yields what was read here first; False then. A body that
        breaks off while being read here raises TransportError, so a caller can still retry:
        nothing has been handed on yet.
        """
        if self._content is not None:
            return True
        if self._tail is not None:
            return False
        if self._consumed:
            raise RuntimeError("the body was already streamed")
        declared = self.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return False
        chunks: list[bytes] = []
        size = 0
        body = self.iter_bytes()
        async for chunk in body:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                self._head = chunks
                self._tail = body
                return False
        self._content = b"".join(chunks)
        return True

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises TransportError past ``max_bytes``."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        if self._tail is not None:
            head, tail = self._head, self._tail
            self._head, self._tail = [], None
            for chunk in head:
                yield chunk
            async for chunk in tail:
                yield chunk
            return
        if self._consumed:
            raise RuntimeError("the body was already streamed")
        self._consumed = True
        if self._stream is None:
            await self._finish(complete=True)
            return
        received = 0
        complete = False
        try:
            async for chunk in self._stream:
                received += len(chunk)
                if self.max_bytes is not None and received > self.max_bytes:
                    raise TransportError(
                        ErrorKind.RESPONSE_TOO_LARGE,
                        f"the response is larger than {self.max_bytes} bytes",
                    )
                if chunk:
                    yield chunk
            complete = True
        finally:
            await self._finish(complete=complete)

    async def _finish(self, *, complete: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            await self._on_close(complete)

    async def aclose(self) -> None:
        """Release the connection; an unread body closes it instead of returning it to the pool."""
        if self._content is None and not self._consumed:
            self._consumed = True
        if self._tail is not None:
            tail, self._tail, self._head = self._tail, None, []
            aclose = getattr(tail, "aclose", None)
            if aclose is not None:
                await aclose()
        await self._finish(complete=False)


class Transport(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


_HOST = frozenset({"host"})
_HOST_AND_LENGTH = frozenset({"host", "content-length"})


def _outbound_items(request: UpstreamRequest) -> list[tuple[str, str]]:
    """The headers to send: no hop-by-hop ones, no Host (from the URL), and no Content-Length
    for a body given whole (computed from it)."""
    whole = request.body is None or isinstance(request.body, bytes)
    return strip_hop_by_hop(request.headers, _HOST_AND_LENGTH if whole else _HOST)


def _outbound_headers(request: UpstreamRequest) -> CIMultiDict[str]:
    return CIMultiDict(_outbound_items(request))


@dataclass(frozen=True, slots=True)
class Timeouts:
    total: float = 30.0
    connect: float = 10.0
    read: float | None = None  # between two reads; the total bounds it anyway


def _decoded_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """An answer's headers once its body is decoded: the encoding and length no longer describe
    the bytes handed on."""
    return [(k, v) for k, v in headers if k.lower() not in {"content-encoding", "content-length"}]


def _error_kind(exc: BaseException) -> ErrorKind:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ErrorKind.CONNECT_TIMEOUT
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return ErrorKind.READ_TIMEOUT
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorKind.CONNECT
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientOSError
        | aiohttp.ClientPayloadError
        | ConnectionError,
    ):
        return ErrorKind.CONNECTION_RESET
    return ErrorKind.PROTOCOL


class _Broken:
    """The body of an answer that broke off: raises ``error`` when read."""

    def __init__(self, error: TransportError) -> None:
        self.error = error

    def __aiter__(self) -> _Broken:
        return self

    async def __anext__(self) -> bytes:
        raise self.error


class AiohttpTransport(ClosedOnExit):
    """One pooled ``aiohttp`` session, created on first use (``UPSTREAM_CLIENT=aiohttp``)."""

    def __init__(
        self,
        *,
        timeouts: Timeouts | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        pool_size: int = 512,
        keepalive_seconds: float = 30.0,
        chunk_size: int = 64 * 1024,
        read_whole_below: int = 1024 * 1024,
    ) -> None:
        self.timeouts = timeouts or Timeouts()
        # Answers that declare at most this many bytes are read whole before send() returns.
        self.read_whole_below = read_whole_below
        self.max_response_bytes = max_response_bytes
        self._pool_size = pool_size
        self._keepalive = keepalive_seconds
        self._chunk_size = chunk_size
        self._session: aiohttp.ClientSession | None = None

    def _client_timeout(self, total: float | None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=total if total is not None else self.timeouts.total,
            sock_connect=self.timeouts.connect,
            sock_read=self.timeouts.read,
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                limit_per_host=0,
                keepalive_timeout=self._keepalive,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._client_timeout(None),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=True,
                raise_for_status=False,
            )
        return self._session

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        session = self._get_session()
        body: Any = request.body
        try:
            response = await session.request(
                request.method,
                yarl.URL(request.url, encoded=True),
                headers=_outbound_headers(request),
                data=body,
                allow_redirects=False,
                timeout=self._client_timeout(request.timeout),
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(_error_kind(exc)) from exc

        headers = list(response.headers.items())
        if response.headers.get("Content-Encoding"):
            headers = _decoded_headers(headers)  # aiohttp decodes gzip/deflate/br
        declared = response.content_length
        if declared is not None and declared > self.max_response_bytes:
            response.close()
            raise TransportError(
                ErrorKind.RESPONSE_TOO_LARGE,
                f"the response declares {declared} bytes, over the cap of "
                f"{self.max_response_bytes}",
            )

        if (
            declared is not None
            and declared
            <= (
                self.read_whole_below
                if request.read_whole_below is None
                else min(request.read_whole_below, self.read_whole_below)
            )
            and not response.headers.get("Content-Encoding")  # decoded, it could be any size
        ):
            # The common case (Discord's JSON answers): the whole body in one read, instead of
            # a chain of async generators handing on chunks. A body that breaks off is reported
            # when it is read, as a streamed one would be.
            try:
                content = await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                response.close()
                return UpstreamResponse(
                    response.status, headers, stream=_Broken(TransportError(_error_kind(exc)))
                )
            response.release()
            return UpstreamResponse(
                response.status, headers, content=content, max_bytes=self.max_response_bytes
            )

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_chunked(self._chunk_size):
                    yield chunk
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise TransportError(_error_kind(exc)) from exc

        async def on_close(complete: bool) -> None:
            if complete:
                response.release()
            else:
                response.close()

        return UpstreamResponse(
            response.status,
            headers,
            stream=chunks(),
            max_bytes=self.max_response_bytes,
            on_close=on_close,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Http1Transport(ClosedOnExit):
    """The production transport: tokenward's own pooled HTTP/1.1 client (:mod:`.http1`).

    The same contract as :class:`AiohttpTransport` (hop-by-hop headers stripped both ways, no
    redirects followed, no cookie jar, no proxies from the environment, gzip/deflate answers
    decoded, the size cap, small answers read whole, larger ones streamed), at about 0.7 of its
    CPU per proxied call (see ``bench/proxy.py``). ``ssl_context``: whom to trust over https (the
    system's store by default).
    """

    def __init__(
        self,
        *,
        timeouts: Timeouts | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        pool_size: int = 512,
        keepalive_seconds: float = 30.0,
        read_whole_below: int = 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeouts = timeouts or Timeouts()
        self.read_whole_below = read_whole_below
        self.max_response_bytes = max_response_bytes
        self._pool_size = pool_size
        self._keepalive = keepalive_seconds
        self._ssl_context = ssl_context
        self._pool: http1.Pool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        # Parsed base URLs: (scheme, host, port, Host header), a handful per process.
        self._origins: dict[str, tuple[http1.PoolKey, str]] = {}

    @property
    def pool(self) -> http1.Pool:
        """The running event loop's pool: connections belong to the loop that opened them, so
        a transport used from another loop (a second ``asyncio.run``) starts a pool afresh."""
        return self._pool_for(asyncio.get_running_loop())

    def _pool_for(self, loop: asyncio.AbstractEventLoop) -> http1.Pool:
        if self._pool_loop is not loop:
            self._drop_pool()
        if self._pool is None:
            self._pool_loop = loop
            self._pool = http1.Pool(
                limit=self._pool_size,
                keepalive_seconds=self._keepalive,
                connect_timeout=self.timeouts.connect,
                ssl_context=self._ssl_context,
                make_error=TransportError,
            )
        return self._pool

    def _target(self, url: str) -> tuple[http1.PoolKey, str, str]:
        """(pool key, Host header, request target) of an absolute http(s) URL."""
        scheme, sep, rest = url.partition("://")
        slash = rest.find("/")
        query = rest.find("?")
        cut = min(i for i in (slash, query, len(rest)) if i >= 0)
        authority, target = rest[:cut], rest[cut:]
        if not target.startswith("/"):
            target = "/" + target
        origin = self._origins.get(authority) if sep else None
        if origin is None or origin[0][0] != scheme.lower():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise TransportError(ErrorKind.CONNECT, "the provider's URL is not http(s)")
            default = 443 if parts.scheme == "https" else 80
            port = parts.port or default
            host = parts.hostname
            shown = f"[{host}]" if ":" in host else host
            host_header = shown if port == default else f"{shown}:{port}"
            origin = ((parts.scheme, host, port), host_header)
            if len(self._origins) < 64:
                self._origins[authority] = origin
        return origin[0], origin[1], target

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        total = request.timeout if request.timeout is not None else self.timeouts.total
        deadline = http1.Deadline(loop.time() + total, self.timeouts.read)
        key, host_header, target = self._target(request.url)
        method = request.method.upper()
        body = request.body
        head = http1.request_head(
            method,
            target,
            host_header,
            _outbound_items(request),
            body,
            TransportError,
        )
        pool = self._pool_for(loop)
        # A reused connection the server has just closed fails before any answer: an
        # idempotent call with a body we still hold is sent once more on a new connection.
        resendable = method in http1.IDEMPOTENT and (body is None or isinstance(body, bytes))
        while True:
            idle = pool.take_idle(key)
            if idle is not None:
                connection, reused = idle, True
            else:
                connection, reused = await pool.acquire(key, deadline)
            answer = connection.begin(head_only=method == "HEAD")
            try:
                if isinstance(body, bytes) and len(body) <= 64 * 1024:
                    connection.write(head + body)
                else:
                    connection.write(head)
                    if isinstance(body, bytes):
                        connection.write(body)
                    elif body is not None:
                        await _write_chunks(connection, body, request.header("Content-Length"))
                await connection.wait(answer, deadline)
            except TransportError as exc:
                connection.close()
                if (
                    reused
                    and resendable
                    and not connection.got_bytes
                    and exc.kind is ErrorKind.CONNECTION_RESET
                ):
                    resendable = False
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            break
        bound = self.read_whole_below
        if request.read_whole_below is not None:
            bound = min(bound, request.read_whole_below)
        return await self._answer(connection, deadline, bound)

    async def _answer(
        self, connection: http1.Connection, deadline: http1.Deadline, bound: int
    ) -> UpstreamResponse:
        pool = connection.pool
        headers = connection.headers
        declared = connection.declared_length
        encoding = connection.content_encoding
        decoder = None
        if http1.Decoder.handles(encoding):
            decoder = http1.Decoder(encoding, TransportError)
            headers = _decoded_headers(headers)
        cap = self.max_response_bytes
        if declared is not None and declared > cap:
            connection.close()
            raise TransportError(
                ErrorKind.RESPONSE_TOO_LARGE,
                f"the response declares {declared} bytes, over the cap of {cap}",
            )
        status = connection.status
        if declared is not None and declared <= bound:
            # The common case (Discord's JSON answers): the whole body before send() returns,
            # the connection back in the pool. A body that breaks off is reported when read.
            try:
                content = await connection.read_all(deadline)
            except TransportError as exc:
                connection.close()
                return UpstreamResponse(status, headers, stream=_Broken(exc))
            pool.release(connection)
            if decoder is not None:
                content = _decoded(decoder, content, cap)
            return UpstreamResponse(status, headers, content=content, max_bytes=cap)

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await connection.read_chunk(deadline):
                if decoder is None:
                    yield chunk
                elif decoded := decoder.decode(chunk, cap):
                    yield decoded
            if decoder is not None and (tail := decoder.flush()):
                yield tail

        async def on_close(complete: bool) -> None:
            if complete:
                pool.release(connection)
            else:
                connection.close()

        return UpstreamResponse(status, headers, stream=chunks(), max_bytes=cap, on_close=on_close)

    def _drop_pool(self) -> None:
        """Close the pool's connections on their own loop (gone with it if it is closed)."""
        pool, loop, self._pool, self._pool_loop = self._pool, self._pool_loop, None, None
        if pool is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is running:
            pool.close()
        else:
            loop.call_soon_threadsafe(pool.close)

    async def aclose(self) -> None:
        self._drop_pool()


async def _write_chunks(
    connection: http1.Connection, body: AsyncIterable[bytes], declared: str | None
) -> None:
    """A streamed request body: as it is (the caller declared its length) or chunk-framed."""
    async for chunk in body:
        if not chunk:
            continue
        if declared is None:
            connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            connection.write(chunk)
        await connection.drain()
    if declared is None:
        connection.write(b"0\r\n\r\n")


def _decoded(decoder: http1.Decoder, content: bytes, cap: int) -> bytes:
    data = decoder.decode(content, cap) + decoder.flush()
    if len(data) > cap:
        raise TransportError(
            ErrorKind.RESPONSE_TOO_LARGE, f"the response is larger than {cap} bytes"
        )
    return data


Handler = Callable[[UpstreamRequest], UpstreamResponse | Awaitable[UpstreamResponse]]


class MockTransport:
    """Hands each request to ``handler`` (sync or async); for tests.

    Streamed request bodies are read into bytes first, headers are stripped as the real transport
    strips them, and the response size cap applies. A handler raises :class:`TransportError` to
    simulate a connection failure. ``requests`` keeps every request seen, in order.
    """

    def __init__(
        self, handler: Handler, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    ) -> None:
        self.handler = handler
        self.max_response_bytes = max_response_bytes
        self.requests: list[UpstreamRequest] = []

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        body = request.body
        if body is not None and not isinstance(body, bytes):
            body = b"".join([chunk async for chunk in body])
        seen = replace(request, headers=tuple(_outbound_headers(request).items()), body=body)
        self.requests.append(seen)
        result = self.handler(seen)
        response = await result if inspect.isawaitable(result) else result
        if response.max_bytes is None:
            response.max_bytes = self.max_response_bytes
        if (
            response.is_consumed
            and response.max_bytes is not None
            and len(response.content) > response.max_bytes
        ):
            raise TransportError(
                ErrorKind.RESPONSE_TOO_LARGE,
                f"the response is larger than {response.max_bytes} bytes",
            )
        await asyncio.sleep(0)
        return response

    async def aclose(self) -> None:
        return None
