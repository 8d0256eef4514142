"""The path guard: accepted paths stay on the provider's host under /api; hostile ones don't."""

from __future__ import annotations

from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
import yarl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenward.errors import PathRejected
from tokenward.proxy.paths import safe_path

BASE = "https://discord.com"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v10/users/@me", "/api/v10/users/@me"),
        ("api/v10/gateway", "/api/v10/gateway"),
        (
            "/api/v10/guilds/81384788765712384/widget.json",
            "/api/v10/guilds/81384788765712384/widget.json",
        ),
        ("/api/v10/invites/abc-DEF_123", "/api/v10/invites/abc-DEF_123"),
        ("/api/v10/users/@me/guilds/", "/api/v10/users/@me/guilds/"),
        (
            "/api/v10/channels/1/messages/2/reactions/%f0%9f%91%8d/@me",
            "/api/v10/channels/1/messages/2/reactions/%F0%9F%91%8D/@me",
        ),
        ("/api/v10/a%20b", "/api/v10/a%20b"),
        (
            "/api/v10/webhooks/1/tok-EN_1/messages/@original",
            "/api/v10/webhooks/1/tok-EN_1/messages/@original",
        ),
    ],
)
def test_accepts_and_normalises(path: str, expected: str) -> None:
    assert safe_path(path) == expected


REACTIONS = "/api/v10/channels/1/messages/2/reactions/"


@pytest.mark.parametrize(
    ("emoji", "expected"),
    [
        ("blobwave:123456789012345678", "blobwave%3A123456789012345678"),  # custom, raw ':'
        ("blob_wave%3a1234", "blob_wave%3A1234"),  # custom, escaped ':' (discord.py sends this)
        ("%F0%9F%91%8D", "%F0%9F%91%8D"),  # 👍
        ("%E2%9D%A4%EF%B8%8F", "%E2%9D%A4%EF%B8%8F"),  # ❤️ (with a variation selector)
        (  # 👨‍👩‍👧: zero-width joiners
            "%F0%9F%91%A8%E2%80%8D%F0%9F%91%A9%E2%80%8D%F0%9F%91%A7",
            "%F0%9F%91%A8%E2%80%8D%F0%9F%91%A9%E2%80%8D%F0%9F%91%A7",
        ),
        (  # 🏴󠁧󠁢󠁳󠁣󠁴󠁿: tag characters
            "%F0%9F%8F%B4%F3%A0%81%A7%F3%A0%81%A2%F3%A0%81%B3%F3%A0%81%A3%F3%A0%81%B4%F3%A0%81%BF",
            "%F0%9F%8F%B4%F3%A0%81%A7%F3%A0%81%A2%F3%A0%81%B3%F3%A0%81%A3%F3%A0%81%B4%F3%A0%81%BF",
        ),
        ("%23%EF%B8%8F%E2%83%A3", "%23%EF%B8%8F%E2%83%A3"),  # #️⃣ keycap
        ("*%EF%B8%8F%E2%83%A3", "*%EF%B8%8F%E2%83%A3"),  # *️⃣ keycap
    ],
)
def test_reaction_emoji_segments_are_accepted(emoji: str, expected: str) -> None:
    """Issue 10: Discord's reaction routes carry the emoji in the path (a custom one as name:id,
    a Unicode one percent-encoded), after ``reactions``, also before ``@me`` or a user id."""
    assert safe_path(REACTIONS + emoji + "/@me") == REACTIONS + expected + "/@me"
    assert safe_path(REACTIONS + emoji) == REACTIONS + expected
    assert safe_path(REACTIONS + emoji + "/80351110224678912") == (
        REACTIONS + expected + "/80351110224678912"
    )


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (REACTIONS + "name:id/@me", "':'"),  # the id must be numeric
        (REACTIONS + "a:1:2/@me", "':'"),
        (REACTIONS + ":123/@me", "':'"),
        (REACTIONS + "name:/@me", "':'"),
        (REACTIONS + "x%3a%2f%2fevil.example/@me", "escape decodes"),
        (REACTIONS + "%2e%2e/@me", "escape decodes"),
        (REACTIONS + "%23/@me", "escape decodes"),  # '#' only as a keycap
        (REACTIONS + "%23%EF%B8%8F/@me", "escape decodes"),
        (REACTIONS + "%E2%80%8D%0A/@me", "control character"),
        (REACTIONS + "%40me", "escape decodes"),
        ("/api/v10/users/name:123", "':'"),  # name:id only where an emoji goes
        ("/api/v10/reactions:123/x", "':'"),
        ("/api/v10/guilds/%E2%80%8D", "control character"),  # a joiner only inside an emoji
        ("/api/v10/guilds/%F3%A0%81%A7", "control character"),  # a tag character likewise
        ("reactions/name:1/api/v10", "not under /api/"),
    ],
)
def test_emoji_rules_open_nothing_else(path: str, reason: str) -> None:
    with pytest.raises(PathRejected) as caught:
        safe_path(path)
    assert reason in caught.value.message


