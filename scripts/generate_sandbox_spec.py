#!/usr/bin/env python3
"""Generate the sandbox's copy of Discord's OpenAPI description (``make sandbox-spec``).

The Discord sandbox validates request bodies against Discord's own request schemas and answers
with bodies that fit the response schemas. It must not read ``../shared`` at run time, so this
script extracts what it needs from Discord's OpenAPI 3.1 document (discord/discord-api-spec,
MIT-licensed) into ``src/tokenward/sandbox/spec/``:

* ``discord-openapi.json``: every operation (method, path, security, path and query parameters,
  the JSON request schema, the response schema of each status) with the tool names of the hosted
  catalog that call it, and the component schemas they reach (descriptions and titles dropped);
* ``LICENSE``: the spec's MIT licence, which must travel with the copy.

Inputs: the spec at ``$TOKENWARD_DISCORD_OPENAPI`` or ``../shared/reference/discord-openapi/
openapi.json`` (relative to the repository root, or to its parent for a nested worktree), and
the hosted catalog's tool list ``hosted-discord-catalog.md`` beside that folder. ``--check``
compares instead of writing (exit 1 on drift); ``tests/conformance/test_spec_data.py`` does the
same in the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "src" / "tokenward" / "sandbox" / "spec"
OUT_SPEC = OUT_DIR / "discord-openapi.json"
OUT_LICENSE = OUT_DIR / "LICENSE"
METHODS = ("get", "put", "post", "patch", "delete")
DROPPED_KEYS = frozenset({"description", "title", "example", "examples", "externalDocs"})

# Hosted tool names whose operationId differs from the name without its prefix. The rest equal
# the operationId (``discordbot_create_message`` -> ``create_message``).
TOOL_OPERATIONS: dict[str, str] = {
    "discord_create_lobby_channel_invite_for_self": "create_linked_lobby_guild_invite_for_self",
    "discord_delete_current_user_application_role_connection": (
        "delete_application_user_role_connection"
    ),
    "discord_delete_test_entitlement": "delete_entitlement",
    "discord_edit_application_command_permissions": "set_guild_application_command_permissions",
    "discord_get_application_command_permissions": "get_guild_application_command_permissions",
    "discord_get_current_user_application_role_connection": "get_application_user_role_connection",
    "discord_get_guild_application_command_permissions": (
        "list_guild_application_command_permissions"
    ),
    "discord_get_invite_deprecated": "invite_resolve",
    "discord_link_channel_to_lobby": "edit_lobby_channel_link",
    "discord_list_sku_subscriptions": "get_sku_subscriptions",
    "discord_resolve_invite": "invite_resolve",
    "discord_retrieve_user_connections": "list_my_connections",
    "discord_send_lobby_message": "create_lobby_message",
    "discord_update_current_user_application_role_connection": (
        "update_application_user_role_connection"
    ),
    "discordbot_begin_guild_prune": "prune_guild",
    "discordbot_bulk_guild_ban": "bulk_ban_users_from_guild",
    "discordbot_bulk_overwrite_global_application_commands": "bulk_set_application_commands",
    "discordbot_bulk_overwrite_guild_application_commands": "bulk_set_guild_application_commands",
    "discordbot_create_global_application_command": "create_application_command",
    "discordbot_create_group_dm": "create_dm",
    "discordbot_create_guild_ban": "ban_user_from_guild",
    "discordbot_create_lobby_channel_invite_for_self": "create_linked_lobby_guild_invite_for_self",
    "discordbot_create_lobby_channel_invite_for_user": "create_linked_lobby_guild_invite_for_user",
    "discordbot_create_reaction": "add_my_message_reaction",
    "discordbot_create_test_entitlement": "create_entitlement",
    "discordbot_delete_all_reactions": "delete_all_message_reactions",
    "discordbot_delete_all_reactions_for_emoji": "delete_all_message_reactions_by_emoji",
    "discordbot_delete_channel_invite": "invite_revoke",
    "discordbot_delete_channel_permission": "delete_channel_permission_overwrite",
    "discordbot_delete_global_application_command": "delete_application_command",
    "discordbot_delete_guild_invite": "invite_revoke",
    "discordbot_delete_original_interaction_response": "delete_original_webhook_message",
    "discordbot_delete_own_reaction": "delete_my_message_reaction",
    "discordbot_delete_test_entitlement": "delete_entitlement",
    "discordbot_delete_user_reaction": "delete_user_message_reaction",
    "discordbot_delete_webhook_with_token": "delete_webhook_by_token",
    "discordbot_edit_channel_permissions": "set_channel_permission_overwrite",
    "discordbot_edit_current_application": "update_my_application",
    "discordbot_edit_global_application_command": "update_application_command",
    "discordbot_edit_guild_application_command": "update_guild_application_command",
    "discordbot_edit_message": "update_message",
    "discordbot_edit_original_interaction_response": "update_original_webhook_message",
    "discordbot_edit_webhook_message": "update_webhook_message",
    "discordbot_end_poll": "poll_expire",
    "discordbot_follow_announcement_channel": "follow_channel",
    "discordbot_get_application_activity_instance": "applications_get_activity_instance",
    "discordbot_get_application_command_permissions": "get_guild_application_command_permissions",
    "discordbot_get_application_role_connection_metadata": (
        "get_application_role_connections_metadata"
    ),
    "discordbot_get_channel_invites": "list_channel_invites",
    "discordbot_get_channel_message": "get_message",
    "discordbot_get_channel_webhooks": "list_channel_webhooks",
    "discordbot_get_current_application": "get_my_application",
    "discordbot_get_current_bot_application": "get_my_oauth2_application",
    "discordbot_get_current_user": "get_my_user",
    "discordbot_get_current_user_voice_state": "get_self_voice_state",
    "discordbot_get_global_application_command": "get_application_command",
    "discordbot_get_global_application_commands": "list_application_commands",
    "discordbot_get_guild_application_commands": "list_guild_application_commands",
    "discordbot_get_guild_application_command_permissions": (
        "list_guild_application_command_permissions"
    ),
    "discordbot_get_guild_audit_log": "list_guild_audit_log_entries",
    "discordbot_get_guild_bans": "list_guild_bans",
    "discordbot_get_guild_integrations": "list_guild_integrations",
    "discordbot_get_guild_invites": "list_guild_invites",
    "discordbot_get_guild_onboarding": "get_guilds_onboarding",
    "discordbot_get_guild_prune_count": "preview_prune_guild",
    "discordbot_get_guild_role_member_counts": "guild_role_member_counts",
    "discordbot_get_guild_scheduled_event_users": "list_guild_scheduled_event_users",
    "discordbot_get_guild_voice_regions": "list_guild_voice_regions",
    "discordbot_get_original_interaction_response": "get_original_webhook_message",
    "discordbot_get_pinned_messages": "list_pins",
    "discordbot_get_reactions": "list_message_reactions_by_emoji",
    "discordbot_get_user_voice_state": "get_voice_state",
    "discordbot_get_webhook_with_token": "get_webhook_by_token",
    "discordbot_group_dm_add_recipient": "add_group_dm_user",
    "discordbot_group_dm_remove_recipient": "delete_group_dm_user",
    "discordbot_kick_guild_member": "delete_guild_member",
    "discordbot_link_channel_to_lobby": "edit_lobby_channel_link",
    "discordbot_list_active_guild_threads": "get_active_guild_threads",
    "discordbot_list_channel_messages": "list_messages",
    "discordbot_list_current_user_guilds": "list_my_guilds",
    "discordbot_list_default_soundboard_sounds": "get_soundboard_default_sounds",
    "discordbot_list_entitlements": "get_entitlements",
    "discordbot_list_joined_private_archived_threads": "list_my_private_archived_threads",
    "discordbot_list_sku_subscriptions": "get_sku_subscriptions",
    "discordbot_list_skus": "list_skus",  # not in the spec: see EXTRA_OPERATIONS
    "discordbot_list_threads": "list_public_archived_threads",
    "discordbot_modify_application_emoji": "update_application_emoji",
    "discordbot_modify_auto_moderation_rule": "update_auto_moderation_rule",
    "discordbot_modify_channel": "update_channel",
    "discordbot_modify_current_member": "update_my_guild_member",
    "discordbot_modify_current_user": "update_my_user",
    "discordbot_modify_current_user_nick": "update_my_guild_member",
    "discordbot_modify_current_user_voice_state": "update_self_voice_state",
    "discordbot_modify_guild": "update_guild",
    "discordbot_modify_guild_channel_positions": "bulk_update_guild_channels",
    "discordbot_modify_guild_emoji": "update_guild_emoji",
    "discordbot_modify_guild_incident_actions": "update_guild_incident_actions",
    "discordbot_modify_guild_member": "update_guild_member",
    "discordbot_modify_guild_onboarding": "put_guilds_onboarding",
    "discordbot_modify_guild_role": "update_guild_role",
    "discordbot_modify_guild_role_positions": "bulk_update_guild_roles",
    "discordbot_modify_guild_scheduled_event": "update_guild_scheduled_event",
    "discordbot_modify_guild_soundboard_sound": "update_guild_soundboard_sound",
    "discordbot_modify_guild_sticker": "update_guild_sticker",
    "discordbot_modify_guild_template": "update_guild_template",
    "discordbot_modify_guild_welcome_screen": "update_guild_welcome_screen",
    "discordbot_modify_guild_widget": "update_guild_widget_settings",
    "discordbot_modify_lobby": "edit_lobby",
    "discordbot_modify_stage_instance": "update_stage_instance",
    "discordbot_modify_user_voice_state": "update_voice_state",
    "discordbot_modify_webhook": "update_webhook",
    "discordbot_modify_webhook_with_token": "update_webhook_by_token",
    "discordbot_pin_message": "create_pin",
    "discordbot_remove_guild_ban": "unban_user_from_guild",
    "discordbot_remove_guild_member_role": "delete_guild_member_role",
    "discordbot_remove_lobby_member": "delete_lobby_member",
    "discordbot_remove_thread_member": "delete_thread_member",
    "discordbot_resolve_invite": "invite_resolve",
    "discordbot_search_guild_messages": "guild_search",
    "discordbot_search_threads": "thread_search",
    "discordbot_send_lobby_message": "create_lobby_message",
    "discordbot_set_voice_channel_status": "update_voice_channel_status",
    "discordbot_start_thread_from_message": "create_thread_from_message",
    "discordbot_start_thread_in_forum_channel": "create_thread",
    "discordbot_start_thread_without_message": "create_thread",
    "discordbot_trigger_typing": "trigger_typing_indicator",
    "discordbot_unpin_message": "delete_pin",
    "discordbot_update_application_role_connection_metadata": (
        "update_application_role_connections_metadata"
    ),
    "discordbot_update_lobby_message_moderation_metadata": (
        "update_lobby_message_external_moderation_metadata"
    ),
}

# Routes a hosted tool calls that the spec does not describe (Discord documents them in prose).
# Their schemas are the sandbox's own, written from the prose docs, and marked ``origin``.
EXTRA_OPERATIONS: list[dict[str, Any]] = [
    {
        "id": "list_skus",
        "method": "GET",
        "path": "/applications/{application_id}/skus",
        "origin": "tokenward (docs: resources/sku.mdx; not in the OpenAPI spec)",
        "security": ["bot"],
        "scopes": None,
        "parameters": {
            "path": {"application_id": {"$ref": "#/components/schemas/SnowflakeType"}},
            "query": {},
        },
        "request": None,
        "responses": {
            "200": {"type": "array", "items": {"$ref": "#/components/schemas/TokenwardSkuResponse"}}
        },
    }
]
EXTRA_SCHEMAS: dict[str, Any] = {
    "TokenwardSkuResponse": {
        "type": "object",
        "properties": {
            "id": {"$ref": "#/components/schemas/SnowflakeType"},
            "type": {"type": "integer", "enum": [2, 3, 5, 6]},
            "application_id": {"$ref": "#/components/schemas/SnowflakeType"},
            "name": {"type": "string"},
            "slug": {"type": "string"},
            "flags": {"type": "integer"},
        },
        "required": ["id", "type", "application_id", "name", "slug", "flags"],
    }
}


# Where the spec contradicts Discord's own documentation, the documented behaviour wins; each
# patch names the documentation it follows. Applied to the component schemas before writing.
ERRATA: list[tuple[str, str, Any, str]] = [
    (
        "EntitlementTypes",
        "oneOf",
        [{"const": value} for value in (1, 2, 3, 4, 5, 6, 7, 8, 10)],
        "resources/entitlement.mdx lists types 1-8 (purchase, premium subscription, developer"
        " gift, test-mode purchase, free purchase, user gift, premium purchase, application"
        " subscription); the spec keeps only 8 and 10",
    ),
    (
        "EntitlementResponse",
        "required",
        ["id", "sku_id", "application_id", "deleted", "starts_at", "ends_at", "type"],
        "resources/entitlement.mdx marks user_id optional: a guild's entitlement has none",
    ),
    (
        "ApplicationFormPartial",
        "properties.description",
        {
            "anyOf": [
                {"type": ["string", "null"], "maxLength": 400},
                {
                    "type": "object",
                    "properties": {
                        "default": {"type": "string", "maxLength": 400},
                        "localizations": {
                            "type": ["object", "null"],
                            "additionalProperties": {"type": "string", "maxLength": 400},
                        },
                    },
                    "required": ["default"],
                },
            ]
        },
        "resources/application.mdx (Edit Current Application) documents description as a string;"
        " the spec allows only the localized object, which stays accepted",
    ),
    (
        "OAuth2GetAuthorizationResponse",
        "properties.expires.type",
        ["string", "null"],
        "the spec lets a bot token call GET /oauth2/@me, whose authorization never expires",
    ),
]


def apply_errata(schemas: dict[str, Any]) -> None:
    for name, where, value, _reason in ERRATA:
        node = schemas[name]
        *parents, last = where.split(".")
        for key in parents:
            node = node[key]
        node[last] = value


def spec_path() -> Path:
    env = os.environ.get("TOKENWARD_DISCORD_OPENAPI")
    if env:
        return Path(env)
    relative = Path("shared") / "reference" / "discord-openapi" / "openapi.json"
    # ``../shared`` beside the repository; a git worktree nested one level deeper finds it too.
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / relative).is_file():
            return base / relative
    return ROOT.parent / relative


def hosted_tools(catalog: Path) -> list[str]:
    text = catalog.read_text(encoding="utf-8")
    return re.findall(r"^\| `((?:discord|discordbot)_\w+)` \|", text, re.MULTILINE)


def _strip(node: Any) -> Any:
    """Drop annotations (not property names: ``properties.description`` is a field)."""
    if isinstance(node, dict):
        return {
            k: ({name: _strip(sub) for name, sub in v.items()} if k == "properties" else _strip(v))
            for k, v in node.items()
            if k not in DROPPED_KEYS or not isinstance(v, str | list)
        }
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _security(op: dict[str, Any]) -> tuple[list[str], list[str] | None]:
    kinds: list[str] = []
    scopes: list[str] | None = None
    for entry in op.get("security", []):
        if not entry:
            kinds.append("none")
        if "BotToken" in entry:
            kinds.append("bot")
        if "OAuth2" in entry:
            kinds.append("oauth2")
            scopes = list(entry["OAuth2"])
    return kinds, scopes


def _response(spec: dict[str, Any], entry: dict[str, Any]) -> Any:
    if "$ref" in entry:
        entry = spec["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
    content = entry.get("content") or {}
    json_body = content.get("application/json")
    return None if json_body is None else json_body.get("schema")


def _media(entry: dict[str, Any]) -> str | None:
    """The content type of a response that is not JSON (``image/png``, ``text/csv``)."""
    kinds = [kind for kind in (entry.get("content") or {}) if kind != "application/json"]
    return kinds[0] if kinds else None


def build(spec: dict[str, Any], tools: list[str]) -> dict[str, Any]:
    by_id: dict[str, dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params: dict[str, dict[str, Any]] = {"path": {}, "query": {}}
            required_query: list[str] = []
            for param in [*shared, *op.get("parameters", [])]:
                params[param["in"]][param["name"]] = param["schema"]
                if param["in"] == "query" and param.get("required"):
                    required_query.append(param["name"])
            request = None
            if "requestBody" in op:
                content = op["requestBody"]["content"]
                kind = "application/json" if "application/json" in content else next(iter(content))
                request = {
                    "content_types": sorted(content),
                    "schema": content[kind]["schema"],
                    "required": bool(op["requestBody"].get("required")),
                }
            kinds, scopes = _security(op)
            responses = {
                status: _response(spec, entry)
                for status, entry in op["responses"].items()
                if status[0] == "2"
            }
            media = {
                status: kind
                for status, entry in op["responses"].items()
                if status[0] == "2" and (kind := _media(entry)) is not None
            }
            by_id[op["operationId"]] = {
                "id": op["operationId"],
                "method": method.upper(),
                "path": path,
                "origin": "discord",
                "security": kinds,
                "scopes": scopes,
                "parameters": {**params, "required_query": required_query},
                "request": request,
                "responses": responses,
                **({"media_types": media} if media else {}),
            }
    for extra in EXTRA_OPERATIONS:
        by_id[extra["id"]] = {
            **extra,
            "parameters": {**extra["parameters"], "required_query": []},
        }
    callers: dict[str, list[str]] = {}
    missing = []
    for tool in tools:
        operation = TOOL_OPERATIONS.get(tool, tool.split("_", 1)[1])
        if operation not in by_id:
            missing.append(f"{tool} -> {operation}")
            continue
        callers.setdefault(operation, []).append(tool)
    if missing:
        raise SystemExit("tools without an operation: " + ", ".join(missing))
    operations = []
    for op_id in sorted(
        by_id, key=lambda i: (by_id[i]["path"], METHODS.index(by_id[i]["method"].lower()))
    ):
        operations.append({**by_id[op_id], "tools": sorted(callers.get(op_id, []))})

    schemas = json.loads(json.dumps({**spec["components"]["schemas"], **EXTRA_SCHEMAS}))
    apply_errata(schemas)
    wanted: set[str] = set()
    _refs(operations, wanted)
    pending = list(wanted)
    while pending:
        name = pending.pop()
        found: set[str] = set()
        _refs(schemas[name], found)
        for child in found - wanted:
            wanted.add(child)
            pending.append(child)
    return {
        "source": {
            "repository": "discord/discord-api-spec",
            "file": "specs/openapi.json",
            "openapi": spec["openapi"],
            "api_version": spec["info"]["version"],
            "licence": "MIT (see LICENSE beside this file)",
            "errata": [f"{name}.{where}: {reason}" for name, where, _, reason in ERRATA],
            "generated_by": "scripts/generate_sandbox_spec.py",
        },
        "operations": _strip(operations),
        "components": {"schemas": {name: _strip(schemas[name]) for name in sorted(wanted)}},
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    source = spec_path()
    if not source.is_file():
        print(f"spec not found: {source} (set TOKENWARD_DISCORD_OPENAPI)", file=sys.stderr)
        return 2
    spec = json.loads(source.read_text(encoding="utf-8"))
    tools = hosted_tools(source.parent.parent / "hosted-discord-catalog.md")
    text = render(build(spec, tools))
    licence = (source.parent / "LICENSE").read_text(encoding="utf-8")
    if args.check:
        drift = [
            str(path)
            for path, want in ((OUT_SPEC, text), (OUT_LICENSE, licence))
            if not path.is_file() or path.read_text(encoding="utf-8") != want
        ]
        if drift:
            print("out of date: " + ", ".join(drift), file=sys.stderr)
            return 1
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    OUT_SPEC.write_text(text, encoding="utf-8")
    OUT_LICENSE.write_text(licence, encoding="utf-8")
    print(f"wrote {OUT_SPEC.relative_to(ROOT)} ({len(text) // 1024} KiB) and LICENSE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
