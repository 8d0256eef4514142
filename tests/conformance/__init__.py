"""Conformance tests: the sandbox must behave as ``discord-api.md`` says Discord does.

Helpers shared by the test modules: drive the OAuth2 flow the way a browser and a client
application would (read the consent form's HTML, submit it, exchange the code), computing PKCE
values independently of the sandbox's code.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

DEFAULT_REDIRECT = "http://127.0.0.1:9/callback"


def loopback_client(base_url: str) -> httpx.Client:
    """A client for the sandbox: never follows redirects (tests read ``Location`` themselves).

    The sandbox speaks plain HTTP on loopback, so no CA bundle is loaded (saves ~30 ms a client).
    """
    return httpx.Client(base_url=base_url, follow_redirects=False, verify=False)


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(ASCII(verifier))) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_verifier(length: int = 64) -> str:
    return secrets.token_urlsafe(96)[:length]


def query_of(location: str) -> dict[str, str]:
    """The query of a redirect ``Location`` as a flat dict (each key must appear once)."""
    parsed = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}


@dataclass
class ConsentForm:
    action: str | None = None
    method: str | None = None
    hidden: dict[str, str] = field(default_factory=dict)
    users: list[tuple[str, bool]] = field(default_factory=list)  # (user_id, checked)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, label)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form = ConsentForm()
        self._button: dict[str, str | None] | None = None
        self._label: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.form.action = a.get("action")
            self.form.method = (a.get("method") or "get").lower()
        elif tag == "input" and a.get("type") == "hidden":
            self.form.hidden[a["name"] or ""] = a.get("value") or ""
        elif tag == "input" and a.get("type") == "radio" and a.get("name") == "user_id":
            self.form.users.append((a.get("value") or "", "checked" in a))
        elif tag == "button":
            self._button = a
            self._label = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._label.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            b = self._button
            self.form.buttons.append(
                (b.get("name") or "", b.get("value") or "", "".join(self._label).strip())
            )
            self._button = None


def parse_consent(html: str) -> ConsentForm:
    parser = _FormParser()
    parser.feed(html)
    return parser.form


def register_app(
    base_url: str, redirect_uris: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/_sandbox/applications",
        json={"redirect_uris": redirect_uris or [DEFAULT_REDIRECT], **extra},
        verify=False,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def consent(
    client: httpx.Client,
    params: dict[str, str],
    *,
    action: str = "authorize",
    user_id: str | None = None,
    path: str = "/oauth2/authorize",
) -> httpx.Response:
    """GET the consent page, then submit its form as a browser would."""
    page = client.get(path, params=params)
    assert page.status_code == 200, page.text
    form = parse_consent(page.text)
    data = dict(form.hidden)
    data["user_id"] = user_id or next(uid for uid, checked in form.users if checked)
    data["action"] = action
    return client.post(form.action or path, data=data)


def authorize(
    client: httpx.Client,
    app: dict[str, Any],
    *,
    scope: str = "identify",
    verifier: str | None = None,
    user_id: str | None = None,
    **params: str,
) -> str:
    """Walk authorize + consent and return the authorization code."""
    query = {
        "client_id": app["client_id"],
        "response_type": "code",
        "scope": scope,
        "redirect_uri": app["redirect_uris"][0],
        "state": "st-" + secrets.token_hex(4),
        **params,
    }
    if verifier is not None:
        query.setdefault("code_challenge", s256(verifier))
        query.setdefault("code_challenge_method", "S256")
    query = {k: v for k, v in query.items() if v != ""}  # "" means: leave the parameter out
    response = consent(client, query, user_id=user_id)
    assert response.status_code == 302, response.text
    back = query_of(response.headers["location"])
    assert back["state"] == query["state"]
    return back["code"]


def exchange(
    client: httpx.Client,
    app: dict[str, Any],
    code: str,
    *,
    verifier: str | None = None,
    basic: bool = True,
    redirect_uri: str | None = None,
    path: str = "/api/v10/oauth2/token",
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri or app["redirect_uris"][0],
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    if basic:
        return client.post(path, data=data, auth=(app["client_id"], app["client_secret"]))
    data |= {"client_id": app["client_id"], "client_secret": app["client_secret"]}
    return client.post(path, data=data)


def refresh(client: httpx.Client, app: dict[str, Any], refresh_token: str) -> httpx.Response:
    return client.post(
        "/api/v10/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(app["client_id"], app["client_secret"]),
    )


def tokens_for(
    client: httpx.Client,
    app: dict[str, Any],
    *,
    scope: str = "identify",
    user_id: str | None = None,
) -> dict[str, Any]:
    """A full PKCE code flow; returns the token response body."""
    verifier = new_verifier()
    code = authorize(client, app, scope=scope, verifier=verifier, user_id=user_id)
    response = exchange(client, app, code, verifier=verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def token_details(base_url: str) -> dict[str, dict[str, Any]]:
    """``GET /_sandbox/tokens`` metadata keyed by token value."""
    details = httpx.get(f"{base_url}/_sandbox/tokens", verify=False).json()["details"]
    out: dict[str, dict[str, Any]] = {}
    for kind in ("access_tokens", "refresh_tokens"):
        for entry in details[kind]:
            out[entry["value"]] = entry
    return out
