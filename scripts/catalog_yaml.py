"""A small, stable YAML writer for the generated catalog files (``tools.yaml``).

PyYAML's dumper wraps and quotes in ways that change with its version; the committed catalog
must come out byte-for-byte the same on every machine, so this writer is explicit: short
mappings and lists on one line (flow style), long ones as blocks, long text folded (``>-``),
and any string that is not obviously plain written as a JSON string (JSON strings are valid
YAML double-quoted scalars).
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import yaml

WIDTH = 100
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_ ./@()+'-]*$")
_KEYWORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if (
        _PLAIN.match(text)
        and text.lower() not in _KEYWORDS
        and not text.endswith(" ")
        and ": " not in text
        and " #" not in text
    ):
        return text
    return json.dumps(text, ensure_ascii=False)


def flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def _folded(text: str, indent: int) -> list[str] | None:
    if "\n" in text or "  " in text or text != text.strip() or not text:
        return None
    lines = textwrap.wrap(
        text, width=WIDTH - indent, break_long_words=False, break_on_hyphens=False
    )
    if " ".join(lines) != text:
        return None
    return lines


def block(value: Any, indent: int = 0) -> list[str]:
    """Lines of ``value`` (a mapping or list) in block style at ``indent`` spaces."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            lines.extend(_entry(f"{pad}{scalar(key)}:", item, indent))
        return lines
    for item in value:
        if isinstance(item, dict) and item:
            inner = block(item, indent + 2)
            inner[0] = pad + "- " + inner[0][indent + 2 :]
            lines.extend(inner)
        else:
            lines.extend(_entry(f"{pad}-", item, indent))
    return lines


def _entry(head: str, item: Any, indent: int) -> list[str]:
    if isinstance(item, dict | list | tuple):
        if not item:
            return [f"{head} {flow(item)}"]
        one_line = f"{head} {flow(item)}"
        if len(one_line) <= WIDTH and not _has_nested_blocks(item):
            return [one_line]
        return [head, *block(item, indent + 2)]
    text = scalar(item)
    if isinstance(item, str) and len(head) + 1 + len(text) > WIDTH:
        folded = _folded(item, indent + 2)
        if folded is not None:
            return [f"{head} >-", *(" " * (indent + 2) + line for line in folded)]
    return [f"{head} {text}"]


def _has_nested_blocks(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return any(isinstance(v, dict) and len(flow(v)) > WIDTH // 2 for v in items)


def dump(value: dict[str, Any], header: str = "") -> str:
    """``value`` as YAML text (after ``header``); checked to read back as exactly ``value``."""
    text = header + "\n".join(block(value)) + "\n"
    if yaml.safe_load(text) != json.loads(json.dumps(value)):
        raise AssertionError("the YAML writer does not round-trip this value")
    return text
