"""ProviderClient over MockTransport and a ManualClock; error mapping; redaction."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest

from tokenward.clock import ManualClock
from tokenward.config import Settings
from tokenward.connectors import load_error_mapping
from tokenward.errors import (
    PathRejected,
    ProviderError,
    RateLimited,
    ReauthorizationRequired,
    ValidationError,
)
from tokenward.proxy.client import (
    ANONYMOUS,
    Credential,
    ErrorMapping,
    ProviderClient,
    StaticCredentials,
    error_from_response,
    provider_error,
)
from tokenward.proxy.ratelimit import RateLimiter
from tokenward.proxy.redaction import REDACTED, redact, redact_headers, redact_text
from tokenward.proxy.retry import ErrorKind, RetryPolicy
from tokenward.proxy.transport import (
    AiohttpTransport,
    Http1Transport,
    MockTransport,
    TransportError,
    UpstreamRequest,
    UpstreamResponse,
)
from tokenward.server.container import Container

BASE = "https://discord.test"
UA = "DiscordBot (https://github.com/tokenward/tokenward, 0.1.0)"


class RotatingSource:
    """A credential source whose ``invalidate`` hands out the next token (or None)."""

    def __init__(self, *tokens: str | None) -> None:
        self.tokens = list(tokens)
        self.invalidated: list[str | None] = []
        self.current = Credential("bearer", self.tokens.pop(0), "acct-1")

    async def get(self) -> Credential:
        return self.current

    async def invalidate(self, failed_token: str | None) -> Credential | None:
        self.invalidated.append(failed_token)
        token = self.tokens.pop(0) if self.tokens else None
        if token is None:
            return None
        self.current = Credential("bearer", token, "acct-1")
        return self.current


def make_client(
    handler: Callable[[UpstreamRequest], UpstreamResponse],
    clock: ManualClock | None = None,
    **kwargs: Any,
) -> tuple[ProviderClient, MockTransport, ManualClock]:
    clock = clock or ManualClock()
    transport = MockTransport(handler)
    client = ProviderClient(
        transport=transport,
        limiter=RateLimiter(clock),
        clock=clock,
        base_url=BASE,
        user_agent=UA,
        rand=lambda: 1.0,
        retry_policy=kwargs.pop(
            "retry_policy", RetryPolicy(deadline=10.0, base_delay=0.5, max_delay=4.0)
        ),
        **kwargs,
    )
    return client, transport, clock


def ok(request: UpstreamRequest) -> UpstreamResponse:
    return UpstreamResponse.from_json(200, {"ok": True})


def sequence(
    *responses: UpstreamResponse | TransportError,
) -> Callable[[UpstreamRequest], UpstreamResponse]:
    queue = list(responses)

    def handler(request: UpstreamRequest) -> UpstreamResponse:
        item = queue.pop(0)
        if isinstance(item, TransportError):
            raise item
        return item

    return handler


def discord_error(status: int, code: int, message: str, **extra: Any) -> UpstreamResponse:
    return UpstreamResponse.from_json(status, {"code": code, "message": message, **extra})


# -- request shaping ------------------------------------------------------------------------------


async def test_injects_credential_and_user_agent_and_drops_caller_secrets() -> None:
    client, transport, _ = make_client(ok)
    response = await client.request(
        "get",
        "/api/v10/users/@me/guilds",
        credentials=StaticCredentials(Credential("bearer", "USERTOKEN", "acct-1")),
        query={"with_counts": True, "limit": 2, "ids": ["1", "2"], "skip": None},
        headers={
            "Authorization": "Bearer tokenward-api-token",
            "Cookie": "session=1",
            "Host": "evil.invalid",
            "User-Agent": "spoof",
            "Connection": "X-Hop",
            "X-Hop": "1",
            "X-Audit-Log-Reason": "kept",
            "identifier": "user-42",
        },
    )
    assert response.json() == {"ok": True}
    sent = transport.requests[0]
    assert sent.method == "GET"
    assert sent.url == f"{BASE}/api/v10/users/@me/guilds?with_counts=true&limit=2&ids=1&ids=2"
    assert sent.header("Authorization") == "Bearer USERTOKEN"
    assert sent.header("User-Agent") == UA
    assert sent.header("X-Audit-Log-Reason") == "kept"
    for name in ("Cookie", "Host", "X-Hop", "Connection", "identifier"):
        assert sent.header(name) is None
    assert [v for k, v in sent.headers if k.lower() == "authorization"] == ["Bearer USERTOKEN"]


async def test_bot_and_anonymous_credentials() -> None:
    client, transport, _ = make_client(ok)
    await client.request(
        "GET", "/api/v10/users/1", credentials=StaticCredentials(Credential("bot", "B0T"))
    )
    await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert transport.requests[0].header("Authorization") == "Bot B0T"
    assert transport.requests[1].header("Authorization") is None


async def test_bad_path_or_method_sends_nothing() -> None:
    client, transport, _ = make_client(ok)
    with pytest.raises(PathRejected):
        await client.request("GET", "//evil.invalid/api", credentials=StaticCredentials())
    with pytest.raises(ValidationError) as caught:
        await client.request("TRACE", "/api/v10/gateway", credentials=StaticCredentials())
    assert "method" in caught.value.fields
    assert transport.requests == []


@pytest.mark.parametrize(
    "base_url", ["ftp://discord.com", "discord.com", "https://u:p@discord.com", "https://x/?q=1"]
)
def test_bad_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(Exception, match="base_url"):
        ProviderClient(
            transport=MockTransport(ok),
            limiter=RateLimiter(ManualClock()),
            clock=ManualClock(),
            base_url=base_url,
            user_agent=UA,
        )


# -- 401: refresh once, retry once -----------------------------------------------------------------


async def test_401_refreshes_once_and_retries_with_the_new_token() -> None:
    client, transport, _ = make_client(
        sequence(discord_error(401, 0, "401: Unauthorized"), UpstreamResponse.from_json(200, {}))
    )
    source = RotatingSource("OLDTOKEN", "NEWTOKEN")
    response = await client.request("GET", "/api/v10/users/@me", credentials=source)
    assert response.status == 200
    assert source.invalidated == ["OLDTOKEN"]
    assert [r.header("Authorization") for r in transport.requests] == [
        "Bearer OLDTOKEN",
        "Bearer NEWTOKEN",
    ]


async def test_second_401_requires_reauthorization() -> None:
    client, transport, _ = make_client(
        sequence(
            discord_error(401, 0, "401: Unauthorized"), discord_error(401, 0, "401: Unauthorized")
        )
    )
    source = RotatingSource("OLDTOKEN", "NEWTOKEN", "THIRD")
    with pytest.raises(ReauthorizationRequired) as caught:
        await client.request("GET", "/api/v10/users/@me", credentials=source)
    assert source.invalidated == ["OLDTOKEN"]  # once, not again
    assert len(transport.requests) == 2
    text = json.dumps(caught.value.to_dict()) + repr(caught.value)
    assert "TOKEN" not in text
    assert caught.value.details["status"] == 401


async def test_401_without_a_refreshable_credential_requires_reauthorization() -> None:
    client, transport, _ = make_client(
        sequence(discord_error(401, 50025, "Invalid OAuth2 access token"))
    )
    source = RotatingSource("ONLYTOKEN", None)
    with pytest.raises(ReauthorizationRequired) as caught:
        await client.request("GET", "/api/v10/users/@me", credentials=source)
    assert len(transport.requests) == 1
    assert caught.value.details["code"] == 50025
    assert "ONLYTOKEN" not in str(caught.value.to_dict())


async def test_anonymous_401_is_returned_as_is() -> None:
    client, transport, _ = make_client(sequence(discord_error(401, 0, "401: Unauthorized")))
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert response.status == 401
    assert len(transport.requests) == 1


# -- retries ---------------------------------------------------------------------------------------


async def test_get_is_retried_on_503_with_backoff() -> None:
    client, transport, clock = make_client(
        sequence(
            discord_error(503, 0, "503"),
            discord_error(503, 0, "503"),
            UpstreamResponse.from_json(200, {"ok": 1}),
        )
    )
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert response.status == 200
    assert len(transport.requests) == 3
    assert clock.monotonic() == pytest.approx(0.5 + 1.0)


async def test_get_retries_until_the_deadline_then_returns_the_answer() -> None:
    """Not a count: with waits of 0.5, 1, 2, 4 s (rand = 1) the fifth attempt ends at 7.5 s and
    the next wait (4 s) would pass the 10 s deadline."""
    client, transport, clock = make_client(lambda request: discord_error(502, 0, "502"))
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert response.status == 502
    assert len(transport.requests) == 5
    assert clock.monotonic() == pytest.approx(0.5 + 1 + 2 + 4)
    assert response.attempts == 5
    assert response.retry_after == 4.0
    error = error_from_response(response)
    assert isinstance(error, ProviderError)
    assert error.details["attempts"] == 5
    assert error.details["retry_after"] == 4.0
    assert "retry after 4s" in error.details["hint"]
    assert error.headers == {"Retry-After": "4"}  # type: ignore[attr-defined]


async def test_a_longer_deadline_allows_more_attempts() -> None:
    client, transport, _ = make_client(
        lambda request: discord_error(503, 0, "503"),
        retry_policy=RetryPolicy(deadline=30.0, base_delay=0.5, max_delay=4.0),
    )
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    # waits 0.5 + 1 + 2 + 4 × 6 = 27.5 s; a seventh 4 s wait would end at 31.5 s
    assert response.attempts == len(transport.requests) == 10


async def test_the_time_attempts_take_counts_against_the_deadline() -> None:
    """Each attempt takes 3 s: 0-3, wait 0.5, 3.5-6.5, wait 1, 7.5-10.5, then the budget is
    spent. Each retry gets what is left of the upstream timeout (12 s from the first send)."""
    clock = ManualClock()

    def slow(request: UpstreamRequest) -> UpstreamResponse:
        clock.advance(3.0)
        return discord_error(503, 0, "503")

    client, transport, _ = make_client(slow, clock, timeout=12.0)
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert response.status == 503
    assert [r.timeout for r in transport.requests] == [12.0, 8.5, 4.5]
    assert clock.monotonic() == pytest.approx(10.5)


async def test_a_429_wait_does_not_eat_the_fault_budget() -> None:
    """503 at 0 s, a 429 asking for 9 s at 0.5 s, then 503 and 200: the limiter's wait has a
    bound of its own, so the faults after it get a fresh budget and a full timeout."""
    limited = UpstreamResponse.from_json(
        429,
        {"message": "You are being rate limited.", "retry_after": 9.0, "global": False},
        {"X-RateLimit-Scope": "user"},
    )
    client, transport, clock = make_client(
        sequence(
            discord_error(503, 0, "503"),
            limited,
            discord_error(503, 0, "503"),
            UpstreamResponse.from_json(200, {}),
        ),
        timeout=12.0,
    )
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert response.status == 200
    assert response.attempts == 4
    timeouts = [r.timeout for r in transport.requests]
    assert timeouts[:3] == [12.0, 11.5, 12.0]  # the resend after the 429 has all of it again
    assert timeouts[3] is not None
    assert timeouts[3] == pytest.approx(12.0 - (clock.monotonic() - 9.5))
    assert clock.monotonic() >= 0.5 + 9.0 + 0.5


def test_the_deadline_never_exceeds_the_upstream_timeout() -> None:
    client, _, _ = make_client(ok, timeout=4.0)
    assert client.retry_policy.deadline == 4.0
    client, _, _ = make_client(ok, timeout=60.0)
    assert client.retry_policy.deadline == 10.0


async def test_retry_after_that_fits_the_budget_is_honoured() -> None:
    busy = UpstreamResponse.from_json(503, {"message": "busy", "code": 0}, {"Retry-After": "3"})
    client, transport, clock = make_client(sequence(busy, UpstreamResponse.from_json(200, {})))
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert response.status == 200
    assert response.attempts == len(transport.requests) == 2
    assert clock.monotonic() == pytest.approx(3.0)


async def test_retry_after_past_the_budget_ends_the_call_with_that_hint() -> None:
    busy = UpstreamResponse.from_json(503, {"message": "busy", "code": 0}, {"Retry-After": "60"})
    client, transport, clock = make_client(sequence(busy, UpstreamResponse.from_json(200, {})))
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert response.status == 503
    assert len(transport.requests) == 1
    assert clock.monotonic() == 0.0
    assert response.retry_after == 60.0


async def test_post_is_never_retried_on_503() -> None:
    client, transport, _ = make_client(
        sequence(discord_error(503, 0, "503"), UpstreamResponse.from_json(200, {}))
    )
    response = await client.request(
        "POST", "/api/v10/channels/1/messages", credentials=StaticCredentials(), body=b"{}"
    )
    assert response.status == 503
    assert len(transport.requests) == 1


async def test_connection_errors_retry_get_but_not_post() -> None:
    reset = TransportError(ErrorKind.CONNECTION_RESET)
    client, transport, _ = make_client(sequence(reset, UpstreamResponse.from_json(200, {})))
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert (response.status, response.attempts) == (200, 2)
    client, transport, _ = make_client(sequence(reset, UpstreamResponse.from_json(200, {})))
    with pytest.raises(TransportError) as caught:
        await client.request("POST", "/api/v10/x", credentials=StaticCredentials(), body=b"{}")
    assert len(transport.requests) == 1
    # Not retried, and the caller is not told to retry blindly either.
    assert caught.value.details == {"kind": "connection_reset", "attempts": 1}
    assert "may have reached Discord" in caught.value.message


async def test_post_is_retried_when_nothing_was_sent() -> None:
    refused = TransportError(ErrorKind.CONNECT)
    client, transport, _ = make_client(
        sequence(refused, refused, UpstreamResponse.from_json(200, {}))
    )
    response = await client.request(
        "POST", "/api/v10/x", credentials=StaticCredentials(), body=b"{}"
    )
    assert (response.status, response.attempts, len(transport.requests)) == (200, 3, 3)


async def test_connection_errors_until_the_deadline_report_attempts_and_retry_after() -> None:
    def down(request: UpstreamRequest) -> UpstreamResponse:
        raise TransportError(ErrorKind.CONNECTION_RESET)

    client, transport, clock = make_client(down)
    with pytest.raises(TransportError) as caught:
        await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    error = caught.value
    assert len(transport.requests) == 5
    assert error.code == "UPSTREAM_UNAVAILABLE"
    assert error.details == {"kind": "connection_reset", "attempts": 5, "retry_after": 4.0}
    assert (error.attempts, error.retry_after) == (5, 4.0)
    assert error.headers == {"Retry-After": "4"}
    assert "after 5 attempts in 7.5s" in error.message
    assert clock.monotonic() == pytest.approx(7.5)
    assert error.to_dict()["error"]["details"]["attempts"] == 5


NONCE_MESSAGE = json.dumps({"content": "hi", "nonce": "tw-1", "enforce_nonce": True}).encode()


@pytest.mark.parametrize(
    "failure",
    [TransportError(ErrorKind.CONNECTION_RESET), TransportError(ErrorKind.READ_TIMEOUT)],
    ids=["dropped", "timeout"],
)
async def test_a_retry_safe_post_is_retried_after_a_dropped_connection(
    failure: TransportError,
) -> None:
    """Issue 10: a message sent with a nonce and enforce_nonce is safe to resend (Discord answers
    the repeat with the message it created); the same POST without the mark is not resent."""
    created = UpstreamResponse.from_json(200, {"id": "1", "nonce": "tw-1"})
    client, transport, _ = make_client(sequence(failure, created))
    response = await client.request(
        "POST",
        "/api/v10/channels/1/messages",
        credentials=StaticCredentials(),
        body=NONCE_MESSAGE,
        retry_safe=True,
    )
    assert (response.status, response.attempts) == (200, 2)
    assert [r.body for r in transport.requests] == [NONCE_MESSAGE, NONCE_MESSAGE]

    client, transport, _ = make_client(sequence(failure, created))
    with pytest.raises(TransportError):
        await client.request(
            "POST",
            "/api/v10/channels/1/messages",
            credentials=StaticCredentials(),
            body=NONCE_MESSAGE,
        )
    assert len(transport.requests) == 1


async def test_a_retry_safe_post_is_retried_after_a_5xx_and_hints_retry_after() -> None:
    client, transport, _ = make_client(
        sequence(discord_error(503, 0, "503"), UpstreamResponse.from_json(200, {"id": "1"}))
    )
    response = await client.request(
        "POST",
        "/api/v10/channels/1/messages",
        credentials=StaticCredentials(),
        body=b"{}",
        retry_safe=True,
    )
    assert (response.status, len(transport.requests)) == (200, 2)
    client, _, _ = make_client(lambda request: discord_error(503, 0, "503"))
    plain = await client.request(
        "POST", "/api/v10/channels/1/messages", credentials=StaticCredentials(), body=b"{}"
    )
    assert (plain.status, plain.attempts, plain.retry_after) == (503, 1, None)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_writes_are_never_resent_once_they_may_have_arrived(method: str) -> None:
    """No blind retry of a non-idempotent call, whatever went wrong after sending."""
    for failure in (
        discord_error(500, 0, "500"),
        discord_error(502, 0, "502"),
        discord_error(504, 0, "504"),
        TransportError(ErrorKind.CONNECTION_RESET),
        TransportError(ErrorKind.READ_TIMEOUT),
        TransportError(ErrorKind.TIMEOUT),
        TransportError(ErrorKind.PROTOCOL),
        broken_body(),
    ):
        client, transport, _ = make_client(sequence(failure, UpstreamResponse.from_json(200, {})))
        with contextlib.suppress(TransportError):
            await client.request(
                method,
                "/api/v10/channels/1/messages/2",
                credentials=StaticCredentials(),
                body=b"{}",
            )
        assert len(transport.requests) == 1, failure


async def test_a_429_on_a_write_is_resent_after_the_wait() -> None:
    """A 429 means Discord did not act on the request: resending a POST after it is safe."""
    limited = UpstreamResponse.from_json(
        429,
        {"message": "You are being rate limited.", "retry_after": 0.5, "global": False},
        {"X-RateLimit-Scope": "user", "Via": "1.1 google"},
    )
    client, transport, clock = make_client(sequence(limited, UpstreamResponse.from_json(200, {})))
    response = await client.request(
        "POST", "/api/v10/channels/1/messages", credentials=StaticCredentials(), body=b"{}"
    )
    assert (response.status, len(transport.requests)) == (200, 2)
    assert clock.monotonic() == pytest.approx(0.5)


def _limits(bucket: str, remaining: int = 0, reset_after: float = 60.0) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset-After": str(reset_after),
        "X-RateLimit-Bucket": bucket,
    }


async def test_writes_learn_buckets_per_major_parameter() -> None:
    """Issue 10: buckets are learned for writes too, counted per channel (Discord's major
    parameter): a full bucket on one channel holds back that channel only."""
    bot = StaticCredentials(Credential("bot", "bot-token-value", "bot:1"))

    def answer(request: UpstreamRequest) -> UpstreamResponse:
        return UpstreamResponse.from_json(200, {"id": "9"}, _limits("messages-hash"))

    client, transport, clock = make_client(answer)
    client.limiter.max_wait = 1.0
    send = "/api/v10/channels/{}/messages"
    await client.request("POST", send.format(1), credentials=bot, body=b"{}")
    with pytest.raises(RateLimited) as caught:
        await client.request("POST", send.format(1), credentials=bot, body=b"{}")
    assert caught.value.details["scope"] == "bucket"
    await client.request("POST", send.format(2), credentials=bot, body=b"{}")
    assert [r.url for r in transport.requests] == [
        BASE + send.format(1),
        BASE + send.format(2),
    ]
    assert client.limiter.bucket_hash("bot:1", "POST /channels/{channel_id}/messages") == (
        "messages-hash"
    )
    assert clock.monotonic() == 0.0


async def test_token_routes_are_limited_by_their_own_identity_and_carry_no_bot_token() -> None:
    """Interaction callbacks and webhook-token routes need no bot token and are limited per
    interaction or webhook (id + token), not against the budget all anonymous calls share."""
    clock = ManualClock()
    transport = MockTransport(ok)
    client = ProviderClient(
        transport=transport,
        limiter=RateLimiter(clock, global_limit=1, max_wait=0.0),
        clock=clock,
        base_url=BASE,
        user_agent=UA,
    )
    anonymous = StaticCredentials()
    await client.request("GET", "/api/v10/gateway", credentials=anonymous)
    with pytest.raises(RateLimited):  # the shared per-IP budget (here: one per second) is spent
        await client.request("GET", "/api/v10/gateway", credentials=anonymous)
    callback = "/api/v10/interactions/1300000000000000001/aW50ZXJhY3Rpb24.SECRET/callback"
    hook = "/api/v10/webhooks/1300000000000000002/SECRETwebhookTOKEN"
    other_hook = "/api/v10/webhooks/1300000000000000002/anotherSECRET"
    for path in (callback, hook, other_hook):
        await client.request("POST", path, credentials=anonymous, body=b"{}")
    with pytest.raises(RateLimited):  # that webhook's own budget
        await client.request("POST", hook, credentials=anonymous, body=b"{}")
    assert len(transport.requests) == 4
    assert all(r.header("Authorization") is None for r in transport.requests)


def broken_body(status: int = 200, declared: int | None = 4096) -> UpstreamResponse:
    """Headers, the first bytes of the body, then the connection drops (as the sandbox's
    ``drop_connection`` fault does)."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"'
        raise TransportError(ErrorKind.CONNECTION_RESET)

    headers = {"Content-Type": "application/json"}
    if declared is not None:
        headers["Content-Length"] = str(declared)
    return UpstreamResponse(status, headers, stream=chunks())


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
async def test_an_answer_cut_off_mid_body_is_retried_on_get(stream: bool) -> None:
    client, transport, _ = make_client(
        sequence(broken_body(), broken_body(declared=None), UpstreamResponse.from_json(200, {}))
    )
    response = await client.request(
        "GET", "/api/v10/gateway", credentials=StaticCredentials(), stream=stream
    )
    assert response.status == 200
    assert response.is_read
    assert response.json() == {}
    assert response.attempts == len(transport.requests) == 3


