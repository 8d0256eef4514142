"""A scripted browser for the sandbox's consent page: follows an authorization link, submits the
consent form (Authorize or Cancel) exactly as a person's browser would, and follows the redirects
back to the gateway. Used by ``tokenward demo`` and by tests; it never leaves loopback because it
only follows redirects to the hosts it was given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx


@dataclass
class _Form:
    action: str | None = None
    method: str = "get"
    fields: dict[str, str] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)


class _ConsentParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form = _Form()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.form.action is None:
            self.form.action = a.get("action") or ""
            self.form.method = (a.get("method") or "get").lower()
        elif tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.form.fields[a["name"] or ""] = a.get("value") or ""
        elif tag == "input" and a.get("type") == "radio" and a.get("name") == "user_id":
            self.form.users.append(a.get("value") or "")


@dataclass
class BrowserResult:
    final: httpx.Response
    visited: list[str]

    @property
    def status_code(self) -> int:
        return self.final.status_code

    @property
    def text(self) -> str:
        return self.final.text


class _Browser:
    """An httpx client that follows redirects itself, only to loopback hosts."""

    def __init__(self, allowed_hosts: tuple[str, ...], timeout: float) -> None:
        self.client = httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False)
        self.allowed_hosts = allowed_hosts
        self.visited: list[str] = []

    def follow(self, response: httpx.Response, *, stop_at: str | None = None) -> httpx.Response:
        hops = 0
        while response.is_redirect:
            hops += 1
            if hops > 10:
                raise RuntimeError("too many redirects")
            target = urljoin(str(response.url), response.headers["location"])
            host = urlsplit(target).hostname or ""
            if host not in self.allowed_hosts:
                raise RuntimeError(f"refusing to follow a redirect to {host!r}")
            if stop_at is not None and stop_at in target:
                return response
            self.visited.append(target)
            response = self.client.get(target)
        return response

    def open_and_answer(
        self, link: str, action: str, user_id: str | None, pause: float, stop_at: str | None
    ) -> httpx.Response:
        """Open ``link``, follow it to the consent page, answer it; the answer's redirects are
        followed (up to ``stop_at``, when given)."""
        self.visited.append(link)
        page = self.follow(self.client.get(link))
        if page.status_code != 200 or "<form" not in page.text:
            return page
        parser = _ConsentParser()
        parser.feed(page.text)
        form = parser.form
        data = dict(form.fields)
        if form.users:
            data["user_id"] = user_id or form.users[0]
        data["action"] = action
        target = urljoin(str(page.url), form.action or "")
        if pause:
            time.sleep(pause)
        self.visited.append(target)
        return self.follow(self.client.post(target, data=data), stop_at=stop_at)


def walk_consent(
    link: str,
    *,
    action: str = "authorize",
    user_id: str | None = None,
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1"),
    timeout: float = 15.0,
) -> BrowserResult:
    """Open ``link``, answer the consent page with ``action`` as ``user_id`` (default: the first
    user offered), and return the last response (the gateway's success or error page)."""
    browser = _Browser(allowed_hosts, timeout)
    with browser.client:
        final = browser.open_and_answer(link, action, user_id, 0.0, None)
        return BrowserResult(final, browser.visited)


def consent_callback_url(
    link: str,
    *,
    action: str = "authorize",
    user_id: str | None = None,
    pause: float = 0.0,
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1"),
    timeout: float = 15.0,
) -> str:
    """Like :func:`walk_consent`, but stop where Discord sends the browser back: return the
    callback URL (with ``code``/``error`` and ``state``) without visiting it. ``pause`` waits
    that long on the consent page before answering (a slow person)."""
    browser = _Browser(allowed_hosts, timeout)
    with browser.client:
        answer = browser.open_and_answer(link, action, user_id, pause, "/sso/v1/oauth/")
        if not answer.is_redirect:
            raise RuntimeError(f"the consent flow did not redirect back ({answer.status_code})")
        return urljoin(str(answer.url), answer.headers["location"])
