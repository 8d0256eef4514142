"""Script calls to Redis from many tasks over one connection, without waiting for each other.

The shared rate limiter runs two scripts per proxied call (take a request, then report the
response). Through redis-py's client each call borrows a pooled connection, writes one command,
waits for its answer and gives the connection back: about 90 µs of client CPU per call at 32
concurrent requests, more than the rest of a proxied call. :class:`ScriptPipe` does what
auto-pipelining clients do instead:

* every call made during one turn of the event loop is written in one batch (one ``write``);
* answers are read in order by one reader task and handed to their callers, so a call never
  waits for a connection or for other calls' round trips, only for its own answer;
* one connection per process (redis-py's, so the URL's TLS, ``AUTH`` and ``SELECT`` apply).

Scripts are sent as ``EVALSHA``; one Redis does not know yet (a restart flushes its script
cache) is sent again as ``EVAL``, which also loads it. When the connection fails or an answer
does not come within the client's socket timeout, every waiting call fails with that error and
the next call connects again (the caller decides what a failure means: the limiter falls back
to its in-process limits for a while, see :class:`~tokenward.shared.SharedRedis`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.connection import AbstractConnection

Arg = str | int | bytes


class PipedScript:
    """A Lua script registered with a :class:`ScriptPipe` (``await script(keys, args)``)."""

    __slots__ = ("_pipe", "sha", "text")

    def __init__(self, pipe: ScriptPipe, text: str) -> None:
        self._pipe = pipe
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await self._pipe.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._pipe.call("EVAL", self.text, len(keys), *keys, *args)


class ScriptPipe:
    """One pipelined connection (module docstring)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._pool = client.connection_pool
        self._conn: AbstractConnection | None = None
        self._queue: list[tuple[tuple[Arg, ...], asyncio.Future[Any]]] = []
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._answers = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.calls = 0

    def script(self, text: str) -> PipedScript:
        return PipedScript(self, text)

    async def call(self, *command: Arg) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())
        return await future

    async def _write(self) -> None:
        """Send what is queued, batch after batch, until the queue stays empty."""
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                live = [(command, future) for command, future in batch if not future.done()]
                if not live:
                    continue
                conn = None
                try:
                    conn = await self._connection()
                    packed = conn.pack_commands([command for command, _ in live])
                    # Answers come back in this order: queue the callers before writing.
                    self._waiting.extend(future for _, future in live)
                    self._answers.set()
                    await conn.send_packed_command(packed, check_health=False)
                except BaseException as exc:
                    self._fail(conn, exc, [future for _, future in live])
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                self.batches += 1
                self.calls += len(live)
        finally:
            self._writer = None

    async def _connection(self) -> AbstractConnection:
        if self._conn is None:
            conn = self._pool.make_connection()  # type: ignore[no-untyped-call]
            await conn.connect()
            self._conn = conn
            self._reader = asyncio.get_running_loop().create_task(self._read(conn))
        return self._conn

    async def _read(self, conn: AbstractConnection) -> None:
        from redis.exceptions import ResponseError

        while True:
            if self._conn is not conn:
                return  # replaced: the calls waiting now are the new connection's
            if not self._waiting:
                self._answers.clear()
                await self._answers.wait()
                continue
            try:
                answer = await conn.read_response()
            except ResponseError as exc:  # this command's error; the connection is fine
                answer = exc
            except BaseException as exc:
                self._fail(conn, exc, [])
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            if self._conn is not conn:
                return  # failed while this answer was read: its caller has been told already
            future = self._waiting.popleft()
            if future.done():  # its caller was cancelled
                continue
            if isinstance(answer, ResponseError):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _fail(
        self,
        conn: AbstractConnection | None,
        exc: BaseException,
        extra: list[asyncio.Future[Any]],
    ) -> None:
        """``conn`` failed: fail ``extra`` and, if it is still the current connection, every
        call waiting on it; the next call connects afresh. (redis-py has already closed a
        connection whose read or write failed.)"""
        waiting = list(extra)
        if conn is not None and conn is self._conn:
            waiting += self._waiting
            self._waiting.clear()
            self._conn = None
            self._answers.set()  # the old reader, if idle, ends
        if not isinstance(exc, Exception):
            exc = ConnectionError("the Redis connection was closed")
        for future in waiting:
            if not future.done():
                future.set_exception(exc)
        if conn is not None:
            self._spawn_disconnect(conn)

    def _spawn_disconnect(self, conn: AbstractConnection) -> None:
        async def disconnect() -> None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

        task = asyncio.get_running_loop().create_task(disconnect())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for task in (self._writer, self._reader):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        for task in list(self._closing):
            with contextlib.suppress(BaseException):
                await task
        conn, self._conn = self._conn, None
        for future in self._waiting:
            if not future.done():
                future.set_exception(ConnectionError("the Redis connection was closed"))
        self._waiting.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect()
