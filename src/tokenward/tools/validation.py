"""Tool input validation, before anything is sent.

:func:`validate_input` checks a tool input against the tool's parameters and returns the
normalised arguments. Each parameter's value is checked against its JSON Schema (the same
schema the exports carry, so an input a schema refuses is refused here too), with the shared
schemas (``$defs``) it refers to; a few kinds of parameter are normalised first (invite and
template links reduced to their code, custom emoji mentions to ``name:id``, integral floats to
ints). Then Discord's own limits that a schema cannot say are checked: a message's content at
most 2,000 characters, its embeds at most 6,000 characters together, at least one of content,
embeds, stickers, components, poll or attachments in a new message, and one audit-log reason.

Nothing is coerced across types: ``"5"`` is not an integer, ``"true"`` is not a boolean,
``123`` is not a snowflake (Discord IDs are strings, to keep 64-bit precision). Every bad field
is reported at once in :class:`tokenward.errors.ValidationError` ``.fields``, keyed by its path
(``embeds[0].title``), with a reason that never repeats the value (it may be a secret).

The regular expressions here are also the ``pattern`` keywords of the exported JSON Schemas
(:mod:`tokenward.tools.schemas`). They use only syntax shared by Python and ECMA-262 (no named
groups in the exported form).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match

from tokenward.errors import ValidationError
from tokenward.providers.models import ParamSpec, ToolSpec, resolve, schema_types

SNOWFLAKE_MAX = 2**64 - 1
MESSAGE_CONTENT_MAX = 2000
EMBEDS_TOTAL_MAX = 6000


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
CUSTOM_EMOJI_BODY = r"[A-Za-z0-9_~]{1,32}:[0-9]{1,20}"
EMOJI_INPUT_PATTERN = (
    rf"^(<a?:{CUSTOM_EMOJI_BODY}>|:?{CUSTOM_EMOJI_BODY}|[^\sA-Za-z0-9:<>/\\?#%&.]{{1,16}})$"
)
"""What an ``emoji`` parameter accepts: a Unicode emoji (1 to 16 code points, no ASCII letters,
digits, spaces or URL syntax), a custom emoji as ``name:id``, or a mention ``<:name:id>``."""

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
_EMOJI_RE = re.compile(EMOJI_INPUT_PATTERN)
_CUSTOM_EMOJI_RE = re.compile(rf"^<?a?:?(?P<body>{CUSTOM_EMOJI_BODY})>?$")
_DIGITS_RE = re.compile(r"[0-9]{1,20}")

FORMATS = FormatChecker(formats=())


@FORMATS.checks("snowflake")
def _is_snowflake(value: object) -> bool:
    return not isinstance(value, str) or _snowflake_reason(value) is None


@FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    datetime.fromisoformat(value)
    return "T" in value or " " in value


@FORMATS.checks("uri", raises=ValueError)
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlparse(value)
    return bool(parts.scheme) and bool(parts.netloc or parts.scheme == "attachment")


FORMAT_NAMES = {
    "date-time": "an ISO 8601 date and time, e.g. 2026-01-31T18:00:00Z",
    "uri": "an absolute URL",
}


def normalize_invite_code(value: str) -> str | None:
    """The invite code in ``value`` (a code or a discord.gg / discord.com/invite link), or None."""
    match = _INVITE_RE.fullmatch(value)
    return match.group("code") if match else None


def normalize_template_code(value: str) -> str | None:
    """The template code in ``value`` (a code or a discord.new / .../template link), or None."""
    match = _TEMPLATE_RE.fullmatch(value)
    return match.group("code") if match else None


def normalize_emoji(value: str) -> str | None:
    """A reaction emoji as Discord's routes want it: a Unicode emoji as is, a custom emoji as
    ``name:id`` (from ``name:id``, ``:name:id``, ``<:name:id>`` or ``<a:name:id>``); or None."""
    if not _EMOJI_RE.fullmatch(value):
        return None
    custom = _CUSTOM_EMOJI_RE.fullmatch(value)
    return custom.group("body") if custom else value


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


# ----------------------------------------------------------------------------- files

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniff(data: bytes, accepted: Sequence[str]) -> str | None:
    for magic, media_type in _SIGNATURES:
        if data.startswith(magic):
            return media_type if media_type in accepted else None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.lstrip().startswith("{") and "application/json" in accepted:
        return "application/json"
    for media_type in accepted:
        if media_type.startswith("text/"):
            return media_type
    return None


def _file_reason(param: ParamSpec, value: str) -> str | None:
    try:
        decode_file(param, value)
    except ValueError as exc:
        return str(exc)
    return None


def decode_file(param: ParamSpec, value: str) -> tuple[bytes, str]:
    """The bytes and media type of a ``base64_file`` value; ValueError says what is wrong."""
    assert param.file is not None
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be the file's bytes in base64 (A-Z, a-z, 0-9, +, /, =)") from None
    if not data:
        raise ValueError("must not be empty")
    if len(data) > param.file.max_bytes:
        raise ValueError(
            f"the file is {len(data)} bytes; at most {param.file.max_bytes} are allowed"
        )
    media_type = _sniff(data, param.file.media_types)
    if media_type is None:
        kinds = ", ".join(param.file.media_types)
        raise ValueError(f"the file must be one of: {kinds}")
    return data, media_type


# ----------------------------------------------------------------------------- kinds


def _check_kind(param: ParamSpec, value: object) -> tuple[Any, str | None]:
    """``(normalised value, None)`` or ``(None, reason)`` for a parameter with a ``kind``."""
    kind = param.kind
    if not isinstance(value, str):
        expected = {
            "user_ref": '"@me" or a Discord user ID as a string of digits',
            "emoji": "an emoji as a string",
        }.get(kind or "", "a string")
        return None, f"must be {expected}, got {_json_type(value)}"
    if kind == "user_ref":
        if value == "@me" or _snowflake_reason(value) is None:
            return value, None
        return None, 'must be "@me" or a Discord user ID (a string of 1 to 20 digits)'
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
    if kind == "emoji":
        emoji = normalize_emoji(value)
        if emoji is None:
            return None, (
                "must be an emoji: a Unicode emoji such as 👍, or a custom emoji as name:id "
                "(e.g. party:1100000000000000001) or <:name:id>"
            )
        return emoji, None
    if kind == "base64_file":
        reason = _file_reason(param, value)
        return (None, reason) if reason else (value, None)
    raise AssertionError(f"unhandled parameter kind {kind}")  # pragma: no cover


# ----------------------------------------------------------------------------- schemas

_VALIDATORS: dict[tuple[int, str], tuple[ToolSpec, Draft202012Validator]] = {}


def _validator(tool: ToolSpec, param: ParamSpec) -> Draft202012Validator:
    key = (id(tool), param.name)
    cached = _VALIDATORS.get(key)
    if cached is not None and cached[0] is tool:
        return cached[1]
    schema = dict(param.schema_)
    if tool.defs:
        schema["$defs"] = tool.defs
    validator = Draft202012Validator(schema, format_checker=FORMATS)
    _VALIDATORS[key] = (tool, validator)
    return validator


def _join(base: str, path: Iterable[Any]) -> str:
    text = base
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _expected(types: Sequence[str], schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if schema.get("format") == "snowflake" or schema.get("pattern") == SNOWFLAKE_PATTERN:
        return "a Discord ID (snowflake) as a string of digits"
    names = {
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "array": "an array",
        "object": "an object",
        "null": "null",
    }
    return " or ".join(names.get(t, t) for t in types)


def _range(schema: Mapping[str, Any]) -> str:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and high is not None:
        return f"must be between {low} and {high}"
    if low is not None:
        return f"must be at least {low}"
    return f"must be at most {high}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _leaf_reasons(error: SchemaError, base: str) -> list[tuple[str, str]]:
    """``(field path, reason)`` for one schema error that is not a union."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    path = _join(base, error.absolute_path)
    instance: Any = error.instance
    kind = error.validator
    expected: Any = error.validator_value
    if kind == "type":
        return [
            (path, f"must be {_expected(schema_types(schema), schema)}, got {_json_type(instance)}")
        ]
    if kind == "required":
        present = instance if isinstance(instance, Mapping) else {}
        missing = [str(r) for r in expected if r not in present]
        return [(_join(path, [m]), "is required") for m in missing]
    if kind == "additionalProperties":
        known = list((schema.get("properties") or {}).keys())
        accepted = ", ".join(known) or "none"
        extras = (
            [str(k) for k in instance if k not in known] if isinstance(instance, Mapping) else []
        )
        return [(_join(path, [k]), f"unknown field (accepted: {accepted})") for k in extras]
    if kind == "enum":
        return [(path, "must be one of " + ", ".join(str(v) for v in expected))]
    if kind == "const":
        return [(path, f"must be {expected}")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [(path, _range(schema))]
    if kind == "pattern":
        if schema.get("format") == "snowflake" or expected == SNOWFLAKE_PATTERN:
            reason = _snowflake_reason(str(instance)) or "must be a Discord ID (snowflake)"
            return [(path, reason)]
        return [(path, f"must match the pattern {expected}")]
    if kind == "maxLength":
        size = len(instance) if isinstance(instance, str) else 0
        return [(path, f"must be at most {expected} characters, got {size}")]
    if kind == "minLength":
        if expected == 1:
            return [(path, "must not be empty")]
        return [(path, f"must be at least {expected} characters")]
    if kind == "maxItems":
        size = len(instance) if isinstance(instance, list) else 0
        return [(path, f"must have at most {_plural(expected, 'item')}, got {size}")]
    if kind == "minItems":
        return [(path, f"must have at least {_plural(expected, 'item')}")]
    if kind == "uniqueItems":
        return [(path, "must not contain the same item twice")]
    if kind == "maxProperties":
        return [(path, f"must have at most {_plural(expected, 'entry')}")]
    if kind == "minProperties":
        return [(path, f"must have at least {_plural(expected, 'entry')}")]
    if kind == "format" and expected == "snowflake":
        return [(path, _snowflake_reason(str(instance)) or "must be a Discord ID (snowflake)")]
    if kind == "format":
        described = FORMAT_NAMES.get(str(expected), str(expected))
        return [(path, f"must be {described}")]
    if kind == "multipleOf":
        return [(path, f"must be a multiple of {expected}")]
    return [(path, f"is not valid ({kind})")]


def _branch_of(error: SchemaError) -> int:
    first = error.relative_schema_path[0] if error.relative_schema_path else -1
    return first if isinstance(first, int) else -1


def _rules_out(errors: Sequence[SchemaError]) -> bool:
    """Whether a union branch's errors show the value is not of that branch's shape at all: the
    wrong JSON type at the top, or the wrong ``type`` discriminator of an object."""
    for e in errors:
        where = list(e.relative_path)
        if e.validator == "type" and not where:
            return True
        if e.validator in ("enum", "const") and where == ["type"]:
            return True
        required: Any = e.validator_value
        if e.validator == "required" and not where and "type" in required:
            return True
    return False


def _unknown_fields(errors: Sequence[SchemaError]) -> bool:
    return any(e.validator == "additionalProperties" and not list(e.relative_path) for e in errors)


def _reasons(error: SchemaError, base: str, defs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field path, reason)`` for a schema error; a union (``anyOf``) is explained by the
    one branch the value was meant for (its JSON type and ``type`` discriminator fit), else by
    the discriminator values it accepts, else by the closest branch."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return _leaf_reasons(error, base)
    groups: dict[int, list[SchemaError]] = defaultdict(list)
    for sub in error.context:
        groups[_branch_of(sub)].append(sub)
    candidates = [i for i, errs in groups.items() if not _rules_out(errs)]
    if len(candidates) > 1:
        # Prefer the branches that know every field the value has, then the closest ones.
        known = [i for i in candidates if not _unknown_fields(groups[i])]
        candidates = known or candidates
        fewest = min(len(groups[i]) for i in candidates)
        closest = [i for i in candidates if len(groups[i]) == fewest]
        if len(closest) == 1:
            candidates = closest
    if len(candidates) == 1:
        found: list[tuple[str, str]] = []
        for sub in groups[candidates[0]]:
            found.extend(_reasons(sub, base, defs))
        return found
    instance = error.instance
    if not candidates and isinstance(instance, Mapping) and "type" in instance:
        allowed = _discriminators(error, defs)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in allowed):
            allowed = sorted(allowed)
        if allowed:
            path = _join(base, [*error.absolute_path, "type"])
            return [(path, "must be one of " + ", ".join(str(v) for v in allowed))]
    if not candidates:
        path = _join(base, error.absolute_path)
        return [(path, f"does not match any accepted form, got {_json_type(instance)}")]
    best = best_match(e for i in candidates for e in groups[i])
    if best is None:  # pragma: no cover - candidates always hold errors
        return [(_join(base, error.absolute_path), "is not valid")]
    return _reasons(best, base, defs)


