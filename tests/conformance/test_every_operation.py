"""Every operation of the sandbox's spec copy, called over a loopback socket; each answer is
checked with ``jsonschema`` against the operation's response schema.

One sandbox (rate limits off) serves the module; it is reset before each operation, whose
recipe (``recipes.py``) sets up what the call needs (a thread, an interaction, a fresh message…)
through the sandbox's own API and control routes. Ids come from ``GET /_sandbox/fixtures``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tokenward._serving import BackgroundServer
from tokenward.sandbox import SandboxSettings, SandboxState, create_sandbox_app
from tokenward.sandbox.openapi import Operation

from .recipes import Walker, arrange
from .spec_tools import schema_errors, spec


@pytest.fixture(scope="module")
def walker() -> Iterator[Walker]:
    app = create_sandbox_app(SandboxSettings(rate_limits=False))
    state: SandboxState = app.state.sandbox
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield Walker(client, state)


OPERATIONS = spec().operations


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.id)
def test_operation_answers_with_its_schema(walker: Walker, op: Operation) -> None:
    w = walker
    w.reset()
    call = arrange(w, op)
    url = "/api/v10" + re.sub(r"\{(\w+)\}", lambda m: call.path[m.group(1)], op.path)
    headers = {"bot": w.bot, "none": {}, "bearer": w.bearer()}[call.auth]
    kwargs: dict[str, Any] = {"params": call.query, "headers": headers}
    if call.files is not None:
        kwargs["files"] = call.files
    elif call.body is not None:
        kwargs["json"] = call.body
    response = w.client.request(op.method, url, **kwargs)
    assert response.status_code in op.responses, (response.status_code, response.text)
    media = op.media_types.get(response.status_code)
    if media is not None:
        assert response.headers["content-type"].startswith(media)
        return
    schema = op.responses[response.status_code]
    if schema is None:
        assert response.content == b""
        return
    errors = schema_errors(schema, response.json())
    assert errors == [], errors[:10]


def test_every_hosted_tool_route_is_walked() -> None:
    tools = {tool for op in OPERATIONS for tool in op.tools}
    assert len(tools) == 255
