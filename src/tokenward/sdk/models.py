"""Typed results of the SDK (pydantic models; unknown fields from newer servers are kept)."""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ConnectedAccount(_Model):
    id: str
    connection_id: str | None = None
    connection_name: str | None = None
    identifier: str
    status: str
    status_reason: str | None = None
    granted_scopes: list[str] = []
    provider_user_id: str | None = None


class Connection(_Model):
    id: str
    name: str
    provider: str
    client_id: str | None = None
    scopes: list[str] = []
    has_bot_token: bool = False
    require_user_verification: bool = False
    allowed_tools: list[str] | None = None
    redirect_uri: str | None = None
    public_key: str | None = None
    interactions_endpoint_url: str | None = None
    event_webhooks_url: str | None = None


class AuthorizationLink(_Model):
    link: str
    expires_at: str
    connected_account: ConnectedAccount | None = None


class ConnectedAccountPage(_Model):
    connected_accounts: list[ConnectedAccount]
    next_page_token: str | None = None


class ToolInfo(_Model):
    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any] = {}


class ToolExecution(_Model):
    data: Any
    execution_id: str
    notes: list[str] = []
    """Remarks on the call (e.g. an input Discord no longer honours)."""

    @property
    def image_bytes(self) -> bytes | None:
        """The decoded image when the tool returned one (``{type: image, data: base64}``)."""
        if isinstance(self.data, dict) and self.data.get("type") == "image":
            return base64.b64decode(self.data["data"])
        return None


class ProxyResponse:
    """Discord's answer to a proxied call: status, headers and body, as they came."""

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"ProxyResponse(status_code={self.status_code}, bytes={len(self.content)})"
