"""The pipelined script calls under the shared rate limiter, against a real Redis: calls made in one
turn of the event loop share one write, every caller gets its own answer, a script Redis forgot is
loaded again, and a Redis that goes away fails the waiting calls (never hangs them) and is used
again once it is back. Slot ids stay unique in forked workers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from conftest import PrivateRedis
from tokenward.proxy import redis_ratelimit
from tokenward.redis_pipe import ScriptPipe
from tokenward.shared import redis_errors

pytestmark = pytest.mark.redis

ECHO = "return {tonumber(ARGV[1]), KEYS[1], redis.call('INCR', KEYS[1])}"
FAIL = "return redis.error_reply('ERR told to fail ' .. ARGV[1])"


def client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


@pytest.fixture
async def pipe(redis_server_url: str) -> AsyncIterator[ScriptPipe]:
    made = ScriptPipe(client(redis_server_url))
    try:
        yield made
    finally:
        await made.aclose()


async def test_concurrent_calls_share_writes_and_get_their_own_answers(
    pipe: ScriptPipe, redis_prefix: str
) -> None:
    echo = pipe.script(ECHO)
    key = f"{redis_prefix}counter"
    await echo([key], [0])  # Redis knows the script from now on
    calls = pipe.calls
    answers = await asyncio.gather(*(echo([key], [n]) for n in range(200)))
    # Each caller got the answer to its own call, in the order Redis ran them.
    assert [int(a[0]) for a in answers] == list(range(200))
    assert all(a[1] == key.encode() for a in answers)
    assert sorted(int(a[2]) for a in answers) == list(range(2, 202))
    assert pipe.calls - calls == 200
    assert pipe.batches < 20, "calls made in one turn of the loop should share a write"
    # One at a time still works (a batch of one).
    assert (await echo([key], [7]))[:2] == [7, key.encode()]


async def test_a_script_error_fails_only_its_own_call(pipe: ScriptPipe, redis_prefix: str) -> None:
    echo, fail = pipe.script(ECHO), pipe.script(FAIL)
    key = f"{redis_prefix}counter"
    results = await asyncio.gather(
        echo([key], [1]), fail([key], ["x"]), echo([key], [2]), return_exceptions=True
    )
    assert int(results[0][0]) == 1
    assert int(results[2][0]) == 2
    assert isinstance(results[1], ResponseError)
    assert "told to fail x" in str(results[1])


async def test_a_flushed_script_cache_is_loaded_again(
    pipe: ScriptPipe, redis_prefix: str, redis_server_url: str
) -> None:
    echo = pipe.script(ECHO)
    key = f"{redis_prefix}counter"
    await echo([key], [1])
    sync = redis.Redis.from_url(redis_server_url)
    sync.script_flush()
    assert sync.script_exists(echo.sha) == [False]
    answers = await asyncio.gather(*(echo([key], [n]) for n in range(5)))
    assert [int(a[0]) for a in answers] == list(range(5))
    assert sync.script_exists(echo.sha) == [True]
    sync.close()


async def test_a_cancelled_caller_does_not_shift_the_others_answers(
    pipe: ScriptPipe, redis_prefix: str
) -> None:
    echo = pipe.script(ECHO)
    key = f"{redis_prefix}counter"
    tasks = [asyncio.ensure_future(echo([key], [n])) for n in range(50)]
    await asyncio.sleep(0)  # sent
    for task in tasks[::3]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for n, result in enumerate(results):
        if n % 3 == 0:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert isinstance(result, list)
            assert int(result[0]) == n
    assert int((await echo([key], [99]))[0]) == 99


async def test_redis_away_fails_waiting_calls_and_returning_redis_is_used_again(
    private_redis: PrivateRedis,
) -> None:
    pipe = ScriptPipe(client(private_redis.url))
    echo = pipe.script(ECHO)
    try:
        assert int((await echo(["k"], [1]))[0]) == 1
        private_redis.stop()
        results = await asyncio.wait_for(
            asyncio.gather(*(echo(["k"], [n]) for n in range(10)), return_exceptions=True),
            timeout=5,
        )
        assert all(isinstance(r, redis_errors()) for r in results), results
        # Still away: a new call fails fast too.
        with pytest.raises(redis_errors()):
            await asyncio.wait_for(echo(["k"], [2]), timeout=5)
        private_redis.start()  # empty again: the script cache too
        answers = await asyncio.gather(*(echo(["k"], [n]) for n in range(10)))
        assert [int(a[0]) for a in answers] == list(range(10))
    finally:
        await pipe.aclose()


def test_slot_ids_are_unique_in_forked_workers() -> None:
    """Workers forked from one parent draw their own slot-id prefix (ids are members of shared
    in-flight sets: two workers handing out the same id would count as one request)."""
    before = redis_ratelimit._SLOT_PREFIX
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, redis_ratelimit._SLOT_PREFIX.encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child
    assert before
    assert child != before
    assert before == redis_ratelimit._SLOT_PREFIX
