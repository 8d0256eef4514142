"""The hosted platform's official SDKs at pinned versions, installed by the tests themselves.

Each goes into a folder of its own under ``tmp/cache/`` at the repository root, keyed by version
(``node-sdk-2.11.0``, ``py-sdk-2.21.0``), so a rerun reuses it; an install is built in a
scratch folder and renamed into place only once it finished, so a broken one is never reused.
The Python SDK gets a virtual environment of its own: it is never a dependency of tokenward.

Where the registry (or node, npm) cannot be reached the tests skip with the reason, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

from conftest import require_service
from e2e.processes import REPO_ROOT

NODE_SDK = "@scalekit-sdk/node@2.11.0"
# The page's example imports 'dotenv/config'.
NODE_DOTENV = "dotenv@16.4.7"
PYTHON_SDK = "scalekit-sdk-python==2.21.0"
CACHE = REPO_ROOT / "tmp" / "cache"
PAGE_NAME = "hosted-discord-connector.txt"
INSTALL_TIMEOUT = 600
EXAMPLE_COPY = Path(__file__).parent / "data" / "connector-page-example.mjs"


def _finish(scratch: Path, target: Path) -> Path:
    (scratch / ".complete").write_text("ok\n")
    if target.exists():
        shutil.rmtree(target)
    scratch.rename(target)
    return target


def _unavailable(what: str, result: subprocess.CompletedProcess[str]) -> None:
    tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
    require_service(False, f"could not install {what}: " + " | ".join(tail))


def node_sdk() -> Path:
    """The folder whose ``node_modules`` holds the Node SDK (and dotenv)."""
    target = CACHE / f"node-sdk-{NODE_SDK.rpartition('@')[2]}"
    if (target / ".complete").exists():
        return target
    npm = shutil.which("npm")
    require_service(npm is not None and shutil.which("node") is not None, "node and npm needed")
    assert npm is not None
    scratch = CACHE / f"{target.name}.partial-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    (scratch / "package.json").write_text('{"name": "compat-node", "private": true}\n')
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--no-save", NODE_SDK, NODE_DOTENV],
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        _unavailable(NODE_SDK, result)
    return _finish(scratch, target)


def python_sdk() -> Path:
    """The Python interpreter of a virtual environment holding the Python SDK."""
    target = CACHE / f"py-sdk-{PYTHON_SDK.rpartition('=')[2]}"
    python = target / "bin" / "python"
    if (target / ".complete").exists() and python.exists():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    # Built in place (a venv's scripts name their own folder); only ".complete" makes it reused.
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PYTHON_SDK],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        _unavailable(PYTHON_SDK, result)
    (target / ".complete").write_text("ok\n")
    return python


def reference_page() -> str | None:
    """The connector page whose example must run (``../shared/reference`` of the repository or
    of a folder above it), or None where it is not present."""
    for folder in (REPO_ROOT, *REPO_ROOT.parents):
        candidate = folder / "shared" / "reference" / PAGE_NAME
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return None


def page_example(page: str) -> str:
    """The page's Node example, exactly as printed: from its import to ``console.log(user);``."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("import { ScalekitClient }"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "console.log(user);")
    return "\n".join(lines[start : end + 1]) + "\n"


def the_example() -> str:
    """The example from the page where it is present, else the copy kept beside the tests
    (which ``test_the_copy_is_the_pages_example`` compares with the page)."""
    page = reference_page()
    return page_example(page) if page is not None else EXAMPLE_COPY.read_text(encoding="utf-8")


def python_environment() -> dict[str, str]:
    """The environment for the SDK's interpreter: no tokenward settings, no virtualenv leaks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENWARD_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env
