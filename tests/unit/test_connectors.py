"""Providers at run time (issue 10): ``connection.provider`` selects a folder, and everything the
core does differently per provider comes from it (OAuth endpoints or none, auth schemes, base
URL, error mapping, tools)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import parse_qs

import pytest

from tokenward.connectors import Connector, Connectors, account_credential, load_error_mapping
from tokenward.errors import ValidationError
from tokenward.oauth.endpoints import (
    ClientCredentials,
    OAuth2Client,
    OAuthRejected,
    OAuthUnavailable,
    OAuthUrls,
)
from tokenward.providers.hooks import HookRegistry
from tokenward.providers.loader import load_provider_from_text
from tokenward.proxy.retry import ErrorKind
from tokenward.proxy.transport import (
    MockTransport,
    TransportError,
    UpstreamRequest,
    UpstreamResponse,
)
from tokenward.tools.catalog import Catalog

SANDBOX = "http://127.0.0.1:9"


def answer_ok(request: UpstreamRequest) -> UpstreamResponse:
    return UpstreamResponse.from_json(200, {})


def build(
    handler: Callable[[UpstreamRequest], UpstreamResponse] = answer_ok,
) -> tuple[Connectors, MockTransport]:
    transport = MockTransport(handler)
    connectors = Connectors.build(
        transport=transport, version="9.9", base_urls={"https://discord.com": SANDBOX}
    )
    return connectors, transport


def test_both_discord_providers_are_installed_and_differ_by_their_files() -> None:
    connectors, _ = build()
    assert [c.name for c in connectors.providers()] == ["discord", "discordbot"]
    user, bot = connectors.provider("discord"), connectors.provider("discordbot")
    assert (user.accounts, user.uses_oauth, user.account_scheme) == ("oauth2", True, "Bearer")
    assert (bot.accounts, bot.uses_oauth, bot.account_scheme) == ("bot_token", False, "Bot")
    assert bot.oauth is None
    assert isinstance(user.oauth, OAuth2Client)
    assert user.oauth.urls.token == SANDBOX + "/api/oauth2/token"
    assert user.oauth.urls.authorize == SANDBOX + "/oauth2/authorize"
    assert user.oauth.urls.revoke == SANDBOX + "/api/oauth2/token/revoke"
    assert user.oauth.urls.whoami == SANDBOX + "/api/v10/users/@me"
    assert user.base_url == bot.base_url == SANDBOX
    assert user.user_agent == "DiscordBot (https://github.com/tokenward/tokenward, 9.9)"
    assert bot.api_url("/users/@me") == SANDBOX + "/api/v10/users/@me"
    assert connectors.for_tool("discordbot_get_current_user") is bot
    assert connectors.for_tool("discord_get_my_user") is user
    assert set(connectors.names()) == set(user.catalog.names()) | set(bot.catalog.names())
    assert "bot's roles" in bot.errors.hints[50013]
    assert user.errors.scope_for_path("/api/v10/users/@me/guilds") == "guilds"


def test_tool_catalogs_load_on_first_use_not_when_the_connectors_are_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``tokenward serve`` builds the connectors at start-up: only provider.yaml is read then
    (parsing the tool catalogs takes a few hundred milliseconds); the tools on first use."""
    from tokenward.providers import loader
    from tokenward.tools import catalog as catalog_module

    loaded: list[str] = []

    def counting(name: str = "discord") -> loader.LoadedProvider:
        loaded.append(name)
        return loader.load_provider(name)

    monkeypatch.setattr(catalog_module, "load_provider", counting)
    connectors = Connectors.build(transport=MockTransport(answer_ok), version="1.0")
    discord = connectors.provider("discord")
    assert discord.spec.name == "discord"
    assert discord.oauth is not None
    assert loaded == []
    assert connectors.for_tool("discord_consume_entitlement").name == "discord"
    assert sorted(loaded) == ["discord", "discordbot"]
    assert discord.catalog.provider == loader.load_provider("discord").spec
    assert set(connectors.names()) == {t.name for t in connectors.tools()}
    # Membership (what the metrics use to keep made-up tool names out of their labels).
    assert "discordbot_create_message" in connectors
    assert "discord_made_up_tool" not in connectors


def test_an_unknown_provider_is_a_validation_error_naming_the_field() -> None:
    connectors, _ = build()
    with pytest.raises(ValidationError) as caught:
        connectors.provider("slack")
    assert "discord, discordbot" in caught.value.fields["provider"]