async def test_an_answer_cut_off_mid_body_is_not_retried_on_post() -> None:
    client, transport, _ = make_client(sequence(broken_body(), UpstreamResponse.from_json(200, {})))
    with pytest.raises(TransportError) as caught:
        await client.request(
            "POST", "/api/v10/x", credentials=StaticCredentials(), body=b"{}", stream=True
        )
    assert len(transport.requests) == 1
    assert "retry_after" not in caught.value.details


async def test_a_body_over_the_buffer_limit_is_streamed_and_not_retried() -> None:
    big = b"x" * 64

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 16):
            yield big[start : start + 16]

    client, transport, _ = make_client(
        sequence(UpstreamResponse(200, {}, stream=chunks()), UpstreamResponse.from_json(200, {})),
        buffer_limit=20,
    )
    response = await client.request(
        "GET", "/api/v10/gateway", credentials=StaticCredentials(), stream=True
    )
    assert not response.is_read
    assert b"".join([chunk async for chunk in response.iter_bytes()]) == big
    assert len(transport.requests) == 1


async def test_streamed_request_body_is_sent_once() -> None:
    client, transport, _ = make_client(
        sequence(discord_error(503, 0, "503"), UpstreamResponse.from_json(200, {}))
    )

    async def body() -> AsyncIterator[bytes]:
        yield b"{}"

    response = await client.request(
        "PUT", "/api/v10/x", credentials=StaticCredentials(), body=body()
    )
    assert response.status == 503
    assert len(transport.requests) == 1


