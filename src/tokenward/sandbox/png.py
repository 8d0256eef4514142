"""Guild widget images: real PNG files written with ``zlib`` and ``struct`` only.

Discord renders ``GET /guilds/{guild_id}/widget.png`` in five styles, each with its own size.
The sandbox draws a simple, deterministic picture per style (background, an icon square, bars
where Discord writes the guild name and the online count, a footer on the large banners) so
clients get a valid image whose dimensions tell the styles apart. The sizes approximate
Discord's images; they are not measured from them.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# style -> (width, height)
WIDGET_SIZES: dict[str, tuple[int, int]] = {
    "shield": (118, 20),
    "banner1": (320, 100),
    "banner2": (320, 76),
    "banner3": (320, 100),
    "banner4": (320, 213),
}
WIDGET_STYLES: tuple[str, ...] = tuple(WIDGET_SIZES)

Color = tuple[int, int, int]
BLURPLE: Color = (88, 101, 242)
DARK: Color = (47, 49, 54)
DARKER: Color = (32, 34, 37)
WHITE: Color = (255, 255, 255)
MUTED: Color = (201, 210, 240)
GREEN: Color = (67, 181, 129)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(width: int, height: int, pixels: bytearray) -> bytes:
    """A truecolour (RGB, 8 bits per channel) PNG of ``pixels`` (rows top to bottom)."""
    stride = width * 3
    if len(pixels) != stride * height:
        raise ValueError(f"pixels: expected {stride * height} bytes, got {len(pixels)}")
    raw = bytearray()
    for row in range(height):
        raw.append(0)  # filter type 0 (None) for every scanline
        raw += pixels[row * stride : (row + 1) * stride]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )


class _Canvas:
    def __init__(self, width: int, height: int, background: Color) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        line = bytes(color) * (x1 - x0)
        for row in range(y0, y1):
            start = (row * self.width + x0) * 3
            self.pixels[start : start + len(line)] = line

    def png(self) -> bytes:
        return encode_png(self.width, self.height, self.pixels)


def _bar(canvas: _Canvas, x: int, y: int, text: str, height: int, color: Color) -> None:
    """Stand-in for a line of text: one block per character, gaps at spaces."""
    for index, char in enumerate(text[:32]):
        if not char.isspace():
            canvas.rect(x + index * (height // 2 + 1), y, height // 2, height, color)


@lru_cache(maxsize=64)
def widget_png(style: str, guild_name: str, presence_count: int) -> bytes:
    """The widget image of a guild in ``style`` (one of :data:`WIDGET_STYLES`)."""
    if style not in WIDGET_SIZES:
        raise ValueError(f"style: must be one of {', '.join(WIDGET_STYLES)}")
    width, height = WIDGET_SIZES[style]
    online = f"{presence_count} ONLINE"
    if style == "shield":
        canvas = _Canvas(width, height, DARK)
        canvas.rect(0, 0, 38, height, BLURPLE)
        canvas.rect(10, 5, 18, 10, WHITE)
        _bar(canvas, 44, 6, online, 8, WHITE)
        return canvas.png()
    canvas = _Canvas(width, height, BLURPLE if style != "banner2" else DARK)
    icon_y, name_y = {"banner1": (20, 30), "banner2": (19, 22), "banner3": (20, 30)}.get(
        style, (128, 134)
    )
    icon_size = 36 if style == "banner2" else 50
    if style == "banner4":
        canvas.rect(0, 0, width, 120, DARKER)  # the large logo area
        canvas.rect(110, 30, 100, 60, BLURPLE)
    canvas.rect(20, icon_y, icon_size, icon_size, WHITE)
    _bar(canvas, icon_size + 33, name_y, guild_name, 10, WHITE)
    _bar(canvas, icon_size + 33, name_y + 17, online, 8, MUTED)
    if style in ("banner1", "banner3"):
        canvas.rect(0, height - 20, width, 20, DARKER)  # footer
        if style == "banner3":
            canvas.rect(width - 80, height - 16, 70, 12, GREEN)  # "Chat now"
    if style == "banner2":
        canvas.rect(width - 60, 0, 60, height, BLURPLE)
    if style == "banner4":
        canvas.rect(60, height - 26, 200, 20, GREEN)  # "Join my server"
    return canvas.png()
