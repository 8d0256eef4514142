"""Request ids, structured logs without secrets, Prometheus metrics, the 500 guard, and /docs."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tokenward._serving import BackgroundServer
from tokenward.sandbox.browser import walk_consent
from tokenward.server.api.observability import Metrics, RedactingFilter, configure_logging
from tokenward.server.app import create_app

from .conftest import ApiEnv, api_settings, assert_error, sandbox_secrets, start_api
from .test_auth_required import EXPECTED_API_ROUTES

HEX32 = re.compile(r"[0-9a-f]{32}")


def log_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_every_response_carries_a_request_id(api: ApiEnv) -> None:
    responses = [
        api.get("/api/v1/connections"),
        api.get("/api/v1/connections", auth=False),
        api.get("/api/v1/connections/nope"),
        api.post("/api/v1/connections", json={}),
        api.get("/healthz", auth=False),
        api.get("/nowhere", auth=False),
        api.issue_token(client_secret="wrong"),
    ]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(HEX32.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_a_sane_incoming_request_id_is_kept_and_an_insane_one_replaced(api: ApiEnv) -> None:
    kept = api.get("/healthz", auth=False, headers={"X-Request-ID": "trace-42.abc:def"})
    assert kept.headers["x-request-id"] == "trace-42.abc:def"
    for bad in ("has spaces", "x" * 129, "semi;colon", ""):
        response = api.get("/healthz", auth=False, headers={"X-Request-ID": bad})
        assert HEX32.fullmatch(response.headers["x-request-id"]), bad


def test_one_json_access_line_per_request_without_query_strings(
    api: ApiEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    api.connect()
    capsys.readouterr()
    response = api.get(
        "/api/v1/connected-accounts",
        params={"connection_name": "discord", "identifier": "secret-ish-identifier"},
        headers={"X-Request-ID": "req-abc-1"},
    )
    assert response.status_code == 200
    err = capsys.readouterr().err
    lines = [line for line in log_lines(err) if line.get("event") == "http_request"]
    assert len(lines) == 1, err
    line = lines[0]
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/connected-accounts"
    assert line["status"] == 200
    assert line["request_id"] == "req-abc-1"
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "info"
    assert "secret-ish-identifier" not in err
    # Path parameters appear as their template, not their value.
    api.get("/api/v1/connections/a-connection-name")
    line = log_lines(capsys.readouterr().err)[-1]
    assert line["route"] == "/api/v1/connections/{name}"
    assert line["status"] == 404


@pytest.mark.parametrize("enabled", [False, True])
def test_proxied_requests_are_access_logged_only_when_asked(
    tmp_path: Path, sandbox_url: str, capsys: pytest.CaptureFixture[str], enabled: bool
) -> None:
    """/proxy is the hot path: no access line per request unless PROXY_ACCESS_LOG is set; the
    API's own routes are logged either way."""
    settings = api_settings(tmp_path, sandbox_url, proxy_access_log=enabled)
    server, _container = start_api(settings, sandbox_url)
    try:
        capsys.readouterr()
        proxied = httpx.get(f"{server.url}/proxy/api/v10/users/@me", trust_env=False)
        assert proxied.status_code == 401
        assert httpx.get(f"{server.url}/healthz", trust_env=False).status_code == 200
        routes = [
            line["route"]
            for line in log_lines(capsys.readouterr().err)
            if line.get("event") == "http_request"
        ]
    finally:
        server.stop()
    assert "/healthz" in routes
    assert ("/proxy/{path}" in routes) is enabled, routes


def test_metrics_count_requests_by_route_and_expose_the_shared_counters(api: ApiEnv) -> None:
    api.get("/api/v1/connections")
    api.get("/api/v1/connections/nope")
    metrics: Metrics = api.app.state.metrics
    metrics.record_tool_call("discord_get_my_user", "ok", 0.012)
    metrics.record_refresh("success")
    metrics.record_rate_limited("user")
    metrics.record_upstream("GET", "/users/@me", 200, 0.004)

    response = api.get("/metrics", auth=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'tokenward_http_requests_total{method="GET",route="/api/v1/connections",status="200"}'
    ) in text
    assert (
        'tokenward_http_requests_total{method="GET",route="/api/v1/connections/{name}",'
        'status="404"} 1.0'
    ) in text
    assert "tokenward_http_request_duration_seconds_bucket" in text
    assert 'tokenward_tool_calls_total{status="ok",tool="discord_get_my_user"} 1.0' in text
    assert 'tokenward_token_refreshes_total{outcome="success"} 1.0' in text
    assert 'tokenward_upstream_rate_limited_total{scope="user"} 1.0' in text
    assert "tokenward_upstream_request_duration_seconds_count" in text
    assert "tokenward_tool_call_duration_seconds" in text
    assert (
        metrics.sample(
            "tokenward_http_requests_total",
            {"method": "GET", "route": "/api/v1/connections/{name}", "status": "404"},
        )
        == 1.0
    )


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(process=False), Metrics(process=False)
    first.record_refresh("success")
    assert first.sample("tokenward_token_refreshes_total", {"outcome": "success"}) == 1.0
    assert second.sample("tokenward_token_refreshes_total", {"outcome": "success"}) == 0.0


