"""``tokenward sandbox``: serve the Discord emulator."""

from __future__ import annotations

import typer

from tokenward.cli.app import app


@app.command("sandbox")
def sandbox(
    host: str = typer.Option("127.0.0.1", help="Interface to bind (keep it on loopback)."),
    port: int = typer.Option(8090, help="Port to listen on."),
) -> None:
    """Run the Discord sandbox (OAuth2 server + REST API emulator) on loopback."""
    import uvicorn

    from tokenward.sandbox import SandboxSettings, create_sandbox_app

    settings = SandboxSettings(host=host, port=port)
    asgi = create_sandbox_app(settings)
    uvicorn.run(asgi, host=host, port=port, log_level="warning")
