"""Every tool of both connectors (34 ``discord_*``, 221 ``discordbot_*``), checked as data.

For each tool a minimal valid input is built from its own schema (the required parameters only)
and must be accepted, prepared into a request that fits the tool's endpoint and auth, and
accepted by the exported schema; then the tool's metadata is held to the catalog's rules:
annotations follow the method (and destructive actions are marked and say so), auth follows
the connector, secrets are marked, audit-log reasons are offered where Discord takes them, and
descriptions are written for an agent.
"""

from __future__ import annotations

import re

import pytest
from examples import example, minimal_input
from jsonschema import Draft202012Validator

from tokenward.errors import ValidationError
from tokenward.providers.models import ToolSpec
from tokenward.tools.catalog import Catalog
from tokenward.tools.schemas import input_schema, openai_tool
from tokenward.tools.validation import FORMATS, validate_input

CATALOGS = Catalog.load_all()
TOOLS = CATALOGS.tools()
SECRETS = {"webhook_token", "interaction_token", "access_token", "access_tokens"}
# Words in a tool's name that mean it removes or overwrites something.
DESTRUCTIVE_WORDS = re.compile(
    r"_(delete|remove|kick|ban|prune|leave|unpin|consume|bulk_overwrite|end_poll|sync)"
)


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
class TestEveryTool:
    def test_a_minimal_input_is_prepared_into_the_tools_request(self, tool: ToolSpec) -> None:
        given = minimal_input(tool)
        prepared = CATALOGS.prepare(tool.name, given, bot_token_available=True)
        provider = CATALOGS.provider_of(tool.name)
        assert prepared.connector == provider.name == tool.name.split("_", 1)[0]
        assert prepared.method == tool.endpoint.method
        assert prepared.route.startswith(provider.api_prefix + "/")
        assert "{" not in prepared.path
        assert (prepared.body is None) == (tool.endpoint.body is None)
        if tool.endpoint.body == "json":
            assert prepared.content_type == "application/json"
        elif tool.endpoint.body == "multipart":
            assert (prepared.content_type or "").startswith("multipart/form-data; boundary=")
        assert prepared.read_only == tool.annotations.read_only
        assert prepared.destructive == tool.annotations.destructive
        assert prepared.idempotent == tool.annotations.idempotent
        if tool.annotations.idempotent:
            assert prepared.retry_safe
        elif not tool.nonce_retry:
            assert not prepared.retry_safe
        assert prepared.notes == ()
        assert prepared.headers == ()
        secrets = [str(given[p.name]) for p in tool.params if p.secret and p.name in given]
        for secret in secrets:
            assert secret not in prepared.log_path

    def test_the_exported_schemas_accept_the_minimal_input(self, tool: ToolSpec) -> None:
        given = minimal_input(tool)
        plain = Draft202012Validator(input_schema(tool), format_checker=FORMATS)
        assert not list(plain.iter_errors(given))
        strict = openai_tool(tool)["function"]["parameters"]
        Draft202012Validator.check_schema(strict)

    def test_unknown_and_missing_fields_are_named(self, tool: ToolSpec) -> None:
        given = minimal_input(tool)
        with pytest.raises(ValidationError) as unknown:
            validate_input(tool, {**given, "surprise": 1})
        assert set(unknown.value.fields) == {"surprise"}
        required = {p.name for p in tool.params if p.required}
        if required:
            with pytest.raises(ValidationError) as missing:
                validate_input(tool, {})
            assert required <= set(missing.value.fields)

    def test_every_parameter_schema_is_valid_json_schema(self, tool: ToolSpec) -> None:
        # The input schema holds every parameter's schema and the shared ones they refer to.
        Draft202012Validator.check_schema(input_schema(tool))

    def test_annotations_follow_the_method(self, tool: ToolSpec) -> None:
        method, a = tool.endpoint.method, tool.annotations
        assert a.read_only == (method == "GET")
        if method in ("GET", "PUT", "DELETE"):
            assert a.idempotent, "GET, PUT and DELETE are idempotent"
        if method == "POST":
            assert not a.idempotent, "a POST is never retried blindly"
        if method == "DELETE" or (method != "GET" and DESTRUCTIVE_WORDS.search(tool.name)):
            assert a.destructive, f"{tool.name} removes or overwrites something"
        assert a.open_world

    def test_the_description_is_written_for_an_agent(self, tool: ToolSpec) -> None:
        text = tool.description
        assert 80 <= len(text) <= 1024
        assert text[0].isupper()
        assert text.rstrip().endswith(".")
        assert "TODO" not in text
        assert ("Destructive" in text) == tool.annotations.destructive
        for scope in tool.scopes:
            assert scope in text, f"description should name the scope {scope}"
        connector = tool.name.split("_", 1)[0]
        if tool.auth == "none" and connector == "discord":
            assert "No user authorization" in text
        if tool.auth == "none" and connector == "discordbot":
            assert "No bot token is needed" in text
        for param in tool.params:
            assert len(param.description) >= 10
            assert "MISSING" not in param.description

    def test_auth_follows_the_connector(self, tool: ToolSpec) -> None:
        if tool.name.startswith("discordbot_"):
            tokens_in_path = {"webhook_token", "interaction_token"} & set(
                tool.endpoint.placeholders
            )
            assert tool.auth == ("none" if tokens_in_path else "bot")
            assert tool.scopes == ()
        else:
            assert tool.auth in ("user", "none", "user_or_bot")

    def test_secrets_are_marked(self, tool: ToolSpec) -> None:
        for param in tool.params:
            assert param.secret == (param.name in SECRETS), param.name

    def test_the_response_schema_is_recorded(self, tool: ToolSpec) -> None:
        if tool.operation is None:
            assert tool.name == "discordbot_list_skus"  # a route the spec lacks
            return
        assert tool.response is not None
        assert 200 <= tool.response.status < 300
        if tool.response.status != 204 and tool.output == "json":
            assert tool.response.schema_ is not None


