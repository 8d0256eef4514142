from __future__ import annotations

import re

import pytest

from tokenward.oauth import pkce


def test_challenge_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_verifier_is_valid_and_fresh() -> None:
    seen = {pkce.new_verifier() for _ in range(50)}
    assert len(seen) == 50
    for verifier in seen:
        assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier)


@pytest.mark.parametrize("bad", ["short", "x" * 129, "a" * 42, "é" * 50, "a b" * 20])
def test_challenge_refuses_invalid_verifiers(bad: str) -> None:
    with pytest.raises(ValueError, match="43-128"):
        pkce.challenge(bad)


def test_state_is_256_bits_and_hash_is_stable() -> None:
    state = pkce.new_state()
    assert len(state) >= 43  # 32 bytes base64url
    assert pkce.state_hash(state) == pkce.state_hash(state)
    assert pkce.state_hash(state) != pkce.state_hash(pkce.new_state())
    assert state not in pkce.state_hash(state)
