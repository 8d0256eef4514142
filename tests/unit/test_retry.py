"""decide_retry and retry_hint: pure, table-driven decisions bounded by a deadline."""

from __future__ import annotations

import math
import random

import pytest

from tokenward.proxy.retry import (
    TRANSIENT_STATUSES,
    ErrorKind,
    RetryPolicy,
    backoff,
    backoff_ceiling,
    decide_retry,
    retry_after_header,
    retry_hint,
)

POLICY = RetryPolicy(deadline=10.0, base_delay=0.5, max_delay=4.0)


def one() -> float:
    return 1.0


CASES: list[tuple[str, float, int | None, ErrorKind | None, dict[str, str], bool, str]] = [
    # method, elapsed, status, error, headers, retry?, reason contains   (attempt 1, rand 1.0)
    ("GET", 0.0, 200, None, {}, False, "success"),
    ("GET", 0.0, 304, None, {}, False, "success"),
    ("GET", 0.0, 500, None, {}, True, "500"),
    ("GET", 0.0, 502, None, {}, True, "502"),
    ("GET", 0.0, 503, None, {}, True, "503"),
    ("HEAD", 0.0, 504, None, {}, True, "504"),
    ("GET", 0.0, 507, None, {}, True, "507"),
    ("GET", 0.0, 524, None, {}, True, "524"),
    ("OPTIONS", 0.0, 503, None, {}, True, "503"),
    ("PUT", 0.0, 503, None, {}, True, "503"),
    ("DELETE", 0.0, 502, None, {}, True, "502"),
    ("get", 0.0, 503, None, {}, True, "503"),
    # The budget, not a count, ends the retries: 9.4 s spent + a 0.5 s wait still fits ...
    ("GET", 9.4, 503, None, {}, True, "503"),
    # ... 9.5 s spent + 0.5 s does not.
    ("GET", 9.5, 503, None, {}, False, "deadline of 10s reached after 1 attempts"),
    ("GET", 12.0, None, ErrorKind.CONNECTION_RESET, {}, False, "deadline"),
    ("POST", 0.0, 503, None, {}, False, "not idempotent"),
    ("PATCH", 0.0, 502, None, {}, False, "not idempotent"),
    ("POST", 0.0, 500, None, {}, False, "not idempotent"),
    ("GET", 0.0, 501, None, {}, False, "not a transient"),
    ("GET", 0.0, 505, None, {}, False, "not a transient"),
    ("GET", 0.0, 429, None, {}, False, "rate limiter"),
    ("POST", 0.0, 429, None, {}, False, "rate limiter"),
    ("GET", 0.0, 400, None, {}, False, "client error"),
    ("GET", 0.0, 401, None, {}, False, "client error"),
    ("GET", 0.0, 403, None, {}, False, "client error"),
    ("GET", 0.0, 404, None, {}, False, "client error"),
    ("GET", 0.0, 503, None, {"Retry-After": "60"}, False, "past the deadline"),
    ("GET", 7.0, 503, None, {"Retry-After": "3"}, False, "past the deadline"),
    ("GET", 0.0, None, ErrorKind.CONNECTION_RESET, {}, True, "connection_reset"),
    ("GET", 0.0, None, ErrorKind.READ_TIMEOUT, {}, True, "read_timeout"),
    ("GET", 0.0, None, ErrorKind.TIMEOUT, {}, True, "timeout"),
    ("GET", 0.0, None, ErrorKind.PROTOCOL, {}, True, "protocol"),
    ("GET", 0.0, None, ErrorKind.CONNECT, {}, True, "connect"),
    ("GET", 0.0, None, ErrorKind.RESPONSE_TOO_LARGE, {}, False, "not transient"),
    ("POST", 0.0, None, ErrorKind.CONNECTION_RESET, {}, False, "may have been received"),
    ("POST", 0.0, None, ErrorKind.READ_TIMEOUT, {}, False, "may have been received"),
    ("PATCH", 0.0, None, ErrorKind.TIMEOUT, {}, False, "may have been received"),
    ("POST", 0.0, None, ErrorKind.PROTOCOL, {}, False, "may have been received"),
    # Nothing was sent when the connection could not be opened: safe for any method ...
    ("POST", 0.0, None, ErrorKind.CONNECT, {}, True, "connect"),
    ("POST", 0.0, None, ErrorKind.CONNECT_TIMEOUT, {}, True, "connect_timeout"),
    # ... and still within the budget only.
    ("POST", 9.9, None, ErrorKind.CONNECT, {}, False, "deadline"),
]