def _discriminators(error: SchemaError, defs: Mapping[str, Any]) -> list[Any]:
    """The ``type`` values a union of object schemas accepts (its discriminator), in order."""
    values: list[Any] = []
    branches: Any = error.validator_value
    for branch in branches or []:
        node = resolve(branch, defs) if isinstance(branch, Mapping) else {}
        prop = (node.get("properties") or {}).get("type")
        if not isinstance(prop, Mapping):
            continue
        prop = resolve(prop, defs)
        for value in prop.get("enum", [prop["const"]] if "const" in prop else []):
            if value not in values:
                values.append(value)
    return values


def _schema_problems(tool: ToolSpec, param: ParamSpec, value: object) -> list[tuple[str, str]]:
    validator = _validator(tool, param)
    problems: list[tuple[str, str]] = []
    for error in validator.iter_errors(value):
        problems.extend(_reasons(error, param.name, tool.defs))
    return problems


# ----------------------------------------------------------------------------- Discord's limits


def _text_len(value: object) -> int:
    return len(value) if isinstance(value, str) else 0


def _embed_chars(embed: object) -> int:
    if not isinstance(embed, Mapping):
        return 0
    total = _text_len(embed.get("title")) + _text_len(embed.get("description"))
    for item in embed.get("fields") or []:
        if isinstance(item, Mapping):
            total += _text_len(item.get("name")) + _text_len(item.get("value"))
    for part, key in (("footer", "text"), ("author", "name")):
        holder = embed.get(part)
        if isinstance(holder, Mapping):
            total += _text_len(holder.get(key))
    return total


