"""Signing in to the dashboard: cookies, CSRF, and the per-username sign-in throttle.

- **Session cookie**: a random value (the vault stores only its hash), ``HttpOnly``,
  ``SameSite=Lax``, ``Path=/dashboard``, and ``Secure`` with the ``__Host-`` name prefix when the
  public URL is https. Signing out deletes the server's row, so a copied cookie is dead after.
- **CSRF**: every form carries the session's token (derived from the cookie, see
  :mod:`tokenward.vault.admins`); every POST is refused unless it matches, before anything is
  read or changed. The sign-in form, which has no session yet, uses a double-submit cookie.
- **Throttle**: failed sign-ins are counted per username in a sliding window; past the limit that
  username is refused without checking the password until the window moves on. Other usernames
  are unaffected, so one person hammering a name does not lock everyone out. The count is kept
  per process (like the API's sign-in throttle).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Final

from tokenward.clock import Clock

__all__ = [
    "CookieNames",
    "CsrfRefused",
    "SignInRequired",
    "SignInThrottle",
    "new_form_token",
    "same_token",
]

_MAX_TRACKED: Final = 10_000


class SignInRequired(Exception):
    """No live session: the answer is a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Exception):
    """A form arrived without this session's CSRF token."""


@dataclass(frozen=True)
class CookieNames:
    session: str
    sign_in: str
    secure: bool

    @classmethod
    def for_base(cls, public_base: str) -> CookieNames:
        secure = public_base.lower().startswith("https://")
        # __Host- (Secure, Path=/) cannot be used with Path=/dashboard; __Secure- can.
        prefix = "__Secure-" if secure else ""
        return cls(f"{prefix}tokenward_session", f"{prefix}tokenward_sign_in", secure)


def same_token(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


class SignInThrottle:
    """Failed sign-ins per username within a sliding window (see the module docstring)."""

    def __init__(self, clock: Clock, *, limit: int, window: float) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, username: str) -> deque[float]:
        now = self.clock.monotonic()
        times = self._failures.get(username)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(username, None)
        return times

    def retry_after(self, username: str) -> float | None:
        """Seconds until ``username`` may try again, or None when it may try now."""
        times = self._recent(username.lower())
        if len(times) < self.limit:
            return None
        return max(1.0, times[0] + self.window - self.clock.monotonic())

    def failed(self, username: str) -> None:
        key = username.lower()
        times = self._recent(key)
        times.append(self.clock.monotonic())
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > _MAX_TRACKED:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username.lower(), None)
