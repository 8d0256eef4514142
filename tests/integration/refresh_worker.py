"""One of several OS processes that read the same expired token at the same moment.

Usage: python refresh_worker.py START_AT ACCOUNT_ID CONCURRENCY
(settings come from TOKENWARD_* environment variables). Prints the distinct access tokens it was
handed, as JSON, after sleeping until START_AT so every process starts together.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from tokenward.clock import ManualClock
from tokenward.config import Settings
from tokenward.oauth.refresh import TokenManager
from tokenward.server.container import Container


async def main(start_at: float, account_id: str, concurrency: int) -> None:
    container = Container(Settings())
    await container.start(migrate=False)
    try:
        manager = TokenManager(
            container.vault,
            container.oauth.endpoints,
            ManualClock(start=time.time() + 8 * 86400),
        )
        await asyncio.sleep(max(0.0, start_at - time.time()))
        grants = await asyncio.gather(*(manager.grant(account_id) for _ in range(concurrency)))
        print(json.dumps(sorted({g.access_token for g in grants})))
    finally:
        await container.close()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
