"""What each operation of the sandbox's spec copy needs to succeed, shared by the tests that call
every operation (``test_every_operation.py``, over HTTP) and every tool
(``tools/test_every_tool.py``, through the tool runner).

A :class:`Recipe` per operation id says which path values, query, body or files the call takes and
what to set up first (a thread, an interaction, a fresh message…) through the sandbox's own API
and control routes; :func:`arrange` runs it and returns the :class:`Call` to make. Ids come from
``GET /_sandbox/fixtures`` (read by :meth:`Walker.reset`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tokenward.sandbox import SandboxState
from tokenward.sandbox.openapi import Operation

from .helpers import issue_token
from .spec_tools import spec

APP = "1300000000000000001"
BOT = "1300000000000000901"
HUB = "1200000000000000001"
CREW = "1200000000000000003"
GENERAL = "1600000000000000102"
NEWS = "1600000000000000108"
FORUM = "1600000000000000109"
VOICE = "1600000000000000103"
STAGE = "1600000000000000105"
ADA = "1100000000000000001"
GRACE = "1100000000000000002"
LINUS = "1100000000000000003"
WUMPUS = "1100000000000000010"
SPAMMER = "1100000000000000011"
MODERATOR = "1700000000000000102"
ALL_SCOPES = (
    "identify",
    "email",
    "guilds",
    "guilds.join",
    "guilds.members.read",
    "connections",
    "openid",
    "gdm.join",
    "role_connections.write",
    "applications.commands.permissions.update",
    "applications.entitlements",
)
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAC"
    "hwGA60e6kgAAAABJRU5ErkJggg=="
)
PNG_BYTES = base64.b64decode(PNG.split(",", 1)[1])


@dataclass
class Walker:
    client: httpx.Client
    state: SandboxState
    fixtures: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget everything the last call made, and read the fixtures' ids again."""
        self.client.post("/_sandbox/reset").raise_for_status()
        self.fixtures = self.client.get("/_sandbox/fixtures").raise_for_status().json()

    @property
    def bot(self) -> dict[str, str]:
        return {"Authorization": f"Bot {self.state.default_application.bot_token}"}

    def bearer(self, user: str = ADA, scopes: tuple[str, ...] = ALL_SCOPES) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.state, user, scopes)}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", self.bot)
        response = self.client.request(method, "/api/v10" + path, headers=headers, **kwargs)
        assert response.status_code < 300, (method, path, response.text)
        return response.json() if response.content else None

    def message(self, channel: str = GENERAL, **body: Any) -> str:
        return str(
            self.call("POST", f"/channels/{channel}/messages", json={"content": "x", **body})["id"]
        )

    def thread(self, kind: int = 11, archived: bool = False) -> str:
        thread = self.call("POST", f"/channels/{GENERAL}/threads", json={"name": "t", "type": kind})
        if archived:
            self.call("PATCH", f"/channels/{thread['id']}", json={"archived": True})
        return str(thread["id"])

    def interaction(self, respond: bool = False) -> dict[str, str]:
        made = self.client.post("/_sandbox/interactions", json={}).json()
        if respond:
            self.call(
                "POST",
                f"/interactions/{made['id']}/{made['token']}/callback",
                json={"type": 4, "data": {"content": "pong"}},
                headers={},
            )
        return {
            "interaction_id": made["id"],
            "interaction_token": made["token"],
            "webhook_id": APP,
            "webhook_token": made["token"],
        }

    def event(self) -> str:
        body = {
            "name": "Launch party",
            "privacy_level": 2,
            "scheduled_start_time": "2030-01-01T18:00:00+00:00",
            "entity_type": 2,
            "channel_id": VOICE,
        }
        return str(self.call("POST", f"/guilds/{HUB}/scheduled-events", json=body)["id"])


Setup = Callable[[Walker], dict[str, Any]]


@dataclass
class Recipe:
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    auth: str = "default"  # default | bearer | none
    setup: Setup | None = None
    files: dict[str, Any] | None = None


def _ok(**path: str) -> Setup:
    return lambda w: dict(path)


def _thread_member(w: Walker) -> dict[str, Any]:
    thread = w.thread()
    w.call("PUT", f"/channels/{thread}/thread-members/{WUMPUS}")
    return {"channel_id": thread, "user_id": WUMPUS}


