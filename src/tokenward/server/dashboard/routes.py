"""The dashboard's pages under ``/dashboard``: server-rendered, one form per action.

Every page but the sign-in page needs a live operator session (else a redirect to sign-in);
every POST needs the session's CSRF token (else 403, before anything is read or changed); every
action calls the same service function as the HTTP API, inside :func:`acting_as`, so the audit
events it writes carry ``actor: operator:<username>``. Bad input renders the form again with
the status the API would answer, the message and each bad field named.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from tokenward.errors import TokenwardError, ValidationError
from tokenward.scopes import SCOPES as API_SCOPES
from tokenward.scopes import format_scopes
from tokenward.server.api.accounts import delete_account_by_id
from tokenward.server.api.connections import (
    create_connection_record,
    delete_connection_named,
    update_connection_record,
)
from tokenward.server.api.observability import Metrics
from tokenward.server.container import Container
from tokenward.server.dashboard.charts import bar_chart
from tokenward.server.dashboard.scopes import COMMON_SCOPES, describe_scope
from tokenward.server.dashboard.security import (
    CookieNames,
    CsrfRefused,
    SignInRequired,
    SignInThrottle,
    new_form_token,
    same_token,
)
from tokenward.vault.actor import acting_as
from tokenward.vault.admins import AdminSession
from tokenward.vault.mcp_sessions import MAX_LISTED
from tokenward.vault.models import AccountStatus
from tokenward.vault.rotation import (
    RotationReport,
    count_stale,
    prepare_active_key,
    rotate,
)
from tokenward.vault.webhooks import EVENT_TYPES

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["dashboard_router"]

log = logging.getLogger("tokenward.dashboard")

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
PREFIX: Final = "/dashboard"
SIGN_IN: Final = f"{PREFIX}/sign-in"
NAV: Final = (
    (f"{PREFIX}", "Overview"),
    (f"{PREFIX}/connections", "Connections"),
    (f"{PREFIX}/accounts", "Accounts"),
    (f"{PREFIX}/activity", "Activity"),
    (f"{PREFIX}/webhooks", "Webhooks"),
    (f"{PREFIX}/api-clients", "API clients"),
    (f"{PREFIX}/mcp-sessions", "MCP sessions"),
    (f"{PREFIX}/keys", "Keys"),
)
PAGE_POLICY: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
STATUSES: Final = tuple(s.value for s in AccountStatus)
STATUS_LABELS: Final = {
    "PENDING_AUTH": "pending auth",
    "PENDING_VERIFICATION": "pending verification",
    "ACTIVE": "active",
    "EXPIRED": "expired",
    "DISCONNECTED": "disconnected",
}
EVENT_KINDS: Final = (
    "tool.executed",
    "proxy.request",
    "account.created",
    "account.linked",
    "account.refreshed",
    "account.refresh_failed",
    "account.expired",
    "account.status_changed",
    "account.deleted",
    "account.revoke_failed",
    "account.user_changed",
    "account.user_change_refused",
    "auth_request.created",
    "auth_request.consumed",
    "authorization.denied",
    "authorization.error",
    "authorization.exchange_failed",
    "connection.created",
    "connection.updated",
    "connection.deleted",
    "api_client.created",
    "api_client.deleted",
    "mcp_session.created",
    "mcp_session.revoked",
    "keys.rotation_started",
    "keys.rotated",
    "webhook_endpoint.created",
    "webhook_endpoint.deleted",
    "webhook_endpoint.secret_rotated",
    "admin.created",
    "admin.deleted",
    "admin.signed_in",
    "admin.signed_out",
)
NOTICES: Final = {
    "signed-out": "You are signed out.",
    "connection-created": "Connection created.",
    "connection-saved": "Connection saved.",
    "connection-deleted": "Connection deleted; its grants were revoked at Discord.",
    "account-deleted": "Account deleted; its grant was revoked at Discord.",
    "refreshed": "The token was refreshed.",
    "client-revoked": "API client revoked; its API tokens stop working within 30 seconds.",
    "webhook-deleted": "Webhook endpoint deleted.",
    "session-revoked": "MCP session revoked; its URL is refused from the next request on.",
    "resent": "The delivery is queued to be sent again.",
}
DAY: Final = 86_400.0


def _process_counts(metrics: Metrics) -> dict[str, int]:
    """This process's counts since it started, read from the Prometheus counters the hot path
    already keeps: proxied requests by outcome and 429s received from Discord."""
    counts = {"success": 0, "rate limited": 0, "client error": 0, "server error": 0, "429s": 0}
    for family in metrics.registry.collect():
        if family.name == "tokenward_http_requests":
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                if sample.labels.get("route") != "/proxy/{path}":
                    continue
                status = int(sample.labels.get("status", "0") or 0)
                if status == 429:
                    key = "rate limited"
                elif status >= 500:
                    key = "server error"
                elif status >= 400:
                    key = "client error"
                else:
                    key = "success"
                counts[key] += int(sample.value)
        elif family.name == "tokenward_upstream_rate_limited":
            counts["429s"] += sum(
                int(sample.value) for sample in family.samples if sample.name.endswith("_total")
            )
    return counts


@dataclass
class _Rotation:
    """The key rotation this process runs for the dashboard (one at a time)."""

    operator: str
    started_at: float
    done: int = 0
    total: int = 0
    finished_at: float | None = None
    report: RotationReport | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def percent(self) -> int:
        if self.total <= 0:
            return 0 if self.running else 100
        return min(100, int(100 * self.done / self.total))


def _when(value: float | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class _Pages:
    """Rendering and the per-request plumbing shared by every page."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._env: Environment | None = None
        self.cookies = CookieNames.for_base(container.settings.public_base)
        settings = container.settings
        self.throttle = SignInThrottle(
            container.clock,
            limit=settings.dashboard_sign_in_failures,
            window=settings.dashboard_sign_in_window_seconds,
        )

    @property
    def env(self) -> Environment:
        """The templates, made on the first page shown (Jinja is not imported at start-up)."""
        if self._env is None:
            from jinja2 import Environment, FileSystemLoader, select_autoescape

            env = Environment(
                loader=FileSystemLoader(str(TEMPLATES)),
                autoescape=select_autoescape(default=True, default_for_string=True),
                auto_reload=False,
            )
            env.filters["when"] = _when
            self._env = env
        return self._env

    def render(
        self,
        request: Request,
        template: str,
        title: str,
        *,
        status: int = 200,
        section: str = "",
        **context: Any,
    ) -> HTMLResponse:
        session: AdminSession | None = getattr(request.state, "dashboard_session", None)
        notice = NOTICES.get(request.query_params.get("notice", ""))
        values = {
            "title": title,
            "nav": NAV,
            "section": section,
            "operator": session.admin.username if session else None,
            "csrf": session.csrf_token if session else "",
            "notice": notice,
            "errors": {},
            "form": {},
            **context,
        }
        html = self.env.get_template(template).render(values)
        return HTMLResponse(html, status_code=status)

    def failure(
        self,
        request: Request,
        exc: TokenwardError,
        template: str,
        title: str,
        **context: Any,
    ) -> HTMLResponse:
        """The form again, with the error's message and each bad field."""
        fields = getattr(exc, "fields", None) or exc.details.get("fields") or {}
        return self.render(
            request,
            template,
            title,
            status=exc.status,
            error=exc.message,
            errors={str(k): str(v) for k, v in dict(fields).items()},
            **context,
        )


