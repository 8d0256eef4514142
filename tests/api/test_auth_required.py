"""Every ``/api/*`` route (as the OpenAPI document lists them) refuses calls without a valid
token."""

from __future__ import annotations

import re
from typing import Any

import jwt

from tokenward.server.api.auth import AUDIENCE, ISSUER

from .conftest import ApiEnv, assert_error

EXPECTED_API_ROUTES = {
    ("POST", "/api/v1/connections"),
    ("GET", "/api/v1/connections"),
    ("GET", "/api/v1/connections/{name}"),
    ("PATCH", "/api/v1/connections/{name}"),
    ("DELETE", "/api/v1/connections/{name}"),
    ("POST", "/api/v1/connected-accounts/authorization-link"),
    ("POST", "/api/v1/connected-accounts/verify"),
    ("GET", "/api/v1/connected-accounts"),
    ("GET", "/api/v1/connected-accounts/{account_id}"),
    ("DELETE", "/api/v1/connected-accounts/{account_id}"),
}


def api_routes(api: ApiEnv) -> list[tuple[str, str]]:
    spec: dict[str, Any] = api.get("/openapi.json", auth=False).json()
    routes = [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith("/api/")
        for method in operations
    ]
    assert set(routes) >= EXPECTED_API_ROUTES
    return routes


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_no_token_is_401_with_www_authenticate_on_every_api_route(api: ApiEnv) -> None:
    for method, path in api_routes(api):
        response = api.request(method, concrete(path), auth=False, json={})
        assert_error(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)
        assert response.headers["x-request-id"]


def test_bad_tokens_are_401_on_every_api_route(api: ApiEnv) -> None:
    claims = jwt.decode(api.token, options={"verify_signature": False})
    wrong_key = jwt.encode(
        {**claims, "iss": ISSUER, "aud": AUDIENCE},
        b"k" * 32,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    headers = [
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": f"Bearer {wrong_key}"},
        {"Authorization": f"Basic {api.token}"},
        {"Authorization": "Bearer"},
        {"Authorization": api.token},
    ]
    for method, path in api_routes(api):
        for header in headers:
            response = api.request(method, concrete(path), auth=False, headers=header, json={})
            assert response.status_code == 401, (method, path, header, response.text)
            assert response.json()["error"]["code"] == "INVALID_TOKEN"
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_token_is_checked_before_the_body(api: ApiEnv) -> None:
    # A bad body with no token must not reveal validation details to an anonymous caller.
    response = api.post("/api/v1/connections", auth=False, json={"unknown": 1})
    assert_error(response, 401, "UNAUTHENTICATED")
