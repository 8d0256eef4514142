"""Time, behind a seam.

Everything in tokenward that needs "now" receives a :class:`Clock`; this module is the only
place that reads the system time, so tests move a :class:`ManualClock` forward instead of
sleeping.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time (seconds since the epoch) and a monotonic counter, plus sleep."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when told to; ``sleep`` advances it instantly."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._mono = 0.0

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def utc_datetime(timestamp: float) -> datetime:
    """An aware UTC datetime for an epoch timestamp."""
    return datetime.fromtimestamp(timestamp, tz=UTC)


def isoformat(timestamp: float) -> str:
    """ISO 8601 with a ``+00:00`` offset, as Discord writes timestamps."""
    return utc_datetime(timestamp).isoformat()


def parse_utc(value: object) -> datetime | None:
    """An ISO 8601 time as Discord writes it (``2024-10-18T14:42:53.064834``, with or without a
    zone; none means UTC) as an aware datetime; ``None`` when ``value`` is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
