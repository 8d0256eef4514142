"""tokenward: a self-hosted agent-auth gateway for Discord."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from tokenward.errors import (
    AccountNotActive,
    AccountNotFound,
    AuthenticationError,
    BotTokenRequired,
    ConflictError,
    ConnectionNotFound,
    InsufficientScope,
    NotFoundError,
    PathRejected,
    ProviderError,
    RateLimited,
    ReauthorizationRequired,
    ServerUnreachable,
    TokenwardError,
    ToolNotAllowed,
    ToolNotFound,
    UnexpectedResponse,
    UpstreamUnavailable,
    ValidationError,
    WebhookSignatureError,
)

if TYPE_CHECKING:
    from tokenward.sdk import AsyncClient, Client
    from tokenward.sdk.webhooks import verify_webhook


def __getattr__(name: str) -> Any:
    # The SDK (httpx) loads on first use, so `tokenward --help` and the server do not pay for it.
    if name in ("AsyncClient", "Client"):
        from tokenward import sdk

        return getattr(sdk, name)
    if name == "verify_webhook":
        from tokenward.sdk.webhooks import verify_webhook

        return verify_webhook
    raise AttributeError(f"module 'tokenward' has no attribute {name!r}")


__all__ = [
    "AccountNotActive",
    "AccountNotFound",
    "AsyncClient",
    "AuthenticationError",
    "BotTokenRequired",
    "Client",
    "ConflictError",
    "ConnectionNotFound",
    "InsufficientScope",
    "NotFoundError",
    "PathRejected",
    "ProviderError",
    "RateLimited",
    "ReauthorizationRequired",
    "ServerUnreachable",
    "TokenwardError",
    "ToolNotAllowed",
    "ToolNotFound",
    "UnexpectedResponse",
    "UpstreamUnavailable",
    "ValidationError",
    "WebhookSignatureError",
    "__version__",
    "verify_webhook",
]
