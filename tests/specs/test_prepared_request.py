"""``Catalog.prepare`` for writes: JSON and multipart bodies, headers, notes, retry safety.

The tools here are a small hand-written provider (a bot connector), so each feature of the tool
model is exercised on its own, independent of the generated catalogs.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from tokenward.errors import ValidationError
from tokenward.providers.discord.hooks import HOOKS
from tokenward.providers.loader import load_provider_from_text
from tokenward.tools.catalog import Catalog, Catalogs

PROVIDER = """
name: discordbot
display_name: Test bot
credential: bot_token
major_parameters: [channel_id, guild_id, webhook_id, webhook_token]
"""

SNOWFLAKE = {"type": "string", "format": "snowflake"}
CHANNEL = {
    "name": "channel_id",
    "location": "path",
    "required": True,
    "description": "The channel to act in.",
    "schema": SNOWFLAKE,
}
REASON = {
    "name": "audit_log_reason",
    "location": "header",
    "wire": "X-Audit-Log-Reason",
    "description": "Why, for the server's audit log.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 512},
}
WRITE = {"read_only": False, "idempotent": False}

SCHEMAS = {
    "$defs": {
        "Embed": {
            "type": "object",
            "properties": {
                "title": {"type": ["string", "null"], "maxLength": 256},
                "description": {"type": ["string", "null"], "maxLength": 4096},
                "fields": {
                    "type": ["array", "null"],
                    "items": {"$ref": "#/$defs/EmbedField"},
                    "maxItems": 25,
                },
            },
            "additionalProperties": False,
        },
        "EmbedField": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 256},
                "value": {"type": "string", "maxLength": 1024},
            },
            "required": ["name", "value"],
        },
    }
}

TOOLS: list[dict[str, Any]] = [
    {
        "name": "discordbot_create_message",
        "title": "Send a message",
        "description": "Posts a message in a channel. A test tool for the request builder.",
        "endpoint": {"method": "POST", "path": "/channels/{channel_id}/messages", "body": "json"},
        "auth": "bot",
        "annotations": WRITE,
        "hooks": {"input": ["ensure_nonce"]},
        "message": {"require_one": True},
        "nonce_retry": True,
        "params": [
            CHANNEL,
            {
                "name": "content",
                "location": "body",
                "description": "Text of the message.",
                "schema": {"type": "string", "maxLength": 2000},
            },
            {
                "name": "embeds",
                "location": "body",
                "description": "Rich embeds to show.",
                "schema": {"type": "array", "items": {"$ref": "#/$defs/Embed"}, "maxItems": 10},
            },
            {
                "name": "nonce",
                "location": "body",
                "description": "A unique value for this send.",
                "schema": {"type": "string", "maxLength": 25},
            },
            {
                "name": "enforce_nonce",
                "location": "body",
                "description": "Deduplicate by nonce.",
                "schema": {"type": "boolean"},
            },
            {
                "name": "with_expiration",
                "location": "ignored",
                "description": "An old option.",
                "note": "with_expiration has no effect: Discord dropped it.",
                "schema": {"type": "boolean"},
            },
        ],
    },
    {
        "name": "discordbot_start_forum_thread",
        "title": "Start a forum post",
        "description": "Starts a thread in a forum channel, with its first message nested.",
        "endpoint": {"method": "POST", "path": "/channels/{channel_id}/threads", "body": "json"},
        "auth": "bot",
        "annotations": WRITE,
        "params": [
            CHANNEL,
            {
                "name": "name",
                "location": "body",
                "required": True,
                "description": "Title of the post.",
                "schema": {"type": "string"},
            },
            {
                "name": "content",
                "location": "body",
                "wire": "message.content",
                "description": "Text of the first message.",
                "schema": {"type": "string"},
            },
            {
                "name": "tts",
                "location": "body",
                "wire": "message.tts",
                "description": "Read the first message aloud.",
                "schema": {"type": "boolean"},
            },
            {**REASON, "name": "reason"},
            REASON,
        ],
    },
    {
        "name": "discordbot_overwrite_commands",
        "title": "Replace all commands",
        "description": "Replaces the whole list of commands; the body is the list itself.",
        "endpoint": {
            "method": "PUT",
            "path": "/applications/{application_id}/commands",
            "body": "json",
        },
        "auth": "bot",
        "annotations": {"read_only": False, "idempotent": True, "destructive": True},
        "params": [
            {
                "name": "application_id",
                "location": "path",
                "required": True,
                "description": "The application.",
                "schema": SNOWFLAKE,
            },
            {
                "name": "commands",
                "location": "body",
                "wire": ".",
                "required": True,
                "description": "Every command the app should have.",
                "schema": {"type": "array", "items": {"type": "object"}},
            },
        ],
    },
    {
        "name": "discordbot_create_sticker",
        "title": "Upload a sticker",
        "description": "Uploads a sticker file to a server, as a multipart form.",
        "endpoint": {"method": "POST", "path": "/guilds/{guild_id}/stickers", "body": "multipart"},
        "auth": "bot",
        "annotations": WRITE,
        "params": [
            {
                "name": "guild_id",
                "location": "path",
                "required": True,
                "description": "The server.",
                "schema": SNOWFLAKE,
            },
            {
                "name": "name",
                "location": "body",
                "required": True,
                "description": "Name of the sticker.",
                "schema": {"type": "string"},
            },
            {
                "name": "file_content_base64",
                "location": "body",
                "wire": "file",
                "required": True,
                "description": "The file, in base64.",
                "kind": "base64_file",
                "file": {
                    "filename": "sticker",
                    "media_types": ["image/png", "application/json"],
                    "max_bytes": 64,
                },
                "schema": {"type": "string"},
            },
            REASON,
        ],
    },
    {
        "name": "discordbot_add_reaction",
        "title": "React to a message",
        "description": "Adds the bot's reaction with an emoji to a message in a channel.",
        "endpoint": {
            "method": "PUT",
            "path": "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
        },
        "auth": "bot",
        "annotations": {"read_only": False, "idempotent": True},
        "params": [
            CHANNEL,
            {
                "name": "message_id",
                "location": "path",
                "required": True,
                "description": "The message.",
                "schema": SNOWFLAKE,
            },
            {
                "name": "emoji",
                "location": "path",
                "wire": "emoji_name",
                "required": True,
                "kind": "emoji",
                "description": "The emoji to react with.",
                "schema": {"type": "string"},
            },
        ],
    },
    {
        "name": "discordbot_delete_webhook_message",
        "title": "Delete a webhook message",
        "description": "Deletes a message a webhook sent, using the webhook's own token.",
        "endpoint": {
            "method": "DELETE",
            "path": "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        },
        "auth": "none",
        "annotations": {"read_only": False, "idempotent": True, "destructive": True},
        "params": [
            {
                "name": "webhook_id",
                "location": "path",
                "required": True,
                "description": "The webhook.",
                "schema": SNOWFLAKE,
            },
            {
                "name": "webhook_token",
                "location": "path",
                "required": True,
                "secret": True,
                "description": "The webhook's token.",
                "schema": {"type": "string"},
            },
            {
                "name": "message_id",
                "location": "path",
                "required": True,
                "description": "The message.",
                "schema": SNOWFLAKE,
            },
            {
                "name": "thread_id",
                "location": "query",
                "description": "The thread it is in.",
                "schema": SNOWFLAKE,
            },
        ],
    },
    {
        "name": "discordbot_search",
        "title": "Search messages",
        "description": "Searches a server's messages by author; a read with array filters.",
        "endpoint": {"method": "GET", "path": "/guilds/{guild_id}/messages/search"},
        "auth": "bot",
        "annotations": {"read_only": True, "idempotent": True},
        "params": [
            {
                "name": "guild_id",
                "location": "path",
                "required": True,
                "description": "The server.",
                "schema": SNOWFLAKE,
            },
            {
                "name": "author_id",
                "location": "query",
                "description": "Authors to match.",
                "schema": {"type": "array", "items": SNOWFLAKE},
            },
            {
                "name": "pinned",
                "location": "query",
                "description": "Only pinned messages.",
                "schema": {"type": "boolean"},
            },
        ],
    },
    {
        "name": "discordbot_create_role",
        "title": "Create a role",
        "description": "Creates a role; permissions may be given as flag names instead of bits.",
        "endpoint": {"method": "POST", "path": "/guilds/{guild_id}/roles", "body": "json"},
        "auth": "bot",
        "annotations": WRITE,
        "hooks": {"input": ["permission_names"]},
        "params": [
            {
                "name": "guild_id",
                "location": "path",
                "required": True,
                "description": "The server.",
                "schema": SNOWFLAKE,
            },
            {
                "name": "permissions",
                "location": "body",
                "description": "Bitfield as a string.",
                "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
            },
            {
                "name": "permissions_names",
                "location": "gateway",
                "description": "Permission flag names.",
                "schema": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["SEND_MESSAGES", "VIEW_CHANNEL"]},
                },
            },
        ],
    },
]

CHANNEL_ID = "1600000000000000101"
GUILD_ID = "1200000000000000001"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    tools = json.dumps({"provider": "discordbot", "tools": TOOLS})
    loaded = load_provider_from_text(PROVIDER, tools, HOOKS, json.dumps(SCHEMAS))
    return Catalog(loaded)


def body_of(prepared: Any) -> Any:
    assert prepared.content_type == "application/json"
    return json.loads(prepared.body.decode("utf-8"))


def test_json_body_with_the_given_fields_only(catalog: Catalog) -> None:
    prepared = catalog.prepare(
        "discordbot_create_message",
        {"channel_id": CHANNEL_ID, "content": "héllo", "nonce": "n-1", "enforce_nonce": True},
        bot_token_available=True,
    )
    assert prepared.method == "POST"
    assert prepared.path == f"/api/v10/channels/{CHANNEL_ID}/messages"
    assert body_of(prepared) == {"content": "héllo", "nonce": "n-1", "enforce_nonce": True}
    assert "héllo".encode() in prepared.body  # UTF-8, not \\u escapes
    assert prepared.connector == "discordbot"
    assert (prepared.read_only, prepared.destructive, prepared.idempotent) == (False, False, False)
    assert prepared.headers == ()
    assert prepared.notes == ()


def test_a_new_message_gets_a_nonce_and_is_safe_to_resend(catalog: Catalog) -> None:
    first = catalog.prepare(
        "discordbot_create_message",
        {"channel_id": CHANNEL_ID, "content": "hi"},
        bot_token_available=True,
    )
    second = catalog.prepare(
        "discordbot_create_message",
        {"channel_id": CHANNEL_ID, "content": "hi"},
        bot_token_available=True,
    )
    sent = body_of(first)
    assert sent["enforce_nonce"] is True
    assert re.fullmatch(r"[0-9a-f]{24}", sent["nonce"])
    assert sent["nonce"] != body_of(second)["nonce"]
    assert first.arguments["nonce"] == sent["nonce"]
    assert first.retry_safe is True


def test_the_callers_nonce_choice_is_kept(catalog: Catalog) -> None:
    own = catalog.prepare(
        "discordbot_create_message",
        {"channel_id": CHANNEL_ID, "content": "hi", "nonce": "mine"},
        bot_token_available=True,
    )
    assert body_of(own) == {"content": "hi", "nonce": "mine"}
    assert own.retry_safe is False  # without enforce_nonce Discord does not deduplicate
    plain = catalog.prepare(
        "discordbot_create_message",
        {"channel_id": CHANNEL_ID, "content": "hi", "enforce_nonce": False},
        bot_token_available=True,
    )
    assert body_of(plain) == {"content": "hi", "enforce_nonce": False}
    assert plain.retry_safe is False


def test_ignored_parameters_become_notes_and_are_never_sent(catalog: Catalog) -> None:
    prepared = catalog.prepare(
        "discordbot_create_message",
        {"channel_id": CHANNEL_ID, "content": "hi", "with_expiration": True},
        bot_token_available=True,
    )
    assert "with_expiration" not in body_of(prepared)
    assert prepared.notes == ("with_expiration has no effect: Discord dropped it.",)


def test_dotted_wire_names_nest_and_the_audit_reason_is_a_header(catalog: Catalog) -> None:
    prepared = catalog.prepare(
        "discordbot_start_forum_thread",
        {
            "channel_id": CHANNEL_ID,
            "name": "Release notes",
            "content": "v2 is out",
            "tts": False,
            "audit_log_reason": "Bän 1/2\r\nX-Evil: 1",
        },
        bot_token_available=True,
    )
    assert body_of(prepared) == {
        "name": "Release notes",
        "message": {"content": "v2 is out", "tts": False},
    }
    assert prepared.headers == (("X-Audit-Log-Reason", "B%C3%A4n%201%2F2%0D%0AX-Evil%3A%201"),)


def test_reason_is_an_alias_of_audit_log_reason_but_not_both(catalog: Catalog) -> None:
    tool = "discordbot_start_forum_thread"
    base = {"channel_id": CHANNEL_ID, "name": "n"}
    alias = catalog.prepare(tool, {**base, "reason": "spam"}, bot_token_available=True)
    assert alias.headers == (("X-Audit-Log-Reason", "spam"),)
    with pytest.raises(ValidationError) as info:
        catalog.prepare(
            tool, {**base, "reason": "a", "audit_log_reason": "b"}, bot_token_available=True
        )
    assert set(info.value.fields) == {"reason", "audit_log_reason"}
    assert "not both" in info.value.fields["reason"]
    for bad in ("", "x" * 513):
        with pytest.raises(ValidationError) as too:
            catalog.prepare(tool, {**base, "audit_log_reason": bad}, bot_token_available=True)
        assert set(too.value.fields) == {"audit_log_reason"}


def test_a_parameter_can_be_the_whole_body(catalog: Catalog) -> None:
    commands = [{"name": "ping", "type": 1}, {"name": "help", "type": 1}]
    prepared = catalog.prepare(
        "discordbot_overwrite_commands",
        {"application_id": "1300000000000000001", "commands": commands},
        bot_token_available=True,
    )
    assert body_of(prepared) == commands
    assert (prepared.method, prepared.idempotent, prepared.destructive) == ("PUT", True, True)
    assert prepared.retry_safe is True


def test_a_file_goes_as_a_multipart_part(catalog: Catalog) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    prepared = catalog.prepare(
        "discordbot_create_sticker",
        {
            "guild_id": GUILD_ID,
            "name": "wave",
            "file_content_base64": base64.b64encode(png).decode(),
            "audit_log_reason": "new sticker",
        },
        bot_token_available=True,
    )
    assert prepared.content_type is not None
    boundary = prepared.content_type.split("boundary=")[1]
    assert prepared.content_type.startswith("multipart/form-data; boundary=tokenward-")
    assert prepared.body is not None
    parts = prepared.body.split(f"--{boundary}".encode())
    assert parts[-1] == b"--\r\n"
    assert b'name="name"\r\n\r\nwave\r\n' in parts[1]
    assert b'name="file"; filename="sticker"\r\nContent-Type: image/png\r\n\r\n' + png in parts[2]
    assert prepared.headers == (("X-Audit-Log-Reason", "new%20sticker"),)
    lottie = catalog.prepare(
        "discordbot_create_sticker",
        {
            "guild_id": GUILD_ID,
            "name": "w",
            "file_content_base64": base64.b64encode(b'{"v":1}').decode(),
        },
        bot_token_available=True,
    )
    assert b"Content-Type: application/json" in (lottie.body or b"")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not base64!", "base64"),
        (base64.b64encode(b"GIF89a....").decode(), "image/png, application/json"),
        (base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 64).decode(), "at most 64"),
        ("", "empty"),
    ],
)
def test_bad_files_are_refused_before_sending(catalog: Catalog, content: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        catalog.prepare(
            "discordbot_create_sticker",
            {"guild_id": GUILD_ID, "name": "w", "file_content_base64": content},
            bot_token_available=True,
        )
    assert reason in info.value.fields["file_content_base64"]


@pytest.mark.parametrize(
    ("emoji", "segment"),
    [
        ("👍", "%F0%9F%91%8D"),
        ("party:1100000000000000001", "party%3A1100000000000000001"),
        ("<:party:1100000000000000001>", "party%3A1100000000000000001"),
        ("<a:dance:42>", "dance%3A42"),
    ],
)
def test_emoji_path_segments(catalog: Catalog, emoji: str, segment: str) -> None:
    prepared = catalog.prepare(
        "discordbot_add_reaction",
        {"channel_id": CHANNEL_ID, "message_id": "5", "emoji": emoji},
        bot_token_available=True,
    )
    assert prepared.path == f"/api/v10/channels/{CHANNEL_ID}/messages/5/reactions/{segment}/@me"
    assert prepared.route.endswith("/reactions/{emoji_name}/@me")
    assert prepared.body is None
    assert prepared.content_type is None


@pytest.mark.parametrize("emoji", ["", "thumbsup", "../../x", "a b", ":party:", "%F0%9F"])
def test_bad_emoji_are_refused(catalog: Catalog, emoji: str) -> None:
    with pytest.raises(ValidationError) as info:
        catalog.prepare(
            "discordbot_add_reaction",
            {"channel_id": CHANNEL_ID, "message_id": "5", "emoji": emoji},
            bot_token_available=True,
        )
    assert "emoji" in info.value.fields


def test_secret_path_values_stay_out_of_the_log_path(catalog: Catalog) -> None:
    prepared = catalog.prepare(
        "discordbot_delete_webhook_message",
        {"webhook_id": "7", "webhook_token": "s3cr3t-token", "message_id": "9", "thread_id": "3"},
        bot_token_available=False,
    )
    assert prepared.path == "/api/v10/webhooks/7/s3cr3t-token/messages/9"
    assert prepared.log_path == "/api/v10/webhooks/7/{webhook_token}/messages/9"
    assert prepared.auth == "none"
    assert dict(prepared.major_parameters) == {"webhook_id": "7", "webhook_token": "s3cr3t-token"}
    assert prepared.query == (("thread_id", "3"),)
    assert (prepared.destructive, prepared.retry_safe) == (True, True)


def test_query_arrays_repeat_the_key(catalog: Catalog) -> None:
    prepared = catalog.prepare(
        "discordbot_search",
        {"guild_id": GUILD_ID, "author_id": ["1", "2"], "pinned": True},
        bot_token_available=True,
    )
    assert prepared.query == (("author_id", "1"), ("author_id", "2"), ("pinned", "true"))
    assert prepared.target.endswith("?author_id=1&author_id=2&pinned=true")
    assert prepared.body is None


def test_permission_names_become_the_bitfield(catalog: Catalog) -> None:
    prepared = catalog.prepare(
        "discordbot_create_role",
        {
            "guild_id": GUILD_ID,
            "permissions": "8",
            "permissions_names": ["SEND_MESSAGES", "VIEW_CHANNEL"],
        },
        bot_token_available=True,
    )
    assert body_of(prepared) == {"permissions": str((1 << 11) | (1 << 10))}
    with pytest.raises(ValidationError) as info:
        catalog.prepare(
            "discordbot_create_role",
            {"guild_id": GUILD_ID, "permissions_names": ["FLY"]},
            bot_token_available=True,
        )
    assert set(info.value.fields) == {"permissions_names[0]"}


def test_nested_fields_are_checked_and_named_by_path(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as info:
        catalog.prepare(
            "discordbot_create_message",
            {
                "channel_id": CHANNEL_ID,
                "embeds": [
                    {"title": "t" * 257, "fields": [{"name": "a"}, {"name": 1, "value": "v"}]},
                    {"colour": 3},
                ],
            },
            bot_token_available=True,
        )
    assert info.value.fields == {
        "embeds[0].title": "must be at most 256 characters, got 257",
        "embeds[0].fields[0].value": "is required",
        "embeds[0].fields[1].name": "must be a string, got a number",
        "embeds[1].colour": "unknown field (accepted: title, description, fields)",
    }


def test_discords_message_limits(catalog: Catalog) -> None:
    tool = "discordbot_create_message"
    with pytest.raises(ValidationError) as empty:
        catalog.prepare(tool, {"channel_id": CHANNEL_ID}, bot_token_available=True)
    assert "at least one of content, embeds" in empty.value.fields["content"]
    with pytest.raises(ValidationError) as long_content:
        catalog.prepare(
            tool, {"channel_id": CHANNEL_ID, "content": "x" * 2001}, bot_token_available=True
        )
    assert long_content.value.fields == {"content": "must be at most 2000 characters, got 2001"}
    big = [{"description": "d" * 4000}, {"description": "d" * 2001}]
    with pytest.raises(ValidationError) as totals:
        catalog.prepare(tool, {"channel_id": CHANNEL_ID, "embeds": big}, bot_token_available=True)
    assert "6001 characters" in totals.value.fields["embeds"]
    fine = [{"description": "d" * 4000}, {"description": "d" * 2000}]
    catalog.prepare(tool, {"channel_id": CHANNEL_ID, "embeds": fine}, bot_token_available=True)
    with pytest.raises(ValidationError) as nonce:
        catalog.prepare(
            tool,
            {"channel_id": CHANNEL_ID, "content": "x", "nonce": "n" * 26},
            bot_token_available=True,
        )
    assert nonce.value.fields == {"nonce": "must be at most 25 characters, got 26"}


def test_catalogs_resolve_tools_across_providers(catalog: Catalog) -> None:
    both = Catalogs([Catalog.load("discord"), catalog])
    assert both.names()[:34] == Catalog.load("discord").names()
    assert both.get("discordbot_search").name == "discordbot_search"
    assert both.provider_of("discordbot_search").name == "discordbot"
    assert both.provider_of("discord_get_gateway").name == "discord"
    prepared = both.prepare("discordbot_search", {"guild_id": GUILD_ID}, bot_token_available=True)
    assert prepared.connector == "discordbot"
    assert both.prepare("discord_get_gateway", {}, bot_token_available=False).connector == "discord"
