"""The unary gRPC layer of the compatibility port, driven as an ASGI application."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import unquote

from google.protobuf.wrappers_pb2 import StringValue
from google.rpc import status_pb2

from tokenward.compat.grpc_asgi import (
    DEADLINE_EXCEEDED,
    INTERNAL,
    INVALID_ARGUMENT,
    NOT_FOUND,
    OK,
    UNIMPLEMENTED,
    CallContext,
    GrpcError,
    GrpcRouter,
    MethodTable,
)
from tokenward.compat.proto import errdetails_pb2
from tokenward.compat.services import from_struct, to_struct

SERVICE = "test.v1.Echo"


async def echo(request: StringValue, context: CallContext) -> StringValue:
    if request.value == "missing":
        raise GrpcError(NOT_FOUND, "no such thing: café ✓ 100%", error_code="THING_NOT_FOUND")
    if request.value == "crash":
        raise RuntimeError("secret-internal-detail")
    if request.value.startswith("sleep "):
        await asyncio.sleep(float(request.value.split()[1]))
    auth = context.values("authorization")
    return StringValue(value=f"{request.value}|{auth[0] if auth else '-'}")


class Fallback:
    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def router() -> tuple[GrpcRouter, Fallback]:
    table = MethodTable()
    table.add(SERVICE, "Say", StringValue, echo)
    fallback = Fallback()
    return GrpcRouter(table, fallback), fallback


def frame(message: bytes, *, compressed: bool = False) -> bytes:
    return bytes([1 if compressed else 0]) + len(message).to_bytes(4, "big") + message


async def call(
    app: GrpcRouter,
    path: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/grpc",
) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", content_type), (b"te", b"trailers"), *(headers or [])],
        "client": ("127.0.0.1", 5000),
    }
    chunks = [body[:3], body[3:]]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def outcome(sent: list[dict[str, Any]]) -> tuple[int, str, bytes, dict[bytes, bytes]]:
    """(status, message, body, trailers); checks the answer's shape on the way."""
    assert [m["type"] for m in sent] == [
        "http.response.start",
        "http.response.body",
        "http.response.trailers",
    ]
    start, body, trailers = sent
    assert start["status"] == 200
    assert start["trailers"] is True
    assert dict(start["headers"])[b"content-type"] == b"application/grpc"
    fields = dict(trailers["headers"])
    status = int(fields[b"grpc-status"])
    message = unquote(fields.get(b"grpc-message", b"").decode("ascii"))
    return status, message, body["body"], fields


async def test_a_call_answers_one_framed_message_then_trailers() -> None:
    app, _ = router()
    sent = await call(
        app,
        f"/{SERVICE}/Say",
        frame(StringValue(value="hi").SerializeToString()),
        headers=[(b"authorization", b"Bearer first"), (b"authorization", b"Bearer second")],
    )
    status, _message, body, _fields = outcome(sent)
    assert status == OK
    assert body[0] == 0
    assert int.from_bytes(body[1:5], "big") == len(body) - 5
    assert StringValue.FromString(body[5:]).value == "hi|Bearer first"


async def test_an_error_carries_matching_status_details() -> None:
    app, _ = router()
    sent = await call(
        app, f"/{SERVICE}/Say", frame(StringValue(value="missing").SerializeToString())
    )
    status, message, body, fields = outcome(sent)
    assert body == b""
    assert status == NOT_FOUND
    assert message == "no such thing: café ✓ 100%"
    assert fields[b"grpc-message"].isascii()
    raw = fields[b"grpc-status-details-bin"]
    details = status_pb2.Status.FromString(base64.b64decode(raw + b"=" * (-len(raw) % 4)))
    assert (details.code, details.message) == (status, message)
    info = errdetails_pb2.ErrorInfo()
    assert details.details[0].type_url == "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo"
    assert details.details[0].Unpack(info)
    assert info.error_code == "THING_NOT_FOUND"


