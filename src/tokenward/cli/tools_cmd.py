"""``tokenward tools list|show|run``: the tool catalog from a shell.

``list`` and ``show`` read the catalog only (no database). ``run`` executes one tool for a
connected account through the same services the gateway uses (``Container(Settings())``), so
refresh, rate limits, retries and the path guard all apply.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tokenward.cli.app import app
from tokenward.cli.output import (
    err_console,
    fail_with,
    local_container,
    print_json,
    print_table,
)
from tokenward.errors import TokenwardError, ValidationError

if TYPE_CHECKING:
    from tokenward.providers.models import ToolSpec
    from tokenward.tools.catalogs import Catalogs
    from tokenward.tools.runner import ToolResult

tools_app = typer.Typer(help="The Discord tools agents can call.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document.")
_AUTH_LABELS = {"user": "user", "bot": "bot", "none": "none", "user_or_bot": "user or bot"}


def _flags(tool: ToolSpec) -> list[str]:
    flags = ["read-only" if tool.annotations.read_only else "writes"]
    if tool.annotations.deprecated:
        flags.append(f"deprecated (use {tool.annotations.replaced_by})")
    if tool.output != "json":
        flags.append(f"{tool.output} result")
    return flags


def _annotations(tool: ToolSpec) -> dict[str, Any]:
    return tool.annotations.model_dump(exclude_none=True)


def _api_view(tool: ToolSpec) -> dict[str, Any]:
    """A tool as ``GET /api/v1/tools`` lists it: the same keys and values."""
    from tokenward.tools.catalog import agent_description
    from tokenward.tools.schemas import input_schema

    a = tool.annotations
    return {
        "name": tool.name,
        "description": agent_description(tool),
        "input_schema": input_schema(tool),
        "annotations": {
            "read_only": a.read_only,
            "idempotent": a.idempotent,
            "destructive": a.destructive,
            "open_world": a.open_world,
            "deprecated": a.deprecated,
            "replaced_by": a.replaced_by,
        },
        "scopes": list(tool.scopes),
        "auth": tool.auth,
        "output": tool.output,
    }


def _details(tool: ToolSpec) -> dict[str, Any]:
    from tokenward.tools.catalog import agent_description
    from tokenward.tools.schemas import input_schema

    doc = {
        "name": tool.name,
        "title": tool.title,
        "auth": tool.auth,
        "scopes": list(tool.scopes),
        "annotations": _annotations(tool),
        "output": tool.output,
        "description": agent_description(tool),
        "input_schema": input_schema(tool),
    }
    if tool.media_type is not None:
        doc["media_type"] = tool.media_type
    return doc


def _error_line(exc: TokenwardError) -> str:
    """One line: the message, the stable code, and what to do about it when known."""
    parts = [f"{exc.message} [{exc.code}]"]
    fields = exc.details.get("fields")
    if isinstance(fields, dict) and fields and not all(str(n) in exc.message for n in fields):
        parts.append("; ".join(f"{name}: {why}" for name, why in fields.items()))
    hint = exc.details.get("hint")
    if isinstance(hint, str) and hint:
        parts.append(f"hint: {hint}")
    retry_after = exc.details.get("retry_after")
    if retry_after is not None:
        parts.append(f"retry after {retry_after}s")
    link = exc.details.get("authorization_link")
    if isinstance(link, str) and link:
        parts.append(f"authorization link: {link}")
    return " — ".join(parts)


def _parse_input(raw: str) -> object:
    text = sys.stdin.read() if raw == "-" else raw
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        raise ValidationError(f"--input {reason}", fields={"input": reason}) from exc


def _load_catalog() -> Catalogs:
    from tokenward.tools.catalogs import Catalogs

    return Catalogs.load()  # every provider's tools, as GET /api/v1/tools lists them


@tools_app.command("list")
def tools_list(as_json: bool = JSON_OPTION) -> None:
    """List the tools: name, auth, scopes, read-only / deprecated (``--json``: the same document
    as GET /api/v1/tools)."""
    tools = _load_catalog().tools()
    if as_json:
        print_json({"tools": [_api_view(t) for t in tools]})
        return
    print_table(
        f"Tools ({len(tools)})",
        ["name", "auth", "scopes", "flags"],
        [
            [
                t.name,
                _AUTH_LABELS.get(t.auth, t.auth),
                " ".join(t.scopes) or "-",
                ", ".join(_flags(t)),
            ]
            for t in tools
        ],
    )


@tools_app.command("show")
def tools_show(
    name: str = typer.Argument(..., help="Tool name, e.g. discord_get_my_user."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one tool: description, input schema and annotations."""
    try:
        tool = _load_catalog().get(name)
    except TokenwardError as exc:
        fail_with(exc, as_json=as_json, line=_error_line(exc))
    doc = _details(tool)
    if as_json:
        print_json(doc)
        return
    typer.echo(f"{tool.name} — {tool.title}")
    typer.echo(f"auth: {_AUTH_LABELS.get(tool.auth, tool.auth)}")
    typer.echo(f"scopes: {' '.join(tool.scopes) or '-'}")
    typer.echo(f"flags: {', '.join(_flags(tool))}")
    typer.echo("")
    typer.echo(doc["description"])
    typer.echo("")
    typer.echo("input schema:")
    typer.echo(json.dumps(doc["input_schema"], indent=2))
    typer.echo("annotations:")
    typer.echo(json.dumps(doc["annotations"], indent=2))


async def _execute(tool: str, tool_input: object, connection: str, identifier: str) -> ToolResult:
    async with local_container() as container:
        return await container.runner.execute(
            tool, tool_input, connection_name=connection, identifier=identifier
        )


@tools_app.command("run")
def tools_run(
    name: str = typer.Argument(..., help="Tool name, e.g. discord_get_my_user."),
    connection: str = typer.Option(..., "--connection", help="Connection name."),
    identifier: str = typer.Option(..., "--identifier", help="Your application's user id."),
    tool_input: str = typer.Option(
        "{}", "--input", help="The tool input as a JSON object ('-' reads standard input)."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Write the result to this file (an image as its raw bytes)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a tool for one connected account and print its result as JSON."""
    try:
        parsed = _parse_input(tool_input)
        result = asyncio.run(_execute(name, parsed, connection, identifier))
    except TokenwardError as exc:
        fail_with(exc, as_json=as_json, line=_error_line(exc))
    if output is not None:
        if result.image is not None:
            output.write_bytes(result.image.data)
            media_type, size = result.image.media_type, len(result.image.data)
        else:
            text = json.dumps(result.data, indent=2) + "\n"
            output.write_text(text, encoding="utf-8")
            media_type, size = "application/json", len(text.encode())
        if as_json:
            print_json(
                {
                    "output": str(output),
                    "media_type": media_type,
                    "bytes": size,
                    "execution_id": result.execution_id,
                }
            )
        else:
            typer.echo(f"Wrote {size} bytes ({media_type}) to {output}.")
        return
    if as_json:
        print_json(
            {
                "data": result.data_json(),
                "execution_id": result.execution_id,
                "notes": list(result.notes),
            }
        )
    else:
        print_json(result.data_json())
        for note in result.notes:
            err_console.print(f"note: {note}", highlight=False, markup=False)