def _secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(value: str | None) -> str:
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


def dashboard_router(container: Container) -> APIRouter:
    pages = _Pages(container)
    vault = container.vault

    class PageRoute(APIRoute):
        """Session check, CSRF check, the operator as the audit actor, and HTML errors."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            original = super().get_route_handler()
            public = self.path_format == SIGN_IN

            async def handler(request: Request) -> Response:
                try:
                    if public:
                        return _secure_headers(await original(request))
                    token = request.cookies.get(pages.cookies.session)
                    session = await container.admins.session(token)
                    if session is None:
                        target = request.url.path
                        if request.method == "GET" and request.url.query:
                            target += "?" + request.url.query
                        raise SignInRequired(target)
                    request.state.dashboard_session = session
                    if request.method == "POST":
                        form = await request.form()
                        given = form.get("csrf_token")
                        if not same_token(
                            given if isinstance(given, str) else None, session.csrf_token
                        ):
                            raise CsrfRefused
                    with acting_as(f"operator:{session.admin.username}"):
                        return _secure_headers(await original(request))
                except SignInRequired as exc:
                    return _secure_headers(
                        _see_other(f"{SIGN_IN}?{urlencode({'next': exc.next_path})}")
                    )
                except CsrfRefused:
                    return _secure_headers(
                        pages.render(
                            request,
                            "error.html",
                            "Form refused",
                            status=403,
                            error="This form is not from your current session (a missing or "
                            "stale CSRF token); nothing was changed. Reload the page and try "
                            "again.",
                        )
                    )
                except TokenwardError as exc:
                    return _secure_headers(
                        pages.render(
                            request,
                            "error.html",
                            "Something went wrong",
                            status=exc.status,
                            error=exc.message,
                        )
                    )

            return handler

    router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=PageRoute)

    async def form_of(request: Request) -> FormData:
        return await request.form()

    def text(form: FormData, name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def many(form: FormData, name: str) -> list[str]:
        return [v for v in form.getlist(name) if isinstance(v, str) and v]

    def patterns(form: FormData) -> list[str] | None:
        """The tool policy's patterns, one per line (or separated by spaces or commas); none:
        every tool."""
        given = text(form, "allowed_tools").replace(",", " ").split()
        return given or None

    # -- signing in and out ----------------------------------------------------------------------

    def sign_in_page(
        request: Request,
        *,
        status: int = 200,
        error: str | None = None,
        username: str = "",
        next_path: str = PREFIX,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        form_token = new_form_token()
        response = pages.render(
            request,
            "sign_in.html",
            "Sign in",
            status=status,
            error=error,
            form_token=form_token,
            next=next_path,
            username=username,
        )
        response.set_cookie(
            pages.cookies.sign_in,
            form_token,
            max_age=3600,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=pages.cookies.secure,
        )
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    @router.get("/sign-in")
    async def sign_in_form(request: Request) -> Response:
        return sign_in_page(request, next_path=_safe_next(request.query_params.get("next")))

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await form_of(request)
        username = text(form, "username")
        password = form.get("password")
        next_path = _safe_next(text(form, "next"))
        expected = request.cookies.get(pages.cookies.sign_in)
        given = form.get("form_token")
        if not expected or not same_token(given if isinstance(given, str) else None, expected):
            return sign_in_page(
                request,
                status=403,
                error="This sign-in form has expired; it has been loaded again — sign in now.",
                username=username,
                next_path=next_path,
            )
        if not username or not isinstance(password, str) or not password:
            return sign_in_page(
                request,
                status=400,
                error="Give your username and password.",
                username=username,
                next_path=next_path,
            )
        wait = pages.throttle.retry_after(username)
        if wait is not None:
            return sign_in_page(
                request,
                status=429,
                error=f"Too many failed sign-ins for this username; try again in {int(wait) + 1}"
                " seconds.",
                username=username,
                next_path=next_path,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        admin = await container.admins.verify(username, password)
        if admin is None:
            pages.throttle.failed(username)
            return sign_in_page(
                request,
                status=401,
                error="The username or the password is wrong.",
                username=username,
                next_path=next_path,
            )
        pages.throttle.succeeded(username)
        token, _session = await container.admins.start_session(admin)
        response = _see_other(next_path)
        response.set_cookie(
            pages.cookies.session,
            token,
            max_age=int(container.settings.dashboard_session_ttl_seconds),
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=pages.cookies.secure,
        )
        response.delete_cookie(pages.cookies.sign_in, path=PREFIX)
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        token = request.cookies.get(pages.cookies.session)
        if token:
            await container.admins.end_session(token)
        response = _see_other(f"{SIGN_IN}?notice=signed-out")
        response.delete_cookie(
            pages.cookies.session,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=pages.cookies.secure,
        )
        return response

    # -- overview --------------------------------------------------------------------------------

    @router.get("")
    async def overview(request: Request) -> Response:
        now = container.clock.time()
        connections = await vault.list_connections()
        counts = await vault.account_counts()
        totals: dict[str, int] = {}
        for (_cid, status), n in counts.items():
            totals[status] = totals.get(status, 0) + n
        status_css = {
            "ACTIVE": "ok",
            "EXPIRED": "bad",
            "DISCONNECTED": "bad",
            "PENDING_AUTH": "warn",
            "PENDING_VERIFICATION": "warn",
        }
        calls = await vault.tool_call_statuses(since=now - DAY)
        outcome = {"success": 0, "Discord error": 0, "rate limited": 0, "refused": 0}
        for code, n in calls.items():
            if code == "ok":
                outcome["success"] += n
            elif code == "RATE_LIMITED":
                outcome["rate limited"] += n
            elif code in ("PROVIDER_ERROR", "UPSTREAM_UNAVAILABLE", "REAUTHORIZATION_REQUIRED"):
                outcome["Discord error"] += n
            else:
                outcome["refused"] += n
        refreshes = await vault.event_counts(
            ("account.refreshed", "account.refresh_failed", "account.expired"), since=now - DAY
        )
        backlog = await container.webhooks.backlog()
        process = _process_counts(container.metrics)
        return pages.render(
            request,
            "overview.html",
            "Overview",
            section="Overview",
            connections=connections,
            counts=counts,
            statuses=STATUSES,
            status_labels=STATUS_LABELS,
            backlog=backlog,
            account_chart=bar_chart(
                "Accounts by status",
                [(STATUS_LABELS[s], totals.get(s, 0), status_css[s]) for s in STATUSES],
            ),
            calls_chart=bar_chart(
                "Tool calls by outcome",
                [
                    ("success", outcome["success"], "ok"),
                    ("Discord error", outcome["Discord error"], "bad"),
                    ("rate limited", outcome["rate limited"], "warn"),
                    ("refused", outcome["refused"], "neutral"),
                ],
            ),
            refresh_chart=bar_chart(
                "Token refreshes",
                [
                    ("refreshed", refreshes.get("account.refreshed", 0), "ok"),
                    ("failed, retried", refreshes.get("account.refresh_failed", 0), "warn"),
                    ("expired", refreshes.get("account.expired", 0), "bad"),
                ],
            ),
            process=process,
            proxy_chart=bar_chart(
                "Proxied requests by outcome",
                [
                    ("success", process["success"], "ok"),
                    ("rate limited", process["rate limited"], "warn"),
                    ("client error", process["client error"], "neutral"),
                    ("server error", process["server error"], "bad"),
                ],
            ),
            webhook_chart=bar_chart(
                "Webhook deliveries",
                [
                    ("waiting", backlog.get("pending", 0), "warn"),
                    ("delivered", backlog.get("succeeded", 0), "ok"),
                    ("given up", backlog.get("failed", 0), "bad"),
                ],
            ),
        )

    # -- connections -----------------------------------------------------------------------------

    def scope_choices(current: tuple[str, ...] = ()) -> dict[str, list[tuple[str, str]]]:
        """The common scopes (and any the connection has) first; the rest folded away."""
        connector = container.connectors.provider("discord")
        known = list(connector.spec.known_scopes)
        first: list[str] = [s for s in COMMON_SCOPES if s in known]
        first += [s for s in current if s not in first]
        rest = [s for s in known if s not in first]
        return {
            "scope_choices": [(s, describe_scope(s)) for s in first],
            "more_scopes": [(s, describe_scope(s)) for s in rest],
        }

    def default_scopes() -> tuple[str, ...]:
        return tuple(container.connectors.provider("discord").spec.default_scopes)

    @router.get("/connections")
    async def connections_page(request: Request) -> Response:
        counts = await vault.account_counts()
        totals: dict[str, int] = {}
        for (cid, _status), n in counts.items():
            totals[cid] = totals.get(cid, 0) + n
        return pages.render(
            request,
            "connections.html",
            "Connections",
            section="Connections",
            connections=await vault.list_connections(),
            totals=totals,
        )

    def new_connection_form(request: Request, **context: Any) -> dict[str, Any]:
        return {
            "action": f"{PREFIX}/connections/new",
            "providers": [
                (
                    c.name,
                    "OAuth2: each user links their account"
                    if c.uses_oauth
                    else "each account holds a bot token (no OAuth)",
                )
                for c in container.connectors.providers()
            ],
            **scope_choices(),
            "connection": None,
            "redirect_uri": None,
            "section": "Connections",
            **context,
        }

    @router.get("/connections/new")
    async def new_connection(request: Request) -> Response:
        return pages.render(
            request,
            "connection_form.html",
            "New connection",
            **new_connection_form(request, chosen_scopes=default_scopes()),
        )

    @router.post("/connections/new")
    async def create_connection(request: Request) -> Response:
        form = await form_of(request)
        scopes = many(form, "scopes")
        values = {
            "name": text(form, "name"),
            "client_id": text(form, "client_id"),
            "provider": text(form, "provider") or "discord",
            "public_key": text(form, "public_key"),
            "allowed_tools": text(form, "allowed_tools"),
        }
        verify = text(form, "require_user_verification") == "on"
        try:
            connector = container.connectors.provider(values["provider"])
            if connector.uses_oauth and not values["client_id"]:
                raise ValidationError(
                    "client_id is required: the application's id from Discord's portal",
                    fields={"client_id": "required: the application's id from Discord's portal"},
                )
            record = await create_connection_record(
                container,
                name=values["name"],
                provider=values["provider"],
                client_id=values["client_id"] or None,
                client_secret=text(form, "client_secret") or None,
                # Scopes belong to the OAuth flow; a bot-token provider has none to ask for.
                scopes=scopes if connector.uses_oauth else None,
                bot_token=text(form, "bot_token") or None,
                require_user_verification=verify,
                allowed_tools=patterns(form),
                public_key=text(form, "public_key") or None,
            )
        except TokenwardError as exc:
            if exc.code == "CONFLICT" or "exists" in exc.message:
                exc = ValidationError(exc.message, fields={"name": exc.message})
            return pages.failure(
                request,
                exc,
                "connection_form.html",
                "New connection",
                **new_connection_form(
                    request,
                    form={**values, "require_user_verification": verify},
                    chosen_scopes=tuple(scopes),
                ),
            )
        return _see_other(f"{PREFIX}/connections/{record.name}?notice=connection-created")

    async def edit_context(name: str) -> dict[str, Any]:
        record = await vault.get_connection_by_name(name)
        uses_oauth = container.connector(record).uses_oauth
        interactions, events = container.discord_urls(record.id)
        return {
            "action": f"{PREFIX}/connections/{record.name}",
            "connection": {**record.public()},
            "form": {
                "public_key": record.public_key or "",
                "allowed_tools": "\n".join(record.allowed_tools or ()),
                "require_user_verification": record.require_user_verification,
            },
            "discord_urls": (interactions, events) if record.public_key else None,
            "redirect_uri": container.oauth.redirect_uri(record.id) if uses_oauth else None,
            **scope_choices(record.scopes),
            "chosen_scopes": record.scopes,
            "section": "Connections",
        }

    @router.get("/connections/{name}")
    async def edit_connection(request: Request, name: str) -> Response:
        context = await edit_context(name)
        return pages.render(request, "connection_form.html", f"Connection {name}", **context)

    @router.post("/connections/{name}")
    async def save_connection(request: Request, name: str) -> Response:
        form = await form_of(request)
        context = await edit_context(name)
        changes: dict[str, Any] = {"scopes": many(form, "scopes")}
        if text(form, "client_secret"):
            changes["client_secret"] = text(form, "client_secret")
        if text(form, "bot_token"):
            changes["bot_token"] = text(form, "bot_token")
        public_key = text(form, "public_key")
        if public_key != (context["connection"].get("public_key") or ""):
            changes["public_key"] = public_key or None  # emptied: removed
        allowed = patterns(form)
        current_allowed = context["connection"].get("allowed_tools")
        if allowed != (None if current_allowed is None else list(current_allowed)):
            changes["allowed_tools"] = allowed  # emptied: every tool
        verify = text(form, "require_user_verification") == "on"
        if verify != bool(context["connection"].get("require_user_verification")):
            changes["require_user_verification"] = verify
        try:
            if not changes["scopes"] and context["redirect_uri"]:
                raise ValidationError(
                    "choose at least one scope", fields={"scopes": "choose at least one scope"}
                )
            await update_connection_record(container, name, changes)
        except TokenwardError as exc:
            context["chosen_scopes"] = tuple(changes["scopes"])
            context["form"] = {
                "public_key": public_key,
                "allowed_tools": text(form, "allowed_tools"),
                "require_user_verification": verify,
            }
            return pages.failure(
                request, exc, "connection_form.html", f"Connection {name}", **context
            )
        return _see_other(f"{PREFIX}/connections/{name}?notice=connection-saved")

    @router.post("/connections/{name}/link")
    async def connection_link(request: Request, name: str) -> Response:
        form = await form_of(request)
        identifier = text(form, "identifier")
        try:
            if not identifier:
                raise ValidationError(
                    "identifier is required", fields={"identifier": "must not be empty"}
                )
            result = await container.oauth.create_link(name, identifier)
        except TokenwardError as exc:
            context = await edit_context(name)
            return pages.failure(
                request,
                exc,
                "connection_form.html",
                f"Connection {name}",
                **{**context, "form": {"identifier": identifier}},
            )
        return pages.render(
            request,
            "link.html",
            "Authorization link",
            section="Connections",
            link=result.link,
            identifier=identifier,
            account_id=result.account.id,
            expires_at=_when(result.expires_at),
        )

    @router.get("/connections/{name}/delete")
    async def confirm_delete_connection(request: Request, name: str) -> Response:
        record = await vault.get_connection_by_name(name)
        accounts = await container.oauth.connection_accounts(record.id)
        holding = sum(1 for a in accounts if a.access_token is not None)
        return pages.render(
            request,
            "connection_delete.html",
            f"Delete connection {name}",
            section="Connections",
            connection=record,
            total=len(accounts),
            holding=holding,
        )

    @router.post("/connections/{name}/delete")
    async def delete_connection(request: Request, name: str) -> Response:
        await delete_connection_named(container, name, revoke=True)
        return _see_other(f"{PREFIX}/connections?notice=connection-deleted")

    # -- connected accounts ----------------------------------------------------------------------

    @router.get("/accounts")
    async def accounts_page(request: Request) -> Response:
        query = request.query_params
        filters = {
            "identifier": query.get("identifier", "").strip(),
            "connection": query.get("connection", "").strip(),
            "status": query.get("status", "").strip(),
        }
        connections = await vault.list_connections()
        names = {c.id: c.name for c in connections}
        connection_id = None
        try:
            if filters["connection"]:
                connection_id = (await vault.get_connection_by_name(filters["connection"])).id
            page = await vault.list_accounts(
                connection_id=connection_id,
                identifier=filters["identifier"] or None,
                status=filters["status"] or None,
                page_size=50,
                page_token=query.get("after") or None,
            )
        except TokenwardError as exc:
            return pages.failure(
                request,
                exc,
                "accounts.html",
                "Connected accounts",
                section="Accounts",
                filters=filters,
                connections=connections,
                statuses=STATUSES,
                accounts=[],
                names=names,
                next_page=None,
            )
        next_page = None
        if page.next_page_token:
            kept = {k: v for k, v in filters.items() if v}
            next_page = f"{PREFIX}/accounts?" + urlencode({**kept, "after": page.next_page_token})
        return pages.render(
            request,
            "accounts.html",
            "Connected accounts",
            section="Accounts",
            filters=filters,
            connections=connections,
            statuses=STATUSES,
            accounts=page.items,
            names=names,
            next_page=next_page,
        )

    async def account_context(account_id: str) -> dict[str, Any]:
        account = await vault.get_account(account_id)
        connection = await vault.get_connection(account.connection_id)
        return {
            "account": account,
            "connection": connection,
            "uses_oauth": container.connector(connection).uses_oauth,
            "events": await vault.recent_events(account_id=account_id, limit=30),
            "names": {connection.id: connection.name},
            "section": "Accounts",
        }

    @router.get("/accounts/{account_id}")
    async def account_page(request: Request, account_id: str) -> Response:
        context = await account_context(account_id)
        return pages.render(
            request, "account.html", f"Account {context['account'].identifier}", **context
        )

    @router.post("/accounts/{account_id}/link")
    async def account_link(request: Request, account_id: str) -> Response:
        account = await vault.get_account(account_id)
        connection = await vault.get_connection(account.connection_id)
        result = await container.oauth.create_link(connection.name, account.identifier)
        context = await account_context(account_id)
        return pages.render(
            request,
            "account.html",
            f"Account {account.identifier}",
            link=result.link,
            **context,
        )

    @router.post("/accounts/{account_id}/refresh")
    async def account_refresh(request: Request, account_id: str) -> Response:
        try:
            await container.tokens.refresh_now(account_id)
        except TokenwardError as exc:
            context = await account_context(account_id)
            return pages.render(
                request,
                "account.html",
                f"Account {context['account'].identifier}",
                status=exc.status,
                error=f"The refresh did not work: {exc.message}",
                **context,
            )
        return _see_other(f"{PREFIX}/accounts/{account_id}?notice=refreshed")

    @router.get("/accounts/{account_id}/delete")
    async def confirm_delete_account(request: Request, account_id: str) -> Response:
        context = await account_context(account_id)
        siblings = await vault.grant_siblings(account_id)
        return pages.render(
            request,
            "account_delete.html",
            f"Delete account {context['account'].identifier}",
            siblings=[f"{s.identifier} ({s.connection_name})" for s in siblings],
            **context,
        )

    @router.post("/accounts/{account_id}/delete")
    async def delete_account(request: Request, account_id: str) -> Response:
        form = await form_of(request)
        await delete_account_by_id(
            container, account_id, revoke_siblings=text(form, "revoke_siblings") == "true"
        )
        return _see_other(f"{PREFIX}/accounts?notice=account-deleted")

    # -- activity --------------------------------------------------------------------------------

    @router.get("/activity")
    async def activity_page(request: Request) -> Response:
        query = request.query_params
        filters = {"kind": query.get("kind", ""), "connection": query.get("connection", "")}
        connections = await vault.list_connections()
        names = {c.id: c.name for c in connections}
        connection_id = None
        if filters["connection"]:
            connection_id = (await vault.get_connection_by_name(filters["connection"])).id
        before_text = query.get("before", "")
        if before_text and not before_text.isdigit():
            raise ValidationError("before must be an event id", fields={"before": "not a number"})
        events = await vault.recent_events(
            kinds=[filters["kind"]] if filters["kind"] else (),
            connection_id=connection_id,
            before_id=int(before_text) if before_text else None,
            limit=50,
        )
        next_page = None
        if len(events) == 50:
            kept = {k: v for k, v in filters.items() if v}
            next_page = f"{PREFIX}/activity?" + urlencode({**kept, "before": events[-1].id})
        return pages.render(
            request,
            "activity.html",
            "Activity",
            section="Activity",
            filters=filters,
            kinds=EVENT_KINDS,
            connections=connections,
            events=events,
            names=names,
            next_page=next_page,
        )

    # -- webhooks --------------------------------------------------------------------------------

    async def webhooks_context() -> dict[str, Any]:
        return {
            "endpoints": await container.webhook_service.endpoints(),
            "event_types": list(EVENT_TYPES.items()),
            "section": "Webhooks",
        }

    @router.get("/webhooks")
    async def webhooks_page(request: Request) -> Response:
        return pages.render(request, "webhooks.html", "Webhooks", **await webhooks_context())

    @router.post("/webhooks/new")
    async def create_webhook(request: Request) -> Response:
        form = await form_of(request)
        url = text(form, "url")
        try:
            created = await container.webhook_service.create(url, many(form, "events") or None)
        except TokenwardError as exc:
            return pages.failure(
                request,
                exc,
                "webhooks.html",
                "Webhooks",
                form={"url": url},
                **await webhooks_context(),
            )
        return pages.render(
            request,
            "secret.html",
            "Webhook endpoint created",
            section="Webhooks",
            explanation=f"Deliveries to {created.endpoint.url} are signed with this secret "
            "(Standard Webhooks); give it to the receiver.",
            values=[("webhook-secret", "Signing secret", created.secret.get_secret_value())],
            kept="it encrypted, and shows it to no one",
            back=f"{PREFIX}/webhooks/{created.endpoint.id}",
        )

    @router.get("/webhooks/{endpoint_id}")
    async def webhook_page(request: Request, endpoint_id: str) -> Response:
        endpoint = await container.webhook_service.get(endpoint_id)
        deliveries = await container.webhook_service.deliveries(endpoint_id, limit=50)
        return pages.render(
            request,
            "webhook.html",
            "Webhook endpoint",
            section="Webhooks",
            endpoint=endpoint,
            deliveries=deliveries,
        )

    @router.post("/webhooks/{endpoint_id}/rotate")
    async def rotate_webhook(request: Request, endpoint_id: str) -> Response:
        rotated = await container.webhook_service.rotate_secret(endpoint_id)
        return pages.render(
            request,
            "secret.html",
            "Webhook secret rotated",
            section="Webhooks",
            explanation=f"Deliveries to {rotated.endpoint.url} are signed with this new secret "
            "from now on.",
            values=[("webhook-secret", "Signing secret", rotated.secret.get_secret_value())],
            kept="it encrypted, and shows it to no one",
            back=f"{PREFIX}/webhooks/{endpoint_id}",
        )

    @router.post("/webhooks/{endpoint_id}/delete")
    async def delete_webhook(request: Request, endpoint_id: str) -> Response:
        await container.webhook_service.delete(endpoint_id)
        return _see_other(f"{PREFIX}/webhooks?notice=webhook-deleted")

    @router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend")
    async def resend_delivery(request: Request, endpoint_id: str, delivery_id: str) -> Response:
        await container.webhook_service.resend(endpoint_id, delivery_id)
        container.deliverer.wake()
        return _see_other(f"{PREFIX}/webhooks/{endpoint_id}?notice=resent")

    # -- API clients -----------------------------------------------------------------------------

    async def clients_context() -> dict[str, Any]:
        return {
            "clients": await vault.list_api_clients(),
            "scope_names": list(API_SCOPES),
            "section": "API clients",
        }

    @router.get("/api-clients")
    async def api_clients_page(request: Request) -> Response:
        return pages.render(
            request, "api_clients.html", "API clients", chosen=(), **await clients_context()
        )

    @router.post("/api-clients/new")
    async def create_api_client(request: Request) -> Response:
        form = await form_of(request)
        name = text(form, "name")
        scopes = many(form, "scopes")
        try:
            if not scopes:
                raise ValidationError(
                    "choose at least one scope", fields={"scopes": "choose at least one scope"}
                )
            record, secret = await vault.create_api_client(name, scopes)
        except TokenwardError as exc:
            return pages.failure(
                request,
                exc,
                "api_clients.html",
                "API clients",
                form={"name": name},
                chosen=tuple(scopes),
                **await clients_context(),
            )
        return pages.render(
            request,
            "secret.html",
            "API client created",
            section="API clients",
            explanation=f"API client {record.name!r} ({format_scopes(record.scopes)}): exchange "
            "both at POST /oauth/token for an API token.",
            values=[
                ("client-id", "client_id", record.client_id),
                ("client-secret", "client_secret", secret.get_secret_value()),
            ],
            kept="only a hash of it",
            back=f"{PREFIX}/api-clients",
        )

    @router.post("/api-clients/{client_id}/delete")
    async def delete_api_client(request: Request, client_id: str) -> Response:
        await vault.delete_api_client(client_id)
        container.announce("api_client", client_id)  # every process refuses its tokens now
        return _see_other(f"{PREFIX}/api-clients?notice=client-revoked")

    # -- MCP sessions ------------------------------------------------------------------------------

    @router.get("/mcp-sessions")
    async def mcp_sessions_page(request: Request) -> Response:
        query = request.query_params
        connection_name = query.get("connection", "").strip() or None
        identifier = query.get("identifier", "").strip() or None
        include_inactive = query.get("all") == "1"
        records = await container.mcp_sessions.list(
            connection_name=connection_name,
            identifier=identifier,
            include_inactive=include_inactive,
        )
        now = container.clock.time()
        groups: dict[tuple[str, str], list[Any]] = {}
        for record in records:
            groups.setdefault((record.connection_name, record.identifier), []).append(record)
        return pages.render(
            request,
            "mcp_sessions.html",
            "MCP sessions",
            section="MCP sessions",
            groups=sorted(groups.items()),
            now=now,
            connections=[c.name for c in await vault.list_connections()],
            filters={
                "connection": connection_name or "",
                "identifier": identifier or "",
                "all": include_inactive,
            },
            limit=MAX_LISTED,
            shown=len(records),
        )

    @router.post("/mcp-sessions/{session_id}/revoke")
    async def revoke_mcp_session(request: Request, session_id: str) -> Response:
        record = await container.mcp_sessions.revoke(session_id[:64])
        container.announce("mcp_session", record.id)  # every process refuses it now
        back = urlencode({"identifier": record.identifier, "notice": "session-revoked"})
        return _see_other(f"{PREFIX}/mcp-sessions?{back}")

    # -- keys ------------------------------------------------------------------------------------

    @router.get("/keys")
    async def keys_page(request: Request) -> Response:
        keyring = vault.keyring
        stale = await count_stale(vault.engine, keyring)
        return pages.render(
            request,
            "keys.html",
            "Encryption keys",
            section="Keys",
            kids=keyring.kids,
            active=keyring.active_kid,
            stale=stale,
            rotation=rotation_job.get("current"),
            from_environment=bool(
                container.settings.encryption_keys and container.settings.encryption_keys.strip()
            ),
        )

    rotation_job: dict[str, _Rotation] = {}

    async def run_rotation(job: _Rotation) -> None:
        def on_progress(done: int, total: int) -> None:
            job.done, job.total = done, max(total, done)

        try:
            with acting_as(f"operator:{job.operator}"):
                keyring, added = await asyncio.to_thread(prepare_active_key, container.settings)
                await vault.record_event(
                    "keys.rotation_started",
                    data={"active_kid": keyring.active_kid, "key_added": added},
                )
                job.report = await rotate(
                    vault.engine, keyring, key_added=added, progress=on_progress
                )
                await vault.record_event(
                    "keys.rotated",
                    data={k: v for k, v in job.report.as_dict().items() if k != "failed"}
                    | {"failed": len(job.report.failed)},
                )
        except Exception as exc:  # shown on the progress page; the key file stays consistent
            log.exception("key rotation from the dashboard failed")
            job.error = exc.message if isinstance(exc, TokenwardError) else type(exc).__name__
        finally:
            job.finished_at = container.clock.time()

    @router.post("/keys/rotate")
    async def start_rotation(request: Request) -> Response:
        current = rotation_job.get("current")
        if current is None or not current.running:
            session: AdminSession = request.state.dashboard_session
            job = _Rotation(operator=session.admin.username, started_at=container.clock.time())
            rotation_job["current"] = job
            job.task = asyncio.create_task(run_rotation(job), name="dashboard-key-rotation")
        return _see_other(f"{PREFIX}/keys/rotation")

    @router.get("/keys/rotation")
    async def rotation_page(request: Request) -> Response:
        job = rotation_job.get("current")
        if job is None:
            return _see_other(f"{PREFIX}/keys")
        return pages.render(
            request,
            "key_rotation.html",
            "Key rotation",
            section="Keys",
            job=job,
        )

    return router
