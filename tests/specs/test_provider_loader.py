"""The loader refuses inconsistent specs, names every problem, and caches the packaged ones."""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
import yaml

from tokenward.errors import ConfigError
from tokenward.providers.discord.hooks import HOOKS
from tokenward.providers.hooks import HookRegistry
from tokenward.providers.loader import load_provider, load_provider_from_text
from tokenward.tools.catalog import Catalog

FOLDER = resources.files("tokenward.providers.discord")
PROVIDER_TEXT = (FOLDER / "provider.yaml").read_text(encoding="utf-8")
TOOLS_TEXT = (FOLDER / "tools.yaml").read_text(encoding="utf-8")
SCHEMAS_TEXT = (FOLDER / "schemas.json").read_text(encoding="utf-8")


def _tools() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(TOOLS_TEXT)
    return copy.deepcopy(data)


def _provider() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PROVIDER_TEXT)
    return data


def _tool(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in data["tools"] if t["name"] == name)
    return found


def _param(tool: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in tool["params"] if p["name"] == name)
    return found


def _load(tools: dict[str, Any], provider: dict[str, Any] | None = None) -> None:
    load_provider_from_text(
        yaml.safe_dump(provider or _provider()),
        yaml.safe_dump(tools, sort_keys=False),
        HOOKS,
        SCHEMAS_TEXT,
    )


def problems_of(tools: dict[str, Any], provider: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(tools, provider)
    found: list[str] = info.value.details["problems"]
    assert found
    return found


def test_packaged_files_load_and_are_cached() -> None:
    first = load_provider("discord")
    assert first is load_provider("discord")
    assert first.spec.name == "discord"
    assert first.spec.base_url == "https://discord.com"
    assert first.spec.api_prefix == "/api/v10"
    assert first.spec.user_agent_for("1.2.3") == (
        "DiscordBot (https://github.com/tokenward/tokenward, 1.2.3)"
    )
    assert first.spec.url(first.spec.oauth.token_url, "http://127.0.0.1:9/") == (
        "http://127.0.0.1:9/api/oauth2/token"
    )
    assert set(first.spec.default_scopes) == {
        "identify",
        "email",
        "guilds",
        "guilds.members.read",
        "connections",
        "openid",
    }
    assert "guild_id" in first.spec.major_parameters


def test_unchanged_text_round_trips() -> None:
    _load(_tools())


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError, match="not installed"):
        load_provider("nosuchprovider")
    with pytest.raises(ConfigError, match="not valid"):
        load_provider("../discord")


Mutation = Callable[[dict[str, Any]], None]


def _dup_name(d: dict[str, Any]) -> None:
    d["tools"].append(copy.deepcopy(_tool(d, "discord_get_gateway")))


