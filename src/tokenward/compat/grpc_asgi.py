"""Unary gRPC over ASGI: what the hosted platform's SDKs need, on the same port as the REST API.

Both SDKs send their control-plane calls as gRPC (binary protobuf over HTTP/2, the status in
trailers) to the host and port of the environment URL, where they also expect ``/oauth/token``
and ``/proxy``; neither can be pointed at a separate gRPC address. So the compatibility port runs
one ASGI application, under an HTTP/2 server that implements the ASGI trailers extension
(hypercorn), and this module routes by content type: ``application/grpc*`` goes to a method
table, everything else to the REST application.

The protocol subset (gRPC over HTTP/2, ``PROTOCOL-HTTP2.md``):

* a request is ``POST /<package>.<Service>/<Method>`` whose body is one length-prefixed message
  (1 byte compressed flag, 4 bytes big-endian length, the message); only the identity encoding is
  accepted (neither SDK compresses);
* the answer is always ``200`` with ``content-type: application/grpc``, then the body (one framed
  message, or nothing after an error), then **real trailers** with ``grpc-status``,
  ``grpc-message`` (percent-encoded) and, on errors, ``grpc-status-details-bin``: a
  ``google.rpc.Status`` whose code and message equal the trailers' (grpc-core drops the details
  otherwise) and whose first detail is the SDK's ``ErrorInfo``. A "trailers-only" answer is never
  sent: through hypercorn it becomes headers plus an empty DATA frame, which grpc-core reports as
  ``UNKNOWN: Stream removed`` instead of the real status.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from starlette.types import ASGIApp, Receive, Scope, Send

from tokenward.compat.proto import errdetails_pb2

log = logging.getLogger("tokenward.compat")

MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# gRPC status codes (the subset this server answers).
OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16

CODE_NAMES = {
    OK: "OK",
    CANCELLED: "CANCELLED",
    UNKNOWN: "UNKNOWN",
    INVALID_ARGUMENT: "INVALID_ARGUMENT",
    DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
    NOT_FOUND: "NOT_FOUND",
    ALREADY_EXISTS: "ALREADY_EXISTS",
    PERMISSION_DENIED: "PERMISSION_DENIED",
    RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
    FAILED_PRECONDITION: "FAILED_PRECONDITION",
    ABORTED: "ABORTED",
    UNIMPLEMENTED: "UNIMPLEMENTED",
    INTERNAL: "INTERNAL",
    UNAVAILABLE: "UNAVAILABLE",
    UNAUTHENTICATED: "UNAUTHENTICATED",
}

ERROR_INFO_TYPE_URL = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo"


class GrpcError(Exception):
    """An error answer: ``code`` (a gRPC status), a message, and the ``ErrorInfo`` the SDKs read
    (``error_code``; ``tool_error`` for a failure the tool met at the provider)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        error_code: str | None = None,
        tool_error: errdetails_pb2.ToolErrorInfo | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_code = error_code or CODE_NAMES.get(code, "UNKNOWN")
        self.tool_error = tool_error

    def status_details(self) -> bytes:
        """The serialized ``google.rpc.Status`` for ``grpc-status-details-bin``."""
        info = errdetails_pb2.ErrorInfo(error_code=self.error_code)
        if self.tool_error is not None:
            info.tool_error_info.CopyFrom(self.tool_error)
        packed = AnyMessage(type_url=ERROR_INFO_TYPE_URL, value=info.SerializeToString())
        status = status_pb2.Status(code=self.code, message=self.message, details=[packed])
        serialized: bytes = status.SerializeToString()
        return serialized


@dataclass(frozen=True)
class CallContext:
    """What a handler knows about the call besides its message."""

    metadata: Sequence[tuple[str, str]]
    client: str | None

    def values(self, name: str) -> list[str]:
        """Every value of the metadata key ``name`` (lower-case), in the order sent."""
        return [value for key, value in self.metadata if key == name]


RequestT = TypeVar("RequestT", bound=Message)
ResponseT = TypeVar("ResponseT", bound=Message)


@dataclass(frozen=True)
class UnaryMethod(Generic[RequestT, ResponseT]):
    request_type: type[RequestT]
    handler: Callable[[RequestT, CallContext], Awaitable[ResponseT]]

    async def call(self, payload: bytes, context: CallContext) -> bytes:
        request = self.request_type()
        try:
            request.ParseFromString(payload)
        except DecodeError:
            raise GrpcError(
                INVALID_ARGUMENT, f"the request is not a valid {self.request_type.__name__}"
            ) from None
        response = await self.handler(request, context)
        serialized: bytes = response.SerializeToString()
        return serialized


@dataclass
class MethodTable:
    """``/<package>.<Service>/<Method>`` → its unary handler."""

    methods: dict[str, UnaryMethod[Any, Any]] = field(default_factory=dict)

    def add(
        self,
        service: str,
        method: str,
        request_type: type[RequestT],
        handler: Callable[[RequestT, CallContext], Awaitable[ResponseT]],
    ) -> None:
        self.methods[f"/{service}/{method}"] = UnaryMethod(request_type, handler)

    def canonical(self, path: str) -> str | None:
        """The ``/<package>.<Service>/<Method>`` key ``path`` names, if implemented."""
        if path in self.methods:
            return path
        if path.count("/") > 2:
            # The Node SDK keeps a path prefix of the environment URL (https://host/prefix).
            service, _, method = path.rstrip("/").rpartition("/")
            key = f"/{service.rpartition('/')[2]}/{method}"
            if key in self.methods:
                return key
        return None

    def find(self, path: str) -> UnaryMethod[Any, Any] | None:
        key = self.canonical(path)
        return None if key is None else self.methods[key]