async def test_4xx_other_than_401_and_429_is_returned_as_is() -> None:
    for status in (400, 403, 404):
        client, transport, _ = make_client(sequence(discord_error(status, 10004, "Unknown Guild")))
        response = await client.request(
            "GET", "/api/v10/guilds/1/widget.json", credentials=StaticCredentials()
        )
        assert response.status == status
        assert response.json()["code"] == 10004
        assert len(transport.requests) == 1


# -- 429 -------------------------------------------------------------------------------------------


async def test_429_waits_for_retry_after_and_resends() -> None:
    limited = UpstreamResponse.from_json(
        429,
        {"message": "You are being rate limited.", "retry_after": 2.5, "global": False},
        {
            "X-RateLimit-Scope": "user",
            "X-RateLimit-Bucket": "b",
            "X-RateLimit-Limit": "1",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": "2.5",
        },
    )
    client, transport, clock = make_client(sequence(limited, UpstreamResponse.from_json(200, {})))
    response = await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert response.status == 200
    assert len(transport.requests) == 2
    assert clock.monotonic() == pytest.approx(2.5)


async def test_429_longer_than_max_wait_raises_rate_limited() -> None:
    limited = UpstreamResponse.from_json(
        429,
        {"message": "You are being rate limited.", "retry_after": 64.57, "global": False},
        {"X-RateLimit-Scope": "user"},
    )
    client, transport, clock = make_client(sequence(limited, UpstreamResponse.from_json(200, {})))
    with pytest.raises(RateLimited) as caught:
        await client.request(
            "GET", "/api/v10/gateway", credentials=StaticCredentials(), max_wait=10
        )
    assert caught.value.retry_after == pytest.approx(64.57)
    assert len(transport.requests) == 1
    assert clock.monotonic() == 0.0


