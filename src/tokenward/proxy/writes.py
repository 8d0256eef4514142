"""Which writes may be resent: the one Discord makes safe to repeat.

A POST or PATCH that may have reached Discord is never resent (see :mod:`tokenward.proxy.retry`):
a blind retry after a dropped connection could post a message twice. Discord offers one way out
(discord-api.md §6.2): a message created with a ``nonce`` (an integer or a string of up to 25
characters) and ``enforce_nonce: true`` is created at most once per author and nonce within a few
minutes; a repeat answers with the message already created. The tool catalog sets both on
``discordbot_create_message`` (``PreparedRequest.retry_safe``); for the proxy, where the caller
writes the body, :func:`retry_safe_write` recognises such a request.
"""

from __future__ import annotations

import json

from tokenward.proxy.ratelimit import route_of

CREATE_MESSAGE_ROUTE = "POST /channels/{channel_id}/messages"
MAX_NONCE_LENGTH = 25


def has_enforced_nonce(payload: object) -> bool:
    """A message body with a usable ``nonce`` and ``enforce_nonce: true``."""
    if not isinstance(payload, dict) or payload.get("enforce_nonce") is not True:
        return False
    nonce = payload.get("nonce")
    if isinstance(nonce, bool):
        return False
    if isinstance(nonce, int):
        return True
    return isinstance(nonce, str) and 0 < len(nonce) <= MAX_NONCE_LENGTH


def retry_safe_write(method: str, path: str, body: bytes | None, content_type: str | None) -> bool:
    """Whether this request creates a message Discord deduplicates by its nonce (so resending it
    after a dropped connection or a 5xx cannot post it twice)."""
    if method.upper() != "POST" or not body:
        return False
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        return False
    if route_of("POST", path).key != CREATE_MESSAGE_ROUTE:
        return False
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return has_enforced_nonce(payload)
