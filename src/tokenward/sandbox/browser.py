"""A scripted browser for the sandbox's consent page: follows an authorization link, submits the
consent form (Authorize or Cancel) exactly as a person's browser would, and follows the redirects
back to the gateway. Used by ``tokenward demo`` and by tests; it never leaves loopback because it
only follows redirects to the hosts it was given.
"""

from __future__ import annotations

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
    visited: list[str] = []
    with httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client:

        def follow(response: httpx.Response) -> httpx.Response:
            hops = 0
            while response.is_redirect:
                hops += 1
                if hops > 10:
                    raise RuntimeError("too many redirects")
                target = urljoin(str(response.url), response.headers["location"])
                host = urlsplit(target).hostname or ""
                if host not in allowed_hosts:
                    raise RuntimeError(f"refusing to follow a redirect to {host!r}")
                visited.append(target)
                response = client.get(target)
            return response

        visited.append(link)
        page = follow(client.get(link))
        if page.status_code != 200 or "<form" not in page.text:
            return BrowserResult(page, visited)
        parser = _ConsentParser()
        parser.feed(page.text)
        form = parser.form
        data = dict(form.fields)
        if form.users:
            data["user_id"] = user_id or form.users[0]
        data["action"] = action
        target = urljoin(str(page.url), form.action or "")
        visited.append(target)
        answer = client.post(target, data=data)
        return BrowserResult(follow(answer), visited)