HOSTILE = [
    ("", "empty"),
    ("https://evil.example/api/v10/x", "':'"),
    ("HTTP://evil.example/api", "':'"),
    ("javascript:alert(1)", "':'"),
    ("//evil.example/api/v10/x", "'//'"),
    ("/api//evil.example", "empty segment"),
    ("/\\evil.example/api", "backslash"),
    ("/api/v10\\..\\..\\x", "backslash"),
    ("/api/../admin", "dot segment"),
    ("/api/v10/./users", "dot segment"),
    ("/api/v10/...", "dot segment"),
    ("/api/..;/admin", "dot segment"),
    ("/api/%2e%2e/admin", "escape decodes"),
    ("/api/%2E./admin", "escape decodes"),
    ("/api/.%2e/admin", "escape decodes"),
    ("/api/%252e%252e/admin", "escape decodes"),
    ("/api/v10/%2fetc", "escape decodes"),
    ("/api/v10/%2F%2Fevil.example", "escape decodes"),
    ("/api/v10/%5cevil", "escape decodes"),
    ("/api/v10/%c0%ae%c0%ae/x", "not valid UTF-8"),
    ("/api/v10/%e0%80%ae/x", "not valid UTF-8"),
    ("/api/v10/%ef%bc%8e%ef%bc%8e/x", "folds"),  # fullwidth full stops
    ("/api/v10/%e2%80%a5/x", "folds"),  # two-dot leader
    ("/api/v10/%ef%bc%8f", "folds"),  # fullwidth solidus
    ("/api/v10/\uff0e\uff0e/x", "non-ASCII"),
    ("/api/v10/\u2025", "non-ASCII"),
    ("/api/v10/user@evil.example", "'@'"),
    ("/api/v10/%40evil", "escape decodes"),
    ("@evil.example/api", "'@'"),
    ("/api/v10/webhooks/1/t/@original", "'@'"),  # only right after messages
    ("/api/v10/messages/@original.evil", "'@'"),
    ("/api/v10/messages/x@original", "'@'"),
    ("/api/v10/x\r\nHost: evil", "control character"),
    ("/api/v10/x%0d%0aHost%20evil", "control character"),
    ("/api/v10/x%00", "control character"),
    ("/api/v10/x\x00", "control character"),
    ("/api/v10/x\t", "control character"),
    ("/api/v10/x?y=1", "'?'"),
    ("/api/v10/x#frag", "'#'"),
    ("/api/v10/x%zz", "two hex digits"),
    ("/api/v10/x%4", "two hex digits"),
    ("/apix/v10", "not under /api/"),
    ("/API/v10", "not under /api/"),
    ("/v10/users/@me", "not under /api/"),
    ("/api", "not under /api/"),
    ("/api/", "not under /api/"),
    ("/oauth2/authorize", "not under /api/"),
    ("/api/v10/x y", "percent-encoded"),
    ("/api/v10/" + "a" * 3000, "longer than"),
]


@pytest.mark.parametrize(("path", "reason"), HOSTILE)
def test_refuses_hostile_paths_with_a_reason(path: str, reason: str) -> None:
    with pytest.raises(PathRejected) as caught:
        safe_path(path)
    assert reason in caught.value.message
    assert caught.value.details["field"] == "path"
    assert caught.value.code == "PATH_REJECTED"


def test_message_never_echoes_the_path() -> None:
    secret = "/api/v10/webhooks/1/SECRETwebhookTOKEN/../x"
    with pytest.raises(PathRejected) as caught:
        safe_path(secret)
    assert "SECRETwebhookTOKEN" not in str(caught.value)
    assert "SECRETwebhookTOKEN" not in repr(caught.value.to_dict())


def test_custom_base_prefix() -> None:
    assert safe_path("/api/v10/gateway", base_prefix="/api/v10") == "/api/v10/gateway"
    with pytest.raises(PathRejected):
        safe_path("/api/v9/gateway", base_prefix="/api/v10")


# -- property: nothing generated from hostile fragments escapes -----------------------------------