MESSAGE_PARTS = ("content", "embeds", "sticker_ids", "components", "poll", "attachments")


def _message_problems(tool: ToolSpec, arguments: Mapping[str, Any]) -> dict[str, str]:
    rules = tool.message
    if rules is None:
        return {}
    prefix = ""
    message: object = arguments
    if rules.at is not None:
        message = arguments.get(rules.at)
        prefix = rules.at + "."
    if not isinstance(message, Mapping):
        return {}
    bad: dict[str, str] = {}
    content = message.get("content")
    if isinstance(content, str) and len(content) > MESSAGE_CONTENT_MAX:
        bad[prefix + "content"] = (
            f"must be at most {MESSAGE_CONTENT_MAX} characters (Discord's limit for a "
            f"message), got {len(content)}"
        )
    embeds = message.get("embeds")
    if isinstance(embeds, list):
        total = sum(_embed_chars(e) for e in embeds)
        if total > EMBEDS_TOTAL_MAX:
            bad[prefix + "embeds"] = (
                f"hold {total} characters in titles, descriptions, field names and values, "
                f"footer texts and author names together; Discord allows {EMBEDS_TOTAL_MAX}"
            )
    if rules.require_one and not any(message.get(part) for part in MESSAGE_PARTS):
        offered = (
            [p for p in MESSAGE_PARTS if tool.param(p) is not None]
            if rules.at is None
            else list(MESSAGE_PARTS)
        )
        bad[(prefix or "") + "content"] = (
            "a message needs at least one of " + ", ".join(offered) + " (Discord refuses an "
            "empty message)"
        )
    return bad


