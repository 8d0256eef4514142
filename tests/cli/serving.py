"""``tokenward serve`` as a child process whose port is only known from what it prints."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from e2e.processes import tokenward_command

LISTENING = re.compile(r"listening on (http://\S+)")


class Serve:
    """``with Serve(env, tmp, "--port", "0") as s: s.url``; stops the process at the end."""

    def __init__(self, env: Mapping[str, str], workdir: Path, *args: str) -> None:
        self.args = ["serve", *args]
        self.env = dict(env)
        workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = workdir / "serve.stdout"
        self.stderr_path = workdir / "serve.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> Serve:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [*tokenward_command(), *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + timeout
        while not (found := LISTENING.search(self.stdout())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"serve printed no address:\n{self.output()}")
            time.sleep(0.05)
        self.url = found.group(1)
        return self

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout()}--- stderr ---\n{self.stderr()}"

    def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_serve(
    env: Mapping[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``tokenward serve ARGS`` that must stop on its own (a refusal)."""
    return subprocess.run(
        [*tokenward_command(), "serve", *args],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
