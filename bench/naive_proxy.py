"""The comparison proxy for ``bench/proxy.py``: about thirty lines of Starlette and an aiohttp
client session, the "naive proxy" of the performance anchors. It looks the user's token up in a
dict and forwards the call, with none of tokenward's work (no API-token check, no vault, no
refresh, no rate limiter, no path guard, no metrics).

    python bench/naive_proxy.py PORT UPSTREAM_URL TOKENS_JSON
"""

from __future__ import annotations

import json
import sys

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PORT, UPSTREAM, TOKENS = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
session: aiohttp.ClientSession | None = None


async def proxy(request: Request) -> Response:
    global session
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    token = TOKENS[request.headers["identifier"]]
    url = f"{UPSTREAM}/{request.path_params['path']}"
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as upstream:
        body = await upstream.read()
        return Response(body, upstream.status, media_type=upstream.content_type)


app = Starlette(routes=[Route("/proxy/{path:path}", proxy)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
