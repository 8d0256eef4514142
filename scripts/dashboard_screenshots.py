"""Take the README's dashboard screenshots (docs/dashboard-*.png) from a ``tokenward demo``.

Runs ``tokenward demo --keep``, signs in as the demo's throwaway operator with Debian's Chromium
(Playwright), saves the overview and the connected-accounts page at 1280×800, and stops the
demo. Needs the dev extras (playwright) and /usr/bin/chromium; nothing leaves loopback.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"Dashboard: (http://\S+/dashboard) — sign in as (\S+) with password (\S+)")


def main() -> None:
    tokenward = Path(sys.executable).parent / "tokenward"
    demo = subprocess.Popen(  # noqa: S603 (our own entry point)
        [str(tokenward), "demo", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "300", "HOME": str(Path.home())},
    )
    try:
        assert demo.stdout is not None
        found = None
        for line in demo.stdout:
            found = LINE.search(line)
            if found:
                break
        if found is None:
            raise SystemExit("the demo printed no dashboard line")
        url, username, password = found.groups()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{url}/sign-in")
            page.get_by_label("Username", exact=True).fill(username)
            page.get_by_label("Password", exact=True).fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(url)
            page.screenshot(path=ROOT / "docs" / "dashboard-overview.png")
            page.goto(f"{url}/accounts")
            page.get_by_role("link", name="user_123").click()
            page.screenshot(path=ROOT / "docs" / "dashboard-account.png")
            browser.close()
    finally:
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=30)
    print("wrote docs/dashboard-overview.png and docs/dashboard-account.png")


if __name__ == "__main__":
    main()
