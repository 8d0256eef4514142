"""Ctrl-C in ``tokenward mcp``: the input ends (the server's own way of stopping), and only
a server that does not stop is cancelled; each case on a real SIGINT sent to this process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tokenward.cli import mcp_cmd
from tokenward.cli.mcp_cmd import StdinLines, _until_interrupted


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def press_ctrl_c_soon(loop: asyncio.AbstractEventLoop, delay: float = 0.05) -> None:
    loop.call_later(delay, os.kill, os.getpid(), signal.SIGINT)


async def test_ctrl_c_ends_the_input_even_when_a_cancellation_would_be_lost(
    pipe: tuple[int, int],
) -> None:
    """A server that swallows its cancellation (as the SDK's task groups can) still stops:
    it sees the end of its input."""
    read_fd, write_fd = pipe
    stdin = StdinLines(read_fd)
    seen: list[str] = []
    swallowed = 0

    async def serve() -> None:
        nonlocal swallowed
        lines = aiter(stdin)
        while True:
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return  # the end of input: stop as when the client leaves
            except asyncio.CancelledError:
                swallowed += 1  # lost: go on reading
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                continue
            seen.append(line)

    os.write(write_fd, b"first\n")
    press_ctrl_c_soon(asyncio.get_running_loop(), 0.2)
    started = time.monotonic()
    assert await asyncio.wait_for(_until_interrupted(serve(), stdin), 10) is True
    assert time.monotonic() - started < mcp_cmd.INTERRUPT_GRACE_SECONDS
    assert seen == ["first\n"]
    assert swallowed == 0  # it stopped on the end of input, not on a cancellation
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_a_server_that_does_not_stop_is_cancelled_after_the_grace(
    monkeypatch: pytest.MonkeyPatch, pipe: tuple[int, int]
) -> None:
    monkeypatch.setattr(mcp_cmd, "INTERRUPT_GRACE_SECONDS", 0.3)
    stdin = StdinLines(pipe[0])
    cancelled = asyncio.Event()

    async def busy() -> None:  # a long tool call: does not read its input
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    press_ctrl_c_soon(asyncio.get_running_loop())
    started = time.monotonic()
    assert await _until_interrupted(busy(), stdin) is True
    took = time.monotonic() - started
    assert cancelled.is_set()
    assert 0.3 <= took < 3, took


async def test_a_second_ctrl_c_cancels_at_once(pipe: tuple[int, int]) -> None:
    stdin = StdinLines(pipe[0])
    loop = asyncio.get_running_loop()

    async def busy() -> None:
        await asyncio.sleep(3600)

    press_ctrl_c_soon(loop, 0.05)
    press_ctrl_c_soon(loop, 0.3)
    started = time.monotonic()
    assert await _until_interrupted(busy(), stdin) is True
    assert time.monotonic() - started < mcp_cmd.INTERRUPT_GRACE_SECONDS


async def test_without_ctrl_c_the_server_ends_normally(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    stdin = StdinLines(read_fd)
    lines: list[str] = []

    async def serve() -> None:
        async for line in stdin:
            lines.append(line)

    os.write(write_fd, b"a\nb\n")
    os.close(write_fd)  # the client leaves
    assert await _until_interrupted(serve(), stdin) is False
    assert lines == ["a\n", "b\n"]
