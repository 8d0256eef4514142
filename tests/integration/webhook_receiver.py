"""A webhook receiver on loopback, as an application would run one: it records every request
(headers and raw body) and answers with a status the test chooses, optionally after a delay and
with a JSON body (an application answering a ``discord.interaction``)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokenward._serving import BackgroundServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    status: int = 204
    reply: Any = None
    """JSON to answer with (status 200 while ``status`` is the default 204); None: no body."""
    delay: float = 0.0
    """Seconds to wait before answering (a slow application)."""
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: BackgroundServer | None = None

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self.received.append(Received(dict(request.headers), body))
                status, reply, delay = self.status, self.reply, self.delay
            if delay:
                await asyncio.sleep(delay)
            if reply is None:
                return Response(status_code=status)
            code = 200 if status == 204 else status  # a 204 has no body
            return Response(json.dumps(reply), status_code=code, media_type="application/json")

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/hook"

    def of_type(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.payload["type"] == event_type]

    def wait_for(
        self, event_type: str, count: int = 1, timeout: float = 10.0, **data: Any
    ) -> list[Received]:
        """Wait until ``count`` events of ``event_type`` (whose data has ``data``) arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                r
                for r in self.of_type(event_type)
                if all(r.payload["data"].get(k) == v for k, v in data.items())
            ]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [(r.payload["type"], r.payload["data"]) for r in self.received]
                raise AssertionError(f"no {count} {event_type} {data} within {timeout} s: {seen}")
            time.sleep(0.02)


def start_receiver(status: int = 204) -> Receiver:
    receiver = Receiver(status=status)
    receiver.server = BackgroundServer(receiver.app()).start()
    return receiver
