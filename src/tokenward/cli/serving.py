"""``tokenward serve``: bind, check, say where, then hand the socket to uvicorn.

The order is what an operator sees:

1. the settings (a bad value is one line naming its variable);
2. the port is bound here, before anything is printed: a busy port is one line and exit 1, and
   ``--port 0`` gets a free port from the kernel, which everything after uses;
3. the vault is checked (:mod:`tokenward.server.readiness`): keys that cannot open the database
   stop the server now; a database that is down or not migrated only delays readiness;
4. the banner: where it listens, the public URL links are built from (and whether it was
   derived from the bind address), the database, and warnings for a public URL that points
   somewhere this server is not listening.

With ``--workers N`` (``TOKENWARD_WORKERS``) steps 1-4 run once, in a supervising process; it
then forks N workers that each serve the already bound socket (the kernel hands each connection
to one of them), restarts a worker that dies, and passes SIGTERM/SIGINT on for a graceful stop.
Each worker runs the usual start-up (readiness, refresh recovery, webhook delivery), which is
safe side by side: those already coordinate replicas through the database. More than one worker
needs Redis: their rate limits must be one set, not N.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import typer

from tokenward.cli.output import fail_with, load_settings
from tokenward.config import ANY_ADDRESS, Settings
from tokenward.errors import ConfigError, TokenwardError

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for ``host:port``; a clear :class:`TokenwardError` when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host.strip("[]") == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host.strip("[]"), port))
        # Listening now: connections made once the banner is printed wait in the backlog
        # until uvicorn accepts them, instead of being refused.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        where = f"{_url_host(host)}:{port}"
        if exc.errno == errno.EADDRINUSE:
            message = (
                f"port {port} on {host} is already in use (another tokenward?); stop that process "
                "or choose another --port (--port 0 picks a free one)"
            )
        elif exc.errno == errno.EACCES:
            message = f"not allowed to listen on {where} (ports below 1024 need privileges)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            message = f"cannot listen on {where}: {host} is not an address of this machine"
        elif isinstance(exc, socket.gaierror):
            message = f"cannot listen on {where}: host name {host!r} does not resolve"
        else:
            message = f"cannot listen on {where}: {exc.strerror or type(exc).__name__}"
        raise TokenwardError(
            message, code="LISTEN_FAILED", details={"host": host, "port": port}
        ) from None
    return sock


def public_url_notes(settings: Settings, listen_port: int) -> tuple[str, list[str]]:
    """How the public URL was chosen (one line) and warnings about it.

    With ``PUBLIC_URL`` set, a different port than the one served is normal behind a proxy: an
    ``https://`` URL means TLS ends in front of tokenward (which speaks plain HTTP), and an
    ``http://`` URL without a port on a non-loopback host means a plain proxy on port 80. What is
    left — an explicit port that differs, or a loopback URL on another port — is almost always a
    stale value (``serve --port`` changed, the old URL stayed): links and the redirect URI would
    point where nothing listens, so say so. It is a warning, not a refusal: a proxy forwarding
    that port is possible.
    """
    base = settings.public_base
    warnings: list[str] = []
    if settings.public_url_derived:
        note = (
            f"{base} (derived from the bind address; set TOKENWARD_PUBLIC_URL to what browsers use)"
        )
        if settings.host.strip("[]") in ANY_ADDRESS:
            warnings.append(
                f"serve listens on every interface ({settings.host or '::'}), so it cannot "
                f"know the host name browsers use: links and the redirect URI use {base}, which "
                "only this machine can open; set TOKENWARD_PUBLIC_URL (e.g. "
                "https://tokenward.example.com)"
            )
        return note, warnings
    note = f"{base} (TOKENWARD_PUBLIC_URL)"
    try:
        parts = urlsplit(base)
        public_port = parts.port
    except ValueError:
        parts, public_port = urlsplit(""), None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        warnings.append(
            f"TOKENWARD_PUBLIC_URL {base!r} is not an http(s) URL with a host; links and the "
            "redirect URI built from it will not work"
        )
        return note, warnings
    if parts.scheme == "https":
        return note, warnings  # TLS ends in a proxy in front of us; any port can be right
    effective = public_port or 80
    if effective == listen_port:
        return note, warnings
    if public_port is None and not _is_loopback(parts.hostname):
        return note, warnings  # a plain reverse proxy on port 80
    warnings.append(
        f"TOKENWARD_PUBLIC_URL {base} names port {effective} but serve listens on port "
        f"{listen_port}: authorization links and the redirect URI point at port {effective}; "
        f"fix TOKENWARD_PUBLIC_URL unless a proxy forwards port {effective} to {listen_port}"
    )
    return note, warnings


async def preflight(settings: Settings) -> list[str]:
    """Check the vault before serving. Raises what can never work (keys, settings); returns what
    only delays readiness (database down or not migrated), one line each."""
    from tokenward.server.readiness import Readiness
    from tokenward.vault.repository import Vault

    vault = Vault.from_settings(settings)
    try:
        readiness = Readiness(settings, vault)
        if await readiness.prepare(strict=False):
            return []
        report = await readiness.report()
        return [str(c["error"]) for c in report.checks.values() if not c["ok"] and "error" in c]
    finally:
        await vault.close()


def check_workers(settings: Settings) -> None:
    """More than one worker shares nothing but Redis: refuse it without Redis."""
    if settings.workers > 1 and not settings.redis_url:
        raise ConfigError(
            f"--workers {settings.workers} needs TOKENWARD_REDIS_URL: without Redis each worker "
            "would keep its own rate limits and together they would exceed Discord's; set "
            "TOKENWARD_REDIS_URL (e.g. redis://127.0.0.1:6379/0) or run one worker",
            details={"workers": settings.workers, "field": "TOKENWARD_REDIS_URL"},
        )


def run_serve(
    *,
    host: str | None,
    port: int | None,
    workers: int | None = None,
    compat_port: int | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    compat_sock: socket.socket | None = None
    try:
        settings = load_settings()
        if host is not None:
            settings.host = host
        if port is not None:
            settings.port = port
        if workers is not None:
            settings.workers = workers
        check_workers(settings)
        if compat_port is not None:
            settings.compat_port = compat_port
        settings.tls_cert = tls_cert or settings.tls_cert
        settings.tls_key = tls_key or settings.tls_key
        if settings.compat_port is not None:
            from tokenward.compat.server import check_settings

            check_settings(settings)
        sock = bind_socket(settings.host, settings.port)
        if settings.compat_port is not None:
            try:
                compat_sock = bind_socket(settings.host, settings.compat_port)
            except TokenwardError:
                sock.close()
                raise
    except TokenwardError as exc:
        fail_with(exc)
    try:
        settings.port = int(sock.getsockname()[1])
        if compat_sock is not None:
            settings.compat_port = int(compat_sock.getsockname()[1])
        not_ready = asyncio.run(preflight(settings))
    except BaseException as exc:
        sock.close()
        if compat_sock is not None:
            compat_sock.close()
        if isinstance(exc, TokenwardError):
            fail_with(exc)
        raise
    _banner(settings, not_ready)
    if settings.workers > 1:
        _serve_workers(settings, sock, compat_sock)
    else:
        _serve_on(settings, sock, compat_sock)


def _banner(settings: Settings, not_ready: list[str]) -> None:
    from tokenward import __version__
    from tokenward.vault.db import database_label

    listen = f"http://{_url_host(settings.host or '0.0.0.0')}:{settings.port}"  # noqa: S104
    public, warnings = public_url_notes(settings, settings.port)
    lines = [
        f"tokenward {__version__} listening on {listen}",
        f"  public URL  {public}",
        f"  database    {database_label(settings)}",
        *(
            [f"  workers     {settings.workers} (rate limits shared through Redis)"]
            if settings.workers > 1
            else []
        ),
        f"  health      {settings.public_base}/healthz (live), /readyz (ready)",
    ]
    if settings.compat_port is not None:
        scheme = "https" if settings.tls_cert is not None else "http"
        where = f"{scheme}://{_url_host(settings.host or '0.0.0.0')}:{settings.compat_port}"  # noqa: S104
        lines.append(f"  compat      {where} (the hosted platform's SDKs: gRPC + REST)")
    typer.echo("\n".join(lines))
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    for problem in not_ready:
        typer.echo(f"warning: not ready yet: {problem}", err=True)
    sys.stdout.flush()


def _serve_on(
    settings: Settings, sock: socket.socket, compat_sock: socket.socket | None = None
) -> None:
    import uvicorn

    from tokenward.server.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # X-Forwarded-For is read by the app, only from TOKENWARD_TRUSTED_PROXIES (uvicorn's
        # default would believe it from any local peer).
        proxy_headers=False,
        server_header=False,  # no "Server: uvicorn" on every answer (and no regex check of it)
    )
    server = uvicorn.Server(config)
    try:
        if compat_sock is None:
            server.run(sockets=[sock])
        else:
            from tokenward.compat.server import run_with_compat

            run_with_compat(server, sock, compat_sock, settings)
    finally:
        sock.close()
        if compat_sock is not None:
            compat_sock.close()
    if not server.started:
        fail_with(
            TokenwardError("the server did not start; see the log lines above", code="NOT_STARTED")
        )


_NOT_STARTED = 3  # a worker's exit status when its server never started: do not restart it


def _run_worker(
    settings: Settings, sock: socket.socket, compat_sock: socket.socket | None = None
) -> int:
    """One worker: its own event loop, container and connections, on the inherited socket."""
    import uvicorn

    from tokenward.server.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
        server_header=False,  # no "Server: uvicorn" on every answer (and no regex check of it)
    )
    server = uvicorn.Server(config)
    if compat_sock is None:
        server.run(sockets=[sock])
    else:
        from tokenward.compat.server import run_with_compat

        run_with_compat(server, sock, compat_sock, settings)
    return 0 if server.started else _NOT_STARTED


def _serve_workers(
    settings: Settings, sock: socket.socket, compat_sock: socket.socket | None = None
) -> None:
    """Fork ``settings.workers`` workers on ``sock`` and supervise them (module docstring)."""
    import tokenward.server.app  # noqa: F401  imported once here, shared by the forked workers

    children: dict[int, int] = {}  # pid -> worker number
    stopping = False
    failed = False

    def spawn(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 1
            try:
                code = _run_worker(settings, sock, compat_sock)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = number

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(settings.workers):
        spawn(number)
    try:
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            number = children.pop(pid, -1)
            if number < 0 or stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == _NOT_STARTED:
                typer.echo(
                    f"error: worker {number} could not start (see above); stopping", err=True
                )
                failed = True
                stop(signal.SIGTERM, None)
                continue
            typer.echo(
                f"warning: worker {number} (pid {pid}) ended with status {code}; starting another",
                err=True,
            )
            time.sleep(0.2)
            if not stopping:
                spawn(number)
    finally:
        sock.close()
        if compat_sock is not None:
            compat_sock.close()
    if failed:
        fail_with(
            TokenwardError("a worker did not start; see the log lines above", code="NOT_STARTED")
        )
