"""Tool input validation, before anything is sent.

:func:`validate_input` checks a tool input against the tool's :class:`ParamSpec` list and
returns the normalised arguments (invite and template links reduced to their code, integral
floats to ints). It never coerces across types: ``"5"`` is not an integer, ``"true"`` is not a
boolean, ``123`` is not a snowflake (Discord IDs are strings, to keep 64-bit precision). Every bad
field is reported at once in :class:`tokenward.errors.ValidationError` ``.fields``.

The regular expressions here are also the ``pattern`` keywords of the exported JSON Schemas
(:mod:`tokenward.tools.schemas`), so an input the schema refuses is refused here too. They use
only syntax shared by Python and ECMA-262 (no named groups in the exported form).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from tokenward.errors import ValidationError
from tokenward.providers.models import ParamSpec, ToolSpec

SNOWFLAKE_MAX = 2**64 - 1


def bounded_digits_pattern(maximum: int) -> str:
    """A regex body matching decimal strings (leading zeros allowed) whose value is ≤ ``maximum``.

    Strings shorter than ``maximum``'s digit count always fit. A string of the same length fits
    when it equals ``maximum`` or, at the first digit where they differ, has the smaller digit;
    one alternative per position says exactly that.
    """
    bound = str(maximum)
    width = len(bound)
    alternatives = [f"[0-9]{{1,{width - 1}}}"] if width > 1 else []
    for i, digit in enumerate(bound):
        if digit == "0":
            continue
        smaller = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
        rest = width - i - 1
        tail = "" if rest == 0 else "[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"
        alternatives.append(bound[:i] + smaller + tail)
    alternatives.append(bound)
    return "(" + "|".join(alternatives) + ")"


SNOWFLAKE_PATTERN = "^" + bounded_digits_pattern(SNOWFLAKE_MAX) + "$"
USER_REF_PATTERN = "^(@me|" + bounded_digits_pattern(SNOWFLAKE_MAX) + ")$"
CODE_BODY = r"[A-Za-z0-9-]{2,32}"
CODE_PATTERN = f"^{CODE_BODY}$"

_INVITE_PY = (
    r"^((https?://)?(www\.)?(discord\.gg|discord\.com/invite|discordapp\.com/invite)/)?"
    rf"(?P<code>{CODE_BODY})/?([?#].*)?$"
)
_TEMPLATE_PY = (
    r"^((https?://)?(www\.)?(discord\.new|discord\.com/template|discordapp\.com/template)/)?"
    rf"(?P<code>{CODE_BODY})/?([?#].*)?$"
)
INVITE_INPUT_PATTERN = _INVITE_PY.replace("(?P<code>", "(")
"""What an ``invite_code`` parameter accepts: a bare code or an invite link (query dropped)."""
TEMPLATE_INPUT_PATTERN = _TEMPLATE_PY.replace("(?P<code>", "(")
"""What a ``template_code`` parameter accepts: a bare code or a template link."""

_INVITE_RE = re.compile(_INVITE_PY)
_TEMPLATE_RE = re.compile(_TEMPLATE_PY)
_DIGITS_RE = re.compile(r"[0-9]{1,20}")


def normalize_invite_code(value: str) -> str | None:
    """The invite code in ``value`` (a code or a discord.gg / discord.com/invite link), or None."""
    match = _INVITE_RE.fullmatch(value)
    return match.group("code") if match else None


def normalize_template_code(value: str) -> str | None:
    """The template code in ``value`` (a code or a discord.new / .../template link), or None."""
    match = _TEMPLATE_RE.fullmatch(value)
    return match.group("code") if match else None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _snowflake_reason(value: str) -> str | None:
    if not _DIGITS_RE.fullmatch(value):
        return "must be a Discord ID (snowflake): a string of 1 to 20 digits"
    if int(value) > SNOWFLAKE_MAX:
        return f"must be a Discord ID (snowflake) no greater than {SNOWFLAKE_MAX}"
    return None


def _check(param: ParamSpec, value: object) -> tuple[Any, str | None]:
    """``(normalised value, None)`` or ``(None, reason)`` for one provided value."""
    kind = param.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value, None
        return None, f"must be true or false, got {_json_type(value)}"
    if kind == "integer":
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            number = int(value)
        if number is None:
            return None, f"must be an integer, got {_json_type(value)}"
        low, high = param.minimum, param.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            if low is not None and high is not None:
                return None, f"must be between {low} and {high}"
            if low is not None:
                return None, f"must be at least {low}"
            return None, f"must be at most {high}"
        return number, None
    if not isinstance(value, str):
        expected = {
            "snowflake": "a Discord ID (snowflake) as a string of digits",
            "user_ref": '"@me" or a Discord user ID as a string of digits',
            "enum": "one of " + ", ".join(param.enum or ()),
        }.get(kind, "a string")
        return None, f"must be {expected}, got {_json_type(value)}"
    if kind == "string":
        return value, None
    if kind == "enum":
        if value in (param.enum or ()):
            return value, None
        return None, "must be one of " + ", ".join(param.enum or ())
    if kind == "snowflake":
        reason = _snowflake_reason(value)
        return (None, reason) if reason else (value, None)
    if kind == "user_ref":
        if value == "@me":
            return value, None
        reason = _snowflake_reason(value)
        if reason:
            return None, 'must be "@me" or a Discord user ID (a string of 1 to 20 digits)'
        return value, None
    if kind == "invite_code":
        code = normalize_invite_code(value)
        if code is None:
            return None, (
                "must be an invite code (2 to 32 letters, digits or '-') or an invite link "
                "such as https://discord.gg/<code>"
            )
        return code, None
    if kind == "template_code":
        code = normalize_template_code(value)
        if code is None:
            return None, (
                "must be a template code (2 to 32 letters, digits or '-') or a template link "
                "such as https://discord.new/<code>"
            )
        return code, None
    raise AssertionError(f"unhandled parameter type {kind}")  # pragma: no cover


def validate_input(tool: ToolSpec, tool_input: object) -> dict[str, Any]:
    """Check ``tool_input`` for ``tool``; return the normalised arguments or raise.

    Optional parameters that are absent stay absent (Discord applies its own defaults). A null
    is not "absent": callers holding OpenAI strict-mode arguments run :func:`strip_nulls` first.
    """
    if not isinstance(tool_input, Mapping):
        reason = f"must be a JSON object, got {_json_type(tool_input)}"
        raise ValidationError(
            f"{tool.name}: invalid input: tool_input: {reason}", fields={"tool_input": reason}
        )
    bad: dict[str, str] = {}
    known = {p.name for p in tool.params}
    for key in tool_input:
        if key not in known:
            accepted = ", ".join(p.name for p in tool.params) or "none"
            bad[str(key)] = f"unknown parameter (this tool accepts: {accepted})"
    arguments: dict[str, Any] = {}
    for param in tool.params:
        if param.name not in tool_input:
            if param.required:
                bad[param.name] = "is required"
            continue
        value = tool_input[param.name]
        if value is None and param.required:
            bad[param.name] = "is required (got null)"
            continue
        normalised, problem = _check(param, value)
        if problem is not None:
            bad[param.name] = problem
        else:
            arguments[param.name] = normalised
    if bad:
        summary = "; ".join(f"{name}: {why}" for name, why in bad.items())
        raise ValidationError(f"{tool.name}: invalid input: {summary}", fields=bad)
    return arguments


def strip_nulls(tool: ToolSpec, tool_input: object) -> object:
    """Drop ``null`` optional parameters: OpenAI strict mode sends null for "not given".

    Required parameters keep their null (so validation reports them), unknown keys are kept
    (so validation refuses them), and anything that is not an object is returned unchanged.
    """
    if not isinstance(tool_input, Mapping):
        return tool_input
    optional = {p.name for p in tool.params if not p.required}
    return {k: v for k, v in tool_input.items() if not (v is None and k in optional)}
