"""The sandbox's schema code against ``jsonschema``: samples are valid, and the Discord-style
validator rejects what JSON Schema rejects, naming the field as Discord's error tree does."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tokenward.sandbox.schema import SchemaSet

from .spec_tools import schema_errors, spec

OPERATIONS = spec().operations
WITH_BODY = [operation for operation in OPERATIONS if operation.request_schema is not None]


def _leaf(tree: dict[str, Any], path: tuple[str, ...]) -> list[dict[str, str]]:
    node: Any = tree
    for key in path:
        node = node.get(key, {})
    return list(node.get("_errors", []))


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.id)
def test_samples_of_every_response_schema_are_valid(operation: Any) -> None:
    schemas: SchemaSet = spec().schemas
    for status, schema in operation.responses.items():
        if schema is None:
            continue
        value = schemas.sample(schema, operation.id)
        assert schema_errors(schema, value) == [], (status, value)
        assert schemas.conforms(schema, value)


def _mutations(
    schemas: SchemaSet, schema: Any, body: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any], tuple[str, ...], set[str]]]:
    """(what, bad body, path of the error, acceptable codes) for one object body."""
    node = schemas.resolve(schema)
    properties = node.get("properties", {})
    for name in node.get("required", ()):
        bad = copy.deepcopy(body)
        bad.pop(name, None)
        yield f"without {name}", bad, (name,), {"BASE_TYPE_REQUIRED"}
    for name, sub in properties.items():
        prop = schemas.resolve(sub)
        types = prop.get("type")
        types = [types] if isinstance(types, str) else list(types or ())
        if "string" in types and prop.get("maxLength", 10**6) < 10_000:
            bad = {**copy.deepcopy(body), name: "x" * (prop["maxLength"] + 1)}
            yield (
                f"{name} too long",
                bad,
                (name,),
                {"BASE_TYPE_MAX_LENGTH", "BASE_TYPE_BAD_LENGTH", "NUMBER_TYPE_COERCE"},
            )
        if "integer" in types and prop.get("maximum") is not None:
            bad = {**copy.deepcopy(body), name: prop["maximum"] + 1}
            yield f"{name} too big", bad, (name,), {"NUMBER_TYPE_MAX"}
        if types and "object" not in types and "array" not in types:
            bad = {**copy.deepcopy(body), name: {"not": "a scalar"}}
            yield (
                f"{name} an object",
                bad,
                (name,),
                {
                    "STRING_TYPE_CONVERT",
                    "NUMBER_TYPE_COERCE",
                    "BOOLEAN_TYPE_COERCE",
                    "BASE_TYPE_INVALID",
                },
            )
        if types == ["array"] or types == ["array", "null"]:
            bad = {**copy.deepcopy(body), name: "not a list"}
            yield f"{name} a string", bad, (name,), {"LIST_TYPE_CONVERT"}


@pytest.mark.parametrize("operation", WITH_BODY, ids=lambda op: op.id)
def test_validator_agrees_with_jsonschema(operation: Any) -> None:
    schemas: SchemaSet = spec().schemas
    schema = operation.request_schema
    body = schemas.sample(schema, operation.id)
    assert schema_errors(schema, body) == []
    _, errors = schemas.check(schema, body)
    assert errors.count == 0, errors.tree
    if not isinstance(body, dict) or schemas.resolve(schema).get("anyOf"):
        return
    checked = 0
    for what, bad, path, codes in _mutations(schemas, schema, body):
        if not schema_errors(schema, bad):
            continue  # the spec allows it after all (e.g. an empty enum the spec leaves open)
        _, errors = schemas.check(schema, bad)
        found = {error["code"] for error in _leaf(errors.tree, path)}
        assert found & codes, (what, errors.tree)
        checked += 1
    if schemas.resolve(schema).get("required"):
        assert checked


def test_error_tree_nests_fields_and_indices() -> None:
    schemas: SchemaSet = spec().schemas
    schema = spec().by_id("create_message").request_schema
    body = {"embeds": [{"title": "ok"}, {"fields": [{"name": "n"}]}], "nonce": "n" * 26}
    _, errors = schemas.check(schema, body)
    assert errors.tree["embeds"]["1"]["fields"]["0"]["value"]["_errors"] == [
        {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}
    ]
    assert errors.tree["nonce"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert "0" not in errors.tree["embeds"]


def test_coercions_discord_makes() -> None:
    """An integer field takes a numeric string (discord.py sends permissions that way), a
    snowflake field takes a JSON integer; JSON Schema proper (strict) takes neither."""
    schemas: SchemaSet = spec().schemas
    schema = spec().by_id("create_guild_role").request_schema
    value, errors = schemas.check(schema, {"name": "r", "permissions": "8"})
    assert errors.count == 0
    assert value["permissions"] == 8
    _, strict = schemas.check(schema, {"name": "r", "permissions": "8"}, strict=True)
    assert strict.count == 1
    follow = spec().by_id("follow_channel").request_schema
    value, errors = schemas.check(follow, {"webhook_channel_id": 1600000000000000102})
    assert errors.count == 0
    assert value["webhook_channel_id"] == "1600000000000000102"
    _, errors = schemas.check(follow, {"webhook_channel_id": "abc"})
    assert errors.tree == {
        "webhook_channel_id": {
            "_errors": [{"code": "NUMBER_TYPE_COERCE", "message": 'Value "abc" is not snowflake.'}]
        }
    }


def test_complete_fills_required_fields_only() -> None:
    schemas: SchemaSet = spec().schemas
    schema = schemas.named("GuildRoleResponse")
    partial = {"id": "1700000000000000101", "name": "Admin", "permissions": "8"}
    done = schemas.complete(schema, partial)
    assert schema_errors(schema, done) == []
    assert done["name"] == "Admin"
    assert done["id"] == "1700000000000000101"
