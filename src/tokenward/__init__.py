"""tokenward: a self-hosted agent-auth gateway for Discord."""

from __future__ import annotations

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
    ToolNotFound,
    UnexpectedResponse,
    UpstreamUnavailable,
    ValidationError,
)
from tokenward.sdk import AsyncClient, Client

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
    "ToolNotFound",
    "UnexpectedResponse",
    "UpstreamUnavailable",
    "ValidationError",
    "__version__",
]
