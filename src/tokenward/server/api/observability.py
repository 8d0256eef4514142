"""Request ids, structured JSON logs with secrets redacted, and Prometheus metrics.

:class:`ObservabilityMiddleware` is a pure ASGI middleware (no ``BaseHTTPMiddleware``, no extra
task per request) meant to be the outermost layer of the app, so that everything behind it, the
``/proxy`` fast path included, gets:

- a request id: the incoming ``X-Request-ID`` when it is sane (1-128 characters of
  ``A-Z a-z 0-9 . _ : -``), else a fresh random one; echoed in the ``X-Request-ID`` response
  header, available as :func:`current_request_id` (a context variable) and stamped on every log
  line written while the request runs;
- one access-log line per request (logger ``tokenward.access``): method, route *template* (never
  the concrete path or the query string, which may carry secrets), status, duration in ms,
  request id;
- the HTTP metrics in :class:`Metrics` (requests by method/route/status, latency histogram);
- a last-resort guard: an exception nobody handled is logged (redacted) and answered with a 500
  ``INTERNAL_ERROR`` envelope that says nothing about the internals. The exception is not
  re-raised, so the server's own error logger never prints an unredacted traceback.

:class:`Metrics` owns one :class:`~prometheus_client.CollectorRegistry` per app, so several apps
in one process (tests, the demo) never share counters. Other parts increment its counters:
upstream latency, token refreshes, 429s received from Discord and tool calls.

**Labels are a closed vocabulary.** A label value never comes from a caller's raw input: HTTP
routes are the matched route's template (``/api/v1/connections/{name}``; ``<unmatched>`` for
anything no route matched, ``/proxy/{path}`` for the proxy), Discord routes are templates with
ids replaced (:func:`upstream_route_label`: every segment must be a placeholder or a word of
Discord's API, an interaction token becomes ``{interaction_token}``, and anything else makes the
whole label ``other``), methods outside the HTTP verbs are ``OTHER``, unknown tool names
``<unknown>``. On top of that each metric holds at most ``max_series`` label sets: past the cap a
new label set is counted under the label values ``<overflow>`` and
``tokenward_metrics_series_dropped_total{metric=...}`` says how often that happened, so memory
and scrape size stay bounded whatever callers send.

:func:`configure_logging` installs one JSON handler on the ``tokenward`` logger with a
:class:`RedactingFilter`. The filter rewrites each record *before* it is formatted or passed on to
other handlers: ``Authorization`` values, ``Bearer …`` / ``Bot …`` / ``Basic …`` credentials,
token-shaped strings (JWTs, Discord bot tokens, API-client secrets), ``token=…`` parameters,
secret-named JSON or dict entries, and any literal value registered with it are replaced by
``[REDACTED]``, in the message, the arguments and the traceback alike.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
from collections.abc import Container, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenward.proxy.redaction import REDACTED, redact_text

__all__ = [
    "CONTENT_TYPE_LATEST",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "Metrics",
    "ObservabilityMiddleware",
    "RedactingFilter",
    "configure_logging",
    "current_request_id",
    "route_template",
]

REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID_KEY: Final = b"x-request-id"
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
SCOPE_REQUEST_ID: Final = "tokenward.request_id"
SCOPE_ROUTE: Final = "tokenward.route"
"""Scope key a hand-written ASGI endpoint may set to name its route template for logs/metrics."""

UNMATCHED_ROUTE: Final = "<unmatched>"
OTHER_ROUTE: Final = "other"
OVERFLOW: Final = "<overflow>"
UNKNOWN_TOOL: Final = "<unknown>"
DEFAULT_MAX_SERIES: Final = 1000
_HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_RATE_LIMIT_SCOPES: Final = frozenset({"user", "global", "shared"})
# Every literal path segment of Discord's REST API (v10) that a label may show; ids and codes
# are placeholders already (proxy.ratelimit.route_of). A segment outside this list could be a
# token or other caller data, so the route is labelled "other".
_DISCORD_WORDS: Final = frozenset(
    {
        "@me",
        "@original",
        "activity-instances",
        "answers",
        "applications",
        "archived",
        "attachments",
        "audit-logs",
        "auto-moderation",
        "bans",
        "bot",
        "bulk-ban",
        "bulk-delete",
        "callback",
        "channels",
        "commands",
        "connections",
        "consume",
        "crosspost",
        "emojis",
        "entitlements",
        "execute",
        "expire",
        "followers",
        "gateway",
        "github",
        "guilds",
        "incident-actions",
        "integrations",
        "interactions",
        "invites",
        "keys",
        "member",
        "members",
        "messages",
        "metadata",
        "mfa",
        "nick",
        "oauth2",
        "onboarding",
        "permissions",
        "pins",
        "polls",
        "preview",
        "private",
        "prune",
        "public",
        "reactions",
        "recipients",
        "regions",
        "role-connections",
        "roles",
        "rules",
        "scheduled-events",
        "search",
        "send-soundboard-sound",
        "skus",
        "slack",
        "soundboard-default-sounds",
        "soundboard-sounds",
        "stage-instances",
        "sticker-packs",
        "stickers",
        "subscriptions",
        "sync",
        "templates",
        "thread-members",
        "threads",
        "token",
        "revoke",
        "typing",
        "userinfo",
        "users",
        "vanity-url",
        "voice",
        "voice-states",
        "webhooks",
        "welcome-screen",
        "widget",
        "widget.json",
        "widget.png",
    }
)
_MAX_ROUTE_LABEL: Final = 160


def upstream_route_label(route: str) -> str:
    """A Discord route template safe to use as a label, or ``"other"``.

    ``route`` comes from :func:`tokenward.proxy.ratelimit.route_of` (``/users/@me``,
    ``/guilds/{guild_id}/widget.json``); the segment after ``/interactions/{id}`` is the
    interaction's token and becomes ``{interaction_token}``.
    """
    segments = route.split("/")
    if not segments or segments[0] != "" or len(route) > _MAX_ROUTE_LABEL:
        return OTHER_ROUTE
    out: list[str] = []
    for index, segment in enumerate(segments[1:]):
        if index == 2 and out[:2] == ["interactions", "{id}"]:
            out.append("{interaction_token}")
        elif segment in _DISCORD_WORDS or (
            segment.startswith("{") and segment.endswith("}") and segment[1:-1].isidentifier()
        ):
            out.append(segment)
        else:
            return OTHER_ROUTE
    return "/" + "/".join(out)


access_log = logging.getLogger("tokenward.access")
error_log = logging.getLogger("tokenward.server")

_request_id: ContextVar[str | None] = ContextVar("tokenward_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this task (``None`` outside a request)."""
    return _request_id.get()