def _bad_prefix(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_gateway")["name"] = "slack_get_gateway"


def _unknown_hook(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_user")["hooks"] = {"route": "no_such_hook"}


def _unknown_scope(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_my_user")["scopes"] = ["identify", "read_minds"]


def _replaced_by_missing(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_invite_deprecated")["annotations"]["replaced_by"] = "discord_nope"


def _undeclared_placeholder(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_guild_widget")["endpoint"]["path"] = "/guilds/{guild}/widget.json"


def _typo_key(d: dict[str, Any]) -> None:
    tool = _tool(d, "discord_get_gateway")
    tool["descripton"] = tool.pop("description")


def _unknown_ref(d: dict[str, Any]) -> None:
    tool = _tool(d, "discord_get_current_user_application_entitlements")
    _param(tool, "limit")["schema"] = {"$ref": "#/$defs/Nope"}


def _unknown_type(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_guild_widget")["params"][0]["schema"]["type"] = "guild"


def _schema_says_nothing(d: dict[str, Any]) -> None:
    _param(_tool(d, "discord_get_guild_widget_png"), "style")["schema"] = {"description": "x"}


def _required_with_default(d: dict[str, Any]) -> None:
    _param(_tool(d, "discord_list_my_guilds"), "limit")["required"] = True


def _ignored_without_note(d: dict[str, Any]) -> None:
    del _param(_tool(d, "discord_resolve_invite"), "with_expiration")["note"]


def _header_without_wire(d: dict[str, Any]) -> None:
    _tool(d, "discord_list_my_guilds")["params"][0]["location"] = "header"


def _body_on_a_get(d: dict[str, Any]) -> None:
    _tool(d, "discord_list_my_guilds")["params"][0]["location"] = "body"


def _optional_path_param(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_guild_widget")["params"][0]["required"] = False


def _image_without_media_type(d: dict[str, Any]) -> None:
    del _tool(d, "discord_get_guild_widget_png")["media_type"]


def _gateway_param_without_hook(d: dict[str, Any]) -> None:
    del _tool(d, "discord_get_current_user_application_entitlements")["hooks"]


def _user_or_bot_without_route(d: dict[str, Any]) -> None:
    del _tool(d, "discord_get_user")["hooks"]


def _deprecated_without_target(d: dict[str, Any]) -> None:
    del _tool(d, "discord_get_invite_deprecated")["annotations"]["replaced_by"]


def _read_only_post(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_gateway")["endpoint"]["method"] = "POST"


def _short_description(d: dict[str, Any]) -> None:
    _tool(d, "discord_get_gateway")["description"] = "Gets it."


def _duplicate_param(d: dict[str, Any]) -> None:
    params = _tool(d, "discord_list_my_guilds")["params"]
    params.append(copy.deepcopy(_param(_tool(d, "discord_list_my_guilds"), "after")))


def _wrong_provider(d: dict[str, Any]) -> None:
    d["provider"] = "slack"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_dup_name, "'discord_get_gateway' is used more than once"),
        (_bad_prefix, "slack_get_gateway: name must match"),
        (_unknown_hook, "route hook 'no_such_hook' is not registered"),
        (_unknown_scope, "scope 'read_minds' is not a known discord scope"),
        (_replaced_by_missing, "replaced_by 'discord_nope' is not a tool"),
        (_undeclared_placeholder, "path placeholders without a path parameter: guild"),
        (_typo_key, "tools[discord_get_gateway].descripton: Extra inputs are not permitted"),
        (_unknown_ref, "parameter limit refers to 'Nope', which is not a shared schema"),
        (_unknown_type, "unknown JSON type(s): guild"),
        (_schema_says_nothing, "a parameter schema needs"),
        (_required_with_default, "a required parameter cannot have a default"),
        (_ignored_without_note, "an ignored parameter needs a 'note'"),
        (_header_without_wire, "a header parameter is a string with 'wire'"),
        (_body_on_a_get, "body parameters need 'endpoint.body'"),
        (_optional_path_param, "a path parameter must be required"),
        (_image_without_media_type, "an image output needs an image/* media_type"),
        (_gateway_param_without_hook, "need an input or result hook"),
        (_user_or_bot_without_route, "needs a route hook"),
        (_deprecated_without_target, "'deprecated: true' and 'replaced_by' go together"),
        (_read_only_post, "a read-only tool must use GET or HEAD"),
        (_short_description, "description: String should have at least 40 characters"),
        (_duplicate_param, "duplicate parameter names: after"),
        (_wrong_provider, "provider 'slack' is not 'discord'"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else "",
)
def test_inconsistent_specs_are_refused(mutate: Mutation, expected: str) -> None:
    data = _tools()
    mutate(data)
    problems = problems_of(data)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    data = _tools()
    _unknown_hook(data)
    _unknown_scope(data)
    _bad_prefix(data)
    problems = problems_of(data)
    assert len(problems) == 3
    with pytest.raises(ConfigError) as info:
        _load(data)
    for problem in problems:
        assert problem in info.value.message


def test_model_errors_in_both_files_are_reported_together() -> None:
    provider = _provider()
    provider["base_url"] = "ftp://discord.com/api"
    data = _tools()
    _typo_key(data)
    problems = problems_of(data, provider)
    assert any(p.startswith("provider.yaml: base_url") for p in problems)
    assert any(p.startswith("tools.yaml: tools[discord_get_gateway]") for p in problems)


def test_default_scopes_must_be_known() -> None:
    provider = _provider()
    provider["default_scopes"] = ["identify", "telepathy"]
    problems = problems_of(_tools(), provider)
    assert any("telepathy" in p for p in problems)


def test_duplicate_yaml_keys_are_refused() -> None:
    text = TOOLS_TEXT.replace(
        "    title: Get the Gateway URL\n",
        "    title: Get the Gateway URL\n    title: Get it twice\n",
    )
    assert text != TOOLS_TEXT
    with pytest.raises(ConfigError, match="duplicate key 'title'"):
        load_provider_from_text(PROVIDER_TEXT, text, HOOKS, SCHEMAS_TEXT)


def test_non_plain_yaml_values_are_refused() -> None:
    text = TOOLS_TEXT.replace("provider: discord\n", "provider: 2026-01-01\n", 1)
    with pytest.raises(ConfigError, match="not plain data"):
        load_provider_from_text(PROVIDER_TEXT, text, HOOKS, SCHEMAS_TEXT)


def test_broken_yaml_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"tools\.yaml: not valid YAML"):
        load_provider_from_text(PROVIDER_TEXT, "tools: [", HOOKS, SCHEMAS_TEXT)


def test_hooks_are_checked_against_the_given_registry() -> None:
    with pytest.raises(ConfigError) as info:
        load_provider_from_text(PROVIDER_TEXT, TOOLS_TEXT, HookRegistry(), SCHEMAS_TEXT)
    problems = info.value.details["problems"]
    assert any("route hook 'user_ref_route'" in p for p in problems)
    assert any("result hook 'filter_entitlements'" in p for p in problems)


def test_a_new_read_tool_is_one_yaml_entry() -> None:
    """Adding a tool needs no Python: the entry alone is validated, prepared and exported."""
    data = _tools()
    data["tools"].append(
        {
            "name": "discord_get_guild_preview",
            "title": "Get a server preview",
            "description": (
                "Returns the public preview of a discoverable server: name, icon, features, "
                "approximate counts. No user authorization or scope is needed."
            ),
            "endpoint": {"method": "GET", "path": "/guilds/{guild_id}/preview"},
            "auth": "none",
            "annotations": {"read_only": True, "idempotent": True},
            "params": [
                {
                    "name": "guild_id",
                    "schema": {"type": "string", "format": "snowflake"},
                    "required": True,
                    "location": "path",
                    "description": "ID of the server to preview.",
                }
            ],
        }
    )
    loaded = load_provider_from_text(
        PROVIDER_TEXT, yaml.safe_dump(data, sort_keys=False), HOOKS, SCHEMAS_TEXT
    )
    prepared = Catalog(loaded).prepare(
        "discord_get_guild_preview", {"guild_id": "42"}, bot_token_available=False
    )
    assert prepared.path == "/api/v10/guilds/42/preview"
    assert dict(prepared.major_parameters) == {"guild_id": "42"}


def test_a_reference_missing_from_the_shared_schemas_is_reported() -> None:
    with pytest.raises(ConfigError) as info:
        load_provider_from_text(PROVIDER_TEXT, TOOLS_TEXT, HOOKS, '{"$defs": {}}')
    assert any(
        "refers to 'ApplicationCommandPermission', which is not a shared schema" in p
        for p in info.value.details["problems"]
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "schemas.json: not valid JSON"),
        ('{"defs": {}}', "must be an object with '$defs'"),
        ('{"$defs": {"A": {"$ref": "#/$defs/B"}}}', "A refers to 'B', which is not defined"),
    ],
)
def test_broken_shared_schemas_are_refused(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_provider_from_text(PROVIDER_TEXT, TOOLS_TEXT, HOOKS, text)
    assert any(expected in p for p in info.value.details["problems"])


def test_each_tool_gets_the_shared_schemas_it_needs() -> None:
    bot = load_provider("discordbot")
    message = bot.tools["discordbot_create_message"]
    assert "RichEmbed" in message.defs
    assert "RichEmbedField" in message.defs  # through RichEmbed
    assert "GithubRepository" not in message.defs
    assert bot.tools["discordbot_get_gateway"].defs == {}
    assert set(message.defs) <= set(bot.defs)


def test_the_bot_provider_has_no_oauth_block() -> None:
    bot = load_provider("discordbot")
    assert bot.spec.credential == "bot_token"
    assert bot.spec.oauth is None
    assert bot.spec.default_scopes == ()
    assert bot.spec.bot_auth_scheme == "Bot"
    assert len(bot.tools) == 221
    provider = _provider()
    provider["credential"] = "bot_token"
    with pytest.raises(ConfigError, match="a bot_token provider has no 'oauth' block"):
        _load(_tools(), provider)
    del provider["oauth"]
    del provider["default_scopes"]
    provider["credential"] = "oauth2"
    with pytest.raises(ConfigError, match="an oauth2 provider needs an 'oauth' block"):
        _load(_tools(), provider)