def _group_dm(w: Walker) -> dict[str, Any]:
    token = w.bearer(GRACE, ("gdm.join",))["Authorization"].split()[1]
    channel = w.call("POST", "/users/@me/channels", json={"access_tokens": [token]})
    return {"channel_id": channel["id"], "user_id": LINUS}


def _poll(w: Walker) -> dict[str, Any]:
    poll = {
        "question": {"text": "Tabs?"},
        "answers": [{"poll_media": {"text": "yes"}}],
        "duration": 1,
    }
    return {
        "message_id": w.call("POST", f"/channels/{GENERAL}/messages", json={"poll": poll})["id"]
    }


def _hook_message(w: Walker) -> dict[str, Any]:
    hook = w.fixtures["webhook"]
    made = w.call(
        "POST",
        f"/webhooks/{hook['id']}/{hook['token']}",
        params={"wait": "true"},
        json={"content": "hook"},
        headers={},
    )
    return {"message_id": made["id"]}


def _lobby_message(w: Walker) -> dict[str, Any]:
    made = w.call("POST", f"/lobbies/{w.fixtures['lobby']}/messages", json={"content": "hi"})
    return {"message_id": made["id"]}


def _linked_lobby(w: Walker) -> dict[str, Any]:
    w.call("PATCH", f"/lobbies/{w.fixtures['lobby']}/channel-linking", json={"channel_id": GENERAL})
    return {"user_id": ADA}


def _stage(w: Walker) -> dict[str, Any]:
    w.call("POST", "/stage-instances", json={"topic": "Town hall", "channel_id": STAGE})
    return {"channel_id": STAGE}


def _app_emoji(w: Walker) -> dict[str, Any]:
    made = w.call("POST", f"/applications/{APP}/emojis", json={"name": "app_emoji", "image": PNG})
    return {"emoji_id": made["id"]}


def _test_entitlement(w: Walker) -> dict[str, Any]:
    body = {"sku_id": "1400000000000000002", "owner_id": ADA, "owner_type": 2}
    return {"entitlement_id": w.call("POST", f"/applications/{APP}/entitlements", json=body)["id"]}


def _template_freed(w: Walker) -> dict[str, Any]:
    w.call("DELETE", f"/guilds/{HUB}/templates/SbxHubTmpl26")
    return {}


def _two_messages(w: Walker) -> dict[str, Any]:
    return {"_body": {"messages": [w.message(), w.message()]}}


