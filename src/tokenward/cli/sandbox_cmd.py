"""``tokenward sandbox``: serve the Discord emulator on loopback."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlencode

import typer

from tokenward.cli.app import app

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command("sandbox")
def sandbox(
    host: str | None = typer.Option(
        None, help="Interface to bind; loopback only unless --allow-remote. [default: 127.0.0.1]"
    ),
    port: int | None = typer.Option(None, help="Port to listen on. [default: 8090]"),
    token_lifetime: int | None = typer.Option(
        None, min=1, help="Access-token lifetime in seconds. [default: 604800]"
    ),
    code_lifetime: int | None = typer.Option(
        None, min=1, help="Authorization-code lifetime in seconds. [default: 600]"
    ),
    bucket_limit: int | None = typer.Option(
        None, min=1, help="Requests per per-route bucket window. [default: 5]"
    ),
    bucket_window: float | None = typer.Option(
        None, min=0.001, help="Per-route bucket window, seconds. [default: 5]"
    ),
    window_scale: float | None = typer.Option(
        None, min=0.001, help="Multiply every rate-limit window (e.g. 0.1 for tests). [default: 1]"
    ),
    global_limit: int | None = typer.Option(
        None, min=1, help="Global requests per second per token. [default: 50]"
    ),
    rate_limits: bool | None = typer.Option(
        None,
        "--rate-limits/--no-rate-limits",
        help="Enforce Discord-style rate limits (off for benchmarks of tokenward itself).",
        show_default=False,
    ),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow binding a non-loopback interface."
    ),
) -> None:
    """Run the Discord sandbox (OAuth2 server + REST API emulator) on loopback.

    Every option can also come from a TOKENWARD_SANDBOX_* variable (e.g.
    TOKENWARD_SANDBOX_TOKEN_LIFETIME); a flag wins over its variable.
    """
    from tokenward.sandbox import SandboxSettings, create_sandbox_app

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "token_lifetime": token_lifetime,
            "code_lifetime": code_lifetime,
            "bucket_limit": bucket_limit,
            "bucket_window": bucket_window,
            "window_scale": window_scale,
            "global_limit": global_limit,
            "rate_limits": rate_limits,
        }.items()
        if value is not None
    }
    settings = SandboxSettings(**overrides)
    if not is_loopback(settings.host) and not allow_remote:
        typer.echo(
            f"error: refusing to bind {settings.host!r}: the sandbox hands out fake credentials "
            "to anyone who asks; use a loopback address or pass --allow-remote",
            err=True,
        )
        raise typer.Exit(code=2)

    asgi = create_sandbox_app(settings)
    state = asgi.state.sandbox
    default = state.default_application
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{shown_host}:{settings.port}"
    query = urlencode(
        {
            "client_id": default.client_id,
            "response_type": "code",
            "scope": "identify email guilds",
            "redirect_uri": f"{base}/_sandbox/callback",
            "state": "xyz",
        }
    )
    limits = "off" if not settings.rate_limits else f"on (window scale {settings.window_scale:g})"
    typer.echo(
        "\n".join(
            [
                f"Discord sandbox on {base}  (API: {base}/api/v10, rate limits {limits})",
                "",
                f"Default application  {default.name}",
                f"  client id          {default.client_id}",
                f"  client secret      {default.client_secret}",
                f"  bot token          {default.bot_token}",
                f"  redirect URIs      {', '.join(default.redirect_uris) or '(none)'}",
                "",
                "Authorize in a browser (you land on a page that shows the code and how to "
                "exchange it):",
                f"  {base}/oauth2/authorize?{query}",
                "Register your redirect URIs (exact match, as on Discord):",
                f"  curl -X PATCH {base}/_sandbox/applications/{default.client_id} "
                "-H 'Content-Type: application/json' "
                '-d \'{"redirect_uris": ["http://127.0.0.1:8080/sso/v1/oauth/<id>/callback"]}\'',
                "or a new application:",
                f"  curl -X POST {base}/_sandbox/applications "
                "-H 'Content-Type: application/json' "
                '-d \'{"redirect_uris": ["http://127.0.0.1:9000/callback"]}\'',
                f"Point tokenward at it: TOKENWARD_DISCORD_BASE_URL={base}",
                "Fixtures: GET /_sandbox/fixtures; stats: GET /_sandbox/stats. Ctrl+C stops.",
            ]
        )
    )
    import uvicorn

    uvicorn.run(asgi, host=settings.host, port=settings.port, log_level="warning")
