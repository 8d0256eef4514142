"""``/metrics``: labels from a closed vocabulary (never a caller's raw path), a cap on series per
metric, and an optional bearer token (issue 9, "/metrics")."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tokenward._serving import BackgroundServer
from tokenward.sandbox.browser import walk_consent
from tokenward.server.api.observability import (
    OTHER_ROUTE,
    OVERFLOW,
    Metrics,
    upstream_route_label,
)
from tokenward.server.app import create_app

from .conftest import ApiEnv, api_settings, assert_error

INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTE4MjU2NzQ5NjA0MTE2MTY0MDpzZWNyZXR0b2tlbg"
WEBHOOK_TOKEN = "Xk9s-webhooktoken-SECRETpart_0123456789abcdefghij"
USER_SECRET = "sk_live_looks_like_a_secret_1234567890"


def _series(text: str, name: str) -> list[str]:
    """The label sets of one metric family's samples in an exposition."""
    return [
        line for line in text.splitlines() if re.match(rf"{name}(_bucket|_count|_sum)?\{{", line)
    ]


def _link(api: ApiEnv, identifier: str) -> None:
    body = api.post(
        "/api/v1/connected-accounts/authorization-link",
        json={"connection_name": "discord", "identifier": identifier},
    ).json()
    assert walk_consent(body["link"]).status_code == 200


def test_token_like_path_segments_never_reach_metrics(api: ApiEnv) -> None:
    """Regression (issue 9): an interaction token appeared in /metrics labels."""
    api.connect()
    _link(api, "metrics_user")
    headers = {"connection_name": "discord", "identifier": "metrics_user"}
    calls = [
        ("GET", "/proxy/api/v10/users/@me"),
        ("POST", f"/proxy/api/v10/interactions/1182567496041161640/{INTERACTION_TOKEN}/callback"),
        ("GET", f"/proxy/api/v10/webhooks/1182567496041161640/{WEBHOOK_TOKEN}/messages/1"),
        ("GET", f"/proxy/api/v10/users/{USER_SECRET}"),
        ("GET", f"/proxy/api/v10/{USER_SECRET}/profile"),
    ]
    for method, path in calls:
        response = api.request(method, path, headers=headers, json={} if method == "POST" else None)
        assert response.status_code < 500, (path, response.text)
    # Unmatched gateway paths and MCP session URLs carry caller data too.
    api.get(f"/nowhere/{USER_SECRET}", auth=False)
    api.get(f"/mcp/s/{USER_SECRET}", auth=False)
    api.request("PROPFIND", f"/api/v1/connections/{USER_SECRET}")

    text = api.get("/metrics", auth=False).text
    for secret in (INTERACTION_TOKEN, WEBHOOK_TOKEN, USER_SECRET):
        assert secret not in text
    upstream = "\n".join(_series(text, "tokenward_upstream_request_duration_seconds"))
    assert 'route="/interactions/{id}/{interaction_token}/callback"' in upstream
    assert 'route="/webhooks/{webhook_id}/{webhook_token}/messages/{id}"' in upstream
    assert 'route="/users/@me"' in upstream
    assert f'route="{OTHER_ROUTE}"' in upstream  # /users/<secret> and /<secret>/profile
    http = "\n".join(_series(text, "tokenward_http_requests_total"))
    assert 'route="<unmatched>"' in http
    assert 'method="OTHER"' in http
    assert "PROPFIND" not in text


def test_many_distinct_routes_keep_the_series_count_bounded(api: ApiEnv) -> None:
    api.connect()
    _link(api, "series_user")
    metrics: Metrics = api.app.state.metrics
    metrics.max_series = 20
    headers = {"connection_name": "discord", "identifier": "series_user"}
    words = ["channels", "guilds", "users", "roles", "members", "messages", "pins", "threads"]
    # Every one of these is a plausible Discord route template, so each is its own label set.
    paths = [f"/proxy/api/v10/{a}/{b}/{c}" for a in words for b in words for c in words[:2]]
    for path in paths[:60]:
        assert api.get(path, headers=headers).status_code < 500
    for index in range(60):
        api.get(f"/no/such/route/{index}", auth=False)

    text = api.get("/metrics", auth=False).text
    upstream = _series(text, "tokenward_upstream_request_duration_seconds_count")
    assert len(upstream) <= 21  # the cap, plus the one overflow label set
    assert any(f'route="{OVERFLOW}"' in line for line in upstream)
    dropped = metrics.sample(
        "tokenward_metrics_series_dropped_total",
        {"metric": "tokenward_upstream_request_duration_seconds"},
    )
    assert dropped is not None
    assert dropped >= 60 - 20
    assert metrics.series_count("tokenward_upstream_request_duration_seconds") == 20
    # 60 unknown paths are one label set, not 60.
    unmatched = [
        line
        for line in _series(text, "tokenward_http_requests_total")
        if 'route="<unmatched>"' in line
    ]
    assert len(unmatched) == 1


