"""The comparison proxy for ``bench/proxy.py``: about thirty lines of Starlette and an HTTP
client, the "naive proxy" of the performance anchors. It looks the user's token up in a dict and
forwards the call, with none of tokenward's work (no API-token check, no vault, no refresh, no
rate limiter, no path guard, no metrics).

    python bench/naive_proxy.py PORT UPSTREAM_URL TOKENS_JSON [aiohttp|http1]

``aiohttp`` (the default): an aiohttp client session, as the anchors' naive proxy. ``http1``:
tokenward's own HTTP/1.1 client instead, to show what the client alone is worth.
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

from tokenward.proxy.transport import Http1Transport, UpstreamRequest

PORT, UPSTREAM, TOKENS = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
CLIENT = sys.argv[4] if len(sys.argv) > 4 else "aiohttp"
session: aiohttp.ClientSession | None = None
transport = Http1Transport()


async def proxy(request: Request) -> Response:
    global session
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    token = TOKENS[request.headers["identifier"]]
    url = f"{UPSTREAM}/{request.path_params['path']}"
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as upstream:
        body = await upstream.read()
        return Response(body, upstream.status, media_type=upstream.content_type)


async def proxy_http1(request: Request) -> Response:
    token = TOKENS[request.headers["identifier"]]
    url = f"{UPSTREAM}/{request.path_params['path']}"
    upstream = await transport.send(
        UpstreamRequest("GET", url, (("Authorization", f"Bearer {token}"),))
    )
    body = await upstream.read()
    return Response(body, upstream.status, media_type=upstream.headers.get("Content-Type"))


app = Starlette(routes=[Route("/proxy/{path:path}", proxy_http1 if CLIENT == "http1" else proxy)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
