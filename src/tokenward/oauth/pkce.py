"""PKCE, RFC 7636, as Discord supports it: ``S256`` only, verifiers of 43–128 characters."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def new_verifier() -> str:
    """A fresh verifier: 64 random bytes, base64url without padding (86 characters)."""
    return secrets.token_urlsafe(64)[:128]


def challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding (RFC 7636 §4.2)."""
    if not VERIFIER_RE.match(verifier):
        raise ValueError("a PKCE verifier is 43-128 characters of A-Z a-z 0-9 - . _ ~")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """A 256-bit, URL-safe state value."""
    return secrets.token_urlsafe(32)


def state_hash(state: str) -> str:
    """What the vault stores instead of the state itself."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()
