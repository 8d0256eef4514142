"""decide_retry: a pure, table-driven decision."""

from __future__ import annotations

import pytest

from tokenward.proxy.retry import (
    ErrorKind,
    RetryPolicy,
    backoff,
    decide_retry,
)

POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0)


def one() -> float:
    return 1.0


CASES: list[tuple[str, int, int | None, ErrorKind | None, dict[str, str], bool, str]] = [
    # method, attempt, status, error, headers, retry?, reason contains
    ("GET", 1, 200, None, {}, False, "success"),
    ("GET", 1, 304, None, {}, False, "success"),
    ("GET", 1, 503, None, {}, True, "503"),
    ("GET", 1, 502, None, {}, True, "502"),
    ("HEAD", 1, 504, None, {}, True, "504"),
    ("OPTIONS", 1, 503, None, {}, True, "503"),
    ("PUT", 1, 503, None, {}, True, "503"),
    ("DELETE", 2, 502, None, {}, True, "502"),
    ("get", 1, 503, None, {}, True, "503"),
    ("GET", 3, 503, None, {}, False, "gave up after 3"),
    ("POST", 1, 503, None, {}, False, "not idempotent"),
    ("PATCH", 1, 502, None, {}, False, "not idempotent"),
    ("GET", 1, 500, None, {}, False, "not a transient"),
    ("GET", 1, 501, None, {}, False, "not a transient"),
    ("GET", 1, 429, None, {}, False, "rate limiter"),
    ("POST", 1, 429, None, {}, False, "rate limiter"),
    ("GET", 1, 400, None, {}, False, "client error"),
    ("GET", 1, 401, None, {}, False, "client error"),
    ("GET", 1, 403, None, {}, False, "client error"),
    ("GET", 1, 404, None, {}, False, "client error"),
    ("GET", 1, 503, None, {"Retry-After": "60"}, False, "over the cap"),
    ("GET", 1, None, ErrorKind.CONNECTION_RESET, {}, True, "connection_reset"),
    ("GET", 1, None, ErrorKind.READ_TIMEOUT, {}, True, "read_timeout"),
    ("GET", 1, None, ErrorKind.TIMEOUT, {}, True, "timeout"),
    ("GET", 1, None, ErrorKind.PROTOCOL, {}, True, "protocol"),
    ("GET", 1, None, ErrorKind.CONNECT, {}, True, "connect"),
    ("GET", 3, None, ErrorKind.CONNECT, {}, False, "gave up"),
    ("GET", 1, None, ErrorKind.RESPONSE_TOO_LARGE, {}, False, "not transient"),
    ("POST", 1, None, ErrorKind.CONNECTION_RESET, {}, False, "may have been received"),
    ("POST", 1, None, ErrorKind.READ_TIMEOUT, {}, False, "may have been received"),
    ("PATCH", 1, None, ErrorKind.TIMEOUT, {}, False, "may have been received"),
    # Nothing was sent when the connection could not be opened: safe for any method.
    ("POST", 1, None, ErrorKind.CONNECT, {}, True, "connect"),
    ("POST", 1, None, ErrorKind.CONNECT_TIMEOUT, {}, True, "connect_timeout"),
]


@pytest.mark.parametrize(
    ("method", "attempt", "status", "error", "headers", "retry", "reason"), CASES
)
def test_decision_table(
    method: str,
    attempt: int,
    status: int | None,
    error: ErrorKind | None,
    headers: dict[str, str],
    retry: bool,
    reason: str,
) -> None:
    decision = decide_retry(method, attempt, status, error, headers, policy=POLICY, rand=one)
    assert decision.retry is retry
    assert reason in decision.reason
    if not retry:
        assert decision.wait == 0.0


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (1, 1.0, 0.5),
        (2, 1.0, 1.0),
        (3, 1.0, 2.0),
        (4, 1.0, 4.0),
        (9, 1.0, 4.0),  # capped
        (2, 0.25, 0.25),  # full jitter scales the whole interval
        (2, 0.0, 0.0),
    ],
)
def test_backoff_is_capped_exponential_with_full_jitter(
    attempt: int, rand: float, expected: float
) -> None:
    assert backoff(attempt, POLICY, lambda: rand) == pytest.approx(expected)


def test_wait_comes_from_the_injected_random_source() -> None:
    draws = iter([0.1, 0.9])
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=10.0)
    first = decide_retry("GET", 2, 503, None, policy=policy, rand=lambda: next(draws))
    second = decide_retry("GET", 2, 503, None, policy=policy, rand=lambda: next(draws))
    assert (first.retry, first.reason) == (True, "503 on attempt 2")
    assert first.wait == pytest.approx(0.2)
    assert second.wait == pytest.approx(1.8)


def test_retry_after_within_the_cap_raises_the_wait() -> None:
    decision = decide_retry(
        "GET", 1, 503, None, {"retry-after": "3"}, policy=POLICY, rand=lambda: 0.0
    )
    assert decision.retry
    assert decision.wait == 3.0


def test_unparseable_retry_after_is_ignored() -> None:
    decision = decide_retry(
        "GET",
        1,
        503,
        None,
        {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"},
        policy=POLICY,
        rand=one,
    )
    assert decision.retry
    assert decision.wait == 0.5


def test_max_attempts_is_configurable() -> None:
    single = RetryPolicy(max_attempts=1)
    assert not decide_retry("GET", 1, 503, None, policy=single, rand=one).retry
    many = RetryPolicy(max_attempts=10)
    assert decide_retry("GET", 9, 503, None, policy=many, rand=one).retry


def test_retry_statuses_are_configurable() -> None:
    policy = RetryPolicy(retry_statuses=frozenset({500, 502, 503, 504}))
    assert decide_retry("GET", 1, 500, None, policy=policy, rand=one).retry


@pytest.mark.parametrize(("status", "error"), [(None, None), (503, ErrorKind.CONNECT)])
def test_exactly_one_outcome_must_be_given(status: int | None, error: ErrorKind | None) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        decide_retry("GET", 1, status, error)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)