def _percent_encode(message: str) -> str:
    """``grpc-message`` encoding: printable ASCII except ``%`` as is, every other byte %XX."""
    out = []
    for byte in message.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


class GrpcRouter:
    """ASGI: gRPC calls to the method table, everything else to ``fallback``.

    ``lifespan`` events are answered here and never reach ``fallback``: the application's
    lifespan already runs under the main port's server, and must run once per process.
    """

    def __init__(
        self,
        methods: MethodTable,
        fallback: ASGIApp,
        *,
        on_call: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.methods = methods
        self.fallback = fallback
        self.on_call = on_call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "http":
            content_type = _header(scope, b"content-type")
            if content_type is not None and content_type.startswith("application/grpc"):
                await self._grpc(scope, receive, send)
                return
            path: str = scope["path"]
            if path.startswith("//"):
                # The Python SDK joins "/oauth/token" to the environment URL as text, so a URL
                # ending in "/" asks for "//oauth/token".
                scope = {**scope, "path": "/" + path.lstrip("/")}
        await self.fallback(scope, receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _grpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = asyncio.get_running_loop().time()
        path: str = scope["path"]
        code = OK
        try:
            payload = await self._read(scope, receive)
            method = self.methods.find(path)
            if method is None:
                raise GrpcError(UNIMPLEMENTED, f"tokenward does not implement {path}")
            metadata = [
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
            ]
            client = scope.get("client")
            context = CallContext(metadata=metadata, client=str(client[0]) if client else None)
            deadline = _deadline(_header(scope, b"grpc-timeout"))
            try:
                async with asyncio.timeout_at(None if deadline is None else started + deadline):
                    body = await method.call(payload, context)
            except TimeoutError:
                # The client has given up by now: stop the work and say so (never a late OK).
                raise GrpcError(
                    DEADLINE_EXCEEDED,
                    f"the call's deadline (grpc-timeout, {deadline:g}s) passed before it ended",
                ) from None
            await _respond(send, body, OK, "")
        except GrpcError as exc:
            code = exc.code
            await _respond(send, None, exc.code, exc.message, exc.status_details())
        except asyncio.CancelledError:
            code = CANCELLED  # the server stopped the call (the client went away, shutdown)
            raise
        except Exception:
            code = INTERNAL
            log.exception("gRPC %s failed", path)
            error = GrpcError(INTERNAL, "internal error; see the tokenward log")
            await _respond(send, None, error.code, error.message, error.status_details())
        finally:
            if self.on_call is not None:
                self.on_call(path, code, asyncio.get_running_loop().time() - started)

    @staticmethod
    async def _read(scope: Scope, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise GrpcError(CANCELLED, "the client went away")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > MAX_MESSAGE_BYTES + 5:
                raise GrpcError(
                    RESOURCE_EXHAUSTED, f"the request is larger than {MAX_MESSAGE_BYTES} bytes"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        if len(data) < 5:
            raise GrpcError(INVALID_ARGUMENT, "the request has no gRPC message")
        compressed, length = data[0], int.from_bytes(data[1:5], "big")
        if compressed:
            encoding = _header(scope, b"grpc-encoding") or "none"
            raise GrpcError(UNIMPLEMENTED, f"compressed requests ({encoding}) are not supported")
        if len(data) != 5 + length:
            raise GrpcError(
                INVALID_ARGUMENT, "the request must hold exactly one length-prefixed message"
            )
        return data[5:]


_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def _deadline(value: str | None) -> float | None:
    """``grpc-timeout`` (at most 8 digits and a unit: H, M, S, m, u or n) in seconds."""
    if value is None:
        return None
    digits, unit = value[:-1], value[-1:]
    if (
        not (digits.isascii() and digits.isdigit() and len(digits) <= 8)
        or unit not in _TIMEOUT_UNITS
    ):
        raise GrpcError(
            INVALID_ARGUMENT,
            f"grpc-timeout {value[:20]!r} is not at most 8 digits followed by H, M, S, m, u or n",
        )
    return int(digits) * _TIMEOUT_UNITS[unit]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


async def _respond(
    send: Send, body: bytes | None, code: int, message: str, details: bytes | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc")],
            "trailers": True,
        }
    )
    framed = b"" if body is None else b"\x00" + len(body).to_bytes(4, "big") + body
    await send({"type": "http.response.body", "body": framed, "more_body": False})
    trailers = [(b"grpc-status", str(code).encode())]
    if message:
        trailers.append((b"grpc-message", _percent_encode(message).encode("ascii")))
    if details is not None:
        encoded = base64.b64encode(details).rstrip(b"=")
        trailers.append((b"grpc-status-details-bin", encoded))
    await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})