def test_the_series_cap_holds_for_every_labelled_metric() -> None:
    metrics = Metrics(process=False, max_series=100)
    metrics.known_tools = frozenset(f"tool_{i}" for i in range(500))
    for index in range(500):
        metrics.record_upstream("GET", "/channels/{channel_id}", 200 + index, 0.01)
        metrics.record_tool_call(f"tool_{index}", "ok", 0.01)
        metrics.observe_request("GET", f"/route/{index}", 200, 0.01)
    for name in (
        "tokenward_upstream_request_duration_seconds",
        "tokenward_tool_calls",
        "tokenward_tool_call_duration_seconds",
        "tokenward_http_requests",
        "tokenward_http_request_duration_seconds",
    ):
        assert metrics.series_count(name) == 100, name
        assert metrics.sample("tokenward_metrics_series_dropped_total", {"metric": name}) == 400
    # Nothing was lost: the overflow series counted the rest.
    overflow = {"status": OVERFLOW, "tool": OVERFLOW}
    assert metrics.sample("tokenward_tool_calls_total", overflow) == 400
    # A tool name outside the catalog is never a label.
    metrics.record_tool_call("Bearer abc.def", "TOOL_NOT_FOUND")
    assert "Bearer abc.def" not in metrics.render().decode()


@pytest.mark.parametrize(
    ("route", "label"),
    [
        ("/users/@me", "/users/@me"),
        ("/guilds/{guild_id}/widget.json", "/guilds/{guild_id}/widget.json"),
        (
            "/interactions/{id}/SECRETTOKEN/callback",
            "/interactions/{id}/{interaction_token}/callback",
        ),
        ("/users/SECRETTOKEN", OTHER_ROUTE),
        ("/SECRET", OTHER_ROUTE),
        ("/users/{id}/../x", OTHER_ROUTE),
        ("users/@me", OTHER_ROUTE),
        ("/" + "/channels" * 40, OTHER_ROUTE),
    ],
)
def test_upstream_route_labels(route: str, label: str) -> None:
    assert upstream_route_label(route) == label


def test_a_metrics_token_is_required_when_configured(tmp_path: Path, sandbox_url: str) -> None:
    token = "metrics-token-0123456789abcdef"
    app = create_app(api_settings(tmp_path, sandbox_url, metrics_token=token))
    with BackgroundServer(app) as server:
        url = f"{server.url}/metrics"
        missing = httpx.get(url)
        assert_error(missing, 401, "UNAUTHENTICATED")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        for header in (
            f"Bearer {token}x",
            f"Bearer {token[:-1]}",
            f"Basic {token}",
            token,
            "Bearer",
        ):
            wrong = httpx.get(url, headers={"Authorization": header})
            assert_error(wrong, 401, "INVALID_TOKEN")
            assert token not in wrong.text
        ok = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert "tokenward_http_requests_total" in ok.text
        assert token not in ok.text
        # The document says so.
        spec = httpx.get(f"{server.url}/openapi.json").json()
        operation = spec["paths"]["/metrics"]["get"]
        assert operation["security"] == [{"MetricsToken": []}]
        assert "401" in operation["responses"]


def test_without_a_metrics_token_metrics_stay_open(api: ApiEnv) -> None:
    assert api.get("/metrics", auth=False).status_code == 200
    spec = api.get("/openapi.json", auth=False).json()
    assert "security" not in spec["paths"]["/metrics"]["get"]
