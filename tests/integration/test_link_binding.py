"""The authorization link against forwarded links and careless use (issue 9, "The authorization
link"), and what deleting does to other identifiers of the same Discord user.

A real gateway (uvicorn on loopback) and the real sandbox; the browser side is
``tokenward.sandbox.browser`` (which keeps cookies like a browser) or plain httpx where a test
needs to see each step.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tokenward.errors import ConflictError, ValidationError
from tokenward.oauth.service import browser_cookie_name
from tokenward.sandbox.browser import consent_callback_url, walk_consent
from tokenward.server.app import create_app
from tokenward.server.container import Container
from tokenward.vault.models import AccountStatus

from .gateway_env import (
    Gateway,
    gateway_settings,
    local_container,
    make_connection,
    sandbox_stats,
)

ADA = "1100000000000000001"
GRACE = "1100000000000000002"
LINUS = "1100000000000000003"


def csrf_token(html: str) -> str:
    match = re.search(r'name=csrf_token value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def me_status(gateway: Gateway, token: str) -> int:
    return httpx.get(
        f"{gateway.sandbox_url}/api/v10/users/@me", headers={"Authorization": f"Bearer {token}"}
    ).status_code


async def linked(container: Container, identifier: str, user: str, name: str = "discord") -> str:
    link = await container.oauth.create_link(name, identifier)
    result = await asyncio.to_thread(walk_consent, link.link, user_id=user)
    assert result.status_code == 200, result.text
    assert "Discord connected" in result.text
    return link.account.id


async def kinds(container: Container, account_id: str) -> list[str]:
    return [e.kind for e in await container.vault.list_events(account_id=account_id, limit=500)]


# -- the page before Discord ------------------------------------------------------------------


async def test_a_link_shows_who_asks_for_which_account_before_anything_goes_to_discord(
    container: Container, gateway: Gateway
) -> None:
    _connection, app = await make_connection(container, gateway.sandbox_url)
    identifier = "acct <b>&'7"
    link = await container.oauth.create_link("discord", identifier)
    before = sandbox_stats(gateway.sandbox_url)["requests"]["total"]

    page = httpx.get(link.link)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Connect your Discord account" in html
    assert "<strong>discord</strong>" in html  # the connection (application) name
    assert app["client_id"] in html  # the Discord application
    assert escape(identifier) in html
    assert identifier not in html
    assert "Continue to Discord" in html
    assert f'<form method=post action="{link.link}">' in html
    assert "guilds" in html
    assert "the list of servers you are in" in html
    assert "If someone sent it to you, close this page" in html
    # Server-rendered only: no script, nothing loaded from elsewhere.
    assert "<script" not in html.lower()
    assert not re.search(r"\b(src|href)=", html)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    form_cookie = page.headers["set-cookie"].lower()
    assert "httponly" in form_cookie
    assert "samesite=strict" in form_cookie
    # Opening the page changed nothing and sent nothing to Discord.
    assert "auth_request.opened" not in await kinds(container, link.account.id)
    assert sandbox_stats(gateway.sandbox_url)["requests"]["total"] == before
    stored = await container.vault.get_auth_request(link.auth_request_id)
    assert stored is not None
    assert stored.browser_hash is None


async def test_the_button_binds_the_flow_to_this_browser_with_a_cookie(
    container: Container, gateway: Gateway
) -> None:
    connection, _ = await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_1")
    with httpx.Client(trust_env=False) as browser:
        page = browser.get(link.link)
        pressed = browser.post(link.link, data={"csrf_token": csrf_token(page.text)})

    assert pressed.status_code == 303
    authorize = urlsplit(pressed.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == gateway.sandbox_url
    assert authorize.path == "/oauth2/authorize"
    assert parse_qs(authorize.query)["code_challenge_method"] == ["S256"]
    cookies = [v for k, v in pressed.headers.multi_items() if k == "set-cookie"]
    name = browser_cookie_name(link.auth_request_id)
    binding = next(c for c in cookies if c.startswith(f"{name}="))
    attributes = [a.strip().lower() for a in binding.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert f"path=/sso/v1/oauth/{connection.id.lower()}/callback" in attributes
    assert "secure" not in attributes  # PUBLIC_URL is http here
    value = binding.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43
    stored = await container.vault.get_auth_request(link.auth_request_id)
    assert stored is not None
    assert stored.browser_hash == hashlib.sha256(value.encode()).hexdigest()
    assert value not in repr(await container.vault.list_events(limit=500))


async def test_under_an_https_public_url_the_binding_cookie_is_secure(
    tmp_path: Path, sandbox_url: str
) -> None:
    settings = gateway_settings(tmp_path, sandbox_url, public_url="https://gw.example.test")
    async with local_container(settings) as container:
        connection, _ = await make_connection(container, sandbox_url)
        link = await container.oauth.create_link("discord", "user_1")
        app = create_app(container=container, setup_logging=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as client:
            page = await client.get(link.link)
            assert "secure" in page.headers["set-cookie"].lower()
            pressed = await client.post(link.link, data={"csrf_token": csrf_token(page.text)})
    assert pressed.status_code == 303, pressed.text
    binding = next(
        v
        for k, v in pressed.headers.multi_items()
        if k == "set-cookie" and v.startswith(browser_cookie_name(link.auth_request_id))
    )
    attributes = [a.strip().lower() for a in binding.split(";")]
    assert "secure" in attributes
    assert f"path=/sso/v1/oauth/{connection.id.lower()}/callback" in attributes


async def test_a_press_from_another_site_is_refused_and_changes_nothing(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_1")
    other = await container.oauth.create_link("discord", "user_2")
    with httpx.Client(trust_env=False) as attacker:
        token = csrf_token(attacker.get(link.link).text)
        other_token = csrf_token(attacker.get(other.link).text)
    with httpx.Client(trust_env=False) as victim:
        victim.get(other.link)  # the victim's browser has a form cookie, for another link
        attempts = [
            victim.post(link.link, data={}),  # no token
            victim.post(link.link, data={"csrf_token": token}),  # a token without its cookie
            victim.post(link.link, data={"csrf_token": other_token}),  # another link's token
            victim.post(link.link, data={"csrf_token": token[:-2] + "xx"}),  # forged
        ]
    for refused in attempts:
        assert refused.status_code == 403, refused.text
        assert "nothing was sent to Discord" in refused.text
        assert "Continue to Discord" in refused.text  # the page again, to press knowingly
    assert "auth_request.opened" not in await kinds(container, link.account.id)
    stored = await container.vault.get_auth_request(link.auth_request_id)
    assert stored is not None
    assert stored.browser_hash is None


# -- the callback, bound to the browser -------------------------------------------------------


async def test_a_callback_in_another_browser_is_refused_and_changes_nothing(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_1")
    # The person who pressed the button forwards Discord's page (or its answer) to someone else.
    callback = await asyncio.to_thread(consent_callback_url, link.link, user_id=GRACE)
    grants = sandbox_stats(gateway.sandbox_url)["grants"]["authorization_code"]
    name = browser_cookie_name(link.auth_request_id)
    wrong = httpx.Cookies()
    wrong.set(name, "x" * 43, domain="127.0.0.1", path="/")

    for response in (
        callback.get(with_cookies=False),
        callback.get(url=None, with_cookies=False, follow=False),
    ):
        assert response.status_code == 400
        assert "started in another browser" in response.text
        assert "Nothing was changed" in response.text
    tampered = type(callback)(callback.url, wrong)
    assert tampered.get().status_code == 400

    request = await container.vault.get_auth_request(link.auth_request_id)
    assert request is not None
    assert request.consumed_at is None
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.PENDING_AUTH
    assert account.access_token is None
    assert sandbox_stats(gateway.sandbox_url)["grants"]["authorization_code"] == grants
    assert "authorization.browser_mismatch" in await kinds(container, link.account.id)
    # The browser that started it still completes.
    done = callback.get()
    assert done.status_code == 200, done.text
    assert (await container.vault.get_account(link.account.id)).provider_user_id == GRACE


async def test_reloading_the_success_page_shows_the_success_again(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_1")
    result = await asyncio.to_thread(walk_consent, link.link, user_id=GRACE)
    assert result.status_code == 200
    assert f"/callback/result/{link.auth_request_id}" in result.url
    account = await container.vault.get_account(link.account.id)
    grants = sandbox_stats(gateway.sandbox_url)["grants"]["authorization_code"]
    callback = next(u for u in result.visited if "/callback?" in u)

    for again in (result.reload(), result.reload(), result.reload(callback)):
        assert again.status_code == 200, again.text
        assert "Discord connected" in again.text
        assert "Grace Hopper" in again.text
        assert "Not connected" not in again.text
    # Another browser learns nothing from the result page's address.
    elsewhere = result.reload(with_cookies=False)
    assert elsewhere.status_code == 403
    assert "Grace Hopper" not in elsewhere.text
    assert sandbox_stats(gateway.sandbox_url)["grants"]["authorization_code"] == grants
    assert (await container.vault.get_account(account.id)).version == account.version


async def test_reloading_a_failed_sign_in_shows_the_same_failure(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_1")
    callback = await asyncio.to_thread(consent_callback_url, link.link)
    state = parse_qs(urlsplit(callback.url).query)["state"][0]
    tampered = callback.url.split("?")[0] + f"?code=not-a-code&state={state}"

    failed = callback.get(tampered)
    again = failed.reload()

    for page in (failed, again):
        assert page.status_code == 400
        assert "Discord did not accept the sign-in" in page.text
        assert "invalid_grant" in page.text


# -- connections that require user verification -----------------------------------------------


async def test_require_user_verification_makes_every_link_wait_for_the_application(
    container: Container, gateway: Gateway
) -> None:
    connection, _ = await make_connection(container, gateway.sandbox_url)
    early = await container.oauth.create_link("discord", "early")
    await container.vault.update_connection(connection.id, require_user_verification=True)
    assert (await container.vault.get_connection(connection.id)).require_user_verification

    with pytest.raises(ValidationError) as info:
        await container.oauth.create_link("discord", "user_1")
    assert "user_verify_url" in info.value.fields
    assert "requires user verification" in info.value.message
    assert await container.vault.find_account(connection.id, "user_1") is None  # nothing made

    # A link made before the setting can no longer start.
    page = httpx.get(early.link)
    assert page.status_code == 409
    assert "can no longer be used" in page.text
    assert "Continue to Discord" not in page.text

    verify_url = f"{gateway.url}/healthz"
    link = await container.oauth.create_link("discord", "user_1", user_verify_url=verify_url)
    result = await asyncio.to_thread(walk_consent, link.link, user_id=GRACE)
    landed = urlsplit(result.visited[-1])
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == verify_url
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.PENDING_VERIFICATION
    # The links tokenward makes by itself (in errors) reuse the identifier's last verify URL.
    fresh = await container.oauth.create_link("discord", "user_1")
    stored = await container.vault.get_auth_request(fresh.auth_request_id)
    assert stored is not None
    assert stored.user_verify_url == verify_url


# -- re-linking to another Discord user --------------------------------------------------------


async def test_relinking_to_another_discord_user_is_refused_unless_allowed(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    account_id = await linked(container, "user_1", GRACE)
    before = await container.vault.get_account(account_id)
    assert before.access_token is not None
    revocations = sandbox_stats(gateway.sandbox_url)["revocations"]

    # A link for user_1 is opened by someone else, who approves as Ada.
    link = await container.oauth.create_link("discord", "user_1")
    page = httpx.get(link.link)
    assert "already connected to a Discord account" in page.text
    refused = await asyncio.to_thread(walk_consent, link.link, user_id=ADA)

    assert refused.status_code == 409
    assert "Another Discord account is already connected" in refused.text
    assert "Nothing was changed" in refused.text
    assert refused.reload().text == refused.text
    after = await container.vault.get_account(account_id)
    assert after.provider_user_id == GRACE
    assert after.access_token == before.access_token
    assert after.version == before.version
    assert after.status == AccountStatus.ACTIVE
    assert after.status_reason == before.status_reason
    assert me_status(gateway, before.access_token.get_secret_value()) == 200
    event = (await container.vault.list_events(kind="account.user_change_refused"))[-1]
    assert event.account_id == account_id
    assert event.data["provider_user_id"] == GRACE
    assert event.data["refused_provider_user_id"] == ADA
    # Ada's new grant, which no account holds, was revoked at Discord.
    assert event.data["new_grant_revoked"] is True
    assert sandbox_stats(gateway.sandbox_url)["revocations"] == revocations + 1

    # The same Discord user again is no change.
    again = await container.oauth.create_link("discord", "user_1")
    assert (await asyncio.to_thread(walk_consent, again.link, user_id=GRACE)).status_code == 200

    # The application asks for the change: allowed, and recorded.
    allowed = await container.oauth.create_link("discord", "user_1", allow_user_change=True)
    changed = await asyncio.to_thread(walk_consent, allowed.link, user_id=ADA)
    assert changed.status_code == 200, changed.text
    assert "Ada Lovelace" in changed.text
    assert (await container.vault.get_account(account_id)).provider_user_id == ADA
    event = (await container.vault.list_events(kind="account.user_changed"))[-1]
    assert event.data["from_provider_user_id"] == GRACE
    assert event.data["to_provider_user_id"] == ADA


async def test_a_refused_relink_keeps_a_grant_another_account_holds(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    await linked(container, "user_1", GRACE)
    ada_account = await linked(container, "ada_here", ADA)
    ada_token = (await container.vault.get_account(ada_account)).access_token
    assert ada_token is not None
    revocations = sandbox_stats(gateway.sandbox_url)["revocations"]

    link = await container.oauth.create_link("discord", "user_1")
    refused = await asyncio.to_thread(walk_consent, link.link, user_id=ADA)

    assert refused.status_code == 409
    # Revoking Ada's new grant would have ended ada_here's too: it was only dropped.
    assert sandbox_stats(gateway.sandbox_url)["revocations"] == revocations
    assert me_status(gateway, ada_token.get_secret_value()) == 200


# -- callback failures, where the operator sees them ------------------------------------------


async def test_an_invalid_client_at_the_callback_is_recorded_and_logged_and_keeps_active(
    container: Container, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tokenward")
    connection, _ = await make_connection(container, gateway.sandbox_url)
    account_id = await linked(container, "user_1", GRACE)
    good = await container.vault.get_account(account_id)
    wrong_secret = "wrong-secret-value-1234567890"
    await container.vault.update_connection(connection.id, client_secret=wrong_secret)

    link = await container.oauth.create_link("discord", "user_1")
    page = await asyncio.to_thread(walk_consent, link.link, user_id=GRACE)

    assert page.status_code == 400
    assert "invalid_client" in page.text
    account = await container.vault.get_account(account_id)
    assert account.status == AccountStatus.ACTIVE  # its working grant is not thrown away
    assert account.access_token == good.access_token
    assert account.status_reason is not None
    assert "invalid_client" in account.status_reason
    assert "client secret" in account.status_reason
    events = await container.vault.list_events(kind="authorization.exchange_failed")
    assert events[-1].account_id == account_id
    assert events[-1].data["error"] == "invalid_client"
    assert events[-1].data["auth_request_id"] == link.auth_request_id
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "tokenward.oauth" and r.levelno == logging.WARNING
    ]
    assert any(account_id in w and "invalid_client" in w for w in warnings), warnings
    assert not any(wrong_secret in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [({"status": 503}, "could not be reached"), (None, "invalid_grant")],
    ids=["unreachable", "invalid_grant"],
)
async def test_other_callback_failures_are_recorded_on_a_pending_account(
    container: Container,
    gateway: Gateway,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, object] | None,
    expected: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="tokenward")
    await make_connection(container, gateway.sandbox_url)
    link = await container.oauth.create_link("discord", "user_1")
    callback = await asyncio.to_thread(consent_callback_url, link.link)
    url = callback.url
    if fault is None:
        state = parse_qs(urlsplit(url).query)["state"][0]
        url = url.split("?")[0] + f"?code=not-a-code&state={state}"
    else:
        httpx.post(
            f"{gateway.sandbox_url}/_sandbox/faults",
            json={"route": "/api/oauth2/token", **fault},
        ).raise_for_status()
    try:
        page = callback.get(url)
    finally:
        httpx.delete(f"{gateway.sandbox_url}/_sandbox/faults").raise_for_status()

    assert page.status_code in (400, 502)
    account = await container.vault.get_account(link.account.id)
    assert account.status == AccountStatus.PENDING_AUTH
    assert account.status_reason is not None
    assert expected in account.status_reason
    assert "authorization.exchange_failed" in await kinds(container, link.account.id)
    assert any(
        r.name == "tokenward.oauth" and link.account.id in r.getMessage() for r in caplog.records
    )


# -- deleting one identifier of a Discord user ------------------------------------------------


async def test_deleting_an_account_says_which_siblings_a_revocation_would_end(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    first = await linked(container, "user_a", GRACE)
    second = await linked(container, "user_b", GRACE)
    other_user = await linked(container, "user_c", ADA)
    pending = await container.oauth.create_link("discord", "user_d")  # never linked
    second_token = (await container.vault.get_account(second)).access_token
    ada_token = (await container.vault.get_account(other_user)).access_token
    assert second_token is not None
    assert ada_token is not None
    revocations = sandbox_stats(gateway.sandbox_url)["revocations"]

    with pytest.raises(ConflictError) as info:
        await container.oauth.delete_account(first)

    assert info.value.code == "SIBLINGS_AFFECTED"
    assert [s["identifier"] for s in info.value.details["siblings"]] == ["user_b"]
    assert info.value.details["siblings"][0]["id"] == second
    assert "user_b" in info.value.message
    assert sandbox_stats(gateway.sandbox_url)["revocations"] == revocations
    assert (await container.vault.get_account(first)).status == AccountStatus.ACTIVE
    assert me_status(gateway, second_token.get_secret_value()) == 200

    outcome = await container.oauth.delete_account(first, revoke_siblings=True)

    assert outcome.revoked
    assert [s.id for s in outcome.siblings_disconnected] == [second]
    assert me_status(gateway, second_token.get_secret_value()) == 401  # Discord ended it too
    sibling = await container.vault.get_account(second)
    assert sibling.status == AccountStatus.DISCONNECTED
    assert sibling.status_reason is not None
    assert first in sibling.status_reason
    assert "revoked" in sibling.status_reason
    assert sibling.access_token is None
    assert sibling.refresh_token is None
    event = [
        e
        for e in await container.vault.list_events(account_id=second)
        if e.kind == "account.status_changed"
    ][-1]
    assert event.data["to"] == "DISCONNECTED"
    assert event.data["revoked_with_account_id"] == first
    # Another Discord user's account and a never-linked one are untouched.
    assert (await container.vault.get_account(other_user)).status == AccountStatus.ACTIVE
    assert me_status(gateway, ada_token.get_secret_value()) == 200
    assert (await container.vault.get_account(pending.account.id)).status == (
        AccountStatus.PENDING_AUTH
    )


async def test_a_sibling_on_another_connection_of_the_same_application_counts(
    container: Container, gateway: Gateway
) -> None:
    _connection, app = await make_connection(container, gateway.sandbox_url)
    second = await container.vault.create_connection(
        name="discord-2",
        provider="discord",
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        scopes=["identify"],
    )
    httpx.patch(
        f"{gateway.sandbox_url}/_sandbox/applications/{app['client_id']}",
        json={
            "redirect_uris": [
                container.oauth.redirect_uri(_connection.id),
                container.oauth.redirect_uri(second.id),
            ]
        },
    ).raise_for_status()
    first = await linked(container, "user_a", GRACE)
    other = await linked(container, "user_a", GRACE, name="discord-2")

    with pytest.raises(ConflictError) as info:
        await container.oauth.delete_account(first)

    assert info.value.details["siblings"] == [
        {"id": other, "identifier": "user_a", "connection_name": "discord-2", "status": "ACTIVE"}
    ]


async def test_deleting_without_revoking_leaves_the_siblings_working(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    first = await linked(container, "user_a", GRACE)
    second = await linked(container, "user_b", GRACE)
    token = (await container.vault.get_account(second)).access_token
    assert token is not None
    revocations = sandbox_stats(gateway.sandbox_url)["revocations"]

    outcome = await container.oauth.delete_account(first, revoke=False)

    assert not outcome.revoked
    assert outcome.revoke_error is None
    assert outcome.siblings_disconnected == ()
    assert sandbox_stats(gateway.sandbox_url)["revocations"] == revocations
    assert (await container.vault.get_account(second)).status == AccountStatus.ACTIVE
    assert me_status(gateway, token.get_secret_value()) == 200
    deleted = (await container.vault.list_events(kind="account.deleted"))[-1]
    assert deleted.data["revoked"] is False
    # With no sibling left, deleting the last one revokes without asking.
    assert (await container.oauth.delete_account(second)).revoked


# -- deleting a connection ---------------------------------------------------------------------


async def test_deleting_a_connection_revokes_every_grant_first(
    container: Container, gateway: Gateway
) -> None:
    await make_connection(container, gateway.sandbox_url)
    ids = [await linked(container, f"user_{i}", user) for i, user in enumerate((GRACE, ADA))]
    await container.oauth.create_link("discord", "pending")
    tokens = [(await container.vault.get_account(i)).access_token for i in ids]
    progress: list[tuple[int, int]] = []

    outcome = await container.oauth.delete_connection(
        "discord", on_progress=lambda done, total: progress.append((done, total))
    )

    assert (outcome.accounts, outcome.with_tokens, outcome.revoked) == (3, 2, 2)
    assert outcome.failures == ()
    assert sorted(progress) == [(1, 2), (2, 2)]
    for token in tokens:
        assert token is not None
        assert me_status(gateway, token.get_secret_value()) == 401
    assert await container.vault.list_connections() == []
    event = (await container.vault.list_events(kind="connection.deleted"))[-1]
    assert event.data["revoked"] == 2
    assert event.data["revoke_failed"] == 0


async def test_revoke_failures_during_a_connection_delete_are_reported_not_hidden(
    container: Container, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tokenward")
    await make_connection(container, gateway.sandbox_url)
    account_id = await linked(container, "user_1", GRACE)
    httpx.post(
        f"{gateway.sandbox_url}/_sandbox/faults",
        json={"route": "/api/oauth2/token/revoke", "status": 503},
    ).raise_for_status()
    try:
        outcome = await container.oauth.delete_connection("discord")
    finally:
        httpx.delete(f"{gateway.sandbox_url}/_sandbox/faults").raise_for_status()

    assert outcome.revoked == 0
    assert [f.account_id for f in outcome.failures] == [account_id]
    assert "503" in outcome.failures[0].error
    assert await container.vault.list_connections() == []  # deleted anyway, as asked
    assert any("could not be revoked" in r.getMessage() for r in caplog.records)
    failed = await container.vault.list_events(kind="account.revoke_failed")
    assert failed[-1].account_id == account_id
