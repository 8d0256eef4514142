"""JSON-Schema checks with a validator nobody here wrote (``jsonschema``, Draft 2020-12).

The sandbox's answers and its own schema code are checked against Discord's schemas through
this module, so a bug in ``tokenward.sandbox.schema`` cannot hide itself.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tokenward.sandbox.openapi import Spec, load_spec

_BASE = "urn:tokenward-sandbox-spec"


@cache
def _registry() -> Registry:
    spec = load_spec()
    document = {"components": {"schemas": spec.schemas.schemas}}
    return Registry().with_resource(_BASE, Resource(document, specification=DRAFT202012))


def _absolute(schema: Any) -> Any:
    text = json.dumps(schema).replace('"#/components/', f'"{_BASE}#/components/')
    return json.loads(text)


def schema_errors(schema: Any, value: Any) -> list[str]:
    """Every JSON-Schema error of ``value`` against ``schema`` (refs into the spec's components)."""
    validator = Draft202012Validator(_absolute(schema), registry=_registry())
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message[:300]}"
        for error in validator.iter_errors(value)
    ]


def spec() -> Spec:
    return load_spec()