async def test_cloudflare_429_raises_at_once() -> None:
    cloudflare = UpstreamResponse(
        429, {"Retry-After": "120", "Content-Type": "text/html"}, content=b"<html>"
    )
    client, transport, _ = make_client(sequence(cloudflare))
    with pytest.raises(RateLimited) as caught:
        await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert caught.value.details == {"retry_after": 120.0, "scope": "cloudflare", "attempts": 1}
    assert len(transport.requests) == 1


async def test_persistent_429_gives_up() -> None:
    def handler(request: UpstreamRequest) -> UpstreamResponse:
        return UpstreamResponse.from_json(
            429,
            {"message": "shared", "retry_after": 0.1, "global": False},
            {"X-RateLimit-Scope": "shared"},
        )

    client, transport, _ = make_client(handler, max_rate_limit_retries=2)
    with pytest.raises(RateLimited) as caught:
        await client.request("GET", "/api/v10/gateway", credentials=StaticCredentials())
    assert caught.value.details["scope"] == "shared"
    assert caught.value.details["attempts"] == 3
    assert len(transport.requests) == 3


# -- errors for tools ------------------------------------------------------------------------------

DISCORD_ERRORS = load_error_mapping("discord")


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (404, 10004, "not a member"),
        (404, 10007, "not a member"),
        (403, 50004, "has not enabled its widget"),
        (404, 10006, "invite code"),
        (404, 10057, "template code"),
        (404, 10013, "user id"),
        (403, 20012, "application"),
        (403, 50001, "do not retry"),
        (404, 0, "check the ids"),
        (500, 0, "retry later"),
    ],
)
def test_provider_error_hints(status: int, code: int, hint: str) -> None:
    error = provider_error(
        status, json.dumps({"code": code, "message": "m"}).encode(), errors=DISCORD_ERRORS
    )
    assert isinstance(error, ProviderError)
    assert error.status == status
    assert error.details["discord"] == {"status": status, "code": code, "message": "m"}
    assert hint in error.details["hint"]