def test_an_unexpected_error_is_a_500_envelope_that_leaks_nothing(
    tmp_path: Path, sandbox_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(api_settings(tmp_path, sandbox_url))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail: Authorization: Bearer sk-live-abcdef123456")

    with BackgroundServer(app) as server:
        response = httpx.get(f"{server.url}/boom")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "internal detail" not in response.text
    assert "sk-live" not in response.text
    assert "RuntimeError" not in response.text
    request_id = response.headers["x-request-id"]
    err = capsys.readouterr().err
    assert "sk-live-abcdef123456" not in err
    failures = [line for line in log_lines(err) if line["level"] == "error"]
    assert failures, err
    assert failures[0]["request_id"] == request_id
    assert "RuntimeError" in failures[0]["exception"]
    assert "Bearer [REDACTED]" in failures[0]["exception"]
    assert error["details"] == {}


def test_the_log_filter_redacts_credentials_in_messages_arguments_and_tracebacks() -> None:
    redactor = RedactingFilter(["literal-secret-value-xyz"])
    try:
        raise ValueError("refresh failed for refresh_token=rt-abcdef0123")
    except ValueError as exc:
        record = logging.LogRecord(
            "tokenward.test",
            logging.ERROR,
            __file__,
            1,
            "headers %s secret %s bot %s api %s dict %s",
            (
                {"Authorization": "Bearer at-123456789"},
                "literal-secret-value-xyz",
                "Authorization: Bot MTAx.bot-token-abc",
                "tws_abcdefghijklmnopqrstuvwxyz",
                {"client_secret": "cs-1234567890"},
            ),
            (type(exc), exc, exc.__traceback__),
        )
    assert redactor.filter(record)
    message = record.getMessage()
    for secret in (
        "at-123456789",
        "literal-secret-value-xyz",
        "bot-token-abc",
        "tws_abcdefghijklmnopqrstuvwxyz",
        "cs-1234567890",
    ):
        assert secret not in message, message
    assert "Bearer [REDACTED]" in message
    assert "rt-abcdef0123" not in (record.exc_text or "")
    assert "ValueError" in (record.exc_text or "")


def test_docs_and_openapi_list_every_route(api: ApiEnv) -> None:
    docs = api.get("/docs", auth=False)
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    spec = api.get("/openapi.json", auth=False).json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert (
        EXPECTED_API_ROUTES
        | {
            ("POST", "/oauth/token"),
            ("GET", "/healthz"),
            ("GET", "/metrics"),
        }
        <= routes
    )
    schemas = spec["components"]["schemas"]
    assert schemas["ConnectionCreate"]["additionalProperties"] is False
    assert schemas["AuthorizationLinkRequest"]["additionalProperties"] is False
    assert "ErrorEnvelope" in schemas
    assert (
        spec["components"]["securitySchemes"]["ApiToken"]["flows"]["clientCredentials"]["tokenUrl"]
        == "/oauth/token"
    )
    create = spec["paths"]["/api/v1/connections"]["post"]
    assert "201" in create["responses"]
    assert create["security"] == [{"ApiToken": ["connections:write"]}]
    token_op = spec["paths"]["/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token_op["requestBody"]["content"]
    # Every /api operation documents its request and response types.
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/"):
                ok = next(r for s, r in op["responses"].items() if s.startswith("2"))
                assert "$ref" in json.dumps(ok), (method, path)


def test_no_secret_reaches_a_response_or_a_log(
    api: ApiEnv, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tokenward")
    api.connect()
    body = api.post(
        "/api/v1/connected-accounts/authorization-link",
        json={"connection_name": "discord", "identifier": "leak_check"},
    ).json()
    assert walk_consent(body["link"]).status_code == 200
    account_id = body["connected_account"]["id"]
    api.patch("/api/v1/connections/discord", json={"bot_token": "bot-token-for-leak-check"})
    api.get(f"/api/v1/connected-accounts/{account_id}")
    api.get("/api/v1/connected-accounts")
    api.get("/api/v1/connections")
    api.get("/api/v1/connections/discord")
    api.delete(f"/api/v1/connected-accounts/{account_id}")
    api.get("/metrics", auth=False)

    secrets = sandbox_secrets(api.sandbox_url)
    assert len(secrets) >= 4  # codes, access and refresh tokens, client secrets
    secrets += [api.client_secret, api.token, "bot-token-for-leak-check"]
    for value in api.settings.encryption_keys.split(",") if api.settings.encryption_keys else ():
        secrets.append(value.partition(":")[2])
    logs = capsys.readouterr().err + "\n" + caplog.text
    for response in api.responses:
        text = response.text
        for secret in secrets:
            if secret == api.token and response.request.url.path == "/oauth/token":
                continue  # the token endpoint's whole point
            assert secret not in text, (response.request.url.path, secret[:6])
    for secret in secrets:
        assert secret not in logs, secret[:6]


def test_setup_logging_can_be_left_to_the_host(tmp_path: Path, sandbox_url: str) -> None:
    app = create_app(api_settings(tmp_path, sandbox_url), setup_logging=False)
    assert isinstance(app, FastAPI)
    with BackgroundServer(app) as server:
        response = httpx.get(f"{server.url}/healthz")
    assert response.status_code == 200
    assert HEX32.fullmatch(response.headers["x-request-id"])


def test_secrets_registered_by_earlier_apps_stay_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", secrets=["first-app-secret-value"])
    configure_logging("INFO", secrets=["second-app-secret-value"])
    logging.getLogger("tokenward.test").warning(
        "values: %s %s", "first-app-secret-value", "second-app-secret-value"
    )
    err = capsys.readouterr().err
    assert "values: [REDACTED] [REDACTED]" in err
    assert "secret-value" not in err
