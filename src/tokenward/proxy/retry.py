"""When to retry an upstream call: a pure decision, ``(retry?, reason, wait)``.

Only failures that cannot have changed anything, or requests whose repetition is harmless, are
retried:

* idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) on 502/503/504 and on connection errors
  (reset, timeout, protocol), with capped exponential backoff and full jitter
  (``wait = random() * min(cap, base * 2**(attempt-1))``); a ``Retry-After`` in seconds on a 503
  raises the wait to it, and gives up if it is longer than the cap;
* any method when the connection could not be opened at all (``CONNECT``): nothing was sent;
* never a POST or PATCH otherwise, never a 4xx; a 429 belongs to the rate limiter.

The random source is injected so tests are exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class ErrorKind(StrEnum):
    """Why a request produced no HTTP response."""

    CONNECT = "connect"  # the connection could not be opened: nothing was sent
    CONNECT_TIMEOUT = "connect_timeout"  # same, by timing out
    READ_TIMEOUT = "read_timeout"  # sent; the answer did not come in time
    TIMEOUT = "timeout"  # the whole call took longer than its total budget
    CONNECTION_RESET = "connection_reset"  # sent; the connection dropped
    PROTOCOL = "protocol"  # the answer was not valid HTTP
    RESPONSE_TOO_LARGE = "response_too_large"  # the answer exceeded the size cap


_NOT_SENT = frozenset({ErrorKind.CONNECT, ErrorKind.CONNECT_TIMEOUT})
_NEVER_RETRIED = frozenset({ErrorKind.RESPONSE_TOO_LARGE})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({502, 503, 504}))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    reason: str
    wait: float = 0.0


DEFAULT_POLICY = RetryPolicy()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None  # an HTTP date: not worth honouring for a short retry
            return seconds if seconds >= 0 else None
    return None


def backoff(attempt: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Full-jitter exponential backoff after the ``attempt``-th try (1-based)."""
    ceiling = min(policy.max_delay, policy.base_delay * (2.0 ** max(0, attempt - 1)))
    return rand() * ceiling


def decide_retry(
    method: str,
    attempt: int,
    status: int | None,
    error_kind: ErrorKind | None,
    headers: Mapping[str, str] | None = None,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """Decide whether the ``attempt``-th try (1-based) of ``method`` should be repeated.

    Exactly one of ``status`` (an HTTP response came back) and ``error_kind`` (none did) is set.
    """
    if (status is None) == (error_kind is None):
        raise ValueError("exactly one of status and error_kind must be given")
    verb = method.upper()
    idempotent = verb in IDEMPOTENT_METHODS
    if status is not None:
        if status < 400:
            return RetryDecision(False, "success")
        if status == 429:
            return RetryDecision(False, "429 is handled by the rate limiter")
        if status < 500:
            return RetryDecision(False, f"{status} is a client error; retrying cannot help")
        if status not in policy.retry_statuses:
            return RetryDecision(False, f"{status} is not a transient status")
        if not idempotent:
            return RetryDecision(False, f"{verb} is not idempotent; not retried after {status}")
    else:
        assert error_kind is not None
        if error_kind in _NEVER_RETRIED:
            return RetryDecision(False, f"{error_kind.value} is not transient")
        if not idempotent and error_kind not in _NOT_SENT:
            return RetryDecision(
                False, f"{verb} is not idempotent and may have been received ({error_kind.value})"
            )
    if attempt >= policy.max_attempts:
        return RetryDecision(False, f"gave up after {attempt} attempts")
    wait = backoff(attempt, policy, rand)
    what = str(status) if status is not None else error_kind.value if error_kind else ""
    if status is not None:
        hinted = _retry_after(headers or {})
        if hinted is not None:
            if hinted > policy.max_delay:
                return RetryDecision(False, f"{status} asks to wait {hinted:g}s, over the cap")
            wait = max(wait, hinted)
    return RetryDecision(True, f"{what} on attempt {attempt}", wait)