@pytest.mark.parametrize(
    ("method", "elapsed", "status", "error", "headers", "retry", "reason"), CASES
)
def test_decision_table(
    method: str,
    elapsed: float,
    status: int | None,
    error: ErrorKind | None,
    headers: dict[str, str],
    retry: bool,
    reason: str,
) -> None:
    decision = decide_retry(
        method, 1, status, error, headers, elapsed=elapsed, policy=POLICY, rand=one
    )
    assert decision.retry is retry
    assert reason in decision.reason
    if not retry:
        assert decision.wait == 0.0


def test_no_count_limit_while_the_budget_lasts() -> None:
    """Attempt 50 is retried when time is left: the bound is the deadline, not a count."""
    decision = decide_retry("GET", 50, 503, None, elapsed=1.0, policy=POLICY, rand=one)
    assert decision.retry
    assert decision.wait == pytest.approx(4.0)  # the cap
    assert decision.reason == "503 on attempt 50"


def test_a_zero_deadline_never_retries() -> None:
    policy = RetryPolicy(deadline=0.0)
    decision = decide_retry("GET", 1, 503, None, policy=policy, rand=lambda: 0.0)
    assert not decision.retry
    assert "deadline" in decision.reason


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (1, 1.0, 0.5),
        (2, 1.0, 1.0),
        (3, 1.0, 2.0),
        (4, 1.0, 4.0),
        (9, 1.0, 4.0),  # capped
        (10_000, 1.0, 4.0),  # no overflow however many attempts
        (2, 0.25, 0.25),  # full jitter scales the whole interval
        (2, 0.0, 0.0),
    ],
)
def test_backoff_is_capped_exponential_with_full_jitter(
    attempt: int, rand: float, expected: float
) -> None:
    assert backoff(attempt, POLICY, lambda: rand) == pytest.approx(expected)
    assert backoff(attempt, POLICY, lambda: rand) == pytest.approx(
        rand * backoff_ceiling(attempt, POLICY)
    )


def test_wait_comes_from_the_injected_random_source() -> None:
    draws = iter([0.1, 0.9])
    policy = RetryPolicy(deadline=30.0, base_delay=1.0, max_delay=10.0)
    first = decide_retry("GET", 2, 503, None, policy=policy, rand=lambda: next(draws))
    second = decide_retry("GET", 2, 503, None, policy=policy, rand=lambda: next(draws))
    assert (first.retry, first.reason) == (True, "503 on attempt 2")
    assert first.wait == pytest.approx(0.2)
    assert second.wait == pytest.approx(1.8)


def test_waits_of_a_whole_call_stay_inside_the_deadline() -> None:
    """Simulate calls that fail every time: the waits made never run past the deadline, and
    the number of attempts is what the time allows (more when the waits draw short)."""
    policy = RetryPolicy(deadline=10.0, base_delay=0.1, max_delay=2.0)
    attempts_seen = []
    for seed in range(200):
        rng = random.Random(seed)
        elapsed, attempt = 0.0, 1
        while True:
            elapsed += 0.01  # each attempt itself takes 10 ms
            decision = decide_retry(
                "GET", attempt, 503, None, elapsed=elapsed, policy=policy, rand=rng.random
            )
            if not decision.retry:
                break
            elapsed += decision.wait
            assert elapsed < policy.deadline
            attempt += 1
        attempts_seen.append(attempt)
    assert min(attempts_seen) >= 6
    assert max(attempts_seen) > min(attempts_seen)