RECIPES: dict[str, Recipe] = {
    # applications
    "get_application": Recipe(),
    "update_application": Recipe(body={"description": {"default": "Edited."}}),  # the spec's form
    "update_my_application": Recipe(body={"description": "Edited."}),  # the documented form
    "applications_get_activity_instance": Recipe(path={"instance_id": "i-1"}),
    "upload_application_attachment": Recipe(files={"file": ("a.png", PNG_BYTES, "image/png")}),
    "create_application_command": Recipe(
        body={"name": "hello", "description": "Say hello", "type": 1}
    ),
    "bulk_set_application_commands": Recipe(body=[{"name": "alpha", "description": "First"}]),
    "update_application_command": Recipe(body={"description": "Check, again."}),
    "create_application_emoji": Recipe(body={"name": "app_emoji", "image": PNG}),
    "get_application_emoji": Recipe(setup=_app_emoji),
    "update_application_emoji": Recipe(setup=_app_emoji, body={"name": "renamed"}),
    "delete_application_emoji": Recipe(setup=_app_emoji),
    "create_entitlement": Recipe(
        body={"sku_id": "1400000000000000002", "owner_id": ADA, "owner_type": 2}
    ),
    "delete_entitlement": Recipe(setup=_test_entitlement),
    "list_guild_application_commands": Recipe(),
    "bulk_set_guild_application_commands": Recipe(body=[{"name": "beta", "description": "Second"}]),
    "create_guild_application_command": Recipe(
        body={"name": "warn", "description": "Warn someone"}
    ),
    "get_guild_application_command": Recipe(path={"command_id": "2500000000000000002"}),
    "update_guild_application_command": Recipe(
        path={"command_id": "2500000000000000002"}, body={"description": "Report it."}
    ),
    "delete_guild_application_command": Recipe(path={"command_id": "2500000000000000002"}),
    "get_guild_application_command_permissions": Recipe(path={"command_id": "2500000000000000002"}),
    "set_guild_application_command_permissions": Recipe(
        path={"command_id": "2500000000000000002"},
        auth="bearer",
        body={"permissions": [{"id": MODERATOR, "type": 1, "permission": True}]},
    ),
    "update_application_role_connections_metadata": Recipe(
        body=[{"type": 2, "key": "level", "name": "Level", "description": "The level."}]
    ),
    # channels
    "update_channel": Recipe(body={"topic": "New topic"}),
    "follow_channel": Recipe(path={"channel_id": NEWS}, body={"webhook_channel_id": GENERAL}),
    "create_channel_invite": Recipe(body={"max_age": 3600}),
    "create_message": Recipe(
        body={
            "content": "Hello <@1100000000000000001>",
            "embeds": [{"title": "t", "fields": [{"name": "a", "value": "b"}]}],
            "components": [
                {
                    "type": 1,
                    "components": [{"type": 2, "style": 1, "label": "OK", "custom_id": "ok"}],
                }
            ],
            "nonce": "n-1",
            "enforce_nonce": True,
        }
    ),
    "bulk_delete_messages": Recipe(setup=_two_messages),
    "create_pin": Recipe(),
    "delete_pin": Recipe(setup=lambda w: {"message_id": w.fixtures["messages"][0]["id"]}),
    "deprecated_create_pin": Recipe(),
    "deprecated_delete_pin": Recipe(
        setup=lambda w: {"message_id": w.fixtures["messages"][0]["id"]}
    ),
    "update_message": Recipe(
        setup=lambda w: {"message_id": w.message()}, body={"content": "edited"}
    ),
    "crosspost_message": Recipe(
        setup=lambda w: {"channel_id": NEWS, "message_id": w.message(NEWS)}
    ),
    "delete_user_message_reaction": Recipe(path={"user_id": ADA}),
    "create_thread_from_message": Recipe(
        body={"name": "Discussion", "auto_archive_duration": 1440}
    ),
    "set_channel_permission_overwrite": Recipe(body={"type": 0, "allow": "1024", "deny": "0"}),
    "get_answer_voters": Recipe(setup=_poll, path={"answer_id": "1"}),
    "poll_expire": Recipe(setup=_poll),
    "add_group_dm_user": Recipe(
        setup=lambda w: {
            **_group_dm(w),
            "_body": {"access_token": w.bearer(LINUS, ("gdm.join",))["Authorization"].split()[1]},
        }
    ),
    "delete_group_dm_user": Recipe(setup=_group_dm),
    "send_soundboard_sound": Recipe(
        path={"channel_id": VOICE}, body={"sound_id": "2700000000000000001"}
    ),
    "list_thread_members": Recipe(
        setup=lambda w: {"channel_id": w.thread()}, query={"with_member": "true"}
    ),
    "join_thread": Recipe(setup=lambda w: {"channel_id": w.thread()}),
    "leave_thread": Recipe(setup=lambda w: {"channel_id": w.thread()}),
    "get_thread_member": Recipe(setup=_thread_member),
    "add_thread_member": Recipe(setup=lambda w: {"channel_id": w.thread(), "user_id": WUMPUS}),
    "delete_thread_member": Recipe(setup=_thread_member),
    "create_thread": Recipe(
        path={"channel_id": FORUM}, body={"name": "How do I?", "message": {"content": "Help"}}
    ),
    "list_private_archived_threads": Recipe(setup=lambda w: {"_": w.thread(12, archived=True)}),
    "list_public_archived_threads": Recipe(setup=lambda w: {"_": w.thread(11, archived=True)}),
    "list_my_private_archived_threads": Recipe(setup=lambda w: {"_": w.thread(12, archived=True)}),
    "thread_search": Recipe(setup=lambda w: {"_": w.thread()}, query={"name": "t"}),
    "update_voice_channel_status": Recipe(path={"channel_id": VOICE}, body={"status": "Live"}),
    "create_webhook": Recipe(body={"name": "Deploys"}),
    # guilds
    "update_guild": Recipe(body={"name": "Sandbox Hub Renamed", "description": None}),
    "create_auto_moderation_rule": Recipe(
        body={
            "name": "No spoilers",
            "event_type": 1,
            "trigger_type": 1,
            "trigger_metadata": {"keyword_filter": ["spoiler"]},
            "actions": [{"type": 1}],
            "enabled": True,
        }
    ),
    "update_auto_moderation_rule": Recipe(body={"enabled": False}),
    "get_guild_ban": Recipe(path={"user_id": SPAMMER}),
    "ban_user_from_guild": Recipe(body={"delete_message_seconds": 3600}),
    "unban_user_from_guild": Recipe(path={"user_id": SPAMMER}),
    "bulk_ban_users_from_guild": Recipe(body={"user_ids": [WUMPUS]}),
    "create_guild_channel": Recipe(body={"name": "new-channel", "type": 0, "topic": "t"}),
    "bulk_update_guild_channels": Recipe(body=[{"id": GENERAL, "position": 3}]),
    "create_guild_emoji": Recipe(body={"name": "fresh", "image": PNG}),
    "update_guild_emoji": Recipe(body={"name": "renamed"}),
    "update_guild_incident_actions": Recipe(body={"invites_disabled_until": None}),
    "update_my_guild_member": Recipe(body={"nick": "Sandy"}),
    "add_guild_member": Recipe(
        setup=lambda w: {
            "_body": {"access_token": w.bearer(LINUS, ("guilds.join",))["Authorization"].split()[1]}
        },
        path={"user_id": LINUS},
    ),
    "update_guild_member": Recipe(body={"nick": "Wumpy", "roles": [MODERATOR]}),
    "add_guild_member_role": Recipe(path={"role_id": MODERATOR}),
    "delete_guild_member_role": Recipe(path={"user_id": GRACE, "role_id": MODERATOR}),
    "search_guild_members": Recipe(query={"query": "wum", "limit": 5}),
    "put_guilds_onboarding": Recipe(body={"enabled": False, "default_channel_ids": [GENERAL]}),
    "prune_guild": Recipe(body={"days": 7, "compute_prune_count": True}),
    "preview_prune_guild": Recipe(query={"days": 7}),
    "action_guild_join_request": Recipe(path={"request_id": "1"}, body={"action": "APPROVED"}),
    "create_guild_role": Recipe(body={"name": "Helpers", "permissions": "1024", "color": 3447003}),
    "bulk_update_guild_roles": Recipe(body=[{"id": MODERATOR, "position": 1}]),
    "update_guild_role": Recipe(body={"name": "Mods", "mentionable": True}),
    "delete_guild_role": Recipe(),
    "create_guild_scheduled_event": Recipe(
        body={
            "name": "Meetup",
            "privacy_level": 2,
            "scheduled_start_time": "2030-01-01T18:00:00+00:00",
            "scheduled_end_time": "2030-01-01T20:00:00+00:00",
            "entity_type": 3,
            "entity_metadata": {"location": "Somewhere"},
        }
    ),
    "create_guild_soundboard_sound": Recipe(
        body={"name": "boing", "sound": "data:audio/ogg;base64,T2dnUw=="}
    ),
    "update_guild_soundboard_sound": Recipe(body={"name": "horn"}),
    "create_guild_sticker": Recipe(
        files={
            "name": (None, "castle2"),
            "tags": (None, "castle"),
            "file": ("s.png", PNG_BYTES, "image/png"),
        }
    ),
    "update_guild_sticker": Recipe(body={"name": "Castle"}),
    "create_guild_template": Recipe(setup=_template_freed, body={"name": "Hub template"}),
    "update_guild_template": Recipe(body={"name": "Renamed template"}),
    "update_self_voice_state": Recipe(body={"channel_id": STAGE, "suppress": False}),
    "get_voice_state": Recipe(path={"user_id": ADA}),
    "update_voice_state": Recipe(
        path={"user_id": ADA}, body={"channel_id": VOICE, "suppress": True}
    ),
    "update_guild_welcome_screen": Recipe(body={"description": "Welcome!", "enabled": True}),
    "update_guild_widget_settings": Recipe(body={"enabled": True, "channel_id": GENERAL}),
    "get_guild_widget_png": Recipe(),
    "create_guild_scheduled_event_exception": Recipe(
        body={"original_scheduled_start_time": "2030-01-01T18:00:00+00:00"}
    ),
    "update_guild_scheduled_event_exception": Recipe(
        path={"exception_id": "1"}, body={"is_canceled": True}
    ),
    "delete_guild_scheduled_event_exception": Recipe(path={"exception_id": "1"}),
    "list_guild_scheduled_event_exception_users": Recipe(
        path={"guild_scheduled_event_exception_id": "1"}
    ),
    "update_guild_scheduled_event": Recipe(body={"name": "Renamed"}),
    # interactions and webhooks
    "create_interaction_response": Recipe(
        setup=lambda w: w.interaction(),
        auth="none",
        query={"with_response": "true"},
        body={"type": 4, "data": {"content": "pong"}},
    ),
    "execute_webhook": Recipe(auth="none", query={"wait": "true"}, body={"content": "From a hook"}),
    "execute_slack_compatible_webhook": Recipe(auth="none", body={"text": "From Slack"}),
    "execute_github_compatible_webhook": Recipe(
        auth="none",
        body={
            "sender": {
                "id": 1,
                "login": "octocat",
                "html_url": "https://github.com/octocat",
                "avatar_url": "https://github.com/octocat.png",
            }
        },
    ),
    "get_original_webhook_message": Recipe(
        setup=lambda w: w.interaction(respond=True), auth="none"
    ),
    "update_original_webhook_message": Recipe(
        setup=lambda w: w.interaction(respond=True), auth="none", body={"content": "edited"}
    ),
    "delete_original_webhook_message": Recipe(
        setup=lambda w: w.interaction(respond=True), auth="none"
    ),
    "get_webhook_message": Recipe(setup=_hook_message, auth="none"),
    "update_webhook_message": Recipe(setup=_hook_message, auth="none", body={"content": "edited"}),
    "delete_webhook_message": Recipe(setup=_hook_message, auth="none"),
    "get_webhook_by_token": Recipe(auth="none"),
    "update_webhook_by_token": Recipe(auth="none", body={"name": "Renamed hook"}),
    "delete_webhook_by_token": Recipe(auth="none"),
    "update_webhook": Recipe(body={"name": "Renamed hook"}),
    # invites
    "update_invite_target_users": Recipe(
        files={"target_users_file": ("u.csv", b"user_id\n1", "text/csv")}
    ),
    # lobbies
    "create_or_join_lobby": Recipe(body={"secret": "open-sesame"}),
    "create_lobby": Recipe(body={"members": [{"id": ADA}], "metadata": {"mode": "pvp"}}),
    "edit_lobby": Recipe(body={"metadata": {"mode": "coop"}}),
    "edit_lobby_channel_link": Recipe(body={"channel_id": GENERAL}),
    "create_linked_lobby_guild_invite_for_self": Recipe(setup=_linked_lobby, auth="bearer"),
    "create_linked_lobby_guild_invite_for_user": Recipe(setup=_linked_lobby),
    "bulk_update_lobby_members": Recipe(body=[{"id": LINUS}]),
    "add_lobby_member": Recipe(path={"user_id": LINUS}, body={"metadata": {"team": "red"}}),
    "delete_lobby_member": Recipe(path={"user_id": GRACE}),
    "leave_lobby": Recipe(auth="bearer"),
    "get_lobby_messages": Recipe(auth="bearer"),
    "create_lobby_message": Recipe(body={"content": "gg"}),
    "update_lobby_message_external_moderation_metadata": Recipe(
        setup=_lobby_message, body={"flagged": "no"}
    ),
    "update_user_message_external_moderation_metadata": Recipe(
        path={"user_id_1": ADA, "user_id_2": GRACE}, body={"flagged": "no"}
    ),
    # partner SDK
    "partner_sdk_unmerge_provisional_account": Recipe(auth="none"),
    "partner_sdk_token": Recipe(auth="none"),
    # users, SKUs, entitlements
    "get_sku_subscriptions": Recipe(query={"user_id": ADA}),
    "create_stage_instance": Recipe(body={"topic": "Town hall", "channel_id": STAGE}),
    "get_stage_instance": Recipe(setup=_stage),
    "update_stage_instance": Recipe(setup=_stage, body={"topic": "Q&A"}),
    "delete_stage_instance": Recipe(setup=_stage),
    "update_my_user": Recipe(body={"username": "Sandbox Helper"}),
    "create_dm": Recipe(body={"recipient_id": ADA}),
    "leave_guild": Recipe(path={"guild_id": CREW}),
    "get_user": Recipe(path={"user_id": GRACE}),
    "update_application_user_role_connection": Recipe(
        body={"platform_name": "Game", "metadata": {"level": "7"}}
    ),
    "get_my_guild_member": Recipe(auth="bearer"),
    "get_current_user_application_entitlements": Recipe(auth="bearer"),
    "list_my_connections": Recipe(auth="bearer"),
    "get_openid_connect_userinfo": Recipe(auth="bearer"),
}

