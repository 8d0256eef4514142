"""A person walks the OAuth flow by hand against ``tokenward sandbox``: the printed authorize
URL leads to the consent page, Authorize lands on the sandbox's own page with the code, and the
printed exchange works."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tokenward._serving import free_port

from . import parse_consent


def test_walking_the_flow_by_hand_from_the_printed_instructions(tmp_path: Path) -> None:
    port = free_port()
    tokenward = Path(sys.executable).parent / "tokenward"
    log = (tmp_path / "sandbox.out").open("w")
    proc = subprocess.Popen(
        [str(tokenward), "sandbox", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/_sandbox/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        printed = (tmp_path / "sandbox.out").read_text()
        secret = re.search(r"client secret\s+(\S+)", printed)
        authorize = re.search(r"^\s+(http://\S+/oauth2/authorize\?\S+)$", printed, re.M)
        assert secret is not None, printed
        assert authorize is not None, printed
        with httpx.Client(follow_redirects=False) as browser:
            page = browser.get(authorize.group(1))
            assert page.status_code == 200
            form = parse_consent(page.text)
            answer = browser.post(
                str(page.url),
                data={**form.hidden, "user_id": form.users[0][0], "action": "authorize"},
            )
            assert answer.status_code == 302
            landing = browser.get(answer.headers["location"])
        assert landing.status_code == 200
        assert "Discord sent back a code" in landing.text
        code = re.search(r"<code>code</code> = <code>([^<]+)</code>", landing.text)
        assert code is not None
        command = re.search(r"<pre[^>]*>(.*?)</pre>", landing.text, re.S)
        assert command is not None
        # Run the printed command (with the secret in place) as a person would.
        argv = html.unescape(command.group(1)).replace("CLIENT_SECRET", secret.group(1)).split()
        assert argv[0] == "curl"
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert '"access_token"' in done.stdout, done.stdout + done.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
