"""The tokenward SDK for applications."""

from __future__ import annotations

from tokenward.sdk.client import Actions, AsyncActions, AsyncClient, Client
from tokenward.sdk.models import (
    AuthorizationLink,
    ConnectedAccount,
    ConnectedAccountPage,
    ProxyResponse,
    ToolExecution,
    ToolInfo,
)

__all__ = [
    "Actions",
    "AsyncActions",
    "AsyncClient",
    "AuthorizationLink",
    "Client",
    "ConnectedAccount",
    "ConnectedAccountPage",
    "ProxyResponse",
    "ToolExecution",
    "ToolInfo",
]
