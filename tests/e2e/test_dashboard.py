"""An operator runs tokenward from the dashboard in a real browser.

Chromium (Debian's, driven by Playwright) signs in to ``tokenward serve``, creates a connection,
copies its redirect URI into the sandbox's application, makes an authorization link, walks the
sandbox's consent, sees the account ACTIVE, sees it turn EXPIRED with a reason once the grant is
revoked at the sandbox, links it again, deletes it (the revocation is counted at the sandbox) and
signs out. Every page is screenshotted at desktop (1280×800) and phone (390×844) widths into
``test-output/e2e/<test>/``, checked for horizontal overflow, and checked with axe-core (from npm)
for serious or critical accessibility violations.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from conftest import IN_CI, require_service

from .conftest import Deployment
from .processes import TEST_OUTPUT, register_application, set_redirect_uri

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AXE_VERSION = "4.14.1"
AXE_CACHE = TEST_OUTPUT / ".cache" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
PASSWORD = "dashboard operator password"
GRACE = "Grace Hopper"


def axe_script() -> Path | None:
    """axe-core's browser build, from npm (cached under test-output/.cache); None without npm."""
    if AXE_CACHE.exists():
        return AXE_CACHE
    npm = shutil.which("npm")
    if npm is None:
        return None
    work = AXE_CACHE.parent / "pack"
    work.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--json", "--silent"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        tarball = work / json.loads(out.stdout)[0]["filename"]
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            AXE_CACHE.write_bytes(member.read())
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return AXE_CACHE


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
def axe() -> Path:
    script = axe_script()
    if script is None:
        reason = "axe-core could not be fetched with npm (npm pack axe-core)"
        if IN_CI:
            pytest.fail(f"{reason} (CI is set, so this test must not skip)")
        pytest.skip(reason)
    return script


