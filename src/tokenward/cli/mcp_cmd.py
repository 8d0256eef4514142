"""``tokenward mcp``: the MCP server over stdio, acting as one user, on the local vault.

For MCP clients that start a command (desktop assistants). stdout is the protocol; logs and
errors go to stderr.

Ctrl-C must end it, also in a terminal: the MCP SDK reads stdin in a worker thread that a
cancellation waits for, so a Ctrl-C would wait for the next line of input. :class:`StdinLines`
reads stdin in a daemon thread with ``os.read`` instead (no lock on ``sys.stdin`` that the
interpreter's shutdown could wait for), and hands lines to the event loop through a queue, so
waiting for input is cancellable and a blocked read never holds up the exit.

A Ctrl-C ends the input (:meth:`StdinLines.close`), so the server stops the way it does when
its client leaves, and the command exits with 130. It does not rely on cancelling the server's
task alone: the SDK's task groups can lose a cancellation that lands while one of their own
scopes is being cancelled, and the server then went on waiting for input. Should the server
not have stopped two seconds later (a tool call still running), its task is cancelled; a
second Ctrl-C cancels at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import TYPE_CHECKING

import typer

from tokenward.cli.app import app
from tokenward.cli.output import fail_with, load_settings
from tokenward.errors import TokenwardError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine
    from typing import Any


def _tool_names(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


class StdinLines:
    """An async iterator over the lines of a file descriptor, read by a daemon thread."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self._queue: asyncio.Queue[str | None] | None = None
        self.closed = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    def close(self) -> None:
        """End the input now, as an end of file would (from the event loop's thread)."""
        self.closed = True
        if self._queue is not None:
            self._queue.put_nowait(None)

    async def _lines(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._queue = queue
        if self.closed:
            return

        def put(item: str | None) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                return False
            return True

        def pump() -> None:
            pending = b""
            while True:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    if pending:
                        put(pending.decode("utf-8", "replace"))
                    put(None)
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not put((line + b"\n").decode("utf-8", "replace")):
                        return

        threading.Thread(target=pump, name="tokenward-stdin", daemon=True).start()
        while (line := await queue.get()) is not None:
            yield line


# How long a Ctrl-C waits for the server to stop on its own before cancelling it.
INTERRUPT_GRACE_SECONDS = 2.0


async def _until_interrupted(serving: Coroutine[Any, Any, None], stdin: StdinLines) -> bool:
    """Run ``serving``; a Ctrl-C (SIGINT) ends ``stdin``, then cancels. True when interrupted."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(serving)
    presses = 0

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            stdin.close()
            loop.call_later(INTERRUPT_GRACE_SECONDS, task.cancel)
        else:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here: Ctrl-C as before
        await task
        return False
    try:
        await task
    except asyncio.CancelledError:
        if not presses:
            raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    return presses > 0


@app.command("mcp")
def mcp_command(
    connection: str = typer.Option(..., "--connection", help="Connection name."),
    identifier: str = typer.Option(
        ..., "--identifier", help="Your application's user id; the tools act as this user."
    ),
    tools: str | None = typer.Option(
        None,
        "--tools",
        help="Comma-separated tool names to offer (default: every tool).",
    ),
    read_only: bool = typer.Option(
        False, "--read-only", help="Offer and run only read-only tools."
    ),
) -> None:
    """Serve the Discord tools over MCP on stdin/stdout, acting as one connected account."""
    from tokenward.mcp.stdio import serve_stdio
    from tokenward.server.api.observability import configure_logging

    try:
        settings = load_settings()
        secrets = [
            key.partition(":")[2].strip()
            for key in (settings.encryption_keys or "").split(",")
            if key.partition(":")[2].strip()
        ]
        configure_logging(settings.log_level, secrets=secrets)
        stdin = StdinLines()
        interrupted = asyncio.run(
            _until_interrupted(
                serve_stdio(
                    settings,
                    connection_name=connection,
                    identifier=identifier,
                    tools=_tool_names(tools),
                    stdin=stdin,
                    read_only=read_only,
                ),
                stdin,
            )
        )
        if interrupted:
            raise typer.Exit(130)
    except TokenwardError as exc:
        fields = exc.details.get("fields")
        extra = ""
        if isinstance(fields, dict) and fields:
            extra = " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
        fail_with(exc, line=f"{exc.message}{extra} [{exc.code}]")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
