"""``tokenward demo``: the whole product, offline, in one command.

Starts the Discord sandbox and the gateway on free loopback ports with a throwaway data dir,
creates a connection and an API client, then acts exactly as an application would, through the
SDK: an authorization link, the consent (scripted, or by a person with ``--browser``), tools,
a proxied call, and a token that expires and is refreshed on the fly. It ends by printing the
dashboard's URL and a throwaway operator's credentials (``--keep`` keeps everything up until
Ctrl-C).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from tokenward.cli.app import app

console = Console(highlight=False)
DEMO_OPERATOR = "demo-operator"
DEMO_SCOPES = ["identify", "email", "guilds", "guilds.members.read", "connections", "openid"]


def _step(number: int, text: str) -> None:
    console.print(f"[bold cyan]{number:>2}.[/] {text}")


def _ok(text: str) -> None:
    console.print(f"    [green]✓[/] {text}")


@app.command("demo")
def demo(
    browser: bool = typer.Option(
        False, "--browser", help="Print the link and wait for you to click Authorize yourself."
    ),
    keep: bool = typer.Option(False, "--keep", help="Keep the servers running at the end."),
) -> None:
    """Run tokenward end to end against the built-in Discord sandbox (no network needed)."""
    import asyncio

    import httpx
    from rich.table import Table

    from tokenward._serving import BackgroundServer, free_port
    from tokenward.config import Settings
    from tokenward.sandbox import SandboxSettings, create_sandbox_app
    from tokenward.sandbox.browser import walk_consent
    from tokenward.sdk import Client
    from tokenward.server.app import create_app
    from tokenward.server.container import Container

    started = time.perf_counter()
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tokenward-demo-") as tmp:
        _step(1, "Starting the Discord sandbox and the tokenward gateway on loopback")
        sandbox = BackgroundServer(create_sandbox_app(SandboxSettings())).start()
        port = free_port()
        settings = Settings(
            data_dir=Path(tmp),
            encryption_keys="demo:" + base64.b64encode(os.urandom(32)).decode(),
            public_url=f"http://127.0.0.1:{port}",
            port=port,
            discord_base_url=sandbox.url,
        )
        gateway = BackgroundServer(create_app(settings, setup_logging=False), port=port).start()
        _ok(f"sandbox  {sandbox.url}")
        _ok(f"gateway  {gateway.url}   (API docs: {gateway.url}/docs)")
        control = httpx.Client(base_url=sandbox.url, trust_env=False)
        try:
            _step(2, "Registering a Discord application, a connection and an API client")
            discord_app = control.post(
                "/_sandbox/applications", json={"redirect_uris": ["http://127.0.0.1:9/x"]}
            ).json()

            async def setup() -> tuple[str, str, str]:
                container = Container(settings)
                await container.start()
                try:
                    connection = await container.vault.create_connection(
                        name="discord",
                        provider="discord",
                        client_id=discord_app["client_id"],
                        client_secret=discord_app["client_secret"],
                        scopes=[
                            "identify",
                            "email",
                            "guilds",
                            "guilds.members.read",
                            "connections",
                            "openid",
                        ],
                        bot_token=discord_app["bot_token"],
                    )
                    api_client, secret = await container.vault.create_api_client("demo-app")
                    await container.admins.create(DEMO_OPERATOR, operator_password)
                    return (
                        container.oauth.redirect_uri(connection.id),
                        api_client.client_id,
                        secret.get_secret_value(),
                    )
                finally:
                    await container.close()

            operator_password = secrets.token_urlsafe(15)
            redirect_uri, client_id, client_secret = asyncio.run(setup())
            control.patch(
                f"/_sandbox/applications/{discord_app['client_id']}",
                json={"redirect_uris": [redirect_uri]},
            ).raise_for_status()
            _ok(f"connection 'discord' → redirect URI {redirect_uri}")
            _ok(f"API client {client_id}")

            with Client(gateway.url, client_id, client_secret) as client:
                actions = client.actions
                _step(3, "Getting an authorization link for user 'user_123' (SDK)")
                link = actions.get_authorization_link(
                    connection_name="discord", identifier="user_123"
                )
                _ok(link.link)
                if browser:
                    console.print(
                        "    Open the link above in your browser, click [bold]Continue to "
                        "Discord[/], then [bold]Authorize[/]; waiting up to 5 minutes…"
                    )
                    deadline = time.monotonic() + 300
                    while time.monotonic() < deadline:
                        account = actions.get_connected_account(
                            connection_name="discord", identifier="user_123"
                        )
                        if account.status == "ACTIVE":
                            break
                        time.sleep(1)
                    else:
                        raise typer.Exit(1)
                else:
                    _step(4, "Completing the consent page the way a browser would (Authorize)")
                    result = walk_consent(link.link)
                    if result.status_code != 200:
                        console.print(f"[red]consent failed ({result.status_code})[/]")
                        raise typer.Exit(1)
                account = actions.get_connected_account(
                    connection_name="discord", identifier="user_123"
                )
                _ok(
                    f"account {account.id} is {account.status} "
                    f"(Discord user {account.provider_user_id})"
                )

                _step(5, "Calling tools as that user")
                calls: list[tuple[str, dict[str, Any], str]] = [
                    ("discord_get_my_user", {}, "username"),
                    ("discord_list_my_guilds", {"limit": 10}, "guilds"),
                    ("discord_get_guild_widget", {"guild_id": "1200000000000000001"}, "widget"),
                    ("discord_resolve_invite", {"invite_code": "discord.gg/Hb7xQp2K"}, "invite"),
                ]
                for name, tool_input, label in calls:
                    t0 = time.perf_counter()
                    out = actions.execute_tool(
                        tool_name=name,
                        tool_input=tool_input,
                        identifier="user_123",
                        connection_name="discord",
                    )
                    timings[name] = (time.perf_counter() - t0) * 1000
                    _ok(f"{name:<28} {_summary(label, out.data)}")

                _step(6, "A proxied call, as in the hosted platform's example: GET /api/users/@me")
                me = actions.request(
                    connection_name="discord", identifier="user_123", path="/api/users/@me"
                )
                _ok(f"HTTP {me.status_code}: {json.dumps(me.json())[:90]}…")

                _step(7, "Expiring the user's token at Discord, then calling again")
                expired = control.post("/_sandbox/tokens/expire").json()
                refreshes_before = control.get("/_sandbox/stats").json()["grants"]["refresh_token"]
                _ok(f"sandbox expired {expired.get('expired', '?')} access token(s)")
                again = actions.execute_tool(
                    tool_name="discord_get_my_user",
                    tool_input={},
                    identifier="user_123",
                    connection_name="discord",
                )
                refreshes = (
                    control.get("/_sandbox/stats").json()["grants"]["refresh_token"]
                    - refreshes_before
                )
                _ok(
                    f"discord_get_my_user still works ({again.data.get('username')}); "
                    f"tokenward refreshed the token {refreshes} time(s)"
                )
                stats = control.get("/_sandbox/stats").json()

            table = Table(title="tokenward demo: summary", show_header=True)
            table.add_column("what")
            table.add_column("result")
            table.add_row("authorization", f"user_123 → Discord user {account.provider_user_id}")
            table.add_row("tools called", f"{len(calls) + 1} (all succeeded)")
            table.add_row("proxied call", f"GET /api/users/@me → {me.status_code}")
            table.add_row("token refreshes", f"{refreshes} after the sandbox expired the token")
            table.add_row("requests to Discord (sandbox)", str(stats["requests"]["total"]))
            table.add_row("429s received", str(stats["rate_limited"]))
            table.add_row("total time", f"{time.perf_counter() - started:.1f} s")
            console.print()
            console.print(table)
            console.print(
                f"Dashboard: {gateway.url}/dashboard — sign in as [bold]{DEMO_OPERATOR}[/] "
                f"with password [bold]{operator_password}[/] (a throwaway operator of this demo)",
                soft_wrap=True,
            )
            if keep:
                console.print(
                    f"Servers still running: gateway {gateway.url}, sandbox {sandbox.url}. "
                    f"API client {client_id} / secret {client_secret}. Ctrl-C to stop.",
                    soft_wrap=True,
                )
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
            else:
                console.print("Run with --keep to keep the servers (and the dashboard) up.")
        finally:
            control.close()
            gateway.stop()
            sandbox.stop()


def _summary(label: str, data: Any) -> str:
    if label == "username" and isinstance(data, dict):
        return f"{data.get('global_name')} (@{data.get('username')}, id {data.get('id')})"
    if label == "guilds" and isinstance(data, list):
        return f"{len(data)} guilds: " + ", ".join(str(g.get("name")) for g in data[:3])
    if label == "widget" and isinstance(data, dict):
        return f"{data.get('name')}: {data.get('presence_count')} online"
    if label == "invite" and isinstance(data, dict):
        guild = data.get("guild") or {}
        return f"invite to {guild.get('name')} (#{(data.get('channel') or {}).get('name')})"
    return str(data)[:80]
