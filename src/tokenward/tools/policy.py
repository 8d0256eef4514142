"""Tool policy: which tools may run, decided before anything is sent.

**A connection's ``allowed_tools``** is an ordered list of glob patterns (``fnmatch``: ``*``,
``?``, ``[...]``) over tool names. A pattern starting with ``!`` is a deny rule. As in
``.gitignore``, the **last pattern that matches a tool decides**:

- ``["*", "!*_ban*"]``: every tool but those with ``_ban`` in their name;
- ``["discordbot_get_*", "discordbot_list_*"]``: only these (a tool no pattern matches is
  refused when the list has any allow pattern);
- ``["!*_delete_*", "!*_ban*"]``: only deny rules, so every other tool is allowed;
- ``["*", "!*_delete_*", "discordbot_delete_own_reaction"]``: deletions refused, except one.

``None`` (the default) allows every tool; ``[]`` allows none. Each pattern must match at least one
tool of the connection's provider when it is set, so a typo (``!*_bann*``) is an error rather than
a rule that silently never applies.

**A read-only MCP session** runs only tools annotated ``read_only``.

A refusal is :class:`~tokenward.errors.ToolNotAllowed` (403 ``TOOL_NOT_ALLOWED``) naming the policy
and the rule, the same over HTTP, the SDK and MCP.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokenward.errors import ToolNotAllowed, ValidationError

__all__ = [
    "MAX_PATTERNS",
    "Decision",
    "check_patterns",
    "decide",
    "read_only_refusal",
    "refusal",
]

MAX_PATTERNS = 200
MAX_PATTERN_LENGTH = 128
_PATTERN = re.compile(r"!?[a-z0-9_*?\[\]-]+")
CONNECTION_POLICY = "connection.allowed_tools"
SESSION_POLICY = "mcp_session.read_only"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str | None
    """The pattern that decided, or None when none matched."""


def _matches(tool: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(tool, pattern[1:] if pattern.startswith("!") else pattern)


def decide(patterns: Sequence[str] | None, tool: str) -> Decision:
    """Whether ``patterns`` allow ``tool`` (see the module docstring)."""
    if patterns is None:
        return Decision(True, None)
    for pattern in reversed(patterns):
        if _matches(tool, pattern):
            return Decision(not pattern.startswith("!"), pattern)
    only_denies = all(p.startswith("!") for p in patterns) and bool(patterns)
    return Decision(only_denies, None)


def check_patterns(
    patterns: Iterable[str] | None, tools: Sequence[str], *, field: str = "allowed_tools"
) -> list[str] | None:
    """``patterns`` as a list, or a ValidationError naming ``field`` and every bad pattern: not a
    glob over tool names, too long, or matching none of ``tools`` (the provider's)."""
    if patterns is None:
        return None
    if isinstance(patterns, str):
        patterns = [p for p in patterns.replace(",", " ").split() if p]
    given = list(patterns)
    if len(given) > MAX_PATTERNS:
        reason = f"at most {MAX_PATTERNS} patterns"
        raise ValidationError(f"{field}: {reason}", fields={field: reason})
    problems: list[str] = []
    for pattern in given:
        shown = repr(str(pattern)[:64])
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
            problems.append(f"{shown} is not a pattern of at most {MAX_PATTERN_LENGTH} characters")
        elif not _PATTERN.fullmatch(pattern):
            problems.append(
                f"{shown} is not a glob over tool names (a-z 0-9 _ - * ? [ ], '!' first to deny)"
            )
        elif not any(_matches(tool, pattern) for tool in tools):
            problems.append(f"{shown} matches none of the provider's tools")
    if problems:
        reason = "; ".join(problems[:10])
        raise ValidationError(f"{field}: {reason}", fields={field: reason})
    return given


def refusal(
    patterns: Sequence[str] | None, tool: str, *, connection_name: str
) -> ToolNotAllowed | None:
    """The error refusing ``tool`` on this connection, or None when its policy allows it."""
    decision = decide(patterns, tool)
    if decision.allowed:
        return None
    if decision.rule is not None:
        why = f"the rule {decision.rule!r} of its allowed_tools refuses it"
    else:
        why = "none of its allowed_tools patterns allows it"
    return ToolNotAllowed(
        f"{tool} is not allowed on connection {connection_name!r}: {why}",
        details={
            "tool_name": tool,
            "connection_name": connection_name,
            "policy": CONNECTION_POLICY,
            "rule": decision.rule,
            "hint": "The connection's owner decides which tools may run "
            "(PATCH /api/v1/connections/{name} allowed_tools); do not retry.",
        },
    )


def read_only_refusal(tool: str, *, read_only_tool: bool) -> ToolNotAllowed | None:
    """The error refusing a tool that writes in a read-only session, or None."""
    if read_only_tool:
        return None
    return ToolNotAllowed(
        f"{tool} changes things on Discord, and this MCP session is read-only",
        details={
            "tool_name": tool,
            "policy": SESSION_POLICY,
            "rule": "read_only",
            "hint": "This session may only run read-only tools; do not retry.",
        },
    )