def test_missing_scope_names_the_scope_and_link() -> None:
    error = provider_error(
        403,
        {"code": 50026, "message": "Missing required OAuth2 scope"},
        path="/api/v10/users/@me/guilds/81384788765712384/member",
        authorization_link="https://gw.test/connect/abc",
        errors=DISCORD_ERRORS,
    )
    assert error.details["missing_scopes"] == ["guilds.members.read"]
    assert "guilds.members.read" in error.details["hint"]
    assert error.details["authorization_link"] == "https://gw.test/connect/abc"
    explicit = provider_error(403, {"code": 50026, "message": "x"}, required_scopes=["connections"])
    assert explicit.details["missing_scopes"] == ["connections"]


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/api/v10/users/@me", "identify"),
        ("/api/v10/users/@me/guilds", "guilds"),
        ("/api/v10/users/@me/connections", "connections"),
        ("/api/v10/oauth2/userinfo", "openid"),
        ("/api/v10/applications/1/entitlements", "applications.entitlements"),
        ("/api/v10/gateway", None),
    ],
)
def test_scope_for_path(path: str, scope: str | None) -> None:
    assert DISCORD_ERRORS.scope_for_path(path) == scope


def test_error_mapping_comes_from_the_providers_folder() -> None:
    """Regression guard for issue 10: hints are the provider's data (errors.yaml), not the core's:
    the bot provider explains a missing permission in terms of the bot's roles, the user provider
    does not, and a provider without a mapping gets only the generic hint."""
    body = json.dumps({"code": 50013, "message": "Missing Permissions"}).encode()
    bot = provider_error(403, body, errors=load_error_mapping("discordbot"))
    user = provider_error(403, body, errors=DISCORD_ERRORS)
    plain = provider_error(403, body, errors=ErrorMapping(provider="Acme"))
    assert "bot's roles" in bot.details["hint"]
    assert "bot's roles" not in user.details["hint"]
    assert user.details["hint"] == DISCORD_ERRORS.hints[50013]
    assert (
        plain.details["hint"] == "The credential lacks permission for this resource; do not retry."
    )
    assert plain.message == "Acme answered 403: Missing Permissions"
    assert bot.message == "Discord answered 403: Missing Permissions"
    assert ErrorMapping().scope_for_path("/api/v10/users/@me") is None


