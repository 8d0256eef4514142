"""Minimal valid tool inputs, built from each tool's own schema (shared by the spec tests and
the validation tests, which load this file by path)."""

from __future__ import annotations

import base64
import re
from typing import Any

from tokenward.providers.models import ParamSpec, ToolSpec, resolve, schema_types

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
# Inputs the schema-driven builder cannot guess (a union whose branches need different data).
EXAMPLES: dict[str, dict[str, Any]] = {
    "discordbot_create_interaction_response": {"type": 4, "data": {"content": "Pong"}},
}


def example(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """A small value that satisfies ``schema`` (required properties only)."""
    node = resolve(schema, defs)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return next(v for v in node["enum"] if v is not None)
    branches = node.get("anyOf")
    if branches:
        return example(next(b for b in branches if b != {"type": "null"}), defs, depth)
    kinds = [t for t in schema_types(node) if t != "null"]
    kind = kinds[0] if kinds else ("object" if "properties" in node else "string")
    if kind == "string":
        if node.get("format") == "snowflake":
            return "1100000000000000001"
        if node.get("format") == "date-time":
            return "2026-01-01T00:00:00Z"
        if node.get("format") == "uri":
            return "https://example.com/x"
        pattern = node.get("pattern")
        if pattern and not re.fullmatch(pattern, "1"):
            raise AssertionError(f"no example for pattern {pattern}")
        return "1" if pattern else "x" * max(1, node.get("minLength", 1))
    if kind == "integer":
        return max(node.get("minimum", 1), node.get("exclusiveMinimum", 0) + 1)
    if kind == "number":
        return node.get("minimum", 0.5)
    if kind == "boolean":
        return True
    if kind == "array":
        item = example(node["items"], defs, depth + 1)
        count = node.get("minItems", 0)
        if isinstance(item, str) and item.isdigit():
            return [str(int(item) + i) for i in range(count)]  # distinct IDs
        return [item] * count
    props = node.get("properties", {})
    return {k: example(props[k], defs, depth + 1) for k in node.get("required", [])}


def param_example(tool: ToolSpec, param: ParamSpec) -> Any:
    if param.kind == "invite_code":
        return "https://discord.gg/hTKzmak"
    if param.kind == "template_code":
        return "hgM48av5Q69A"
    if param.kind == "user_ref":
        return "@me"
    if param.kind == "emoji":
        return "👍"
    if param.kind == "base64_file":
        assert param.file is not None
        data = PNG if "image/png" in param.file.media_types else b"user_id\n1\n"
        return base64.b64encode(data).decode()
    return example(param.schema_, tool.defs)


def minimal_input(tool: ToolSpec) -> dict[str, Any]:
    if tool.name in EXAMPLES:
        base = {
            p.name: param_example(tool, p)
            for p in tool.params
            if p.required and p.name not in EXAMPLES[tool.name]
        }
        return {**base, **EXAMPLES[tool.name]}
    given = {p.name: param_example(tool, p) for p in tool.params if p.required}
    if tool.message is not None and tool.message.require_one and tool.message.at is None:
        given["content"] = "Hello"
    return given