EVENT_OPS = {
    "get_guild_scheduled_event",
    "update_guild_scheduled_event",
    "delete_guild_scheduled_event",
    "list_guild_scheduled_event_users",
    "count_guild_scheduled_event_users",
    "create_guild_scheduled_event_exception",
    "update_guild_scheduled_event_exception",
    "delete_guild_scheduled_event_exception",
    "list_guild_scheduled_event_exception_users",
}


def defaults(w: Walker, op: Operation) -> dict[str, str]:
    f = w.fixtures
    hook = f["webhook"]
    guild_command = "/guilds/" in op.path and "/commands" in op.path
    return {
        "guild_id": HUB,
        "channel_id": GENERAL,
        "message_id": f["messages"][1]["id"],  # grace's, with reactions
        "user_id": WUMPUS,
        "role_id": MODERATOR,
        "emoji_id": f["emojis"][0]["id"],
        "sticker_id": f["stickers"][0]["id"],
        "application_id": APP,
        "command_id": f["application_commands"]["hub" if guild_command else "global"],
        "entitlement_id": "1500000000000000005",
        "sku_id": "1400000000000000001",
        "subscription_id": f["subscription"],
        "lobby_id": f["lobby"],
        "webhook_id": hook["id"],
        "webhook_token": hook["token"],
        "code": "SbxHubTmpl26" if "/templates/" in op.path else "Hb7xQp2K",
        "emoji_name": "\N{THUMBS UP SIGN}",
        "overwrite_id": MODERATOR,
        "rule_id": f["automod_rules"][0],
        "integration_id": f["integration"],
        "sound_id": f["soundboard_sound"],
        "pack_id": "1800000000000000001",
        "answer_id": "1",
        "instance_id": "instance-1",
        "request_id": "1",
        "exception_id": "1",
        "guild_scheduled_event_exception_id": "1",
        "user_id_1": ADA,
        "user_id_2": GRACE,
    }


