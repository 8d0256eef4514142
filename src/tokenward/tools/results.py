"""Tool results that are not JSON: an image travels as base64 with its media type, a text (e.g.
the CSV of ``discordbot_get_invite_target_users``) as a string with its media type."""

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


@dataclass(frozen=True)
class TextResult:
    """A text returned by a tool (a tool whose ``output`` is ``text``, e.g. ``text/csv``)."""

    text: str
    media_type: str

    @classmethod
    def decode(cls, data: bytes, media_type: str) -> TextResult:
        """The text of an answer body (UTF-8; undecodable bytes are replaced, never raised)."""
        return cls(data.decode("utf-8", errors="replace"), media_type)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the HTTP API and the SDK: ``{type, media_type, text}``."""
        return {"type": "text", "media_type": self.media_type, "text": self.text}

    def to_mcp_content(self) -> dict[str, Any]:
        """An MCP ``TextContent`` block."""
        return {"type": "text", "text": self.text}
