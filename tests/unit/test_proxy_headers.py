"""Which request headers ``/proxy`` reads for itself and which it forwards to Discord."""

from __future__ import annotations

from tokenward.server.proxy_endpoint import read_headers


def test_the_gateway_headers_are_read_and_never_forwarded() -> None:
    auth, connection, identifier, content_type, forwarded = read_headers(
        [
            (b"host", b"gateway"),
            (b"authorization", b"Bearer api-token"),
            (b"connection_name", b"discord"),
            (b"identifier", b"user_1"),
            (b"accept", b"application/json"),
        ]
    )
    assert (auth, connection, identifier, content_type) == (
        "Bearer api-token",
        "discord",
        "user_1",
        None,
    )
    assert forwarded == [("accept", "application/json")]


def test_both_spellings_of_connection_name_and_the_first_of_each_counts() -> None:
    auth, connection, identifier, _, _ = read_headers(
        [
            (b"connection-name", b"first"),
            (b"connection_name", b"second"),
            (b"identifier", b"a"),
            (b"identifier", b"b"),
            (b"authorization", b"Bearer one"),
            (b"authorization", b"Bearer two"),
        ]
    )
    assert (auth, connection, identifier) == ("Bearer one", "first", "a")


def test_only_the_listed_headers_go_on_in_their_order() -> None:
    _, _, _, content_type, forwarded = read_headers(
        [
            (b"cookie", b"session=secret"),
            (b"x-audit-log-reason", b"spam"),
            (b"content-type", b"application/json"),
            (b"x-forwarded-for", b"10.0.0.1"),
            (b"if-none-match", b'"etag"'),
            (b"accept-language", b"fr"),
            (b"user-agent", b"agent/1"),
            (b"content-type", b"text/plain"),
        ]
    )
    assert content_type == "application/json"
    assert forwarded == [
        ("x-audit-log-reason", "spam"),
        ("content-type", "application/json"),
        ("if-none-match", '"etag"'),
        ("accept-language", "fr"),
        ("content-type", "text/plain"),
    ]


def test_missing_headers_read_as_none() -> None:
    assert read_headers([(b"host", b"gateway")]) == (None, None, None, None, [])


def test_values_are_latin_1() -> None:
    _, _, identifier, _, _ = read_headers([(b"identifier", "Zoë".encode("latin-1"))])
    assert identifier == "Zoë"
