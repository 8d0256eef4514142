"""tokenward: a self-hosted agent-auth gateway for Discord."""

from __future__ import annotations

from tokenward.errors import (
    AccountNotActive,
    AccountNotFound,
    AuthenticationError,
    ConnectionNotFound,
    NotFoundError,
    PathRejected,
    ProviderError,
    RateLimited,
    ReauthorizationRequired,
    TokenwardError,
    ToolNotFound,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "AccountNotActive",
    "AccountNotFound",
    "AuthenticationError",
    "ConnectionNotFound",
    "NotFoundError",
    "PathRejected",
    "ProviderError",
    "RateLimited",
    "ReauthorizationRequired",
    "TokenwardError",
    "ToolNotFound",
    "ValidationError",
    "__version__",
]
