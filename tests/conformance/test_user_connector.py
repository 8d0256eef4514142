"""The routes of the hosted ``discord`` (user OAuth) tools, called with a user's Bearer token
(ada, the default application's owner, with the scopes those tools need); each answer is
checked with ``jsonschema`` against the operation's response schema. The calls are arranged by
the operations' recipes (``recipes.py``)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tokenward.sandbox.openapi import Operation

from .bot import ADA, Bot
from .recipes import Walker, arrange
from .spec_tools import schema_errors, spec

SCOPES = (
    "identify",
    "email",
    "guilds",
    "guilds.members.read",
    "connections",
    "openid",
    "role_connections.write",
    "applications.commands.permissions.update",
    "applications.entitlements",
)
USER_OPERATIONS = [
    op for op in spec().operations if any(t.startswith("discord_") for t in op.tools)
]


@pytest.mark.parametrize("op", USER_OPERATIONS, ids=lambda op: op.id)
def test_user_tool_routes_answer_a_bearer_token(bot: Bot, op: Operation) -> None:
    call = arrange(Walker(bot.client, bot.state, bot.fixtures), op)
    url = re.sub(r"\{(\w+)\}", lambda m: call.path[m.group(1)], op.path)
    kwargs: dict[str, Any] = {"headers": bot.bearer(ADA, *SCOPES), "params": call.query}
    if call.body is not None:
        kwargs["json"] = call.body
    response = bot.request(op.method, url, **kwargs)
    if op.security == ("bot",):
        # The spec allows only bot tokens here (``discord_get_user``): a user's token is 401.
        assert response.status_code == 401, response.text
        return
    assert response.status_code in op.responses, response.text
    schema = op.responses[response.status_code]
    if schema is not None and op.id not in ("get_guild_widget_png",):
        assert schema_errors(schema, response.json()) == []


def test_the_user_connector_has_34_tools() -> None:
    assert (
        sum(len([t for t in op.tools if t.startswith("discord_")]) for op in USER_OPERATIONS) == 34
    )
