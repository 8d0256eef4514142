"""When to retry an upstream call: a pure decision, ``(retry?, reason, wait)``, within a deadline.

**What is retried.** Only failures that cannot have changed anything, or requests whose
repetition is harmless:

* idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) on a transient status (500, 502, 503, 504,
  507 and Cloudflare's 520–524, as Discord's API reference and userdoccers list them) and on
  connection errors (reset, a body cut off mid-answer, timeout, an answer that is not HTTP);
* any method when the connection could not be opened at all (``CONNECT``, ``CONNECT_TIMEOUT``):
  nothing was sent;
* never a POST or PATCH otherwise (Discord may have acted on it: a blind retry could post a
  message twice or create two channels), unless the caller marks the call safe to repeat
  (``idempotent=True``: a message sent with a ``nonce`` and ``enforce_nonce``, which Discord
  answers on a repeat with the message it already created);
* never a 4xx; a 429 belongs to the rate limiter, which waits out Discord's ``retry_after``
  itself (and was not acted on, so resending it is safe for any method).

**For how long.** A count of attempts is the wrong bound: at a 20 % fault rate three attempts
still fail one call in 125, while at a 100 % outage they end in a blink. The bound is time: each
call has a budget of ``policy.deadline`` seconds counted from its first send (the caller restarts
it after a wait the rate limiter imposed). After the ``n``-th failed attempt the next one waits
``wait = rand() * min(max_delay, base_delay * 2**(n-1))`` — capped exponential backoff with full
jitter (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015), so retries of many
callers spread out instead of arriving together — and is made only when
``elapsed + wait < deadline``. With the defaults (0.1 s, 2 s, 10 s) that is about ten attempts
when every answer fails quickly, and a call through a flapping upstream still ends within its
budget. A ``Retry-After`` in seconds on the failed answer raises the wait to it when it fits the
budget; when it does not, the call ends at once with that hint for the caller.

**What a caller who still fails is told.** :func:`retry_hint` gives the ``retry_after`` to
report (Discord's ``Retry-After`` when it sent one, else the next backoff step, at least a
second), or None when trying again cannot help or is not safe.

Time is passed in (``elapsed``) and the random source is injected, so tests are exact.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504, 507, 520, 521, 522, 523, 524})
MIN_RETRY_HINT = 1.0  # seconds: the least a caller is told to wait after the budget ran out


class ErrorKind(StrEnum):
    """Why a request produced no (complete) HTTP response."""

    CONNECT = "connect"  # the connection could not be opened: nothing was sent
    CONNECT_TIMEOUT = "connect_timeout"  # same, by timing out
    READ_TIMEOUT = "read_timeout"  # sent; the answer did not come in time
    TIMEOUT = "timeout"  # the whole attempt took longer than its total budget
    CONNECTION_RESET = "connection_reset"  # sent; the connection dropped (also mid-body)
    PROTOCOL = "protocol"  # the answer was not valid HTTP
    RESPONSE_TOO_LARGE = "response_too_large"  # the answer exceeded the size cap


NOT_SENT = frozenset({ErrorKind.CONNECT, ErrorKind.CONNECT_TIMEOUT})
_NEVER_RETRIED = frozenset({ErrorKind.RESPONSE_TOO_LARGE})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``deadline``: seconds from a call's first send within which retries may be made.
    ``base_delay`` / ``max_delay``: the backoff's first step and cap, in seconds."""

    deadline: float = 10.0
    base_delay: float = 0.1
    max_delay: float = 2.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: TRANSIENT_STATUSES)

    def __post_init__(self) -> None:
        if not self.deadline >= 0 or math.isinf(self.deadline):
            raise ValueError("deadline must be a finite number of seconds, 0 or more")
        if not (self.base_delay >= 0 and self.max_delay >= 0):
            raise ValueError("delays must not be negative")
        if self.base_delay > self.max_delay:
            raise ValueError("base_delay must not exceed max_delay")


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    reason: str
    wait: float = 0.0


DEFAULT_POLICY = RetryPolicy()


