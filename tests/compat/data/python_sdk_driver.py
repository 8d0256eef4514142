"""Runs the hosted platform's Python SDK for a test, in the SDK's own virtual environment.

Reads one JSON command per line on stdin and answers one JSON line on stdout:

* ``{"client": NAME, "new": [env_url, client_id, client_secret]}`` builds ``ScalekitClient``
  (its constructor already fetches a token);
* ``{"client": NAME, "call": METHOD, "kwargs": {...}}`` runs ``client.actions.METHOD(**kwargs)``.

The answer is ``{"ok": true, "result": ...}`` (the SDK's object as plain JSON) or ``{"ok": false,
"error": {"type", "types", "message", "error_code", "tool_error_code", ...}}``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from requests import Response
from scalekit import ScalekitClient


def plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if isinstance(value, Message):
        return MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, Response):
        try:
            body = value.json()
        except ValueError:
            body = value.text
        return {"status_code": value.status_code, "json": body}
    if hasattr(value, "model_dump"):
        return plain(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def failure(exc: Exception) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": type(exc).__name__,
        "types": [cls.__name__ for cls in type(exc).__mro__],
        "message": str(exc),
    }
    for name in ("error_code", "tool_error_code", "tool_error_message", "http_status"):
        try:
            error[name] = plain(getattr(exc, name, None))
        except Exception:  # a property that cannot answer for this error
            error[name] = None
    return error


def main() -> None:
    clients: dict[str, ScalekitClient] = {}
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if "new" in command:
                clients[command["client"]] = ScalekitClient(*command["new"])
                answer: dict[str, Any] = {"ok": True, "result": None}
            else:
                method = getattr(clients[command["client"]].actions, command["call"])
                answer = {"ok": True, "result": plain(method(**command.get("kwargs", {})))}
        except Exception as exc:
            answer = {"ok": False, "error": failure(exc)}
        sys.stdout.write(json.dumps(answer, default=str) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
