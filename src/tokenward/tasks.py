"""Background tasks: the one way they are stopped."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (a background loop; ``None``: nothing to stop) and wait until it has
    ended, so that nothing it holds is still in use when the caller goes on closing."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
