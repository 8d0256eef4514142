"""The ``tokenward`` command line."""

from __future__ import annotations

from tokenward.cli import api_clients_cmd as _api_clients_cmd  # noqa: F401  (registers commands)
from tokenward.cli import demo_cmd as _demo_cmd  # noqa: F401  (registers commands)
from tokenward.cli import gateway_cmd as _gateway_cmd  # noqa: F401  (registers commands)
from tokenward.cli import mcp_cmd as _mcp_cmd  # noqa: F401  (registers commands)
from tokenward.cli import sandbox_cmd as _sandbox_cmd  # noqa: F401  (registers commands)
from tokenward.cli import tools_cmd as _tools_cmd  # noqa: F401  (registers commands)
from tokenward.cli import vault_cmd as _vault_cmd  # noqa: F401  (registers commands)
from tokenward.cli.app import app


def main() -> None:
    """The entry point: whatever goes wrong ends as one line on stderr and a non-zero exit."""
    import sys

    from tokenward.cli.output import report_failure

    try:
        app()
    except Exception as exc:  # the last line of defence: no traceback reaches a terminal
        report_failure(exc, as_json="--json" in sys.argv[1:])


__all__ = ["app", "main"]