@dataclass
class Call:
    """One operation's call, arranged: every path value, the query, the body or files, and who
    calls (``bot``, ``bearer`` or ``none``)."""

    op: Operation
    path: dict[str, str]
    query: dict[str, Any]
    body: Any
    files: dict[str, Any] | None
    auth: str
    sampled: bool = False
    """The body is a sample of the request schema, not the recipe's own."""


def arrange(w: Walker, op: Operation) -> Call:
    """Run ``op``'s recipe on the sandbox (after :meth:`Walker.reset`) and return its call."""
    recipe = RECIPES.get(op.id, Recipe())
    path = defaults(w, op)
    if op.id in EVENT_OPS:
        path["guild_scheduled_event_id"] = w.event()
    body = recipe.body
    if recipe.setup is not None:
        made = recipe.setup(w)
        body = made.pop("_body", body)
        path.update({k: v for k, v in made.items() if not k.startswith("_")})
    path.update(recipe.path)
    auth = recipe.auth
    if auth == "default":
        auth = "bot" if "bot" in op.security else ("none" if "none" in op.security else "bearer")
    sampled = op.request_schema is not None and body is None and recipe.files is None
    if sampled:
        body = spec().schemas.sample(op.request_schema, op.id)
    return Call(op, path, dict(recipe.query), body, recipe.files, auth, sampled)