def retry_after_header(headers: Mapping[str, str] | None) -> float | None:
    """``Retry-After`` in seconds, or None when absent, negative or an HTTP date."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None  # an HTTP date: not worth honouring for a short retry
            return seconds if seconds >= 0 and math.isfinite(seconds) else None
    return None


def backoff_ceiling(attempt: int, policy: RetryPolicy) -> float:
    """The longest wait after the ``attempt``-th try (1-based): ``min(cap, base * 2**(n-1))``."""
    exponent = min(max(0, attempt - 1), 64)  # 2**64 is past any cap; avoids float overflow
    return min(policy.max_delay, policy.base_delay * (2.0**exponent))


def backoff(attempt: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Full-jitter exponential backoff after the ``attempt``-th try (1-based)."""
    return rand() * backoff_ceiling(attempt, policy)


def _refusal(
    verb: str,
    status: int | None,
    error_kind: ErrorKind | None,
    policy: RetryPolicy,
    idempotent: bool | None = None,
) -> str | None:
    """Why this outcome must not be retried, or None when repeating the request is safe and may
    help. ``idempotent`` overrides the method's nature (a POST made safe to repeat)."""
    if (status is None) == (error_kind is None):
        raise ValueError("exactly one of status and error_kind must be given")
    if idempotent is None:
        idempotent = verb in IDEMPOTENT_METHODS
    if status is not None:
        if status < 400:
            return "success"
        if status == 429:
            return "429 is handled by the rate limiter"
        if status < 500:
            return f"{status} is a client error; retrying cannot help"
        if status not in policy.retry_statuses:
            return f"{status} is not a transient status"
        if not idempotent:
            return f"{verb} is not idempotent; not retried after {status}"
        return None
    assert error_kind is not None
    if error_kind in _NEVER_RETRIED:
        return f"{error_kind.value} is not transient"
    if not idempotent and error_kind not in NOT_SENT:
        return f"{verb} is not idempotent and may have been received ({error_kind.value})"
    return None


def decide_retry(
    method: str,
    attempt: int,
    status: int | None,
    error_kind: ErrorKind | None,
    headers: Mapping[str, str] | None = None,
    *,
    elapsed: float = 0.0,
    policy: RetryPolicy = DEFAULT_POLICY,
    rand: Callable[[], float] = random.random,
    idempotent: bool | None = None,
) -> RetryDecision:
    """Decide whether the ``attempt``-th try (1-based) of ``method`` should be repeated, with
    ``elapsed`` seconds of the call's budget spent.

    Exactly one of ``status`` (an HTTP response came back) and ``error_kind`` (none did, or its
    body broke off) is set. ``headers`` are the failed answer's (for ``Retry-After``).
    ``idempotent=True`` marks a call of a non-idempotent method that is safe to repeat all the
    same (a message sent with a ``nonce`` and ``enforce_nonce``: Discord answers a repeat with the
    message it already created); None decides by the method.
    """
    verb = method.upper()
    refusal = _refusal(verb, status, error_kind, policy, idempotent)
    if refusal is not None:
        return RetryDecision(False, refusal)
    what = str(status) if status is not None else error_kind.value if error_kind else ""
    left = policy.deadline - max(0.0, elapsed)
    wait = backoff(attempt, policy, rand)
    hinted = retry_after_header(headers) if status is not None else None
    if hinted is not None:
        if hinted >= left:
            return RetryDecision(
                False, f"{what} asks to wait {hinted:g}s, past the deadline ({left:.3f}s left)"
            )
        wait = max(wait, hinted)
    if wait >= left:
        return RetryDecision(
            False,
            f"deadline of {policy.deadline:g}s reached after {attempt} attempts (last: {what})",
        )
    return RetryDecision(True, f"{what} on attempt {attempt}", wait)


def retry_hint(
    method: str,
    attempt: int,
    status: int | None,
    error_kind: ErrorKind | None,
    headers: Mapping[str, str] | None = None,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    idempotent: bool | None = None,
) -> float | None:
    """The ``retry_after`` (seconds) to tell a caller whose call ended on this outcome after
    ``attempt`` tries, or None when trying again cannot help or is not safe (a 4xx, a POST that
    may have been received, an answer over the size cap)."""
    if _refusal(method.upper(), status, error_kind, policy, idempotent) is not None:
        return None
    hinted = retry_after_header(headers) if status is not None else None
    if hinted is not None:
        return round(hinted, 3)
    return round(max(MIN_RETRY_HINT, backoff_ceiling(attempt + 1, policy)), 3)
