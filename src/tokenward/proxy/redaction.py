"""Keep secrets out of logs, errors and reprs.

Helpers that replace credentials with a marker: header values (``Authorization``, cookies, API
keys), token-shaped substrings in free text (``Bearer …``, ``Bot …``, Discord bot tokens, JWTs,
``access_token=…`` in URLs and forms) and secret-named keys in nested mappings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-signature-ed25519",
    }
)

# Key names whose values are secrets wherever they appear in a mapping.
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|authorization|cookie|api[_-]?key|code_verifier|"
    r"client_assertion|private[_-]?key)",
    re.IGNORECASE,
)

_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # An Authorization value inside text: keep the scheme, drop the credential.
    (re.compile(r"\b(Bearer|Bot|Basic)\s+[^\s,;\"']+", re.IGNORECASE), r"\1 " + REDACTED),
    # Secrets passed as query or form parameters.
    (
        re.compile(
            r"\b(access_token|refresh_token|id_token|client_secret|code_verifier|code|token)"
            r"=[^&\s\"']+",
            re.IGNORECASE,
        ),
        r"\1=" + REDACTED,
    ),
    # JSON-ish "token": "value" pairs in serialised bodies.
    (
        re.compile(
            r"(\"(?:access_token|refresh_token|id_token|client_secret|token|bot_token)\"\s*:\s*\")"
            r"[^\"]*(\")",
            re.IGNORECASE,
        ),
        r"\1" + REDACTED + r"\2",
    ),
    # A Discord bot token: base64 user id, timestamp, HMAC.
    (re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}\b"), REDACTED),
    # A JWT.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), REDACTED),
)


def redact_text(text: str) -> str:
    """``text`` with every token-shaped substring replaced by ``[REDACTED]``."""
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_header_value(name: str, value: str) -> str:
    """A header value fit for a log: secret headers keep only their scheme."""
    if name.lower() not in SECRET_HEADERS:
        return redact_text(value)
    scheme, sep, _ = value.partition(" ")
    if sep and scheme.lower() in {"bearer", "bot", "basic"}:
        return f"{scheme} {REDACTED}"
    return REDACTED


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """A copy of ``headers`` with secret values redacted (later duplicates win)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name: redact_header_value(name, value) for name, value in items}


def redact(value: Any) -> Any:
    """Redact a JSON-like value: secret-named keys are masked, strings are scanned."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and _SECRET_KEY.search(key) and item is not None:
                out[key] = REDACTED
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
