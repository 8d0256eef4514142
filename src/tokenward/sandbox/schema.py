"""JSON Schema, the way the sandbox needs it: Discord-style validation, samples and completion.

Discord's OpenAPI document (JSON Schema 2020-12 inside OpenAPI 3.1) describes every request and
response body. The sandbox uses one :class:`SchemaSet` (the spec's component schemas) for three
things:

* :meth:`SchemaSet.check` validates a request body the way Discord does and reports Discord's
  error tree (``discord-api.md`` §4): keys are field names and array indices, leaves are
  ``{"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}``. Like
  Discord it coerces where its validators coerce: an integer field takes ``"8"`` (discord.py
  sends permissions as strings), a snowflake field takes a JSON integer, a boolean takes
  ``"true"``; unknown fields are ignored. ``strict=True`` is plain JSON Schema (no coercion,
  ``oneOf`` means exactly one, ``uniqueItems`` counts) for checking the sandbox's own answers.
* :meth:`SchemaSet.sample` builds a small deterministic value that satisfies a schema (the
  required fields only), for answers of routes the sandbox does not emulate statefully.
* :meth:`SchemaSet.complete` fills the required fields a stateful object lacks, so an object the
  sandbox stores always fits its response schema.

The error codes follow what Discord is observed to send (``BASE_TYPE_REQUIRED``,
``BASE_TYPE_MAX_LENGTH``, ``NUMBER_TYPE_COERCE``, ``MODEL_TYPE_CONVERT``, …); where Discord's
exact code is not known the choice is listed in ``sandbox/README.md``.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime
from typing import Any

_INT = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
SNOWFLAKE_PATTERN = "^(0|[1-9][0-9]*)$"
_MAX_DEPTH = 24

Path = tuple[str, ...]


class ErrorTree:
    """Discord's nested ``errors`` object, built field by field."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.count = 0

    def add(self, path: Path, code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(key, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
        self.count += 1

    def merge(self, other: ErrorTree) -> None:
        _merge(self.tree, other.tree)
        self.count += other.count


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if key == "_errors":
            into.setdefault("_errors", []).extend(value)
        else:
            _merge(into.setdefault(key, {}), value)


def _types(node: dict[str, Any]) -> list[str]:
    declared = node.get("type")
    if declared is None:
        return []
    return [declared] if isinstance(declared, str) else list(declared)


def _is_snowflake(node: dict[str, Any]) -> bool:
    return node.get("pattern") == SNOWFLAKE_PATTERN or node.get("format") == "snowflake"


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _parse_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return "T" in text or "t" in text or " " in text or len(text) == 10


def snowflake_for(seed: str) -> str:
    """A stable, real-shaped snowflake (19 digits, below 2**63) for a seed."""
    digest = int(hashlib.sha256(seed.encode()).hexdigest()[:15], 16)
    return str(1_000_000_000_000_000_000 + digest % 8_000_000_000_000_000_000)


SAMPLE_TIME = "2026-01-01T00:00:00.000000+00:00"


class SchemaSet:
    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas

    # -- references -----------------------------------------------------------------------
    def resolve(self, node: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            node = self.schemas[node["$ref"].rsplit("/", 1)[1]]
            seen += 1
            if seen > 64:  # pragma: no cover - a reference cycle without structure
                raise ValueError("reference cycle")
        return node if isinstance(node, dict) else {}

    def named(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    # -- validation -----------------------------------------------------------------------
    def check(self, schema: Any, value: Any, *, strict: bool = False) -> tuple[Any, ErrorTree]:
        """``(coerced value, errors)``; ``errors.count == 0`` when the value is valid."""
        errors = ErrorTree()
        coerced = self._check(schema, value, (), errors, strict, 0)
        return coerced, errors

    def conforms(self, schema: Any, value: Any) -> bool:
        return self.check(schema, value, strict=True)[1].count == 0

    def _check(
        self, schema: Any, value: Any, path: Path, errors: ErrorTree, strict: bool, depth: int
    ) -> Any:
        node = self.resolve(schema)
        if depth > _MAX_DEPTH * 2:
            return value
        for sub in node.get("allOf", ()):
            value = self._check(sub, value, path, errors, strict, depth + 1)
        union = node.get("oneOf") or node.get("anyOf")
        if union:
            return self._check_union(node, union, value, path, errors, strict, depth)
        return self._check_plain(node, value, path, errors, strict, depth)

    def _check_union(
        self,
        node: dict[str, Any],
        union: list[Any],
        value: Any,
        path: Path,
        errors: ErrorTree,
        strict: bool,
        depth: int,
    ) -> Any:
        branches = [self.resolve(branch) for branch in union]
        if all("const" in branch for branch in branches):  # an enum written as oneOf of consts
            value = self._coerce(node, value, path, errors, strict)
            if value is _INVALID:
                return None
            if value is None and "null" in _types(node):
                return None
            choices = [branch["const"] for branch in branches]
            if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
                errors.add(path, "BASE_TYPE_CHOICES", _choices_message(choices))
            return value
        if value is None and any("null" in _types(branch) for branch in branches):
            return None
        passed: list[Any] = []
        trials: list[ErrorTree] = []
        for branch in union:
            trial = ErrorTree()
            result = self._check(branch, value, path, trial, strict, depth + 1)
            trials.append(trial)
            if trial.count == 0:
                passed.append(result)
                if not strict:
                    break
        if passed:
            if strict and "oneOf" in node and len(passed) > 1:
                errors.add(path, "UNION_TYPE_AMBIGUOUS", "Value matches more than one type.")
            value = passed[0]
            return self._check_plain(node, value, path, errors, strict, depth)
        index = self._closest_branch(branches, value, trials)
        if index is None:
            tags = [tag for branch in branches for tag in self._tag_values(branch)]
            shown = ", ".join(str(tag) for tag in tags)
            errors.add(
                (*path, "type"),
                "UNION_TYPE_CHOICES",
                f'Value of field "type" must be one of ({shown}).',
            )
        else:
            errors.merge(trials[index])
        return value

    def _tag_values(self, branch: dict[str, Any]) -> list[Any]:
        """The values a union branch allows for its ``type`` field (its discriminator)."""
        prop = self.resolve(branch.get("properties", {}).get("type"))
        if "const" in prop:
            return [prop["const"]]
        if prop.get("enum"):
            return list(prop["enum"])
        inner = [self.resolve(x) for x in prop.get("oneOf", ())]
        return [x["const"] for x in inner if "const" in x]

    def _closest_branch(
        self, branches: list[dict[str, Any]], value: Any, trials: list[ErrorTree]
    ) -> int | None:
        """The branch whose errors to report: the one whose ``type`` tag the object names, or
        (no tags) the one with the fewest errors; None when the tag names no branch."""
        if isinstance(value, dict) and "type" in value:
            tagged = False
            for index, branch in enumerate(branches):
                allowed = self._tag_values(branch)
                if allowed:
                    tagged = True
                    if value["type"] in allowed or str(value["type"]) in map(str, allowed):
                        return index
            if tagged:
                return None
        kind = _json_type(value)
        compatible = [
            index
            for index, branch in enumerate(branches)
            if not _types(branch)
            or kind in _types(branch)
            or (kind == "integer" and "number" in _types(branch))
        ] or list(range(len(trials)))
        return min(compatible, key=lambda i: trials[i].count)

    def _coerce(
        self, node: dict[str, Any], value: Any, path: Path, errors: ErrorTree, strict: bool
    ) -> Any:
        """The value as one of the node's types, or ``_INVALID`` after recording the error."""
        types = _types(node)
        if not types:
            return value
        if value is None:
            if "null" in types:
                return None
            errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
            return _INVALID
        for kind in types:
            result = _as_type(kind, value, node, strict)
            if result is not _INVALID:
                return result
        kind = next((t for t in types if t != "null"), "null")
        code, message = _type_error(kind, value, node)
        errors.add(path, code, message)
        return _INVALID

    def _check_plain(
        self,
        node: dict[str, Any],
        value: Any,
        path: Path,
        errors: ErrorTree,
        strict: bool,
        depth: int,
    ) -> Any:
        value = self._coerce(node, value, path, errors, strict)
        if value is _INVALID or value is None:
            return None if value is _INVALID else value
        if "const" in node and value != node["const"]:
            errors.add(path, "BASE_TYPE_CHOICES", _choices_message([node["const"]]))
        enum = node.get("enum")
        if enum and value not in enum:
            errors.add(path, "BASE_TYPE_CHOICES", _choices_message(enum))
        if isinstance(value, str):
            self._check_string(node, value, path, errors)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            _check_number(node, value, path, errors)
        elif isinstance(value, list):
            value = self._check_array(node, value, path, errors, strict, depth)
        elif isinstance(value, dict):
            value = self._check_object(node, value, path, errors, strict, depth)
        return value

    def _check_string(
        self, node: dict[str, Any], value: str, path: Path, errors: ErrorTree
    ) -> None:
        if _is_snowflake(node) and not re.fullmatch(r"0|[1-9][0-9]*", value):
            errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{_show(value)}" is not snowflake.')
            return
        pattern = node.get("pattern")
        if pattern and not _is_snowflake(node) and re.search(pattern, value) is None:
            errors.add(path, "STRING_TYPE_REGEX", "String value did not match validation regex.")
        low, high = node.get("minLength"), node.get("maxLength")
        length = len(value)
        if (low is not None and length < low) or (high is not None and length > high):
            if low is not None and high is not None and low > 0:
                errors.add(
                    path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."
                )
            elif high is not None and length > high:
                errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
            else:
                errors.add(path, "BASE_TYPE_MIN_LENGTH", f"Must be {low} or more in length.")
        if node.get("format") == "date-time" and not _parse_datetime(value):
            errors.add(
                path, "DATE_TIME_TYPE_PARSE", f"Could not parse {_show(value)}. Should be ISO8601."
            )

    def _check_array(
        self,
        node: dict[str, Any],
        value: list[Any],
        path: Path,
        errors: ErrorTree,
        strict: bool,
        depth: int,
    ) -> list[Any]:
        low, high = node.get("minItems"), node.get("maxItems")
        if low is not None and len(value) < low:
            errors.add(path, "BASE_TYPE_MIN_LENGTH", f"Must be {low} or more in length.")
        if high is not None and len(value) > high:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
        items = node.get("items")
        result = value
        if items is not None:
            result = [
                self._check(items, item, (*path, str(index)), errors, strict, depth + 1)
                for index, item in enumerate(value)
            ]
        if strict and node.get("uniqueItems"):
            seen: list[Any] = []
            for item in result:
                if item in seen:
                    errors.add(path, "BASE_TYPE_UNIQUE", "Values must be unique.")
                    break
                seen.append(item)
        return result

    def _check_object(
        self,
        node: dict[str, Any],
        value: dict[str, Any],
        path: Path,
        errors: ErrorTree,
        strict: bool,
        depth: int,
    ) -> dict[str, Any]:
        properties: dict[str, Any] = node.get("properties", {})
        result = dict(value)
        for name in node.get("required", ()):
            if name not in value:
                errors.add((*path, name), "BASE_TYPE_REQUIRED", "This field is required")
        for name, sub in properties.items():
            if name in value:
                result[name] = self._check(
                    sub, value[name], (*path, name), errors, strict, depth + 1
                )
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in properties:
                    result[name] = self._check(
                        extra, item, (*path, name), errors, strict, depth + 1
                    )
        elif extra is False and strict:
            for name in value:
                if name not in properties:
                    errors.add((*path, name), "BASE_TYPE_INVALID", "Unknown field.")
        high, low = node.get("maxProperties"), node.get("minProperties")
        if high is not None and len(value) > high:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
        if low is not None and len(value) < low:
            errors.add(path, "BASE_TYPE_MIN_LENGTH", f"Must be {low} or more in length.")
        return result

    # -- samples --------------------------------------------------------------------------
    def sample(self, schema: Any, seed: str = "sample", depth: int = 0) -> Any:
        """A deterministic value that satisfies ``schema`` (required fields only)."""
        node = self.resolve(schema)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return node["enum"][0]
        if node.get("allOf"):
            merged: Any = None
            for sub in node["allOf"]:
                part = self.sample(sub, seed, depth + 1)
                merged = (
                    {**merged, **part}
                    if isinstance(merged, dict) and isinstance(part, dict)
                    else part
                )
            own = {k: v for k, v in node.items() if k != "allOf"}
            if own.get("properties") or own.get("required"):
                part = self.sample(own, seed, depth + 1)
                if isinstance(merged, dict) and isinstance(part, dict):
                    merged = {**merged, **part}
            return merged
        union = node.get("oneOf") or node.get("anyOf")
        if union:
            return self._sample_union(node, union, seed, depth)
        types = [t for t in _types(node) if t != "null"]
        if not types:
            return None if "null" in _types(node) else {}
        return self._sample_type(types[0], node, seed, depth)

    def _sample_union(self, node: dict[str, Any], union: list[Any], seed: str, depth: int) -> Any:
        branches = [self.resolve(branch) for branch in union]
        if all("const" in branch for branch in branches):
            return branches[0]["const"]
        candidates = [b for b in union if _types(self.resolve(b)) != ["null"]] or union
        first: Any = None
        for index, branch in enumerate(candidates):
            value = self.sample(branch, seed, depth + 1)
            if index == 0:
                first = value
            if depth > _MAX_DEPTH or self.conforms(node, value):
                return value
        return first

    def _sample_type(self, kind: str, node: dict[str, Any], seed: str, depth: int) -> Any:
        if kind == "object":
            result: dict[str, Any] = {}
            properties = node.get("properties", {})
            for name in node.get("required", ()):
                result[name] = self.sample(properties.get(name, {}), f"{seed}.{name}", depth + 1)
            return result
        if kind == "array":
            count = node.get("minItems") or 0
            items = node.get("items", {})
            return [self.sample(items, f"{seed}.{index}", depth + 1) for index in range(count)]
        if kind == "string":
            return _sample_string(node, seed)
        if kind in ("integer", "number"):
            low = node.get("minimum")
            high = node.get("maximum")
            number = low if low is not None and low > 0 else 0
            if high is not None and number > high:
                number = high
            return int(number) if kind == "integer" else float(number)
        if kind == "boolean":
            return False
        return None

    # -- completion -----------------------------------------------------------------------
    def complete(self, schema: Any, value: Any, seed: str = "complete", depth: int = 0) -> Any:
        """``value`` with every required field it lacks filled in from a sample."""
        node = self.resolve(schema)
        if depth > _MAX_DEPTH:
            return value
        if value is None:
            if self._allows_null(node):
                return None
            return self.sample(node, seed, depth)
        for sub in node.get("allOf", ()):
            value = self.complete(sub, value, seed, depth + 1)
        union = node.get("oneOf") or node.get("anyOf")
        if union:
            if self.conforms(node, value):
                return value
            fallback: Any = None
            for branch in union:
                if _types(self.resolve(branch)) == ["null"]:
                    continue
                candidate = self.complete(branch, value, seed, depth + 1)
                if fallback is None:
                    fallback = candidate
                if self.conforms(node, candidate):
                    return candidate
            return value if fallback is None else fallback
        if isinstance(value, dict) and ("properties" in node or "required" in node):
            properties = node.get("properties", {})
            result = dict(value)
            for name, sub in properties.items():
                if name in result:
                    result[name] = self.complete(sub, result[name], f"{seed}.{name}", depth + 1)
            for name in node.get("required", ()):
                if name not in result:
                    result[name] = self.sample(
                        properties.get(name, {}), f"{seed}.{name}", depth + 1
                    )
            return result
        if isinstance(value, list) and "items" in node:
            return [
                self.complete(node["items"], item, f"{seed}.{index}", depth + 1)
                for index, item in enumerate(value)
            ]
        return value

    def _allows_null(self, node: dict[str, Any]) -> bool:
        if "null" in _types(node):
            return True
        union = node.get("oneOf") or node.get("anyOf") or ()
        return any(self._allows_null(self.resolve(branch)) for branch in union)


class _Invalid:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "<invalid>"


_INVALID: Any = _Invalid()


def _as_type(kind: str, value: Any, node: dict[str, Any], strict: bool) -> Any:
    if kind == "null":
        return None if value is None else _INVALID
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if not strict and value in ("true", "True", "false", "False"):
            return value in ("true", "True")
        return _INVALID
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if strict:
            return value if isinstance(value, float) and value.is_integer() else _INVALID
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value.strip())
        return _INVALID
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value if math.isfinite(value) else _INVALID
        if not strict and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            return float(value)
        return _INVALID
    if kind == "string":
        if isinstance(value, str):
            return value
        snowflake_int = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if not strict and _is_snowflake(node) and snowflake_int:
            return str(value)
        return _INVALID
    if kind == "object":
        return value if isinstance(value, dict) else _INVALID
    if kind == "array":
        return value if isinstance(value, list) else _INVALID
    return value


def _type_error(kind: str, value: Any, node: dict[str, Any]) -> tuple[str, str]:
    shown = _show(value)
    if kind == "integer":
        return "NUMBER_TYPE_COERCE", f'Value "{shown}" is not int.'
    if kind == "number":
        return "NUMBER_TYPE_COERCE", f'Value "{shown}" is not a valid number.'
    if kind == "boolean":
        return "BOOLEAN_TYPE_COERCE", f'Value "{shown}" is not bool.'
    if kind == "string" and _is_snowflake(node):
        return "NUMBER_TYPE_COERCE", f'Value "{shown}" is not snowflake.'
    if kind == "string":
        return "STRING_TYPE_CONVERT", f'Could not interpret "{shown}" as string.'
    if kind == "object" and "properties" not in node and "additionalProperties" in node:
        return "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
    if kind == "object":
        return "MODEL_TYPE_CONVERT", "Expected an object/dictionary."
    if kind == "array":
        return "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"
    if kind == "null":
        return "BASE_TYPE_INVALID", "Value must be null."
    return "BASE_TYPE_INVALID", "Invalid value."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _choices_message(choices: list[Any]) -> str:
    shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices[:25])
    return f"Value must be one of ({shown})."


def _check_number(node: dict[str, Any], value: float, path: Path, errors: ErrorTree) -> None:
    kind = "int" if isinstance(value, int) else "float"
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and value < low:
        errors.add(
            path, "NUMBER_TYPE_MIN", f"{kind} value should be greater than or equal to {low}."
        )
    if high is not None and value > high:
        errors.add(path, "NUMBER_TYPE_MAX", f"{kind} value should be less than or equal to {high}.")


def _sample_string(node: dict[str, Any], seed: str) -> str:
    if _is_snowflake(node):
        return snowflake_for(seed)
    fmt = node.get("format")
    if fmt == "date-time":
        return SAMPLE_TIME
    if fmt == "uri":
        text = "https://discord.com/sandbox"
    elif node.get("contentEncoding") == "base64":
        text = "c2FuZGJveA=="
    else:
        text = "sandbox"
    low = node.get("minLength") or 0
    high = node.get("maxLength")
    if len(text) < low:
        text = text + "x" * (low - len(text))
    if high is not None and len(text) > high:
        text = text[:high]
    return text