def _alias_problems(tool: ToolSpec, arguments: Mapping[str, Any]) -> dict[str, str]:
    """Two given parameters that set the same header (``reason`` and ``audit_log_reason``)."""
    by_header: dict[str, list[str]] = defaultdict(list)
    for p in tool.params:
        if p.location == "header" and p.name in arguments:
            by_header[p.wire_name.lower()].append(p.name)
    bad: dict[str, str] = {}
    for names in by_header.values():
        if len(names) > 1:
            for name in names:
                others = " and ".join(n for n in names if n != name)
                bad[name] = f"give either {name} or {others}, not both (they set the same header)"
    return bad


def is_map(node: Mapping[str, Any]) -> bool:
    """An object whose keys are free (``additionalProperties`` is a schema, no properties)."""
    return (
        "object" in schema_types(node)
        and not node.get("properties")
        and isinstance(node.get("additionalProperties"), dict)
    )


def is_free_form(node: Mapping[str, Any]) -> bool:
    """An object that says nothing about its keys (any JSON object)."""
    return (
        "object" in schema_types(node)
        and not node.get("properties")
        and not isinstance(node.get("additionalProperties"), dict)
        and "anyOf" not in node
    )


# ----------------------------------------------------------------------------- back from strict


def _branch_for(value: Any, branches: list[Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The union branch a value was written for (its ``type`` discriminator, else its shape)."""
    resolved = [resolve(b, defs) for b in branches if isinstance(b, Mapping)]
    if isinstance(value, Mapping):
        objects = [b for b in resolved if "object" in schema_types(b) or "properties" in b]
        kind = value.get("type")
        for branch in objects:
            prop = (branch.get("properties") or {}).get("type")
            if isinstance(prop, Mapping):
                prop = resolve(prop, defs)
                accepted = prop.get("enum", [prop["const"]] if "const" in prop else [])
                if kind in accepted:
                    return branch
        for branch in objects:
            if set(value) <= set(branch.get("properties") or {}):
                return branch
        if objects:
            return objects[0]
    for branch in resolved:
        if "null" not in schema_types(branch) or len(schema_types(branch)) > 1:
            return branch
    return {}


def _parsed(value: Any, kind: type) -> Any:
    """``value`` parsed from JSON when it is a string holding a JSON ``kind``, else unchanged."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, kind) else value


def _from_strict(value: Any, schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
    node = resolve(schema, defs)
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list) and value is not None:
        return _from_strict(value, _branch_for(value, branches, defs), defs)
    if is_map(node):
        if isinstance(value, list) and all(
            isinstance(i, Mapping) and set(i) == {"key", "value"} for i in value
        ):
            inner = node["additionalProperties"]
            return {str(i["key"]): _from_strict(i["value"], inner, defs) for i in value}
        return value
    if is_free_form(node):
        return _parsed(value, dict)
    wanted = schema_types(node)
    if isinstance(value, str) and "string" not in wanted and ({"object", "array"} & set(wanted)):
        parsed = _parsed(value, dict if "object" in wanted else list)
        if parsed is not value:
            return _from_strict(parsed, schema, defs)
        return value
    if isinstance(value, Mapping) and isinstance(node.get("properties"), Mapping):
        properties = node["properties"]
        required = set(node.get("required", ()))
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None and key in properties and key not in required:
                continue
            sub = properties.get(key)
            out[key] = _from_strict(item, sub, defs) if isinstance(sub, Mapping) else item
        return out
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return [_from_strict(item, node["items"], defs) for item in value]
    return value


def strip_nulls(tool: ToolSpec, tool_input: object) -> object:
    """Arguments written for the OpenAI strict-mode schema, back in the catalog's shape.

    Drops ``null`` optional values (strict mode sends null for "not given"), also inside
    objects; turns ``{key, value}`` pair lists back into maps, and JSON strings back into the
    objects or arrays they stand for (free-form objects, values nested too deeply). Required
    parameters keep their null (so validation reports them), unknown keys are kept (so
    validation refuses them), values already in the catalog's shape pass unchanged, and
    anything that is not an object is returned unchanged. Safe for arguments from any client
    (Anthropic, MCP), not only OpenAI's.
    """
    if not isinstance(tool_input, Mapping):
        return tool_input
    out: dict[str, Any] = {}
    for key, value in tool_input.items():
        param = tool.param(key) if isinstance(key, str) else None
        if param is None:
            out[key] = value
        elif value is None:
            if param.required:
                out[key] = None
        else:
            out[key] = _from_strict(value, param.schema_, tool.defs)
    return out


# ----------------------------------------------------------------------------- entry point


def validate_input(tool: ToolSpec, tool_input: object) -> dict[str, Any]:
    """Check ``tool_input`` for ``tool``; return the normalised arguments or raise.

    Optional parameters that are absent stay absent (Discord applies its own defaults). A null
    is not "absent": it is refused unless the parameter's schema allows null (Discord then
    clears the field). Callers holding OpenAI strict-mode arguments run
    :func:`strip_nulls` first.
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
        if param.kind is not None:
            normalised, problem = _check_kind(param, value)
            if problem is not None:
                bad[param.name] = problem
            else:
                arguments[param.name] = normalised
            continue
        if isinstance(value, float) and not math.isfinite(value):
            bad[param.name] = (
                f"must be {_expected(schema_types(param.schema_), param.schema_)}, got a number"
            )
            continue
        problems = _schema_problems(tool, param, value)
        for path, reason in problems:
            bad.setdefault(path, reason)
        if not problems:
            if isinstance(value, float) and value.is_integer() and param.type == "integer":
                value = int(value)
            arguments[param.name] = value
    if not bad:
        bad.update(_message_problems(tool, arguments))
        bad.update(_alias_problems(tool, arguments))
    if bad:
        summary = "; ".join(f"{name}: {why}" for name, why in bad.items())
        raise ValidationError(f"{tool.name}: invalid input: {summary}", fields=bad)
    return arguments