def test_retry_after_within_the_budget_raises_the_wait() -> None:
    decision = decide_retry(
        "GET", 1, 503, None, {"retry-after": "3"}, policy=POLICY, rand=lambda: 0.0
    )
    assert decision.retry
    assert decision.wait == 3.0


def test_retry_after_never_shortens_the_backoff() -> None:
    decision = decide_retry("GET", 3, 503, None, {"Retry-After": "0"}, policy=POLICY, rand=one)
    assert decision.retry
    assert decision.wait == pytest.approx(2.0)


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2026 07:28:00 GMT", "-5", "nan", "soon"])
def test_unusable_retry_after_is_ignored(value: str) -> None:
    decision = decide_retry("GET", 1, 503, None, {"Retry-After": value}, policy=POLICY, rand=one)
    assert decision.retry
    assert decision.wait == 0.5
    assert retry_after_header({"Retry-After": value}) is None


def test_retry_statuses_are_configurable() -> None:
    policy = RetryPolicy(retry_statuses=frozenset({503}))
    assert not decide_retry("GET", 1, 500, None, policy=policy, rand=one).retry
    assert decide_retry("GET", 1, 503, None, policy=policy, rand=one).retry
    assert {500, 502, 503, 504} <= TRANSIENT_STATUSES


# -- what a caller who still fails is told ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "attempt", "status", "error", "headers", "expected"),
    [
        ("GET", 12, 503, None, {}, 4.0),  # the next backoff step (capped)
        ("GET", 1, 503, None, {}, 1.0),  # at least a second
        ("GET", 3, None, ErrorKind.CONNECTION_RESET, {}, 4.0),
        ("GET", 2, 503, None, {"Retry-After": "30"}, 30.0),  # Discord's own hint wins
        ("POST", 1, None, ErrorKind.CONNECT, {}, 1.0),  # nothing was sent
        ("POST", 1, 503, None, {}, None),  # may have acted: no blind "retry after"
        ("POST", 1, None, ErrorKind.CONNECTION_RESET, {}, None),
        ("GET", 1, 404, None, {}, None),
        ("GET", 1, 429, None, {}, None),  # the rate limiter's RateLimited says it
        ("GET", 1, None, ErrorKind.RESPONSE_TOO_LARGE, {}, None),
    ],
)
def test_retry_hint(
    method: str,
    attempt: int,
    status: int | None,
    error: ErrorKind | None,
    headers: dict[str, str],
    expected: float | None,
) -> None:
    assert retry_hint(method, attempt, status, error, headers, policy=POLICY) == expected


@pytest.mark.parametrize(("status", "error"), [(None, None), (503, ErrorKind.CONNECT)])
def test_exactly_one_outcome_must_be_given(status: int | None, error: ErrorKind | None) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        decide_retry("GET", 1, status, error)
    with pytest.raises(ValueError, match="exactly one"):
        retry_hint("GET", 1, status, error)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=-1)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=math.inf)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=math.nan)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)
    with pytest.raises(ValueError, match="exceed"):
        RetryPolicy(base_delay=3, max_delay=2)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(503, None), (500, None), (None, ErrorKind.CONNECTION_RESET), (None, ErrorKind.READ_TIMEOUT)],
)
def test_a_write_marked_safe_to_repeat_is_retried_like_a_read(
    status: int | None, kind: ErrorKind | None
) -> None:
    """Issue 10: a POST made idempotent (a message with nonce + enforce_nonce) may be repeated;
    without the mark it never is once it may have arrived."""
    safe = decide_retry("POST", 1, status, kind, rand=lambda: 0.5, idempotent=True)
    assert safe.retry
    blind = decide_retry("POST", 1, status, kind, rand=lambda: 0.5)
    assert not blind.retry
    assert "not idempotent" in blind.reason
    assert retry_hint("POST", 1, status, kind, idempotent=True) is not None
    assert retry_hint("POST", 1, status, kind) is None
    # A 4xx stays final whatever the mark says.
    assert not decide_retry("POST", 1, 400, None, idempotent=True).retry
