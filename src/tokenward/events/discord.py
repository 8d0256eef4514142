"""Requests from Discord: checking their Ed25519 signatures, and what to answer an interaction
when the application has not.

Discord signs every request to an application's Interactions Endpoint URL and Webhook Events URL
with the application's Ed25519 key: ``X-Signature-Ed25519`` is the hex signature of
``X-Signature-Timestamp`` followed by the raw body, checked with the public key the Developer
Portal shows (64 hex characters; also ``verify_key`` on the application object). A request that
fails the check must get 401 — Discord sends deliberately broken signatures from time to time and
removes an endpoint that accepts them. A timestamp far from now is refused too, so a recorded
request cannot be replayed later.

Pure (no I/O, the time is passed in).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tokenward.errors import DiscordSignatureError, ValidationError

__all__ = [
    "CALLBACK_TYPES",
    "DiscordSignatureError",
    "deferred_response",
    "is_interaction_response",
    "parse_public_key",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "x-signature-ed25519"
TIMESTAMP_HEADER: Final = "x-signature-timestamp"
PUBLIC_KEY_HEX_LENGTH: Final = 64

# Interaction types (what Discord sends).
PING: Final = 1
APPLICATION_COMMAND: Final = 2
MESSAGE_COMPONENT: Final = 3
APPLICATION_COMMAND_AUTOCOMPLETE: Final = 4
MODAL_SUBMIT: Final = 5

# Interaction callback types (what may answer one, other than PONG): a message, the deferred
# "thinking…" state, a deferred or immediate update of the component's message, autocomplete
# choices, a modal, launching an activity.
CALLBACK_TYPES: Final = frozenset({4, 5, 6, 7, 8, 9, 12})
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: Final = 5
DEFERRED_UPDATE_MESSAGE: Final = 6
APPLICATION_COMMAND_AUTOCOMPLETE_RESULT: Final = 8


def parse_public_key(value: object, *, field: str = "public_key") -> str:
    """The key as stored (lower-case hex), or a :class:`ValidationError` naming ``field`` and
    why. An Ed25519 public key is 32 bytes: 64 hex characters, as the Developer Portal shows it."""
    portal = "must be the application's public key from Discord's Developer Portal"
    if not isinstance(value, str):
        reason = f"{portal}: a string of 64 hex characters"
        raise ValidationError(f"{field} {reason}", fields={field: reason})
    text = value.strip().lower()
    if any(ch not in "0123456789abcdef" for ch in text):
        reason = f"{portal}: 64 hex characters (0-9, a-f), and it has other characters"
        raise ValidationError(f"{field} {reason}", fields={field: reason})
    if len(text) != PUBLIC_KEY_HEX_LENGTH:
        reason = f"{portal}: 64 hex characters (32 bytes, an Ed25519 key), not {len(text)}"
        raise ValidationError(f"{field} {reason}", fields={field: reason})
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except ValueError:
        reason = f"{portal}: this is not an Ed25519 public key"
        raise ValidationError(f"{field} {reason}", fields={field: reason}) from None
    return text


def verify_signature(
    public_key: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: float,
) -> None:
    """Raise :class:`DiscordSignatureError` unless ``body`` is signed by ``public_key`` (hex) with
    a timestamp within ``tolerance`` seconds of ``now``. ``headers`` are the request's (any
    case)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    signature_hex = lowered.get(SIGNATURE_HEADER)
    stamp = lowered.get(TIMESTAMP_HEADER)
    if not signature_hex or not stamp:
        raise DiscordSignatureError("missing X-Signature-Ed25519 or X-Signature-Timestamp")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise DiscordSignatureError("X-Signature-Timestamp is not a number") from None
    if abs(now - timestamp) > tolerance:
        raise DiscordSignatureError("X-Signature-Timestamp is too old or too new")
    try:
        signature = binascii.unhexlify(signature_hex.strip())
    except (binascii.Error, ValueError):
        raise DiscordSignatureError("X-Signature-Ed25519 is not hex") from None
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        key.verify(signature, stamp.encode("ascii", "replace") + body)
    except (InvalidSignature, ValueError):
        raise DiscordSignatureError("the signature does not match") from None


def is_interaction_response(value: Any) -> bool:
    """Whether ``value`` (parsed JSON) can answer an interaction: an object whose integer
    ``type`` is one of Discord's callback types (not PONG, which answers only a PING)."""
    if not isinstance(value, dict):
        return False
    kind = value.get("type")
    return isinstance(kind, int) and not isinstance(kind, bool) and kind in CALLBACK_TYPES


def deferred_response(interaction: Mapping[str, Any]) -> dict[str, Any]:
    """What tokenward answers in time when the application did not: "thinking…" for a command
    or a modal, a deferred update for a component (its message stays as it is), no choices for
    autocomplete. The application follows up with the interaction's token."""
    kind = interaction.get("type")
    if kind == MESSAGE_COMPONENT:
        return {"type": DEFERRED_UPDATE_MESSAGE}
    if kind == APPLICATION_COMMAND_AUTOCOMPLETE:
        return {"type": APPLICATION_COMMAND_AUTOCOMPLETE_RESULT, "data": {"choices": []}}
    return {"type": DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE}
