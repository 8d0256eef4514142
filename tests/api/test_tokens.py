"""``POST /oauth/token`` and the bearer token every ``/api/*`` call needs."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import jwt
import pytest

from tokenward._serving import free_port
from tokenward.clock import ManualClock
from tokenward.server.api.auth import AUDIENCE, ISSUER, derive_signing_key

from .conftest import (
    ApiEnv,
    api_settings,
    assert_error,
    create_api_client,
    delete_api_client,
    new_keys,
    start_api,
)


def _basic(client_id: str, secret: str) -> str:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def test_client_credentials_give_a_bearer_token_that_opens_the_api(api: ApiEnv) -> None:
    response = api.issue_token()

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == api.settings.api_token_ttl_seconds == 3600
    assert response.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == api.client_id
    assert claims["exp"] - claims["iat"] == 3600
    assert api.client_secret not in response.text
    listed = api.get("/api/v1/connections", token=body["access_token"])
    assert listed.status_code == 200, listed.text


def test_http_basic_credentials_work_too(api: ApiEnv) -> None:
    response = api.request(
        "POST",
        "/oauth/token",
        auth=False,
        headers={"Authorization": _basic(api.client_id, api.client_secret)},
        data={"grant_type": "client_credentials"},
    )
    assert response.status_code == 200, response.text
    assert api.get("/api/v1/connections", token=response.json()["access_token"]).status_code == 200


def test_wrong_secret_and_unknown_client_get_the_same_401(api: ApiEnv) -> None:
    wrong = assert_error(api.issue_token(client_secret="tws_wrong"), 401, "INVALID_CLIENT")
    unknown = assert_error(
        api.issue_token(client_id="twc_000000000000000000000000"), 401, "INVALID_CLIENT"
    )
    assert wrong["message"] == unknown["message"]
    assert "tws_wrong" not in wrong["message"]
    basic = api.request(
        "POST",
        "/oauth/token",
        auth=False,
        headers={"Authorization": _basic(api.client_id, "nope")},
        data={"grant_type": "client_credentials"},
    )
    assert_error(basic, 401, "INVALID_CLIENT")
    assert basic.headers["www-authenticate"].startswith("Basic")


def test_wrong_or_missing_grant_type_is_400(api: ApiEnv) -> None:
    error = assert_error(api.issue_token(grant_type="password"), 400, "UNSUPPORTED_GRANT_TYPE")
    assert "client_credentials" in error["message"]
    response = api.request(
        "POST",
        "/oauth/token",
        auth=False,
        data={"client_id": api.client_id, "client_secret": api.client_secret},
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "grant_type" in error["details"]["fields"]


def test_a_json_body_is_refused_with_a_clear_message(api: ApiEnv) -> None:
    response = api.request(
        "POST",
        "/oauth/token",
        auth=False,
        json={
            "grant_type": "client_credentials",
            "client_id": api.client_id,
            "client_secret": api.client_secret,
        },
    )
    error = assert_error(response, 400, "INVALID_REQUEST")
    assert "application/x-www-form-urlencoded" in error["message"]
    assert api.client_secret not in response.text


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"grant_type": "client_credentials", "client_id": "twc_x"}, "client_secret"),
        ({"grant_type": "client_credentials", "client_secret": "tws_x"}, "client_id"),
    ],
)
def test_missing_credentials_name_the_field(api: ApiEnv, form: dict[str, str], field: str) -> None:
    response = api.request("POST", "/oauth/token", auth=False, data=form)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]["fields"]


def test_ambiguous_or_malformed_requests_are_400(api: ApiEnv) -> None:
    both = api.request(
        "POST",
        "/oauth/token",
        auth=False,
        headers={"Authorization": _basic(api.client_id, api.client_secret)},
        data={"grant_type": "client_credentials", "client_id": api.client_id},
    )
    assert_error(both, 400, "INVALID_REQUEST")
    bad_basic = api.request(
        "POST",
        "/oauth/token",
        auth=False,
        headers={"Authorization": "Basic !!!not-base64"},
        data={"grant_type": "client_credentials"},
    )
    assert_error(bad_basic, 400, "INVALID_REQUEST")
    repeated = api.request(
        "POST",
        "/oauth/token",
        auth=False,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        content=b"grant_type=client_credentials&grant_type=client_credentials",
    )
    assert_error(repeated, 400, "INVALID_REQUEST")
    not_utf8 = api.request(
        "POST",
        "/oauth/token",
        auth=False,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        content=b"grant_type=\xff\xfe",
    )
    assert_error(not_utf8, 400, "INVALID_REQUEST")


def test_forged_tampered_and_foreign_tokens_are_401(api: ApiEnv) -> None:
    header, payload, signature = api.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "twc_someone_else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = f"{header}.{forged_payload}.{signature}"
    unsigned = jwt.encode(claims, key="", algorithm="none")
    foreign_key = derive_signing_key(b"\x01" * 32)
    foreign = jwt.encode(
        {**claims, "sub": api.client_id, "iss": ISSUER, "aud": AUDIENCE},
        foreign_key,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    for bad in (tampered, unsigned, foreign, "not-a-token", api.token + "x", "a.b.c"):
        response = api.get("/api/v1/connections", token=bad)
        error = assert_error(response, 401, "INVALID_TOKEN")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert bad not in response.text
        assert error["details"]["reason"] in {"invalid", "malformed"}


def test_a_token_survives_a_restart_with_the_same_keys(tmp_path: Path, sandbox_url: str) -> None:
    settings = api_settings(tmp_path, sandbox_url)
    client_id, secret = create_api_client(settings)
    first, _ = start_api(settings, sandbox_url)
    try:
        token = httpx.post(
            f"{first.url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        ).json()["access_token"]
    finally:
        first.stop()
    # A restart, or a second replica sharing the database and the keys.
    second, _ = start_api(settings, sandbox_url)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{second.url}/api/v1/connections", headers=auth).status_code == 200
    finally:
        second.stop()
    # A server with other keys (another deployment) refuses it.
    other = api_settings(tmp_path / "other", sandbox_url, encryption_keys=new_keys())
    third, _ = start_api(other, sandbox_url)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        response = httpx.get(f"{third.url}/api/v1/connections", headers=auth)
        assert_error(response, 401, "INVALID_TOKEN")
    finally:
        third.stop()


def test_a_token_signed_before_a_key_rotation_still_works(tmp_path: Path, sandbox_url: str) -> None:
    old = new_keys("old")
    settings = api_settings(tmp_path, sandbox_url, encryption_keys=old)
    client_id, secret = create_api_client(settings)
    first, _ = start_api(settings, sandbox_url)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    try:
        token = httpx.post(f"{first.url}/oauth/token", data=form).json()["access_token"]
    finally:
        first.stop()
    rotated = settings.model_copy(update={"encryption_keys": f"{new_keys('new')},{old}"})
    second, _ = start_api(rotated, sandbox_url)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{second.url}/api/v1/connections", headers=auth).status_code == 200
        fresh = httpx.post(f"{second.url}/oauth/token", data=form).json()["access_token"]
        assert jwt.get_unverified_header(fresh)["kid"] == "new"
    finally:
        second.stop()


def test_an_expired_token_is_401_and_a_new_one_works(tmp_path: Path, sandbox_url: str) -> None:
    settings = api_settings(tmp_path, sandbox_url, api_token_ttl_seconds=60)
    clock = ManualClock(start=time.time())
    client_id, secret = create_api_client(settings)
    server, _ = start_api(settings, sandbox_url, clock=clock)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    try:
        body = httpx.post(f"{server.url}/oauth/token", data=form).json()
        assert body["expires_in"] == 60
        auth = {"Authorization": f"Bearer {body['access_token']}"}
        assert httpx.get(f"{server.url}/api/v1/connections", headers=auth).status_code == 200
        clock.advance(59)
        assert httpx.get(f"{server.url}/api/v1/connections", headers=auth).status_code == 200
        clock.advance(2)
        response = httpx.get(f"{server.url}/api/v1/connections", headers=auth)
        error = assert_error(response, 401, "INVALID_TOKEN")
        assert error["details"]["reason"] == "expired"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        renewed = httpx.post(f"{server.url}/oauth/token", data=form).json()["access_token"]
        auth = {"Authorization": f"Bearer {renewed}"}
        assert httpx.get(f"{server.url}/api/v1/connections", headers=auth).status_code == 200
    finally:
        server.stop()


def test_a_deleted_clients_tokens_stop_working_within_the_cache_bound(
    tmp_path: Path, sandbox_url: str
) -> None:
    settings = api_settings(tmp_path, sandbox_url)
    clock = ManualClock(start=time.time())
    client_id, secret = create_api_client(settings)
    server, _ = start_api(settings, sandbox_url, clock=clock)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    try:
        token = httpx.post(f"{server.url}/oauth/token", data=form).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.url}/api/v1/connections", headers=auth).status_code == 200
        delete_api_client(settings, client_id)  # as `tokenward api-clients delete` does
        clock.advance(31)
        response = httpx.get(f"{server.url}/api/v1/connections", headers=auth)
        error = assert_error(response, 401, "INVALID_TOKEN")
        assert error["details"]["reason"] == "client_deleted"
        assert_error(httpx.post(f"{server.url}/oauth/token", data=form), 401, "INVALID_CLIENT")
    finally:
        server.stop()


def test_a_client_created_after_a_replica_loaded_its_list_is_accepted_at_once(
    api: ApiEnv,
) -> None:
    # A second replica sharing the database and keys; its client list is loaded now.
    replica, _ = start_api(api.settings.model_copy(update={"port": free_port()}), api.sandbox_url)
    try:
        warm = {"Authorization": f"Bearer {api.token}"}
        assert httpx.get(f"{replica.url}/api/v1/connections", headers=warm).status_code == 200
        client_id, secret = create_api_client(api.settings, "late")
        # The token comes from the first replica; the second has never heard of the client.
        token = api.issue_token(client_id=client_id, client_secret=secret).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{replica.url}/api/v1/connections", headers=auth).status_code == 200
    finally:
        replica.stop()


def test_with_a_generated_key_file_tokens_survive_a_restart(
    tmp_path: Path, sandbox_url: str
) -> None:
    settings = api_settings(tmp_path, sandbox_url, encryption_keys=None)
    client_id, secret = create_api_client(settings)
    assert (tmp_path / "encryption-keys.json").exists()
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    first, _ = start_api(settings, sandbox_url)
    try:
        token = httpx.post(f"{first.url}/oauth/token", data=form).json()["access_token"]
    finally:
        first.stop()
    second, _ = start_api(settings, sandbox_url)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{second.url}/api/v1/connections", headers=auth).status_code == 200
    finally:
        second.stop()


def test_repeated_failures_are_throttled_before_any_secret_is_checked(api: ApiEnv) -> None:
    api.app.state.api_auth.failures.limit = 3
    for _ in range(3):
        assert_error(api.issue_token(client_secret="wrong"), 401, "INVALID_CLIENT")
    blocked = assert_error(api.issue_token(client_secret="wrong"), 429, "RATE_LIMITED")
    assert 0 < blocked["details"]["retry_after"] <= 60
    assert blocked["details"]["scope"] == "authentication"
    # The right secret waits too (the client id is blocked), and so does another client id
    # from the same address.
    assert_error(api.issue_token(), 429, "RATE_LIMITED")
    assert_error(api.issue_token(client_id="twc_someone_else"), 429, "RATE_LIMITED")
    # Once the window has passed, the right secret works again.
    api.app.state.api_auth.failures.window = 0.0
    assert api.issue_token().status_code == 200