def test_audit_log_reasons_are_offered_where_discord_takes_them() -> None:
    with_reason = [t.name for t in TOOLS if t.param("audit_log_reason") is not None]
    assert len(with_reason) == 56
    for name in (
        "discordbot_create_guild_ban",
        "discordbot_delete_message",
        "discordbot_modify_channel",
    ):
        assert name in with_reason
    for name in ("discordbot_create_message", "discordbot_get_guild", "discord_get_user"):
        assert name not in with_reason
    for tool in TOOLS:
        reason = tool.param("reason")
        if reason is not None and reason.location == "header":
            assert tool.param("audit_log_reason") is not None


def test_tools_that_upload_or_download_other_than_json() -> None:
    assert {t.name for t in TOOLS if t.endpoint.body == "multipart"} == {
        "discordbot_create_guild_sticker",
        "discordbot_update_invite_target_users",
    }
    assert {t.name: t.output for t in TOOLS if t.output != "json"} == {
        "discord_get_guild_widget_png": "image",
        "discordbot_get_guild_widget_png": "image",
        "discordbot_get_invite_target_users": "text",
    }


def test_only_with_expiration_is_accepted_and_ignored() -> None:
    ignored = {(t.name, p.name) for t in TOOLS for p in t.params if p.location == "ignored"}
    assert ignored == {
        ("discord_get_invite_deprecated", "with_expiration"),
        ("discord_resolve_invite", "with_expiration"),
        ("discordbot_resolve_invite", "with_expiration"),
    }
    prepared = CATALOGS.prepare(
        "discordbot_resolve_invite",
        {"invite_code": "hTKzmak", "with_expiration": True},
        bot_token_available=True,
    )
    assert "with_expiration" not in prepared.target
    assert prepared.notes == (
        "with_expiration has no effect: Discord dropped it and always returns expires_at.",
    )


def test_the_minimal_input_builder_can_fail() -> None:
    """A schema it cannot satisfy is reported, not guessed."""
    with pytest.raises(AssertionError, match="no example for pattern"):
        example({"type": "string", "pattern": "^[a-z]+$"}, {})


def test_tools_and_parameters_can_be_dictionary_keys() -> None:
    assert len(set(TOOLS)) == 255
    params = {p for t in TOOLS for p in t.params}
    assert len(params) > 400


def test_interaction_and_webhook_routes_carry_their_identity() -> None:
    """They need no bot token; the path's IDs (and webhook token) key their rate limits."""
    callback = CATALOGS.prepare(
        "discordbot_create_interaction_response",
        {"interaction_id": "5", "interaction_token": "tok", "type": 1, "data": {}},
        bot_token_available=True,
    )
    assert callback.auth == "none"
    assert dict(callback.major_parameters) == {"interaction_id": "5"}
    assert callback.log_path == "/api/v10/interactions/5/{interaction_token}/callback"
    followup = CATALOGS.prepare(
        "discordbot_edit_original_interaction_response",
        {"application_id": "7", "interaction_token": "s3cr3t", "content": "done"},
        bot_token_available=True,
    )
    assert followup.auth == "none"
    assert dict(followup.major_parameters) == {"webhook_id": "7", "webhook_token": "s3cr3t"}
    assert followup.route == "/api/v10/webhooks/{webhook_id}/{webhook_token}/messages/@original"
    assert followup.log_path == "/api/v10/webhooks/7/{webhook_token}/messages/@original"
