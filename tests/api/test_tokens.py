"""``POST /oauth/token`` and the bearer token every ``/api/*`` call needs."""

from __future__ import annotations

import base64
import json
import math
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
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "admin"
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
    auth = api.app.state.api_auth
    auth.failures.limit = 3
    for _ in range(3):
        assert_error(api.issue_token(client_secret="wrong"), 401, "INVALID_CLIENT")
    response = api.issue_token(client_secret="wrong")
    blocked = assert_error(response, 429, "RATE_LIMITED")
    assert 0 < blocked["details"]["retry_after"] <= 60
    assert blocked["details"]["scope"] == "authentication"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # The right secret waits too from this address (this client id is blocked here).
    assert_error(api.issue_token(), 429, "RATE_LIMITED")
    # Once the window has passed, the right secret works again.
    auth.failures.window = 0.0
    assert api.issue_token().status_code == 200


def _from(address: str) -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (any 127/8 address is local)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), trust_env=False)


def _form(api: ApiEnv, secret: str | None = None, client_id: str | None = None) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id or api.client_id,
        "client_secret": secret or api.client_secret,
    }


def test_failures_from_one_address_never_lock_out_the_right_secret_elsewhere(
    api: ApiEnv,
) -> None:
    """Regression (issue 9): failures were counted per client id, so anyone who knew a client
    id could lock its owner out by sending wrong secrets."""
    limit = api.settings.auth_failures_per_client_address
    with _from("127.0.0.2") as attacker, _from("127.0.0.3") as owner:
        for _ in range(limit):
            wrong = attacker.post(f"{api.url}/oauth/token", data=_form(api, "tws_guess"))
            assert_error(wrong, 401, "INVALID_CLIENT")
        blocked = attacker.post(f"{api.url}/oauth/token", data=_form(api))
        error = assert_error(blocked, 429, "RATE_LIMITED")
        assert blocked.headers["retry-after"] == str(
            max(1, math.ceil(error["details"]["retry_after"]))
        )
        # The owner, elsewhere, is not affected; nor is the server's own address.
        for _ in range(3):
            assert owner.post(f"{api.url}/oauth/token", data=_form(api)).status_code == 200
        assert api.issue_token().status_code == 200
        # Forged X-Forwarded-For headers change nothing: no proxy is trusted by default.
        spoofed = attacker.post(
            f"{api.url}/oauth/token",
            data=_form(api),
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert_error(spoofed, 429, "RATE_LIMITED")


def test_one_address_trying_many_client_ids_is_throttled_for_all_of_them(api: ApiEnv) -> None:
    per_address = api.settings.auth_failures_per_address
    assert per_address > api.settings.auth_failures_per_client_address
    with _from("127.0.0.4") as sprayer, _from("127.0.0.5") as owner:
        for index in range(per_address):
            client_id = f"twc_{index:024x}"
            wrong = sprayer.post(f"{api.url}/oauth/token", data=_form(api, "x", client_id))
            assert_error(wrong, 401, "INVALID_CLIENT")
        # Each guessed id failed only once, but the address is spent: the right secret of a
        # real client waits too, from there.
        assert_error(sprayer.post(f"{api.url}/oauth/token", data=_form(api)), 429, "RATE_LIMITED")
        assert owner.post(f"{api.url}/oauth/token", data=_form(api)).status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_throttled(
    tmp_path: Path, sandbox_url: str
) -> None:
    settings = api_settings(
        tmp_path, sandbox_url, trusted_proxies="127.0.0.6/32", auth_failures_per_client_address=2
    )
    client_id, secret = create_api_client(settings)
    server, _ = start_api(settings, sandbox_url)
    url = f"{server.url}/oauth/token"
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    wrong = {**form, "client_secret": "tws_guess"}
    try:
        with _from("127.0.0.6") as proxy, _from("127.0.0.7") as direct:
            # The client in front of the proxy may prepend anything; the proxy appends the
            # address it saw, and that is the one counted.
            for spoof in ("10.0.0.1", "10.0.0.2"):
                headers = {"X-Forwarded-For": f"{spoof}, 203.0.113.9"}
                assert_error(proxy.post(url, data=wrong, headers=headers), 401, "INVALID_CLIENT")
            attacker = {"X-Forwarded-For": "10.0.0.3, 203.0.113.9"}
            assert_error(proxy.post(url, data=form, headers=attacker), 429, "RATE_LIMITED")
            # Another caller behind the same proxy is not affected.
            owner = {"X-Forwarded-For": "203.0.113.10"}
            assert proxy.post(url, data=form, headers=owner).status_code == 200
            # A peer that is not a trusted proxy cannot pick its address with the header.
            for _ in range(2):
                headers = {"X-Forwarded-For": "203.0.113.10"}
                assert_error(direct.post(url, data=wrong, headers=headers), 401, "INVALID_CLIENT")
            assert_error(direct.post(url, data=form, headers=owner), 429, "RATE_LIMITED")
            assert proxy.post(url, data=form, headers=owner).status_code == 200
    finally:
        server.stop()
