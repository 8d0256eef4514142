"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Each delivery carries ``webhook-id`` (the event's id, the same on every retry),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: ``v1,<base64
HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, where the key is the base64 part of the endpoint's
``whsec_`` secret. Receivers check it with the ``standardwebhooks`` package or :func:`verify`, and
refuse timestamps more than five minutes off (a replayed request).

Pure (no I/O): the SDK's verify helper imports this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any, Final

from tokenward.errors import WebhookSignatureError

__all__ = ["WebhookSignatureError", "headers", "new_secret", "sign", "verify"]

PREFIX: Final = "whsec_"
TOLERANCE_SECONDS: Final = 300


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and 32 random bytes in base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSignatureError("the secret is not a whsec_ secret") from None
    if not key:
        raise WebhookSignatureError("the secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body``."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes | str,
    request_headers: Mapping[str, str],
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> Any:
    """Check a delivery and return its parsed JSON payload; raise :class:`WebhookSignatureError`
    for a missing header, a timestamp outside ``tolerance`` or no matching signature.

    ``now`` is the receiver's current Unix time (``time.time()``)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    lowered = {k.lower(): v for k, v in request_headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise WebhookSignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookSignatureError("webhook-timestamp is not a number") from None
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureError("webhook-timestamp is too old or too new")
    expected = sign(secret, msg_id, timestamp, raw).partition(",")[2].encode("ascii")
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode("ascii", "replace"), expected):
            return json.loads(raw)
    raise WebhookSignatureError("no signature matches")