def test_429_error_becomes_rate_limited() -> None:
    error = provider_error(
        429, {"message": "You are being rate limited.", "retry_after": 3.2, "global": False}
    )
    assert isinstance(error, RateLimited)
    assert error.details["retry_after"] == 3.2


def test_form_errors_are_flattened() -> None:
    error = provider_error(
        400,
        {
            "code": 50035,
            "message": "Invalid Form Body",
            "errors": {
                "limit": {
                    "_errors": [{"code": "NUMBER_TYPE_MAX", "message": "Must be 200 or fewer."}]
                }
            },
        },
    )
    assert error.details["errors"] == {"limit": "Must be 200 or fewer."}


async def test_error_from_response_and_non_json_bodies() -> None:
    response = UpstreamResponse(
        502, {"Content-Type": "text/html"}, content=b"<html>bad gateway</html>"
    )
    error = error_from_response(response)
    assert error.details["discord"] == {"status": 502}
    assert "502" in error.message


# -- no secret anywhere ----------------------------------------------------------------------------


def test_reprs_hold_no_token() -> None:
    credential = Credential("bearer", "SECRETVALUE", "acct")
    assert "SECRETVALUE" not in repr(credential)
    assert "SECRETVALUE" not in repr(StaticCredentials(credential))
    assert "SECRETVALUE" not in repr(ANONYMOUS)
    with pytest.raises(ValueError, match="needs a token"):
        Credential("bot", None)


