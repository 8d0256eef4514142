"""Debian's nginx as a round-robin load balancer in front of several ``tokenward serve`` replicas,
configured and started by a test on free loopback ports (no root paths: everything under the
test's temporary directory).

Each answer carries ``X-Upstream`` (the replica that served it, or the one that failed it), so a
test can attribute every failure to a replica. nginx does not retry a request on another replica
(``proxy_next_upstream off``): a call that reached a killed replica fails visibly.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tokenward._serving import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_available() -> bool:
    return Path(NGINX).exists()


class Balancer:
    def __init__(self, workdir: Path, upstreams: list[int]) -> None:
        self.workdir = workdir
        self.upstreams = upstreams
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=30s;"
            for port in self.upstreams
        )
        temp = self.workdir / "temp"
        return f"""
worker_processes 1;
pid {self.workdir / "nginx.pid"};
error_log {self.workdir / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    upstream tokenward {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        underscores_in_headers on;
        location / {{
            proxy_pass http://tokenward;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_next_upstream off;
            proxy_read_timeout 60s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""

    def start(self) -> Balancer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "temp").mkdir(exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self._config())
        with (self.workdir / "nginx.stderr").open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    NGINX,
                    "-p",
                    str(self.workdir),
                    "-c",
                    str(conf),
                    "-e",
                    str(self.workdir / "error.log"),
                    "-g",
                    "daemon off; master_process on;",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.errors()}")
            try:
                httpx.get(f"{self.url}/healthz", trust_env=False, timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not start: {self.errors()}")

    def errors(self) -> str:
        parts = []
        for name in ("nginx.stderr", "error.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