FRAGMENTS = [
    "api",
    "v10",
    "users",
    "@me",
    "@",
    "guilds",
    "123",
    "/",
    "//",
    "\\",
    "..",
    ".",
    "...",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2E.",
    ".%2e",
    "%252e",
    "%25",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "%40",
    "%00",
    "%0d",
    "%0a",
    "%0D%0A",
    "\r",
    "\n",
    "\x00",
    "\t",
    " ",
    "%20",
    "http:",
    "https://",
    "HTTPS:",
    "file:",
    "javascript:",
    "//evil.example",
    "evil.example",
    "@evil.example",
    "user:pass@",
    ":",
    ":8080",
    "?",
    "#",
    ";",
    "..;",
    "%3b",
    "%3f",
    "%23",
    "\uff0e",
    "\u2024",
    "\u2025",
    "\uff0f",
    "\uff3c",
    "%ef%bc%8e",
    "%e2%80%a4",
    "%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%c1%9c",
    "%f0%9f%91%8d",
    "\u0130",
    "\u212a",
    "\u00e9",
    "%e9",
    "~",
    "-",
    "_",
    "a",
    "Z",
    "reactions",
    "reactions/",
    "name:123",
    "%3a",
    "%3A",
    "%e2%80%8d",
    "%f3%a0%81%a7",
    "%ef%b8%8f",
    "%e2%83%a3",
]


def _assert_stays_home(accepted: str) -> None:
    base = yarl.URL(BASE)
    joined = yarl.URL(BASE + accepted, encoded=True)
    assert (joined.scheme, joined.host, joined.port) == (base.scheme, base.host, base.port)
    assert joined.raw_path.startswith("/api/")
    relative = base.join(yarl.URL(accepted, encoded=True))
    assert relative.host == base.host
    assert relative.path.startswith("/api/")
    via_urllib = urlsplit(urljoin(BASE + "/", accepted))
    assert via_urllib.scheme == "https"
    assert via_urllib.netloc == "discord.com"
    decoded_segments = unquote(via_urllib.path).split("/")
    assert ".." not in decoded_segments
    assert "." not in decoded_segments
    assert "\\" not in unquote(accepted)
    assert via_urllib.path.startswith("/api/")
    assert not via_urllib.query
    assert not via_urllib.fragment
    assert ":" not in accepted  # a custom emoji's name:id leaves as name%3Aid
    assert safe_path(accepted) == accepted  # the output is a fixed point (ProviderClient re-checks)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    prefix=st.sampled_from(["", "/", "/api/", "api/", "/api/v10/", "//", "\\"]),
    parts=st.lists(st.sampled_from(FRAGMENTS), min_size=0, max_size=12),
    noise=st.text(max_size=4),
)
def test_no_generated_path_escapes(prefix: str, parts: list[str], noise: str) -> None:
    path = prefix + "".join(parts) + noise
    try:
        accepted = safe_path(path)
    except PathRejected:
        return
    _assert_stays_home(accepted)


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8).map("/".join))
def test_no_generated_segment_list_escapes(tail: str) -> None:
    try:
        accepted = safe_path("/api/v10/" + tail)
    except PathRejected:
        return
    _assert_stays_home(accepted)


def test_the_property_generator_can_produce_accepted_paths() -> None:
    # Guards the property tests against vacuity: benign combinations do get through.
    assert safe_path("/api/" + "".join(["v10", "/", "users", "/", "@me"])) == "/api/v10/users/@me"


# -- property: reaction emoji -------------------------------------------------------------------

EMOJI_CODEPOINTS = st.sampled_from(
    [
        "\U0001f44d",
        "\u2764",
        "\ufe0f",
        "\u200d",
        "\U0001f468",
        "\U0001f3f4",
        "\U000e0067",
        "\U000e007f",
        "\u20e3",
        "#",
        "*",
        "1",
        "\U0001f1fa",
        "\U0001f1f8",
        "\U0001f3fd",
    ]
)


@settings(max_examples=800, deadline=None)
@given(st.lists(EMOJI_CODEPOINTS, min_size=1, max_size=8).map("".join))
def test_percent_encoded_emoji_are_accepted_and_kept(emoji: str) -> None:
    """Any sequence of emoji parts, percent-encoded as UTF-8 the way the catalog encodes a path
    value, is accepted as is, unless it has a '#' that is not a keycap."""
    segment = quote(emoji, safe="")
    keycap_hashes = all(
        emoji[i + 1 : i + 3] == "\ufe0f\u20e3" or emoji[i + 1 : i + 2] == "\u20e3"
        for i, char in enumerate(emoji)
        if char == "#"
    )
    try:
        accepted = safe_path(REACTIONS + segment + "/@me")
    except PathRejected:
        assert not keycap_hashes, emoji
        return
    assert keycap_hashes, emoji
    assert unquote(accepted) == REACTIONS + emoji + "/@me"
    _assert_stays_home(accepted)


@settings(max_examples=1500, deadline=None)
@given(
    emoji=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6).map("".join),
    tail=st.sampled_from(["", "/@me", "/123", "/..", "/%2e%2e", "//evil.example"]),
)
def test_nothing_in_the_emoji_position_escapes(emoji: str, tail: str) -> None:
    try:
        accepted = safe_path(REACTIONS + emoji + tail)
    except PathRejected:
        return
    _assert_stays_home(accepted)
    assert accepted.startswith(REACTIONS)
