"""A scripted browser for an authorization link: opens it, presses the button on tokenward's
``/connect`` page (a POST form), submits the sandbox's consent form (Authorize or Cancel) exactly
as a person's browser would, and follows the redirects back to the gateway's result page. It keeps
cookies like a browser (the gateway binds the flow to the browser that pressed the button, with a
cookie the callback checks). Used by ``tokenward demo`` and by tests; it never leaves loopback
because it only follows redirects to the hosts it was given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

LOOPBACK: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


@dataclass
class _Form:
    action: str | None = None
    method: str = "get"
    fields: dict[str, str] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)

    @property
    def is_connect_page(self) -> bool:
        """tokenward's click-through page (its only form carries ``csrf_token``)."""
        return self.method == "post" and "csrf_token" in self.fields


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
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)
    allowed_hosts: tuple[str, ...] = LOOPBACK

    @property
    def status_code(self) -> int:
        return self.final.status_code

    @property
    def text(self) -> str:
        return self.final.text

    @property
    def url(self) -> str:
        return str(self.final.url)

    def reload(self, url: str | None = None, *, with_cookies: bool = True) -> BrowserResult:
        """Open the last page (or ``url``) again in the same browser (same cookies), following
        redirects; ``with_cookies=False`` opens it in a fresh browser instead."""
        return visit(
            url or self.url,
            cookies=self.cookies if with_cookies else None,
            allowed_hosts=self.allowed_hosts,
        )


class _Browser:
    """An httpx client that keeps cookies and follows redirects itself, only to loopback hosts."""

    def __init__(
        self,
        allowed_hosts: tuple[str, ...],
        timeout: float,
        cookies: httpx.Cookies | None = None,
    ) -> None:
        self.client = httpx.Client(
            follow_redirects=False, timeout=timeout, trust_env=False, cookies=cookies
        )
        self.allowed_hosts = allowed_hosts
        self.visited: list[str] = []

    def result(self, final: httpx.Response) -> BrowserResult:
        cookies = httpx.Cookies(self.client.cookies)
        return BrowserResult(final, self.visited, cookies, self.allowed_hosts)

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

    @staticmethod
    def _form(page: httpx.Response) -> _Form | None:
        if page.status_code != 200 or "<form" not in page.text:
            return None
        parser = _ConsentParser()
        parser.feed(page.text)
        return parser.form

    def open_link(self, link: str, *, follow: bool = True) -> httpx.Response:
        """Open ``link``; on tokenward's ``/connect`` page press "Continue to Discord" (its
        form, cookies kept) and follow on to Discord's consent page (unless ``follow`` is
        false: then the button's answer, the redirect to Discord, is returned)."""
        self.visited.append(link)
        page = self.follow(self.client.get(link))
        form = self._form(page)
        if form is None or not form.is_connect_page:
            return page
        target = urljoin(str(page.url), form.action or "")
        self.visited.append(target)
        pressed = self.client.post(target, data=form.fields)
        return self.follow(pressed) if follow else pressed

    def open_and_answer(
        self, link: str, action: str, user_id: str | None, pause: float, stop_at: str | None
    ) -> httpx.Response:
        """Open ``link``, go through the ``/connect`` page to the consent page, answer it; the
        answer's redirects are followed (up to ``stop_at``, when given)."""
        page = self.open_link(link)
        form = self._form(page)
        if form is None:
            return page
        data = dict(form.fields)
        if form.users:
            data["user_id"] = user_id or form.users[0]
        data["action"] = action
        target = urljoin(str(page.url), form.action or "")
        if pause:
            time.sleep(pause)
        self.visited.append(target)
        return self.follow(self.client.post(target, data=data), stop_at=stop_at)


def visit(
    url: str,
    *,
    cookies: httpx.Cookies | None = None,
    allowed_hosts: tuple[str, ...] = LOOPBACK,
    timeout: float = 15.0,
) -> BrowserResult:
    """Open ``url`` with these cookies (none: a fresh browser), following redirects."""
    browser = _Browser(allowed_hosts, timeout, cookies)
    with browser.client:
        browser.visited.append(url)
        return browser.result(browser.follow(browser.client.get(url)))


def open_link(
    link: str,
    *,
    follow: bool = True,
    allowed_hosts: tuple[str, ...] = LOOPBACK,
    timeout: float = 15.0,
) -> BrowserResult:
    """Open ``link`` and press "Continue to Discord": the result is the page the browser lands
    on (Discord's consent page, or the gateway's error page for a dead link); with
    ``follow=False``, the button's answer (the redirect to Discord, not visited)."""
    browser = _Browser(allowed_hosts, timeout)
    with browser.client:
        return browser.result(browser.open_link(link, follow=follow))


def walk_consent(
    link: str,
    *,
    action: str = "authorize",
    user_id: str | None = None,
    allowed_hosts: tuple[str, ...] = LOOPBACK,
    timeout: float = 15.0,
    cookies: httpx.Cookies | None = None,
) -> BrowserResult:
    """Open ``link``, press the button on the ``/connect`` page, answer the consent page with
    ``action`` as ``user_id`` (default: the first user offered), and return the last response
    (the gateway's result page, or an error page). ``cookies`` continues an earlier browser."""
    browser = _Browser(allowed_hosts, timeout, cookies)
    with browser.client:
        final = browser.open_and_answer(link, action, user_id, 0.0, None)
        return browser.result(final)


@dataclass
class PendingCallback:
    """Where Discord sends the browser back, not yet visited, and that browser's cookies (the
    gateway's browser binding among them)."""

    url: str
    cookies: httpx.Cookies
    allowed_hosts: tuple[str, ...] = LOOPBACK

    def __str__(self) -> str:
        return self.url

    def get(
        self, url: str | None = None, *, with_cookies: bool = True, follow: bool = True
    ) -> BrowserResult:
        """Visit the callback (or ``url``, e.g. a tampered copy) in the browser that started the
        flow (``with_cookies=False``: in another browser), following redirects unless
        ``follow=False``."""
        browser = _Browser(self.allowed_hosts, 15.0, self.cookies if with_cookies else None)
        with browser.client:
            target = url or self.url
            browser.visited.append(target)
            response = browser.client.get(target)
            return browser.result(browser.follow(response) if follow else response)


def consent_callback_url(
    link: str,
    *,
    action: str = "authorize",
    user_id: str | None = None,
    pause: float = 0.0,
    allowed_hosts: tuple[str, ...] = LOOPBACK,
    timeout: float = 15.0,
) -> PendingCallback:
    """Like :func:`walk_consent`, but stop where Discord sends the browser back: return the
    callback URL (with ``code``/``error`` and ``state``) without visiting it, with the browser's
    cookies. ``pause`` waits that long on the consent page before answering (a slow person)."""
    browser = _Browser(allowed_hosts, timeout)
    with browser.client:
        answer = browser.open_and_answer(link, action, user_id, pause, "/sso/v1/oauth/")
        if not answer.is_redirect:
            raise RuntimeError(f"the consent flow did not redirect back ({answer.status_code})")
        url = urljoin(str(answer.url), answer.headers["location"])
        return PendingCallback(url, httpx.Cookies(browser.client.cookies), allowed_hosts)
