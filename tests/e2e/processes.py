"""Real ``tokenward`` processes for tests that use the product the way a person does.

``ServiceProcess`` runs ``tokenward sandbox`` or ``tokenward serve`` as a child process on a free
loopback port, waits until it answers, and keeps its output in files so that a failing test can
show it. ``Cli`` runs one ``tokenward`` command per call against a given environment and keeps a
transcript of everything the commands printed (for the no-secret-in-output checks).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_OUTPUT = REPO_ROOT / "test-output"


def tokenward_command() -> list[str]:
    """The installed ``tokenward`` entry point of this interpreter's environment."""
    script = Path(sys.executable).parent / "tokenward"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tokenward.cli import main; main()"]


def new_encryption_keys(kid: str = "k1") -> str:
    """A ``TOKENWARD_ENCRYPTION_KEYS`` value with one fresh AES-256 key."""
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def base_environment() -> dict[str, str]:
    """The parent's environment without any ``TOKENWARD_*`` setting that could leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    for name in ("FORCE_COLOR", "CLICOLOR_FORCE", "COLUMNS"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def gateway_environment(
    *,
    data_dir: Path,
    port: int,
    sandbox_url: str,
    encryption_keys: str | None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Settings for ``tokenward serve`` and the CLI, as an operator would export them."""
    env = base_environment()
    env.update(
        {
            "TOKENWARD_DATA_DIR": str(data_dir),
            "TOKENWARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "TOKENWARD_PORT": str(port),
            "TOKENWARD_DISCORD_BASE_URL": sandbox_url,
        }
    )
    if encryption_keys is not None:
        env["TOKENWARD_ENCRYPTION_KEYS"] = encryption_keys
    env.update(extra or {})
    return env


class ServiceProcess:
    """A long-running ``tokenward`` subcommand; ``start()`` returns once ``health_url`` answers."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        health_url: str,
        log_dir: Path,
    ) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.health_url = health_url
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._proc = subprocess.Popen(
                [*tokenward_command(), *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise RuntimeError(
                        f"{self.name} exited with code {code} before answering:\n{self.output()}"
                    )
                try:
                    if client.get(self.health_url).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{self.name} did not answer {self.health_url} within {timeout:.0f} s:\n"
                        f"{self.output()}"
                    )
                time.sleep(0.05)

    def stop(self) -> None:
        """Terminate, wait, and kill if it does not stop in time."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def kill(self) -> None:
        """``kill -9``: no chance to finish anything (a crash)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def terminate(self, timeout: float = 60.0) -> int:
        """``SIGTERM``, then wait for the process to exit on its own; returns its exit code."""
        proc, self._proc = self._proc, None
        assert proc is not None, f"{self.name} is not running"
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def output(self) -> str:
        return f"--- {self.name} stderr ---\n{self.stderr()}"


@dataclass
class CliResult:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The one JSON document on stdout (``json.loads`` refuses anything after it)."""
        assert self.stdout.strip(), f"tokenward {' '.join(self.args)} printed nothing"
        return json.loads(self.stdout)

    def describe(self) -> str:
        return (
            f"$ tokenward {' '.join(self.args)}  (exit {self.code})\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


@dataclass
class Cli:
    """Runs ``tokenward ...`` as a subprocess with a fixed environment."""

    env: dict[str, str]
    cwd: Path
    transcript: list[CliResult] = field(default_factory=list)

    def run(
        self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None
    ) -> CliResult:
        merged = {**self.env, **(env or {})}
        proc = subprocess.run(
            [*tokenward_command(), *args],
            env=merged,
            cwd=self.cwd,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        result = CliResult(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        self.transcript.append(result)
        return result

    def ok(self, *args: str, **kwargs: Any) -> CliResult:
        """Run a command that must succeed."""
        result = self.run(*args, **kwargs)
        assert result.code == 0, result.describe()
        assert "Traceback" not in result.stderr, result.describe()
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run ``tokenward ARGS --json``; it must succeed and print exactly one JSON document."""
        result = self.ok(*args, "--json", **kwargs)
        try:
            return result.json()
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not one JSON document ({exc}):\n{result.describe()}") from exc

    def fails(self, *args: str, **kwargs: Any) -> CliResult:
        """Run a command that must be refused: exit 1, no traceback."""
        result = self.run(*args, **kwargs)
        assert result.code == 1, result.describe()
        assert "Traceback" not in result.stdout + result.stderr, result.describe()
        return result

    def error_line(self, *args: str, **kwargs: Any) -> str:
        """Run a command that must be refused with exactly one ``error: ...`` line on stderr."""
        result = self.fails(*args, **kwargs)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.describe()
        assert lines[0].startswith("error: "), result.describe()
        assert result.stdout == "", result.describe()
        return lines[0]

    def json_error(self, *args: str, **kwargs: Any) -> dict[str, Any]:
        """Run ``ARGS --json`` that must be refused: exit 1, one JSON error document."""
        result = self.fails(*args, "--json", **kwargs)
        doc: dict[str, Any] = result.json()
        assert set(doc) == {"error"}, result.describe()
        assert doc["error"]["code"], result.describe()
        assert doc["error"]["message"], result.describe()
        return doc

    def leaked(self, secrets: Iterable[str]) -> list[str]:
        """Which commands printed any of ``secrets`` (named by command, never by value)."""
        values = [s for s in secrets if s]
        return [
            f"tokenward {' '.join(r.args)}"
            for r in self.transcript
            if any(v in r.stdout or v in r.stderr for v in values)
        ]


def start_sandbox(
    log_dir: Path,
    *,
    name: str = "sandbox",
    rate_limits: bool = True,
    env: Mapping[str, str] | None = None,
) -> tuple[ServiceProcess, str]:
    """``tokenward sandbox`` on a free loopback port, answering; the process and its URL."""
    from tokenward._serving import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["sandbox", "--port", str(port), *([] if rate_limits else ["--no-rate-limits"])]
    process = ServiceProcess(
        name,
        args,
        {**base_environment(), **(env or {})},
        health_url=f"{url}/_sandbox/stats",
        log_dir=log_dir,
    ).start()
    return process, url


def sandbox_secrets(sandbox_url: str) -> list[str]:
    """Every token, code and secret the sandbox has handed out (``GET /_sandbox/tokens``)."""
    body = httpx.get(f"{sandbox_url}/_sandbox/tokens", trust_env=False).raise_for_status().json()
    values: list[str] = []
    for key in ("access_tokens", "refresh_tokens", "codes", "client_secrets", "bot_tokens"):
        for item in body.get(key, []):
            values.append(item if isinstance(item, str) else item["value"])
    return values


def register_application(sandbox_url: str, name: str = "Tokenward E2E") -> dict[str, Any]:
    """Create an application at the sandbox, as a developer does in Discord's portal."""
    response = httpx.post(
        f"{sandbox_url}/_sandbox/applications",
        json={"redirect_uris": ["http://127.0.0.1:9/placeholder"], "name": name},
        trust_env=False,
    )
    response.raise_for_status()
    app: dict[str, Any] = response.json()
    return app


def set_redirect_uri(sandbox_url: str, client_id: str, redirect_uri: str) -> None:
    """Register tokenward's callback as the application's redirect URI."""
    httpx.patch(
        f"{sandbox_url}/_sandbox/applications/{client_id}",
        json={"redirect_uris": [redirect_uri]},
        trust_env=False,
    ).raise_for_status()
