"""The connector page's Node example, its text unchanged, with the official Node SDK against
``tokenward serve --compat-port``: over ``http://`` (h2c) and ``https://`` (the dev CA)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path

import pytest

from e2e.processes import sandbox_secrets
from tokenward.sandbox.browser import walk_consent

from .conftest import CompatStack, link_account
from .sdks import EXAMPLE_COPY, node_sdk, page_example, reference_page, the_example

pytestmark = pytest.mark.slow

ADA = "1100000000000000001"
LINK_PREFIX = "🔗 Authorize Discord: "
CALLS = Path(__file__).parent / "data" / "node_calls.mjs"


def test_the_copy_is_the_pages_example() -> None:
    page = reference_page()
    if page is None:
        pytest.skip("the shared reference (../shared/reference) is not present")
    assert EXAMPLE_COPY.read_text(encoding="utf-8") == page_example(page)


def sdk_environment(stack: CompatStack) -> dict[str, str]:
    """The page's three variables (and the dev CA over TLS), nothing of tokenward's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENWARD_", "SCALEKIT_"))}
    env.update(stack.client_environment())
    env.update(
        {
            "SCALEKIT_ENV_URL": stack.compat_url,
            "SCALEKIT_CLIENT_ID": stack.client_id,
            "SCALEKIT_CLIENT_SECRET": stack.client_secret,
        }
    )
    return env


class Lines:
    """A child's stdout, line by line, with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.lines.put(line)
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, prefix: str, timeout: float = 60.0) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError("the example ended early:\n" + "".join(self.seen))
            self.seen.append(line)
            if prefix in line:
                return line

    def rest(self, timeout: float = 60.0) -> str:
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.seen.append(line)
        return "".join(self.seen)


def run_example(stack: CompatStack, folder: Path) -> str:
    """Write the example to a file, run it with node, answer its "Press Enter" once the consent
    page was walked; returns everything it printed."""
    sdk = node_sdk()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "node_modules").symlink_to(sdk / "node_modules")
    script = folder / "example.mjs"
    script.write_text(the_example(), encoding="utf-8")
    env = sdk_environment(stack)
    with subprocess.Popen(
        ["node", str(script)],
        cwd=folder,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    ) as proc:
        try:
            lines = Lines(proc)
            line = lines.until(LINK_PREFIX)
            link = line.split(LINK_PREFIX, 1)[1].strip()
            assert link.startswith(f"{stack.gateway_url}/connect/"), line
            assert walk_consent(link, user_id=ADA).status_code == 200
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.close()
            printed = lines.rest()
            code = proc.wait(timeout=60)
            stderr = proc.stderr.read() if proc.stderr is not None else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 0, f"{printed}\n--- stderr ---\n{stderr}\n{stack.gateway.output()}"
    return printed


def test_the_pages_example_runs_unchanged(stack: CompatStack, tmp_path: Path) -> None:
    printed = run_example(stack, tmp_path / "example")
    assert "Press Enter after authorizing..." in printed
    # console.log(user): the proxied answer of GET /api/users/@me, the sandbox's user.
    assert "status: 200" in printed, printed
    assert f"id: '{ADA}'" in printed, printed
    assert "username: 'ada'" in printed, printed
    leaked = [s for s in sandbox_secrets(stack.sandbox_url) if s in printed]
    assert leaked == []


def test_account_and_tool_calls(stack: CompatStack, tmp_path: Path) -> None:
    link_account(stack, "user_123", ADA)
    folder = tmp_path / "calls"
    folder.mkdir()
    (folder / "node_modules").symlink_to(node_sdk() / "node_modules")
    script = folder / "calls.mjs"
    script.write_text(CALLS.read_text(encoding="utf-8"), encoding="utf-8")
    env = sdk_environment(stack)
    done = subprocess.run(
        ["node", str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["me"]["ok"], results
    assert results["me"]["value"]["data"]["id"] == ADA
    assert results["me"]["value"]["executionId"].startswith("exec_")
    assert len(results["guilds"]["value"]["data"]) == 1
    assert results["toolError"]["name"] == "ScalekitToolException", results
    assert results["toolError"]["toolErrorCode"] == "10004"
    assert results["account"]["value"]["connector"] == "discord"
    assert results["account"]["value"]["id"].startswith("ca_")
    assert results["missing"]["name"] == "ScalekitNotFoundException"
    assert results["missing"]["errorCode"] == "ACCOUNT_NOT_FOUND"
    assert results["created"]["ok"], results
    assert "node_new" in results["listed"]["value"]
    assert results["deleted"]["ok"], results
    assert results["gone"]["name"] == "ScalekitNotFoundException"
    assert results["badRequest"]["name"] == "ScalekitBadRequestException"
