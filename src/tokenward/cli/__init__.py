"""The ``tokenward`` command line."""

from __future__ import annotations

from tokenward.cli import admins_cmd as _admins_cmd  # noqa: F401  (registers commands)
from tokenward.cli import api_clients_cmd as _api_clients_cmd  # noqa: F401  (registers commands)
from tokenward.cli import certs_cmd as _certs_cmd  # noqa: F401  (registers commands)
from tokenward.cli import demo_cmd as _demo_cmd  # noqa: F401  (registers commands)
from tokenward.cli import gateway_cmd as _gateway_cmd  # noqa: F401  (registers commands)
from tokenward.cli import mcp_cmd as _mcp_cmd  # noqa: F401  (registers commands)
from tokenward.cli import mcp_sessions_cmd as _mcp_sessions_cmd  # noqa: F401  (registers commands)
from tokenward.cli import sandbox_cmd as _sandbox_cmd  # noqa: F401  (registers commands)
from tokenward.cli import tools_cmd as _tools_cmd  # noqa: F401  (registers commands)
from tokenward.cli import vault_cmd as _vault_cmd  # noqa: F401  (registers commands)
from tokenward.cli import webhooks_cmd as _webhooks_cmd  # noqa: F401  (registers commands)
from tokenward.cli.app import app


def _kind(exc: BaseException, name: str) -> bool:
    # Typer vendors Click (its exception classes are private): match them by class name.
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def main() -> None:
    """The entry point: whatever goes wrong ends as one line on stderr and a non-zero exit
    (a usage mistake too: ``error: Missing option '--name'. (see `tokenward ... --help`)``)."""
    import sys

    from tokenward.cli.output import report_failure
    from tokenward.errors import TokenwardError

    as_json = "--json" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)
    except Exception as exc:  # the last line of defence: no traceback reaches a terminal
        if _kind(exc, "NoArgsIsHelpError"):
            sys.exit(2)  # the help was printed: a bare `tokenward connections` asks for it
        if _kind(exc, "ClickException"):
            message = exc.format_message()  # type: ignore[attr-defined]
            ctx = getattr(exc, "ctx", None)
            if _kind(exc, "UsageError") and ctx is not None:
                message = f"{message} (see `{ctx.command_path} --help`)"
            report_failure(
                TokenwardError(message, code="USAGE_ERROR"),
                as_json=as_json,
                exit_code=int(getattr(exc, "exit_code", 2)),
            )
        if _kind(exc, "Abort"):
            report_failure(TokenwardError("aborted", code="ABORTED"), as_json=as_json)
        report_failure(exc, as_json=as_json)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
