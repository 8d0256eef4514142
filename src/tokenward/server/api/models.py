"""Request and response bodies of the HTTP API (pydantic; requests refuse unknown fields).

Times are ISO 8601 in UTC. No response model has a field that could hold a secret: connections
say ``has_bot_token``, accounts say nothing about their tokens beyond when the access token
expires.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, field_validator

from tokenward.clock import utc_datetime
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import AccountRecord, ConnectionRecord

_URL_RE = re.compile(r"^https?://[^\s/?#]+")
DEFAULT_PAGE_SIZE = 50


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _when(ts: float | None) -> datetime | None:
    return None if ts is None else utc_datetime(ts)


def split_scopes(value: Any) -> Any:
    """Scopes as a list, from a list or a space- or comma-separated string."""
    if isinstance(value, str):
        return [s for s in value.replace(",", " ").split() if s]
    return value


def _check_scopes(scopes: list[str] | None) -> list[str] | None:
    if scopes is None:
        return None
    if not scopes:
        raise ValueError("give at least one scope")
    for scope in scopes:
        if not scope or any(ch.isspace() or ord(ch) < 33 for ch in scope):
            raise ValueError("each scope must be a non-empty word without spaces")
    return scopes


ScopeList = Annotated[
    list[Annotated[str, Field(max_length=128)]],
    Field(
        max_length=64,
        description="OAuth2 scopes to request: a list, or one space- or comma-separated string.",
        examples=[["identify", "guilds"]],
    ),
]


# -- token -------------------------------------------------------------------------------------


class TokenRequest(BaseModel):
    """``POST /oauth/token`` form fields (``application/x-www-form-urlencoded``)."""

    grant_type: Literal["client_credentials"]
    client_id: str | None = Field(None, description="Or send HTTP Basic credentials.")
    client_secret: str | None = Field(None, description="Or send HTTP Basic credentials.")
    scope: str | None = Field(
        None,
        description="Optional: space-separated scopes for a token with fewer rights than the "
        "client has (default: all of the client's scopes).",
    )


class TokenResponse(BaseModel):
    access_token: str = Field(description="Send as `Authorization: Bearer <access_token>`.")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    scope: str = Field(description="The token's scopes, space-separated (`admin`: everything).")


# -- connections -------------------------------------------------------------------------------


REQUIRE_VERIFICATION_DOC = (
    "Every link of this connection needs a `user_verify_url`: after consent the account waits in "
    "PENDING_VERIFICATION until your application confirms the user (`/verify`). Links made "
    "without one reuse the identifier's last `user_verify_url`, or are refused (400)."
)


ALLOWED_TOOLS_DOC = (
    "Which tools may run on this connection: glob patterns over tool names, `!` first for a "
    'deny rule; the last pattern matching a tool decides (e.g. `["*", "!*_ban*"]`: every '
    "tool but bans). A list with allow patterns refuses tools none of them matches; a list of "
    "deny rules only allows the rest. `null` (default): every tool. Refused calls answer 403 "
    "`TOOL_NOT_ALLOWED` naming the rule."
)

PUBLIC_KEY_DOC = (
    "The Discord application's public key (64 hex characters, from the Developer Portal's "
    "General Information page). With it, tokenward serves the connection's "
    "`interactions_endpoint_url` and `event_webhooks_url`, checking Discord's signatures with it."
)

AllowedTools = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=128)]],
    Field(max_length=200, description=ALLOWED_TOOLS_DOC, examples=[["*", "!*_ban*"]]),
]


class ConnectionCreate(RequestModel):
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Unique name applications pass as `connection_name`.",
        examples=["discord"],
    )
    provider: str = Field(
        "discord",
        min_length=1,
        max_length=32,
        description="`discord` (users link their account through OAuth2: needs `client_id` and "
        "`client_secret`) or `discordbot` (each connected account holds a bot token: no OAuth "
        "client).",
        examples=["discord", "discordbot"],
    )
    client_id: str | None = Field(
        None, min_length=1, max_length=255, description="The Discord app's id (`discord`)."
    )
    client_secret: SecretStr | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="The Discord app's client secret (`discord`).",
    )
    scopes: ScopeList | None = Field(
        None, description="OAuth2 scopes to request (`discord`; default: the whole catalog's)."
    )
    bot_token: SecretStr | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Optional bot token for bot-only calls of `discord` tools.",
    )
    require_user_verification: StrictBool = Field(False, description=REQUIRE_VERIFICATION_DOC)
    allowed_tools: AllowedTools | None = None
    public_key: str | None = Field(None, description=PUBLIC_KEY_DOC)

    _split = field_validator("scopes", mode="before")(split_scopes)
    _check = field_validator("scopes")(_check_scopes)


class ConnectionUpdate(RequestModel):
    """Only the fields present change; ``bot_token: null`` removes the bot token,
    ``allowed_tools: null`` allows every tool again and ``public_key: null`` removes the key
    (requests from Discord are refused again)."""

    client_secret: SecretStr | None = Field(None, min_length=1, max_length=4096)
    scopes: ScopeList | None = None
    bot_token: SecretStr | None = Field(None, min_length=1, max_length=4096)
    require_user_verification: StrictBool | None = Field(None, description=REQUIRE_VERIFICATION_DOC)
    allowed_tools: AllowedTools | None = None
    public_key: str | None = Field(None, description=PUBLIC_KEY_DOC)

    _split = field_validator("scopes", mode="before")(split_scopes)
    _check = field_validator("scopes")(_check_scopes)


class Connection(BaseModel):
    id: str
    name: str
    provider: str
    client_id: str | None = Field(description="The OAuth client's id; null for `discordbot`.")
    scopes: list[str]
    has_bot_token: bool
    require_user_verification: bool = Field(description=REQUIRE_VERIFICATION_DOC)
    allowed_tools: list[str] | None = Field(description=ALLOWED_TOOLS_DOC)
    redirect_uri: str | None = Field(
        description="Register this in Discord's Developer Portal (null for `discordbot`, whose "
        "accounts are not linked through OAuth2)."
    )
    public_key: str | None = Field(description=PUBLIC_KEY_DOC + " Null: none.")
    interactions_endpoint_url: str | None = Field(
        description="Paste this as the Interactions Endpoint URL in the Developer Portal "
        "(General Information); null until the connection has a `public_key`."
    )
    event_webhooks_url: str | None = Field(
        description="Paste this as the Webhook Events URL in the Developer Portal (Webhooks); "
        "null until the connection has a `public_key`."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(
        cls,
        record: ConnectionRecord,
        redirect_uri: str | None,
        discord_urls: tuple[str, str] | None = None,
    ) -> Connection:
        """The API's view; ``discord_urls``: the connection's interactions and webhook-events
        URLs (shown only when it has a public key)."""
        interactions, events = (
            discord_urls if discord_urls is not None and record.public_key else (None, None)
        )
        return cls(
            id=record.id,
            name=record.name,
            provider=record.provider,
            client_id=record.client_id,
            scopes=list(record.scopes),
            has_bot_token=record.bot_token is not None,
            require_user_verification=record.require_user_verification,
            allowed_tools=None if record.allowed_tools is None else list(record.allowed_tools),
            redirect_uri=redirect_uri if record.client_id is not None else None,
            public_key=record.public_key,
            interactions_endpoint_url=interactions,
            event_webhooks_url=events,
            created_at=utc_datetime(record.created_at),
            updated_at=utc_datetime(record.updated_at),
        )


class ConnectionResponse(BaseModel):
    connection: Connection


class ConnectionList(BaseModel):
    connections: list[Connection]


class RevokeFailureView(BaseModel):
    account_id: str
    identifier: str
    error: str


class ConnectionDeleted(BaseModel):
    deleted: Literal[True] = True
    id: str
    name: str
    accounts_deleted: int = Field(description="Connected accounts deleted with the connection.")
    revoked: int = Field(description="Accounts whose grant Discord confirmed revoked.")
    revoke_failed: list[RevokeFailureView] = Field(
        description="Accounts whose grant could not be revoked (deleted anyway; the grant may "
        "still be alive at Discord)."
    )


# -- connected accounts ------------------------------------------------------------------------


class ConnectedAccount(BaseModel):
    id: str
    connection_name: str
    connection_id: str
    identifier: str
    status: AccountStatus
    status_reason: str | None
    granted_scopes: list[str]
    provider_user_id: str | None = Field(description="The Discord user id, once linked.")
    token_expires_at: datetime | None = Field(
        description="When the current access token expires (it is refreshed before)."
    )
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: AccountRecord, connection_name: str) -> ConnectedAccount:
        return cls(
            id=record.id,
            connection_name=connection_name,
            connection_id=record.connection_id,
            identifier=record.identifier,
            status=record.status,
            status_reason=record.status_reason,
            granted_scopes=list(record.granted_scopes),
            provider_user_id=record.provider_user_id,
            token_expires_at=_when(record.expires_at),
            last_used_at=_when(record.last_used_at),
            created_at=utc_datetime(record.created_at),
            updated_at=utc_datetime(record.updated_at),
        )


class BotCredentialsBody(RequestModel):
    bot_token: SecretStr = Field(
        min_length=1,
        max_length=512,
        description="The bot's token (Developer Portal > your app > Bot > Reset Token). Checked "
        "with Discord (GET /users/@me) before it is stored; encrypted; never returned.",
    )


class ConnectedAccountCreate(RequestModel):
    """A connected account holding a bot token, on a connection of provider `discordbot`."""

    connection_name: str = Field(min_length=1, max_length=64, examples=["discordbot"])
    identifier: str = Field(
        min_length=1, max_length=255, description="Your application's key for this account."
    )
    credentials: BotCredentialsBody


class ConnectedAccountCreated(BaseModel):
    connected_account: ConnectedAccount
    created: bool = Field(
        description="False when the identifier already held a token of the same bot, now "
        "replaced by this one (e.g. after a reset in the Developer Portal)."
    )


class AuthorizationLinkRequest(RequestModel):
    connection_name: str = Field(min_length=1, max_length=64, examples=["discord"])
    identifier: str = Field(
        min_length=1, max_length=255, description="Your application's key for the user."
    )
    state: str | None = Field(
        None, max_length=1024, description="Your own value, handed back to user_verify_url."
    )
    user_verify_url: str | None = Field(
        None,
        max_length=2048,
        description="If set, after consent the browser goes here with `auth_request_id` (and "
        "`state`) and the account waits in PENDING_VERIFICATION until you call /verify.",
    )

    allow_user_change: StrictBool = Field(
        False,
        description="Allow the identifier to be re-linked to a different Discord user than the "
        "one it is linked to now (refused by default, and recorded as an event either way).",
    )

    @field_validator("user_verify_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL_RE.match(value):
            raise ValueError("must be an absolute http(s) URL")
        return value


class AuthorizationLinkResponse(BaseModel):
    link: str = Field(description="Send this to the user; it works once, until expires_at.")
    expires_at: datetime
    connected_account: ConnectedAccount


class VerifyRequest(RequestModel):
    auth_request_id: str = Field(min_length=1, max_length=64)
    identifier: str = Field(min_length=1, max_length=255)


class ConnectedAccountResponse(BaseModel):
    connected_account: ConnectedAccount


class ConnectedAccountList(BaseModel):
    connected_accounts: list[ConnectedAccount]
    next_page_token: str | None = Field(
        description="Pass as page_token for the next page; null on the last page."
    )


class GrantSiblingView(BaseModel):
    id: str
    identifier: str
    connection_name: str
    status: AccountStatus


class ConnectedAccountDeleted(BaseModel):
    deleted: Literal[True] = True
    id: str
    revoked: bool = Field(description="Whether Discord confirmed the revocation.")
    revoke_error: str | None = Field(
        description="Why revoking failed (only with force=true, which deletes anyway)."
    )
    siblings_disconnected: list[GrantSiblingView] = Field(
        default_factory=list,
        description="Other accounts linked to the same Discord user, whose grant ended with this "
        "revocation (only with revoke_siblings=true): now DISCONNECTED.",
    )
