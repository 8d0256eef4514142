"""A person links their Discord account in a real browser.

Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) opens the link that
``tokenward link`` printed, meets the sandbox's consent page, clicks Authorize or Cancel and lands
on tokenward's page; the CLI then shows the account's state. Everything runs as separate
processes: ``tokenward sandbox``, ``tokenward serve`` and one ``tokenward`` command per step.
Screenshots of both pages go to ``test-output/e2e/<test>/``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import require_service

from .conftest import Deployment
from .processes import register_application, sandbox_secrets, set_redirect_uri

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
APP_NAME = "Acme Support Agent"
SCOPES = ("identify", "email", "guilds")
GRACE = "1100000000000000002"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_service(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM}")
    require_service(
        importlib.util.find_spec("playwright") is not None,
        "the playwright package is not installed (pip install -e '.[dev]')",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 760})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def connect_discord(d: Deployment) -> dict[str, Any]:
    """What a developer does once: register the app, create the connection, add the redirect."""
    app = register_application(d.sandbox_url, name=APP_NAME)
    connection: dict[str, Any] = d.cli.json(
        "connections",
        "create",
        "--name",
        "discord",
        "--client-id",
        app["client_id"],
        "--client-secret-stdin",
        "--scopes",
        ",".join(SCOPES),
        input=app["client_secret"] + "\n",
    )
    expected = f"{d.gateway_url}/sso/v1/oauth/{connection['id']}/callback"
    assert connection["redirect_uri"] == expected
    set_redirect_uri(d.sandbox_url, app["client_id"], connection["redirect_uri"])
    return connection


def open_consent(
    d: Deployment, page: Page, identifier: str, output_dir: Path | None = None
) -> None:
    link = d.cli.json("link", "--connection", "discord", "--identifier", identifier)
    assert set(link) == {"link", "expires_at"}
    assert link["link"].startswith(f"{d.gateway_url}/connect/")

    page.goto(link["link"])

    # tokenward's own page first: who asks, for which of its accounts, and a button.
    assert page.url == link["link"]
    assert page.locator("h1").inner_text() == "Connect your Discord account"
    text = page.locator("main").inner_text()
    assert identifier in text
    assert "discord" in text
    assert "If someone sent it to you, close this page" in text
    if output_dir is not None:
        page.screenshot(path=output_dir / "connect.png", full_page=True)
    page.get_by_role("button", name="Continue to Discord").click()

    # The gateway sent the browser on to the sandbox's consent page, which names the app and
    # the scopes the connection asks for.
    page.wait_for_url(f"{d.sandbox_url}/oauth2/authorize**")
    assert page.url.startswith(f"{d.sandbox_url}/oauth2/authorize")
    assert page.locator("h1").inner_text() == APP_NAME
    scope_lines = page.locator("main ul li").all_inner_texts()
    assert [line.split(" ")[0] for line in scope_lines] == list(SCOPES)
    assert page.get_by_role("button", name="Authorize").is_visible()
    assert page.get_by_role("button", name="Cancel").is_visible()


def account(d: Deployment, identifier: str) -> dict[str, Any]:
    doc: dict[str, Any] = d.cli.json(
        "accounts", "show", "--connection", "discord", "--identifier", identifier
    )
    return doc


def test_authorize_in_chromium_makes_the_account_active(
    deployment: Deployment, page: Page, output_dir: Path
) -> None:
    d = deployment
    connect_discord(d)
    open_consent(d, page, "user_1", output_dir)
    page.get_by_label("Grace Hopper").check()
    page.screenshot(path=output_dir / "consent.png", full_page=True)

    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{d.gateway_url}/sso/v1/oauth/**/callback/result/**")

    assert page.locator("h1").inner_text() == "Discord connected"
    text = page.locator("main").inner_text()
    assert "Grace Hopper" in text
    assert "discord" in text
    page.screenshot(path=output_dir / "success.png", full_page=True)
    # A reload shows the same page, not an error.
    page.reload()
    assert page.locator("h1").inner_text() == "Discord connected"
    assert "Grace Hopper" in page.locator("main").inner_text()
    shown = account(d, "user_1")
    assert shown["status"] == "ACTIVE"
    assert shown["provider_user_id"] == GRACE
    assert set(shown["granted_scopes"]) == set(SCOPES)
    assert shown["has_tokens"] is True
    secrets = sandbox_secrets(d.sandbox_url)
    assert d.cli.leaked(secrets) == []
    gateway_log = d.gateway.stderr() + d.gateway.stdout_path.read_text()
    assert sum(value in gateway_log for value in secrets) == 0, "a secret is in the gateway's log"


def test_cancel_in_chromium_leaves_the_account_pending(
    deployment: Deployment, page: Page, output_dir: Path
) -> None:
    d = deployment
    connect_discord(d)
    open_consent(d, page, "user_2")
    page.screenshot(path=output_dir / "consent.png", full_page=True)

    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(f"{d.gateway_url}/sso/v1/oauth/**")

    assert page.locator("h1").inner_text() == "Authorization cancelled"
    assert "You cancelled" in page.locator("main").inner_text()
    page.screenshot(path=output_dir / "cancelled.png", full_page=True)
    shown = account(d, "user_2")
    assert shown["status"] == "PENDING_AUTH"
    assert shown["provider_user_id"] is None
    assert shown["has_tokens"] is False
