"""Tool results that are not JSON: an image travels as base64 with its media type."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImageResult:
    """An image returned by a tool (e.g. a guild widget PNG)."""

    data: bytes
    media_type: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the HTTP API and the SDK: ``{type, media_type, data}``."""
        return {
            "type": "image",
            "media_type": self.media_type,
            "data": base64.b64encode(self.data).decode("ascii"),
        }

    def to_mcp_content(self) -> dict[str, Any]:
        """An MCP ``ImageContent`` block."""
        return {
            "type": "image",
            "data": base64.b64encode(self.data).decode("ascii"),
            "mimeType": self.media_type,
        }
