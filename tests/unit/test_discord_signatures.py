"""Requests from Discord: the Ed25519 check, the public-key rule, and the answers tokenward gives
an interaction when the application did not."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tokenward.errors import AuthenticationError, DiscordSignatureError, ValidationError
from tokenward.events.discord import (
    deferred_response,
    is_interaction_response,
    parse_public_key,
    verify_signature,
)

NOW = 1_790_000_000
BODY = json.dumps({"id": "1", "type": 2, "token": "t", "data": {"name": "ping"}}).encode()


def new_key() -> tuple[Ed25519PrivateKey, str]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return private, public


def signed(private: Ed25519PrivateKey, body: bytes, stamp: int | str) -> dict[str, str]:
    """The two headers as Discord sends them: the signature of timestamp + raw body."""
    text = str(stamp)
    return {
        "X-Signature-Ed25519": private.sign(text.encode() + body).hex(),
        "X-Signature-Timestamp": text,
    }


def check(public: str, headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> None:
    verify_signature(public, headers, body, now=now, tolerance=300)


def test_a_good_signature_passes_in_any_header_case() -> None:
    private, public = new_key()
    headers = signed(private, BODY, NOW)
    check(public, headers)
    check(public, {k.lower(): v for k, v in headers.items()})
    check(public.upper(), headers)  # the key's case does not matter either
    check(public, headers, now=NOW + 299)  # within the tolerance, either way
    check(public, headers, now=NOW - 299)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("body", "does not match"),
        ("signature", "does not match"),
        ("timestamp", "does not match"),  # signed for another time than the header says
        ("no-signature", "missing"),
        ("no-timestamp", "missing"),
        ("empty-signature", "missing"),
        ("not-hex", "not hex"),
        ("odd-hex", "not hex"),
        ("short-signature", "does not match"),
        ("timestamp-not-a-number", "not a number"),
    ],
)
def test_anything_wrong_is_refused(change: str, message: str) -> None:
    private, public = new_key()
    headers = signed(private, BODY, NOW)
    body = BODY
    if change == "body":
        body = BODY.replace(b"ping", b"pong")
    elif change == "signature":
        sig = bytearray(bytes.fromhex(headers["X-Signature-Ed25519"]))
        sig[0] ^= 1
        headers["X-Signature-Ed25519"] = sig.hex()
    elif change == "timestamp":
        headers["X-Signature-Timestamp"] = str(NOW + 1)
    elif change == "no-signature":
        del headers["X-Signature-Ed25519"]
    elif change == "no-timestamp":
        del headers["X-Signature-Timestamp"]
    elif change == "empty-signature":
        headers["X-Signature-Ed25519"] = ""
    elif change == "not-hex":
        headers["X-Signature-Ed25519"] = "zz" * 64
    elif change == "odd-hex":
        headers["X-Signature-Ed25519"] = headers["X-Signature-Ed25519"][:-1]
    elif change == "short-signature":
        headers["X-Signature-Ed25519"] = headers["X-Signature-Ed25519"][:64]
    elif change == "timestamp-not-a-number":
        headers = signed(private, BODY, "soon")
    with pytest.raises(DiscordSignatureError, match=message) as caught:
        check(public, headers, body)
    assert caught.value.status == 401
    assert caught.value.code == "DISCORD_SIGNATURE_INVALID"
    assert isinstance(caught.value, AuthenticationError)


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86_400])
def test_a_stale_or_future_timestamp_is_refused_even_when_correctly_signed(offset: int) -> None:
    private, public = new_key()
    headers = signed(private, BODY, NOW + offset)
    with pytest.raises(DiscordSignatureError, match="too old or too new"):
        check(public, headers)
    verify_signature(public, headers, BODY, now=NOW, tolerance=abs(offset))  # a looser setting


def test_another_applications_key_is_refused() -> None:
    private, _public = new_key()
    _other_private, other_public = new_key()
    with pytest.raises(DiscordSignatureError, match="does not match"):
        check(other_public, signed(private, BODY, NOW))


def test_the_public_key_rule() -> None:
    _private, public = new_key()
    assert parse_public_key(public) == public
    assert parse_public_key(f"  {public.upper()}\n") == public
    for bad, reason in [
        (public[:-2], "64 hex characters (32 bytes, an Ed25519 key), not 62"),
        (public + "00", "not 66"),
        ("g" + public[1:], "other characters"),
        ("", "not 0"),
        (None, "64 hex characters"),
        (b"\x00" * 32, "64 hex characters"),
    ]:
        with pytest.raises(ValidationError) as caught:
            parse_public_key(bad, field="public_key")
        assert set(caught.value.details["fields"]) == {"public_key"}
        assert reason in caught.value.details["fields"]["public_key"], bad
        assert "Developer Portal" in caught.value.details["fields"]["public_key"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ({"type": 4, "data": {"content": "hi"}}, True),
        ({"type": 5}, True),
        ({"type": 6}, True),
        ({"type": 7, "data": {}}, True),
        ({"type": 8, "data": {"choices": []}}, True),
        ({"type": 9, "data": {"custom_id": "m", "title": "t", "components": []}}, True),
        ({"type": 12}, True),
        ({"type": 1}, False),  # PONG answers only a PING
        ({"type": 2}, False),
        ({"type": 10}, False),
        ({"type": "4"}, False),
        ({"type": True}, False),
        ({"type": 4.0}, False),
        ({"data": {"content": "hi"}}, False),
        ([{"type": 4}], False),
        ("ok", False),
        (None, False),
    ],
)
def test_what_counts_as_an_interaction_response(value: object, ok: bool) -> None:
    assert is_interaction_response(value) is ok


@pytest.mark.parametrize(
    ("interaction_type", "answer"),
    [
        (2, {"type": 5}),  # a command: "thinking…", filled in by the follow-up
        (5, {"type": 5}),  # a modal submit: the same
        (3, {"type": 6}),  # a button or select: its message stays, updated later
        (4, {"type": 8, "data": {"choices": []}}),  # autocomplete: no choices this time
        (99, {"type": 5}),
    ],
)
def test_the_deferred_answer_fits_the_interaction(
    interaction_type: int, answer: dict[str, object]
) -> None:
    assert deferred_response({"type": interaction_type}) == answer
    assert is_interaction_response(answer)
