"""OpenID Connect (discord-api.md §1.1, §1.9): RS256 ``id_token`` when ``openid`` is granted,
signed by a key that ``GET /oauth2/keys`` publishes; the discovery document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from . import authorize, exchange, loopback_client, new_verifier, refresh, register_app

ADA = "1100000000000000001"
GRACE = "1100000000000000002"


@pytest.fixture
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with loopback_client(sandbox_url) as c:
        yield c


@pytest.fixture
def app(sandbox_url: str) -> dict[str, Any]:
    return register_app(sandbox_url)


def jwks(client: httpx.Client, path: str = "/api/oauth2/keys") -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def verify(client: httpx.Client, token: str, audience: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    keys = {k["kid"]: k for k in jwks(client)["keys"]}
    key = jwt.PyJWK(keys[header["kid"]])
    claims: dict[str, Any] = jwt.decode(
        token,
        key=key,
        algorithms=["RS256"],
        audience=audience,
        issuer="https://discord.com",
        options={"require": ["iss", "aud", "sub", "iat", "exp"]},
    )
    return claims


@pytest.mark.parametrize("path", ["/api/oauth2/keys", "/api/v10/oauth2/keys", "/oauth2/keys"])
def test_jwks_shape(client: httpx.Client, path: str) -> None:
    body = jwks(client, path)
    assert set(body) == {"keys"}
    assert len(body["keys"]) >= 1
    for key in body["keys"]:
        assert set(key) == {"kty", "use", "kid", "n", "e", "alg"}
        assert (key["kty"], key["use"], key["alg"], key["e"]) == ("RSA", "sig", "RS256", "AQAB")
        public = jwt.PyJWK(key).key
        assert public.key_size == 2048


def test_id_token_verifies_against_jwks(client: httpx.Client, app: dict[str, Any]) -> None:
    verifier = new_verifier()
    code = authorize(
        client, app, scope="openid identify", verifier=verifier, user_id=GRACE, nonce="n-0S6_WzA2Mj"
    )
    response = exchange(client, app, code, verifier=verifier)
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "id_token",
    }
    claims = verify(client, body["id_token"], app["client_id"])
    assert claims["sub"] == GRACE
    assert claims["aud"] == app["client_id"]
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["exp"] > claims["iat"]
    # §1.9: no username or email in the ID token, even with more scopes.
    assert not {"email", "username", "preferred_username"} & set(claims)


def test_id_token_without_nonce(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app, scope="openid email", user_id=ADA)
    claims = verify(client, exchange(client, app, code).json()["id_token"], app["client_id"])
    assert claims["sub"] == ADA
    assert "nonce" not in claims
    assert "email" not in claims


def test_id_token_is_rejected_for_another_audience(
    sandbox_url: str, client: httpx.Client, app: dict[str, Any]
) -> None:
    code = authorize(client, app, scope="openid")
    token = exchange(client, app, code).json()["id_token"]
    with pytest.raises(jwt.InvalidAudienceError):
        verify(client, token, register_app(sandbox_url)["client_id"])


def test_no_id_token_without_openid(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app, scope="identify email")
    assert "id_token" not in exchange(client, app, code).json()


def test_signing_key_survives_reset(sandbox_url: str, client: httpx.Client) -> None:
    before = jwks(client)
    assert client.post("/_sandbox/reset").status_code == 200
    assert jwks(client) == before


def test_refreshed_response_keeps_openid(client: httpx.Client, app: dict[str, Any]) -> None:
    code = authorize(client, app, scope="openid identify", user_id=ADA)
    first = exchange(client, app, code).json()
    second = refresh(client, app, first["refresh_token"]).json()
    assert second["scope"] == first["scope"]
    if "id_token" in second:  # optional on refresh (OIDC Core §12.2)
        assert verify(client, second["id_token"], app["client_id"])["sub"] == ADA


def test_discovery_document_points_at_the_sandbox(sandbox_url: str, client: httpx.Client) -> None:
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == "https://discord.com"
    assert doc["authorization_endpoint"] == f"{sandbox_url}/api/oauth2/authorize"
    assert doc["token_endpoint"] == f"{sandbox_url}/api/oauth2/token"
    assert doc["jwks_uri"] == f"{sandbox_url}/api/oauth2/keys"
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "code" in doc["response_types_supported"]
    # Every advertised endpoint answers.
    assert client.get(doc["jwks_uri"]).status_code == 200
    assert client.get(doc["authorization_endpoint"]).status_code == 400  # no client_id
    json.dumps(doc)  # plain JSON
