"""``GET /guilds/{guild_id}/widget.png`` (discord-api.md §2.4, §5 "Widget style enum").

The answer must be a real PNG: signature, chunk CRCs, an IHDR whose size matches the
decompressed IDAT stream, and a size of its own per style.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .helpers import PngImage, bot, bot_token, parse_png

STYLES = ("shield", "banner1", "banner2", "banner3", "banner4")
WIDGET_ON = "1200000000000000001"
OTHER_WIDGET_ON = "1200000000000000003"
WIDGET_OFF = "1200000000000000002"
BYTES_PER_PIXEL = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour types at 8 bits per sample


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_url, verify=False) as c:
        yield c


def fetch(client: httpx.Client, style: str | None = None, guild: str = WIDGET_ON) -> PngImage:
    params = {"style": style} if style else {}
    response = client.get(f"/api/v10/guilds/{guild}/widget.png", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = parse_png(response.content)
    assert image.bit_depth == 8
    row = 1 + image.width * BYTES_PER_PIXEL[image.color_type]  # filter byte + pixels
    assert len(image.pixels) == image.height * row
    assert all(image.pixels[r * row] <= 4 for r in range(image.height)), "bad filter type"
    return image


@pytest.mark.parametrize("style", STYLES)
def test_each_style_is_a_valid_png(client: httpx.Client, style: str) -> None:
    image = fetch(client, style)
    assert image.width > 0
    assert image.height > 0


def test_styles_have_distinct_sizes_and_shield_is_the_default(client: httpx.Client) -> None:
    sizes = {style: (img.width, img.height) for style in STYLES for img in [fetch(client, style)]}
    assert len(set(sizes.values())) >= 4, sizes
    shield = sizes["shield"]
    assert shield[0] > shield[1], "the shield is a small wide badge"
    # Another guild (the bucket's major parameter, so its own rate-limit counter).
    default = fetch(client, guild=OTHER_WIDGET_ON)
    assert (default.width, default.height) == shield


def test_bot_token_is_accepted(client: httpx.Client, sandbox_url: str) -> None:
    response = client.get(
        f"/api/v10/guilds/{WIDGET_ON}/widget.png", headers=bot(bot_token(sandbox_url))
    )
    assert response.status_code == 200
    parse_png(response.content)


def test_unknown_style_is_a_form_error(client: httpx.Client) -> None:
    response = client.get(f"/api/v10/guilds/{WIDGET_ON}/widget.png", params={"style": "banner9"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 50035
    assert body["errors"]["style"]["_errors"][0]["code"] == "BASE_TYPE_CHOICES"


def test_disabled_widget_is_50004(client: httpx.Client) -> None:
    response = client.get(f"/api/v10/guilds/{WIDGET_OFF}/widget.png")
    assert response.status_code == 403
    assert response.json()["code"] == 50004


def test_unknown_guild_is_10004(client: httpx.Client) -> None:
    response = client.get("/api/v10/guilds/1299999999999999999/widget.png")
    assert response.status_code == 404
    assert response.json()["code"] == 10004
