"""One error tree for tokenward.

Every error carries a stable string ``code`` shared by the HTTP API, the SDK, MCP results and
the CLI, an HTTP ``status`` for the API, a human ``message`` and JSON-safe ``details``. No message
or detail ever contains a token or a secret.

::

    TokenwardError
    ├── ConfigError                 CONFIG_INVALID            (also KEY_FILE_MISSING, KEY_MISSING)
    ├── DatabaseUnavailable         DATABASE_UNAVAILABLE      (503, cannot reach the database)
    ├── DatabaseNotMigrated         DATABASE_NOT_MIGRATED     (503, run `tokenward db upgrade`)
    ├── ValidationError             VALIDATION_ERROR          (400, details.fields)
    ├── NotFoundError               *_NOT_FOUND               (404)
    │   ├── ConnectionNotFound      CONNECTION_NOT_FOUND
    │   ├── AccountNotFound         ACCOUNT_NOT_FOUND
    │   └── ToolNotFound            TOOL_NOT_FOUND
    ├── ConflictError               CONFLICT                  (409)
    ├── BotTokenRequired            BOT_TOKEN_REQUIRED        (409, the connection has no bot token)
    ├── AuthenticationError         UNAUTHENTICATED           (401; INVALID_CLIENT, INVALID_TOKEN)
    │   ├── WebhookSignatureError   WEBHOOK_SIGNATURE_INVALID (a delivery to the application)
    │   └── DiscordSignatureError   DISCORD_SIGNATURE_INVALID (a request from Discord)
    ├── InsufficientScope           INSUFFICIENT_SCOPE        (403, details.required_scope)
    ├── ToolNotAllowed              TOOL_NOT_ALLOWED          (403, details.policy and .rule)
    ├── AuthorizationFlowError      AUTH_FLOW_*               (400, shown on the callback page)
    ├── AccountNotActive            ACCOUNT_NOT_ACTIVE        (409, details.authorization_link)
    ├── ReauthorizationRequired     REAUTHORIZATION_REQUIRED  (401, details.authorization_link)
    ├── CryptoError                 DECRYPTION_FAILED
    ├── PathRejected                PATH_REJECTED             (400)
    ├── RateLimited                 RATE_LIMITED              (429, details.retry_after)
    ├── ProviderError               PROVIDER_ERROR            (Discord's status; details.discord)
    ├── UpstreamUnavailable         UPSTREAM_UNAVAILABLE      (502)
    ├── ServerUnreachable           SERVER_UNREACHABLE        (SDK: no answer from the gateway)
    └── UnexpectedResponse          UNEXPECTED_RESPONSE       (SDK: an answer that is not the API's)
"""

from __future__ import annotations

from typing import Any, ClassVar


class TokenwardError(Exception):
    """Base of every error tokenward raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}
        if code is not None:
            self.code = code  # type: ignore[misc]
        if status is not None:
            self.status = status  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        """The API's error envelope body."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ConfigError(TokenwardError):
    code = "CONFIG_INVALID"
    status = 500


class DatabaseUnavailable(TokenwardError):
    """The database cannot be reached or opened (down, wrong host, wrong credentials)."""

    code = "DATABASE_UNAVAILABLE"
    status = 503


class DatabaseNotMigrated(TokenwardError):
    """The database's schema is not the one this version needs (``tokenward db upgrade``)."""

    code = "DATABASE_NOT_MIGRATED"
    status = 503


class ValidationError(TokenwardError):
    """Bad input. ``details["fields"]`` maps each bad field to the reason."""

    code = "VALIDATION_ERROR"
    status = 400

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message, details={"fields": dict(fields or {})})
        self.fields: dict[str, str] = dict(fields or {})


class NotFoundError(TokenwardError):
    code = "NOT_FOUND"
    status = 404


class ConnectionNotFound(NotFoundError):
    code = "CONNECTION_NOT_FOUND"


class AccountNotFound(NotFoundError):
    code = "ACCOUNT_NOT_FOUND"


class ToolNotFound(NotFoundError):
    code = "TOOL_NOT_FOUND"


class ConflictError(TokenwardError):
    code = "CONFLICT"
    status = 409


class BotTokenRequired(TokenwardError):
    """The call needs the connection's bot token and the connection has none."""

    code = "BOT_TOKEN_REQUIRED"
    status = 409


class AuthenticationError(TokenwardError):
    code = "UNAUTHENTICATED"
    status = 401


class WebhookSignatureError(AuthenticationError):
    """A webhook delivery whose signature does not check out (forged, another secret, stale)."""

    code = "WEBHOOK_SIGNATURE_INVALID"


class DiscordSignatureError(AuthenticationError):
    """A request to a Discord endpoint whose Ed25519 signature does not check out (missing,
    forged, another key, a stale timestamp), or for a connection that has no public key."""

    code = "DISCORD_SIGNATURE_INVALID"


class InsufficientScope(TokenwardError):
    """The API client's scopes do not allow this call; ``details.required_scope`` names the
    scope it needs (see :mod:`tokenward.scopes`)."""

    code = "INSUFFICIENT_SCOPE"
    status = 403


class ToolNotAllowed(TokenwardError):
    """A policy refused the tool: the connection's ``allowed_tools`` or a read-only MCP session.
    ``details.policy`` names the policy and ``details.rule`` the rule that decided."""

    code = "TOOL_NOT_ALLOWED"
    status = 403


class AuthorizationFlowError(TokenwardError):
    """The OAuth callback could not complete; the message is shown to a person."""

    code = "AUTH_FLOW_FAILED"
    status = 400


class AccountNotActive(TokenwardError):
    code = "ACCOUNT_NOT_ACTIVE"
    status = 409


class ReauthorizationRequired(TokenwardError):
    code = "REAUTHORIZATION_REQUIRED"
    status = 401


class CryptoError(TokenwardError):
    code = "DECRYPTION_FAILED"
    status = 500


class PathRejected(TokenwardError):
    code = "PATH_REJECTED"
    status = 400


class RateLimited(TokenwardError):
    code = "RATE_LIMITED"
    status = 429

    def __init__(self, message: str, *, retry_after: float, scope: str | None = None) -> None:
        details: dict[str, Any] = {"retry_after": round(retry_after, 3)}
        if scope is not None:
            details["scope"] = scope
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ProviderError(TokenwardError):
    """Discord answered with an error; its status, code and message are in ``details``."""

    code = "PROVIDER_ERROR"
    status = 502


class UpstreamUnavailable(TokenwardError):
    code = "UPSTREAM_UNAVAILABLE"
    status = 502


class ServerUnreachable(TokenwardError):
    """The SDK got no answer from the tokenward server: connection refused, name not resolved,
    timed out, or the connection dropped. ``details.reason`` says which (``connect``,
    ``timeout``, ``network``, ``protocol``); ``details.url`` is the server's base URL.

    (Named so as not to shadow Python's built-in ``ConnectionError``.)"""

    code = "SERVER_UNREACHABLE"
    status = 503


class UnexpectedResponse(TokenwardError):
    """The SDK got an answer that is not tokenward's API: e.g. a reverse proxy's HTML 502 page
    or a body that is not JSON. ``status`` is the HTTP status received; ``details`` has
    ``status`` and ``content_type``."""

    code = "UNEXPECTED_RESPONSE"
    status = 502