async def test_malformed_requests() -> None:
    app, _ = router()
    payload = StringValue(value="x").SerializeToString()
    cases = [
        (f"/{SERVICE}/Nope", frame(payload), UNIMPLEMENTED),
        (f"/{SERVICE}/Say", frame(payload, compressed=True), UNIMPLEMENTED),
        (f"/{SERVICE}/Say", frame(payload)[:-1], INVALID_ARGUMENT),
        (f"/{SERVICE}/Say", frame(payload) + frame(payload), INVALID_ARGUMENT),
        (f"/{SERVICE}/Say", b"\x00\x00", INVALID_ARGUMENT),
        (f"/{SERVICE}/Say", frame(b"\xff\xff\xff"), INVALID_ARGUMENT),
    ]
    for path, body, expected in cases:
        status, message, _body, _fields = outcome(await call(app, path, body))
        assert status == expected, (path, body, message)


async def test_an_unexpected_failure_is_internal_and_says_nothing_of_it() -> None:
    app, _ = router()
    sent = await call(app, f"/{SERVICE}/Say", frame(StringValue(value="crash").SerializeToString()))
    status, message, _body, fields = outcome(sent)
    assert status == INTERNAL
    assert "secret-internal-detail" not in message
    assert b"secret-internal-detail" not in fields[b"grpc-status-details-bin"]


async def test_a_path_prefix_of_the_environment_url_is_accepted() -> None:
    app, _ = router()
    sent = await call(
        app, f"/tenant/{SERVICE}/Say", frame(StringValue(value="p").SerializeToString())
    )
    assert outcome(sent)[0] == OK


async def test_everything_else_goes_to_the_rest_app() -> None:
    app, fallback = router()
    await call(app, "//oauth/token", b"grant_type=x", content_type=b"application/x-www-form")
    assert fallback.scopes[-1]["path"] == "/oauth/token"
    await call(app, "/proxy/api/users/@me", b"", content_type=b"application/json")
    assert fallback.scopes[-1]["path"] == "/proxy/api/users/@me"


async def test_lifespan_is_answered_here_and_never_reaches_the_app() -> None:
    app, fallback = router()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert fallback.scopes == []


def test_struct_numbers_come_back_whole() -> None:
    """A Struct carries every number as a double; whole ones become ints again (free-form
    objects reach Discord as the caller wrote them), fractions stay floats."""
    struct = to_struct(
        {"limit": 2, "ratio": 2.5, "nested": {"ids": [1, 2.0, 3.25]}, "big": 2.0**60}
    )
    data = from_struct(struct)
    assert data["limit"] == 2
    assert isinstance(data["limit"], int)
    assert data["ratio"] == 2.5
    assert data["nested"]["ids"] == [1, 2, 3.25]
    assert [type(v) for v in data["nested"]["ids"]] == [int, int, float]
    assert isinstance(data["big"], float)  # beyond 2**53 a double is no exact integer


async def test_grpc_timeout_ends_a_call_at_its_deadline_and_a_bad_one_is_refused() -> None:
    app, _ = router()
    seen: list[tuple[str, int]] = []
    app.on_call = lambda path, code, seconds: seen.append((path, code))
    slow = frame(StringValue(value="sleep 5").SerializeToString())
    started = time.monotonic()
    sent = await call(app, f"/{SERVICE}/Say", slow, headers=[(b"grpc-timeout", b"200m")])
    took = time.monotonic() - started
    status, message, _body, _fields = outcome(sent)
    assert status == DEADLINE_EXCEEDED, message
    assert "grpc-timeout" in message
    assert 0.15 < took < 2.0
    assert seen == [(f"/{SERVICE}/Say", DEADLINE_EXCEEDED)]
    # A deadline long enough changes nothing.
    quick = frame(StringValue(value="sleep 0.01").SerializeToString())
    sent = await call(app, f"/{SERVICE}/Say", quick, headers=[(b"grpc-timeout", b"5S")])
    assert outcome(sent)[0] == OK
    for bad in (b"5", b"5s", b"123456789S", b"-1S", b"S", b"1.5S"):
        sent = await call(app, f"/{SERVICE}/Say", quick, headers=[(b"grpc-timeout", bad)])
        status, message, _body, _fields = outcome(sent)
        assert status == INVALID_ARGUMENT, bad
        assert "grpc-timeout" in message
