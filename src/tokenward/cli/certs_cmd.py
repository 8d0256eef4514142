"""``tokenward certs dev``: a local CA and a certificate for TLS on the compatibility port."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenward.cli.app import app
from tokenward.cli.output import JSON_OPTION, fail, print_json

certs_app = typer.Typer(
    help="Certificates for TLS on the compatibility port.", no_args_is_help=True
)
app.add_typer(certs_app, name="certs")


@certs_app.command("dev")
def certs_dev(
    out: Path = typer.Option(
        ..., "--out", help="Folder to write ca.pem, server.pem and server-key.pem."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a local CA and a server certificate for localhost and 127.0.0.1 (development
    only), and print what `serve` and each SDK need to use them."""
    from tokenward.compat.certs import create_dev_certificates

    if out.exists() and not out.is_dir():
        fail(f"--out: {out} exists and is not a folder", code="VALIDATION_ERROR", as_json=as_json)
    try:
        paths = create_dev_certificates(out)
    except OSError as exc:
        fail(
            f"--out: cannot write into {out}: {exc.strerror or exc}",
            code="VALIDATION_ERROR",
            as_json=as_json,
        )
        return
    env = paths.environment()
    if as_json:
        print_json(
            {
                "ca": str(paths.ca),
                "cert": str(paths.cert),
                "key": str(paths.key),
                "serve": {
                    "TOKENWARD_TLS_CERT": str(paths.cert),
                    "TOKENWARD_TLS_KEY": str(paths.key),
                },
                "clients": env,
            }
        )
        return
    typer.echo(f"Wrote {paths.ca} (CA), {paths.cert} and {paths.key} (localhost, 127.0.0.1).")
    typer.echo("Serve with TLS on the compatibility port:")
    typer.echo(f"  export TOKENWARD_TLS_CERT={paths.cert}")
    typer.echo(f"  export TOKENWARD_TLS_KEY={paths.key}")
    typer.echo("Trust the CA in the SDKs' processes (gRPC for Python, requests, Node):")
    for name, value in env.items():
        typer.echo(f"  export {name}={value}")