# ---------------------------------------------------------------------------------------------
# Metrics

_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class Metrics:
    """Every Prometheus metric the gateway exports, in a registry of its own.

    Increment them with the usual ``prometheus_client`` calls, e.g.
    ``metrics.tool_calls.labels(tool="discord_get_current_user", status="ok").inc()``, or with
    the ``record_*`` helpers below, which fix the label vocabulary.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        process: bool = True,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.max_series = max_series
        self.known_tools: Container[str] | None = None
        """Tool names that may appear as labels (``None``: any); set from the catalog."""
        self._series: dict[str, set[tuple[str, ...]]] = {}
        if process:
            ProcessCollector(registry=self.registry)
        r = self.registry
        self.http_requests = Counter(
            "tokenward_http_requests",
            "HTTP requests served, by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_request_duration = Histogram(
            "tokenward_http_request_duration_seconds",
            "Time to serve an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_request_duration = Histogram(
            "tokenward_upstream_request_duration_seconds",
            "Time for one request to Discord, by method, route template and status.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.token_refreshes = Counter(
            "tokenward_token_refreshes",
            "Access-token refreshes at Discord, by outcome "
            "(success, invalid_grant, error, skipped).",
            ["outcome"],
            registry=r,
        )
        self.upstream_rate_limited = Counter(
            "tokenward_upstream_rate_limited",
            "HTTP 429 responses received from Discord, by scope (user, global, shared).",
            ["scope"],
            registry=r,
        )
        self.tool_calls = Counter(
            "tokenward_tool_calls",
            "Tool executions, by tool name and status (ok or an error code).",
            ["tool", "status"],
            registry=r,
        )
        self.tool_call_duration = Histogram(
            "tokenward_tool_call_duration_seconds",
            "Time to execute a tool, by tool name.",
            ["tool"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.grpc_calls = Counter(
            "tokenward_grpc_calls",
            "gRPC calls served on the compatibility port, by method and gRPC status.",
            ["method", "status"],
            registry=r,
        )
        self.grpc_call_duration = Histogram(
            "tokenward_grpc_call_duration_seconds",
            "Time to serve a gRPC call on the compatibility port, by method.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.discord_inbound = Counter(
            "tokenward_discord_inbound",
            "Interactions and webhook events Discord sent, by kind (interaction, event) and "
            "outcome (relayed: the application answered in time; deferred: a deferred answer "
            "was sent; queued: sent on to the application's endpoints; unwanted: no endpoint "
            "wants it; deauthorized: an APPLICATION_DEAUTHORIZED applied; ping).",
            ["kind", "outcome"],
            registry=r,
        )
        self.series_dropped = Counter(
            "tokenward_metrics_series_dropped",
            "New label sets counted under <overflow> because the metric reached its series cap, "
            "by metric.",
            ["metric"],
            registry=r,
        )
        self.redis_up = Gauge(
            "tokenward_redis_up",
            "1 while Redis (TOKENWARD_REDIS_URL) answers and rate limits are shared; 0 while "
            "this process runs on per-process limits (Redis unreachable, or not configured).",
            registry=r,
        )
        self.redis_degraded = Counter(
            "tokenward_redis_degraded",
            "Times this process lost Redis and fell back to per-process limits.",
            registry=r,
        )
        for outcome in ("success", "invalid_grant", "error"):
            self.token_refreshes.labels(outcome=outcome)
        for scope in ("user", "global", "shared"):
            self.upstream_rate_limited.labels(scope=scope)
        # Label children of the per-request metrics, cached: ``labels()`` takes a lock and
        # builds a key on every call, which is measurable on the proxy's hot path.
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._upstream_children: dict[tuple[str, str, int], Any] = {}

    # -- bounded label sets ------------------------------------------------------------------

    def _child(self, name: str, metric: Any, **labels: str) -> Any:
        """``metric.labels(**labels)``, or the ``<overflow>`` child once ``name`` holds
        ``max_series`` label sets (counted in ``tokenward_metrics_series_dropped``)."""
        key = tuple(labels.values())
        seen = self._series.setdefault(name, set())
        if key not in seen:
            if len(seen) >= self.max_series:
                self.series_dropped.labels(metric=name).inc()
                return metric.labels(**dict.fromkeys(labels, OVERFLOW))
            seen.add(key)
        return metric.labels(**labels)

    def series_count(self, name: str) -> int:
        """Label sets ``name`` holds (``tokenward_http_requests`` etc.), overflow excluded."""
        return len(self._series.get(name, ()))

    # -- helpers for other parts -------------------------------------------------------------

    def record_upstream(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request to Discord (``route`` a template such as ``/users/@me``; anything that
        is not a known Discord route template is labelled ``other``)."""
        key = (method, route, status)
        child = self._upstream_children.get(key)
        if child is None:
            if len(self._upstream_children) > 10_000:
                self._upstream_children.clear()
            child = self._child(
                "tokenward_upstream_request_duration_seconds",
                self.upstream_request_duration,
                method=_method_label(method),
                route=upstream_route_label(route),
                status=str(int(status)),
            )
            self._upstream_children[key] = child
        child.observe(seconds)

    def record_grpc_call(self, method: str, status: str, seconds: float) -> None:
        """A gRPC call on the compatibility port (``method`` one the server implements, or
        ``unimplemented``; ``status`` the gRPC status name)."""
        self._child("tokenward_grpc_calls", self.grpc_calls, method=method, status=status).inc()
        self._child(
            "tokenward_grpc_call_duration_seconds", self.grpc_call_duration, method=method
        ).observe(seconds)

    def record_discord_inbound(self, kind: str, outcome: str) -> None:
        """An interaction or webhook event from Discord and what became of it."""
        self.discord_inbound.labels(kind=kind, outcome=outcome).inc()

    def record_redis(self, up: bool) -> None:
        """Redis reachable (shared state) or not (per-process fallback)."""
        self.redis_up.set(1 if up else 0)
        if not up:
            self.redis_degraded.inc()

    def record_refresh(self, outcome: str) -> None:
        """A refresh attempt: ``success``, ``invalid_grant``, ``error`` or ``skipped``."""
        self._child("tokenward_token_refreshes", self.token_refreshes, outcome=outcome).inc()

    def record_rate_limited(self, scope: str | None) -> None:
        """A 429 from Discord; ``scope`` from ``X-RateLimit-Scope`` (``user`` when absent)."""
        label = scope or "user"
        self.upstream_rate_limited.labels(
            scope=label if label in _RATE_LIMIT_SCOPES else "other"
        ).inc()

    def record_tool_call(self, tool: str, status: str, seconds: float | None = None) -> None:
        """A tool execution; ``status`` is ``ok`` or the error code."""
        if self.known_tools is not None and tool not in self.known_tools:
            tool = UNKNOWN_TOOL
        self._child("tokenward_tool_calls", self.tool_calls, tool=tool, status=status).inc()
        if seconds is not None:
            self._child(
                "tokenward_tool_call_duration_seconds", self.tool_call_duration, tool=tool
            ).observe(seconds)

    # -- the HTTP layer ----------------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:
            if len(self._http_children) > 10_000:
                self._http_children.clear()
            method = _method_label(method)
            children = (
                self._child(
                    "tokenward_http_requests",
                    self.http_requests,
                    method=method,
                    route=route,
                    status=str(status),
                ),
                self._child(
                    "tokenward_http_request_duration_seconds",
                    self.http_request_duration,
                    method=method,
                    route=route,
                ),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (tests and the demo summary)."""
        return self.registry.get_sample_value(name, labels or {})


def _method_label(method: str) -> str:
    return method if method in _HTTP_METHODS else "OTHER"


# ---------------------------------------------------------------------------------------------
# Logging


_EXTRA_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # API-client secrets as tokenward issues them.
    (re.compile(r"\btws_[A-Za-z0-9_\-]{8,}"), REDACTED),
    # A secret header's value written as ``authorization: value`` / ``'authorization': 'value'``
    # (the scheme-prefixed forms are handled by ``redact_text``).
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization|x-api-key|cookie|set-cookie)"
            r"([\"']?\s*[:=]\s*[\"']?)(?!(?:bearer|bot|basic)\s|\[REDACTED\])[^\s\"',;}]+"
        ),
        r"\1\2" + REDACTED,
    ),
    # Python reprs of dicts: ``'access_token': 'value'``.
    (
        re.compile(
            r"(?i)('(?:access_token|refresh_token|id_token|client_secret|bot_token|token|"
            r"secret|password|code_verifier)'\s*:\s*')[^']*(')"
        ),
        r"\1" + REDACTED + r"\2",
    ),
)


class RedactingFilter(logging.Filter):
    """Rewrites each record so no credential reaches a handler (see the module docstring)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._literals: set[str] = set()
        for value in secrets:
            self.add_secret(value)

    def add_secret(self, value: str) -> None:
        """Redact this exact value wherever it appears (ignored when shorter than 8)."""
        if value and len(value) >= 8:
            self._literals.add(value)

    def redact(self, text: str) -> str:
        for literal in self._literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        text = redact_text(text)
        for pattern, replacement in _EXTRA_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "tw_trusted", False):
            # Built by the access log from route templates, status codes and sanitised ids:
            # nothing a caller controls beyond the method token. Skipping keeps the hot path cheap.
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        fields = getattr(record, "tw_fields", None)
        if isinstance(fields, dict):
            record.tw_fields = {
                k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()
            }
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, and any ``tw_fields``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _request_id.get()
        if request_id:
            doc["request_id"] = request_id
        fields = getattr(record, "tw_fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        return json.dumps(doc, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (it may be swapped, e.g. by pytest)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_HANDLER_MARK: Final = "_tokenward_json_handler"


def configure_logging(
    level: str | int = "INFO",
    *,
    secrets: Iterable[str] = (),
    handler: logging.Handler | None = None,
) -> RedactingFilter:
    """Install the JSON handler (stderr unless ``handler`` is given) on the ``tokenward`` logger.

    Idempotent: a handler installed by an earlier call is replaced, and the secret values it was
    told about are kept (several apps in one process each register their own). Records still
    propagate to the root logger, already redacted. Returns the filter, so callers can register
    more secret values with :meth:`RedactingFilter.add_secret`.
    """
    logger = logging.getLogger("tokenward")
    known: set[str] = set()
    for old in list(logger.handlers):
        if getattr(old, _HANDLER_MARK, False):
            for previous in old.filters:
                if isinstance(previous, RedactingFilter):
                    known |= previous._literals
            logger.removeHandler(old)
    target = handler or _StderrHandler()
    target.setFormatter(JsonFormatter())
    redactor = RedactingFilter([*known, *secrets])
    target.addFilter(redactor)
    setattr(target, _HANDLER_MARK, True)
    logger.addHandler(target)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    return redactor


# ---------------------------------------------------------------------------------------------
# The middleware


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/connections/{name}``), for labels and logs."""
    named = scope.get(SCOPE_ROUTE)
    if isinstance(named, str):
        return named
    route = scope.get("route")
    if route is None:
        if scope.get("path", "").startswith("/static/"):
            return "/static/{path}"  # the mounted files: one label, whatever the file
        endpoint = scope.get("endpoint")
        if endpoint is not None:  # a plain Starlette route (/docs, /openapi.json)
            return _endpoint_template(scope.get("router"), endpoint)
        path: str = scope.get("path", "")
        if path == "/proxy" or path.startswith("/proxy/"):
            return "/proxy/{path}"
        return UNMATCHED_ROUTE
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED_ROUTE


_endpoint_templates: dict[Any, str] = {}


def _endpoint_template(router: Any, endpoint: Any) -> str:
    template = _endpoint_templates.get(endpoint)
    if template is None:
        template = UNMATCHED_ROUTE
        for candidate in getattr(router, "routes", ()):
            if getattr(candidate, "endpoint", None) is endpoint:
                template = str(getattr(candidate, "path", "") or UNMATCHED_ROUTE)
                break
        if len(_endpoint_templates) < 1024:
            _endpoint_templates[endpoint] = template
    return template


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == _REQUEST_ID_KEY:
            try:
                text: str = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if _SANE_REQUEST_ID.fullmatch(text) else None
    return None


_INTERNAL_BODY: Final = json.dumps(
    {
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "The server hit an unexpected error. It has been logged; "
            "quote the X-Request-ID header when reporting it.",
            "details": {},
        }
    }
).encode()


class ObservabilityMiddleware:
    """Request ids, access logs, HTTP metrics and the last-resort 500 (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, access_log_enabled: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        # 128 random bits from the process's PRNG (reseeded in a forked worker): unique, and no
        # system call per request as the OS generator needs; a request id is not a secret.
        request_id = _incoming_request_id(scope) or f"{random.getrandbits(128):032x}"
        scope[SCOPE_REQUEST_ID] = request_id
        token = _request_id.set(request_id)
        header = (_REQUEST_ID_KEY, request_id.encode("ascii"))
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            status = 500
            error_log.error(
                "unhandled %s while serving %s %s",
                type(exc).__name__,
                scope.get("method", "?"),
                route_template(scope),
                exc_info=exc,
            )
            if not response_started:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(_INTERNAL_BODY)).encode()),
                            (b"cache-control", b"no-store"),
                            header,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": _INTERNAL_BODY})
        finally:
            elapsed = time.perf_counter() - started_at
            method: str = scope.get("method", "?")
            route = route_template(scope)
            self.metrics.observe_request(method, route, status, elapsed)
            if self.access_log_enabled and access_log.isEnabledFor(logging.INFO):
                # makeRecord + handle rather than .info(): no caller lookup on the hot path.
                record = access_log.makeRecord(
                    access_log.name,
                    logging.INFO,
                    __file__,
                    0,
                    "%s %s %d",
                    (method, route, status),
                    None,
                    extra={
                        "tw_trusted": True,
                        "tw_fields": {
                            "event": "http_request",
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 3),
                        },
                    },
                )
                access_log.handle(record)
            _request_id.reset(token)