class Inspector:
    """Screenshots at both widths, the overflow check and axe-core, for each page visited."""

    def __init__(self, page: Page, output_dir: Path, axe: Path) -> None:
        self.page = page
        self.output_dir = output_dir
        self.axe = axe
        self.seen: list[str] = []

    def check(self, name: str) -> None:
        page = self.page
        for label, (width, height) in VIEWPORTS.items():
            page.set_viewport_size({"width": width, "height": height})
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{name} overflows by {overflow}px at {label} width"
            page.screenshot(path=self.output_dir / f"{name}-{label}.png", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.add_script_tag(path=str(self.axe))
        violations: list[dict[str, Any]] = page.evaluate(
            """async () => {
                const result = await axe.run(document, {resultTypes: ["violations"]});
                return result.violations
                    .filter(v => v.impact === "serious" || v.impact === "critical")
                    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}));
            }"""
        )
        assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"
        self.seen.append(name)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Playwright injects axe-core as a script tag; the dashboard's CSP would (rightly) refuse it.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def stats(d: Deployment) -> dict[str, Any]:
    body: dict[str, Any] = (
        httpx.get(f"{d.sandbox_url}/_sandbox/stats", trust_env=False).raise_for_status().json()
    )
    return body


def revoke_grant_at_sandbox(d: Deployment, app: dict[str, Any]) -> None:
    """The user removes the application in Discord's settings: the grant dies there."""
    tokens = (
        httpx.get(f"{d.sandbox_url}/_sandbox/tokens", trust_env=False).raise_for_status().json()
    )
    live = [
        t
        for t in tokens["details"]["refresh_tokens"]
        if t["client_id"] == app["client_id"] and not t["used"]
    ]
    assert live
    httpx.post(
        f"{d.sandbox_url}/api/oauth2/token/revoke",
        data={
            "token": live[-1]["value"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
        trust_env=False,
    ).raise_for_status()


def consent(d: Deployment, page: Page, link: str) -> None:
    page.goto(link)
    page.get_by_role("button", name="Continue to Discord").click()
    page.wait_for_url(f"{d.sandbox_url}/oauth2/authorize**")
    page.get_by_label(GRACE).check()
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{d.gateway_url}/sso/v1/oauth/**/callback/result/**")
    assert page.locator("h1").inner_text() == "Discord connected"


def test_an_operator_runs_tokenward_from_the_dashboard(
    deployment: Deployment, page: Page, output_dir: Path, axe: Path
) -> None:
    d = deployment
    d.cli.ok("admins", "create", "--username", "ops", "--password-stdin", input=PASSWORD + "\n")
    app = register_application(d.sandbox_url, name="Acme Dashboard")
    look = Inspector(page, output_dir, axe)
    base = d.gateway_url

    # Signing in: the dashboard sends a stranger to the sign-in page first.
    page.goto(f"{base}/dashboard/accounts")
    assert "/dashboard/sign-in" in page.url
    look.check("sign-in")
    page.get_by_label("Username", exact=True).fill("ops")
    page.get_by_label("Password", exact=True).fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    assert "wrong" in page.get_by_role("alert").inner_text()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/dashboard/accounts")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["tokenward_session"]["httpOnly"] is True
    assert cookies["tokenward_session"]["sameSite"] == "Lax"

    # A connection, made in the browser; its redirect URI copied into Discord (the sandbox).
    page.get_by_role("link", name="Connections").click()
    look.check("connections-empty")
    page.get_by_role("link", name="New connection").click()
    look.check("connection-new")
    page.get_by_label("Name", exact=True).fill("discord")
    page.get_by_label("Discord client id").fill(app["client_id"])
    page.get_by_label("Discord client secret").fill(app["client_secret"])
    page.get_by_role("button", name="Create connection").click()
    page.wait_for_url(f"{base}/dashboard/connections/discord?notice=connection-created")
    redirect_uri = page.get_by_label("Redirect URI").input_value()
    assert redirect_uri.startswith(f"{base}/sso/v1/oauth/")
    page.get_by_role("button", name="Copy").first.click()
    look.check("connection-edit")
    set_redirect_uri(d.sandbox_url, app["client_id"], redirect_uri)

    # A link for user_1, and the user's walk through consent.
    page.get_by_label("Identifier (your application's key for the user)").fill("user_1")
    page.get_by_role("button", name="Create link").click()
    link = page.get_by_label("Authorization link").input_value()
    assert link.startswith(f"{base}/connect/")
    look.check("link")
    consent(d, page, link)

    page.goto(f"{base}/dashboard/accounts")
    row = page.locator("tbody tr", has_text="user_1")
    assert "ACTIVE" in row.inner_text()
    look.check("accounts")
    row.get_by_role("link", name="user_1").click()
    assert "ACTIVE" in page.locator("#account-status").inner_text()
    look.check("account-active")

    # The grant dies at Discord; a refresh finds out and the account says why.
    revoke_grant_at_sandbox(d, app)
    page.get_by_role("button", name="Refresh now").click()
    assert "EXPIRED" in page.locator("#account-status").inner_text()
    reason = page.locator("#account-reason").inner_text()
    assert reason not in ("", "—")
    assert "did not work" in page.get_by_role("alert").inner_text()
    look.check("account-expired")

    # Linked again from the account's page.
    page.get_by_role("button", name="New authorization link").click()
    relink = page.get_by_label("Authorization link (works once)").input_value()
    consent(d, page, relink)
    account_url = f"{base}/dashboard/accounts?identifier=user_1"
    page.goto(account_url)
    assert "ACTIVE" in page.locator("tbody tr", has_text="user_1").inner_text()
    page.get_by_role("link", name="user_1").click()
    assert "ACTIVE" in page.locator("#account-status").inner_text()

    # Deleted: the grant is revoked at Discord first.
    revocations = stats(d)["revocations"]
    page.get_by_role("link", name="Delete").click()
    look.check("account-delete")
    page.get_by_role("button", name="Revoke and delete").click()
    page.wait_for_url(f"{base}/dashboard/accounts?notice=account-deleted")
    assert stats(d)["revocations"] == revocations + 1
    assert page.locator("tbody tr", has_text="user_1").count() == 0

    # The other pages, looked at too.
    for name, path in (
        ("overview", "/dashboard"),
        ("connections", "/dashboard/connections"),
        ("connection-delete", "/dashboard/connections/discord/delete"),
        ("activity", "/dashboard/activity"),
        ("webhooks", "/dashboard/webhooks"),
        ("api-clients", "/dashboard/api-clients"),
        ("mcp-sessions", "/dashboard/mcp-sessions?all=1"),
        ("keys", "/dashboard/keys"),
    ):
        page.goto(base + path)
        look.check(name)
    # Rotating the keys from the browser: the progress page reloads itself until the report.
    page.goto(f"{base}/dashboard/keys")
    page.get_by_role("button", name=re.compile("Rotate keys|Re-encrypt")).click()
    page.wait_for_url(f"{base}/dashboard/keys/rotation")
    page.locator("#rows-remaining").wait_for()
    assert page.locator("#rows-remaining").inner_text() == "0"
    look.check("key-rotation")
    activity = page.context.request.get(f"{base}/dashboard/activity").text()
    assert "operator:ops" in activity

    # Signing out ends the session: the dashboard asks to sign in again.
    page.goto(f"{base}/dashboard")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/dashboard/sign-in?notice=signed-out")
    page.goto(f"{base}/dashboard")
    assert "/dashboard/sign-in" in page.url
    assert len(look.seen) >= 15
    for png in ("overview-desktop.png", "overview-phone.png", "accounts-phone.png"):
        assert (output_dir / png).stat().st_size > 5_000


def test_docs_render_in_chromium_with_no_request_leaving_the_gateway(
    deployment: Deployment, page: Page, output_dir: Path
) -> None:
    d = deployment
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(d.gateway_url) else elsewhere.append(request.url)
        ),
    )
    page.goto(f"{d.gateway_url}/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 10
    page.screenshot(path=output_dir / "docs.png")
    assert elsewhere == []