def test_a_second_provider_is_a_folder_of_data() -> None:
    """What adding a provider takes: its provider.yaml and tools.yaml (and optional hooks and
    errors.yaml). An OAuth2 provider with its own host gets its own OAuth client and URLs."""
    provider_yaml = """
name: acme
display_name: Acme Chat
base_url: https://api.acme.test
api_prefix: /api/v2
oauth: {authorize_url: /oauth/authorize, token_url: /oauth/token, revoke_url: /oauth/revoke}
default_scopes: [read]
known_scopes: [read, write]
user_agent: "tokenward/{version}"
user_auth_scheme: Bearer
bot_auth_scheme: Bot
"""
    tools_yaml = """
provider: acme
tools:
  - name: acme_whoami
    title: Who am I
    description: Returns the connected user's profile on Acme Chat, for tests of the runtime.
    endpoint: {method: GET, path: /me}
    auth: user
    annotations: {read_only: true, idempotent: true}
"""
    spec_catalog = Catalog(load_provider_from_text(provider_yaml, tools_yaml, HookRegistry()))
    spec = spec_catalog.provider
    assert account_credential(spec) == "oauth2"
    transport = MockTransport(lambda request: UpstreamResponse.from_json(200, {}))
    client = OAuth2Client(
        transport,
        OAuthUrls(
            authorize=spec.url(spec.oauth.authorize_url),
            token=spec.url(spec.oauth.token_url),
            revoke=spec.url(spec.oauth.revoke_url),
            whoami=spec.base_url + spec.api_prefix + "/me",
        ),
        user_agent=spec.user_agent_for("1"),
    )
    acme = Connector(
        spec=spec,
        catalog=spec_catalog,
        base_url=spec.base_url,
        accounts="oauth2",
        oauth=client,
        errors=load_error_mapping("acme"),
        user_agent=spec.user_agent_for("1"),
    )
    connectors = Connectors([acme])
    assert connectors.provider("acme").api_url("/me") == "https://api.acme.test/api/v2/me"
    assert connectors.for_tool("acme_whoami") is acme
    assert acme.errors.provider == "The provider"  # no errors.yaml: the generic wording


async def test_oauth_calls_go_through_the_injected_transport() -> None:
    """Issue 10: the OAuth client has no HTTP session of its own; what it sends and what it
    makes of failures are visible on the transport every other call uses."""
    seen: list[UpstreamRequest] = []

    def handler(request: UpstreamRequest) -> UpstreamResponse:
        seen.append(request)
        if request.url.endswith("/users/@me"):
            return UpstreamResponse.from_json(401, {"code": 0, "message": "401: Unauthorized"})
        return UpstreamResponse.from_json(
            200,
            {"access_token": "at", "refresh_token": "rt", "expires_in": 60, "scope": "identify"},
        )

    connectors, _ = build(handler)
    oauth = connectors.provider("discord").oauth
    assert oauth is not None
    tokens = await oauth.refresh(ClientCredentials("12:3", "s&cret"), "old-refresh")
    assert (tokens.access_token, tokens.refresh_token, tokens.scopes) == ("at", "rt", ("identify",))
    request = seen[-1]
    assert (request.method, request.url) == ("POST", SANDBOX + "/api/oauth2/token")
    basic = base64.b64decode((request.header("Authorization") or "")[6:]).decode()
    assert basic == "12%3A3:s%26cret"  # RFC 6749 §2.3.1: form-encoded before Basic
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert parse_qs((request.body or b"").decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["old-refresh"],
    }
    assert (
        request.header(
            "User-Agent",
        )
        is not None
    )
    with pytest.raises(OAuthRejected):
        await oauth.current_user("dead")
    assert seen[-1].header("Authorization") == "Bearer dead"


@pytest.mark.parametrize(
    ("kind", "sent"),
    [
        (ErrorKind.CONNECT, False),
        (ErrorKind.READ_TIMEOUT, True),
        (ErrorKind.CONNECTION_RESET, True),
    ],
)
async def test_transport_failures_say_whether_the_refresh_token_may_be_spent(
    kind: ErrorKind, sent: bool
) -> None:
    def handler(request: UpstreamRequest) -> UpstreamResponse:
        raise TransportError(kind)

    connectors, _ = build(handler)
    oauth = connectors.provider("discord").oauth
    assert oauth is not None
    with pytest.raises(OAuthUnavailable) as caught:
        await oauth.refresh(ClientCredentials("1", "s"), "rt")
    assert caught.value.sent is sent


def test_the_bot_provider_yaml_is_minimal() -> None:
    """Runtime facts the bot provider's folder carries: accounts hold bot tokens (no OAuth block,
    no scopes), sent with the Bot scheme; interactions have their own rate-limit identity."""
    connectors, _ = build()
    bot = connectors.provider("discordbot")
    spec = bot.spec
    assert (spec.credential, spec.oauth, spec.default_scopes) == ("bot_token", None, ())
    assert (bot.account_scheme, spec.api_prefix, bot.uses_oauth) == ("Bot", "/api/v10", False)
    assert spec.major_parameters == (
        "channel_id",
        "guild_id",
        "webhook_id",
        "webhook_token",
        "interaction_id",
    )
