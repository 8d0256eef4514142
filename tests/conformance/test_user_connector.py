"""The routes of the hosted ``discord`` (user OAuth) tools, called with a user's Bearer token
(ada, the default application's owner, with the scopes those tools need); each answer is
checked with ``jsonschema`` against the operation's response schema."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tokenward.sandbox.openapi import Operation

from .bot import ADA, APP, GENERAL, GRACE, HUB, MODERATOR, Bot
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


def _test_entitlement(bot: Bot) -> dict[str, str]:
    body = {"sku_id": "1400000000000000002", "owner_id": ADA, "owner_type": 2}
    made = bot.ok(bot.post(f"/applications/{APP}/entitlements", json=body))
    return {"entitlement_id": made["id"]}


def _linked(bot: Bot) -> dict[str, str]:
    lobby = bot.fixtures["lobby"]
    bot.ok(bot.patch(f"/lobbies/{lobby}/channel-linking", json={"channel_id": GENERAL}))
    return {}


SETUP: dict[str, Callable[[Bot], dict[str, str]]] = {
    "delete_entitlement": _test_entitlement,
    "create_linked_lobby_guild_invite_for_self": _linked,
}
BODIES: dict[str, Any] = {
    "set_guild_application_command_permissions": {
        "permissions": [{"id": MODERATOR, "type": 1, "permission": True}]
    },
    "create_or_join_lobby": {"secret": "our-lobby"},
    "edit_lobby_channel_link": {"channel_id": GENERAL},
    "create_lobby_message": {"content": "gg"},
    "update_application_user_role_connection": {
        "platform_name": "Game",
        "metadata": {"level": "3"},
    },
}


@pytest.mark.parametrize("op", USER_OPERATIONS, ids=lambda op: op.id)
def test_user_tool_routes_answer_a_bearer_token(bot: Bot, op: Operation) -> None:
    path = {
        "application_id": APP,
        "entitlement_id": "1500000000000000005",
        "guild_id": HUB,
        "command_id": bot.fixtures["application_commands"]["hub"],
        "code": "SbxHubTmpl26" if "templates" in op.path else "Hb7xQp2K",
        "lobby_id": bot.fixtures["lobby"],
        "sku_id": "1400000000000000001",
        "subscription_id": bot.fixtures["subscription"],
        "user_id": GRACE,
    }
    path.update(SETUP.get(op.id, lambda _: {})(bot))
    url = re.sub(r"\{(\w+)\}", lambda m: path[m.group(1)], op.path)
    headers = bot.bearer(ADA, *SCOPES)
    kwargs: dict[str, Any] = {"headers": headers}
    if op.id in BODIES:
        kwargs["json"] = BODIES[op.id]
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