def test_redaction_helpers() -> None:
    assert redact_headers({"Authorization": "Bearer abc", "X-Other": "1", "Cookie": "a=b"}) == {
        "Authorization": f"Bearer {REDACTED}",
        "X-Other": "1",
        "Cookie": REDACTED,
    }
    bot = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"
    text = f"sent Bot {bot} and access_token=abc123&x=1 and {bot}"
    redacted = redact_text(text)
    assert bot not in redacted
    assert "abc123" not in redacted
    assert "x=1" in redacted
    nested = redact({"refresh_token": "r", "data": [{"client_secret": "s"}, "Bearer zzz"], "n": 1})
    assert nested == {
        "refresh_token": REDACTED,
        "data": [{"client_secret": REDACTED}, f"Bearer {REDACTED}"],
        "n": 1,
    }
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"
    assert jwt not in redact_text(f"id_token {jwt}")


# -- configuration --------------------------------------------------------------------------------


def test_the_gateway_takes_its_retry_budget_from_the_settings(tmp_path: Path) -> None:
    keys = "k1:" + base64.b64encode(bytes(32)).decode()
    budgets = []
    for retry, timeout in ((10.0, 30.0), (2.5, 30.0), (10.0, 4.0), (0.0, 30.0)):
        settings = Settings(
            data_dir=tmp_path,
            encryption_keys=keys,
            retry_deadline_seconds=retry,
            upstream_timeout_seconds=timeout,
        )
        budgets.append(Container(settings).provider_client.retry_policy.deadline)
    assert budgets == [10.0, 2.5, 4.0, 0.0]  # never past the upstream timeout


@pytest.mark.parametrize("value", [-1, "soon", "inf"])
def test_a_bad_retry_budget_is_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(pydantic.ValidationError, match="retry_deadline_seconds"):
        Settings(retry_deadline_seconds=value)


def test_the_gateway_takes_its_upstream_client_from_the_settings(tmp_path: Path) -> None:
    keys = "k1:" + base64.b64encode(bytes(32)).decode()

    def client(**given: Any) -> type:
        return type(Container(Settings(data_dir=tmp_path, encryption_keys=keys, **given)).transport)

    assert client() is Http1Transport
    assert client(upstream_client="http1") is Http1Transport
    assert client(upstream_client="aiohttp") is AiohttpTransport
    with pytest.raises(pydantic.ValidationError, match="upstream_client"):
        Settings(upstream_client="httpx")
