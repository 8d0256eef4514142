"""The authorization lifecycle: links, the callback, verification, deletion with revocation.

``OAuthService`` knows the vault and Discord's OAuth endpoints (through the
:class:`~tokenward.oauth.endpoints.OAuthEndpoints` protocol) and nothing about HTTP servers: the
server turns its :class:`CallbackOutcome` into a page or a redirect.

Security properties (tested in ``tests/integration/test_oauth_lifecycle.py`` and
``tests/integration/test_link_binding.py``):

- a link is ``{PUBLIC_URL}/connect/{auth_request_id}``; opening it shows a page naming the
  application and the identifier being connected. Only the page's button (a POST with a token
  bound to the request and the browser) mints a fresh 256-bit state and a fresh PKCE verifier
  (only the state's hash and the encrypted verifier are stored) and sends the browser to Discord
  with ``code_challenge_method=S256``;
- that click also binds the flow to the browser: a random cookie, scoped to the callback path,
  whose SHA-256 is stored with the request. The callback refuses (nothing changed) when the
  cookie is missing or different: a Discord URL copied out of one browser and opened in another
  cannot complete;
- the callback claims the state atomically (single use, unexpired, same connection): a replayed,
  expired, forged or foreign state changes nothing. It then sends the browser to a result page
  (``…/callback/result/{auth_request_id}``) that shows the stored outcome, so a reload of either
  page shows the same result again, in that browser only, without exchanging anything twice;
- the code is exchanged with the verifier; tokens are stored encrypted before anything else is
  done with them; ``identify`` lets us record the Discord user id, and an identifier already
  linked to another Discord user is not re-linked unless the link allowed it
  (``allow_user_change``);
- with a ``user_verify_url`` the account waits in ``PENDING_VERIFICATION`` until the application
  confirms the identifier; a connection with ``require_user_verification`` needs one on every
  link;
- a failed code exchange is recorded on the account (``status_reason``, the status unchanged), as
  an event and as a WARNING log line, not only on the person's page.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tokenward.clock import Clock
from tokenward.config import Settings
from tokenward.errors import (
    AccountNotFound,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from tokenward.oauth import pkce
from tokenward.oauth.endpoints import (
    ClientCredentials,
    OAuthEndpoints,
    OAuthRejected,
    OAuthUnavailable,
    TokenSet,
)
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import (
    AccountRecord,
    AuthRequestRecord,
    ConnectionRecord,
    GrantSibling,
    Vault,
)

log = logging.getLogger("tokenward.oauth")

IDENTIFIER_MAX = 255
LINK_COOKIE_PREFIX = "tw_link_"
"""The browser-binding cookie is ``tw_link_<auth_request_id>``: one per link, so two links opened
in the same browser do not overwrite each other's binding."""
RESULT_COOKIE_GRACE_SECONDS = 3600
"""How long after a link expires its browser cookie (and so the result page) still works."""
REVOKE_CONCURRENCY = 8

# Events that say how a consumed auth request ended (each carries ``data.auth_request_id``).
OUTCOME_EVENTS = (
    "account.linked",
    "authorization.exchange_failed",
    "account.user_change_refused",
)


@dataclass(frozen=True)
class AuthorizationLink:
    link: str
    expires_at: float
    auth_request_id: str
    account: AccountRecord


@dataclass(frozen=True)
class LinkDescription:
    """What the ``/connect`` page shows before anything goes to Discord."""

    auth_request_id: str
    connection_name: str
    client_id: str
    identifier: str
    scopes: tuple[str, ...]
    expires_at: float
    relink: bool
    """The identifier is already linked (to ``linked_user_id``): approving replaces its grant."""
    linked_user_id: str | None
    problem: str | None = None
    """Why the link cannot be used (then the page shows no button)."""


@dataclass(frozen=True)
class LinkStart:
    """The button was clicked: where to send the browser, and the cookie that binds the flow."""

    authorize_url: str
    cookie_name: str
    cookie_value: str
    cookie_path: str
    cookie_max_age: int
    cookie_secure: bool


@dataclass(frozen=True)
class CallbackOutcome:
    """What the callback or result page should show (or where to send the browser)."""

    ok: bool
    status_code: int = 200
    title: str = ""
    message: str = ""
    action: str = ""
    redirect_to: str | None = None
    connection_name: str | None = None
    username: str | None = None
    pending_verification: bool = False
    account: AccountRecord | None = None
    reason: str = ""


@dataclass(frozen=True)
class DeleteOutcome:
    account_id: str
    revoked: bool
    revoke_error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    siblings_disconnected: tuple[GrantSibling, ...] = ()


@dataclass(frozen=True)
class RevokeFailure:
    account_id: str
    identifier: str
    error: str


@dataclass(frozen=True)
class ConnectionDeleteOutcome:
    connection: ConnectionRecord
    accounts: int
    """Accounts deleted with the connection."""
    with_tokens: int
    """Of those, how many held tokens (a grant to revoke)."""
    revoked: int
    failures: tuple[RevokeFailure, ...]
    revoke_attempted: bool


EndpointsFor = Callable[[ConnectionRecord], "OAuthEndpoints | None"]
"""The OAuth2 endpoints of a connection's provider (None: the provider has no OAuth)."""


def no_oauth(connection: ConnectionRecord) -> ValidationError:
    """The error for an OAuth operation on a connection whose accounts hold bot tokens."""
    reason = (
        f"connection {connection.name!r} (provider {connection.provider}) has no OAuth client: "
        "its connected accounts hold bot tokens and need no authorization link; create them "
        "with POST /api/v1/connected-accounts (credentials.bot_token) or `tokenward accounts "
        "create --bot-token-stdin`"
    )
    return ValidationError(reason, fields={"connection_name": reason})


def client_credentials(connection: ConnectionRecord) -> ClientCredentials:
    """The connection's OAuth client; a ValidationError for a connection without one."""
    if connection.client_id is None or connection.client_secret is None:
        raise no_oauth(connection)
    return ClientCredentials(connection.client_id, connection.client_secret.get_secret_value())


def validate_identifier(identifier: str) -> None:
    if not isinstance(identifier, str) or not identifier.strip():
        raise ValidationError(
            "identifier must be a non-empty string", fields={"identifier": "must not be empty"}
        )
    if len(identifier) > IDENTIFIER_MAX:
        raise ValidationError(
            "identifier is too long",
            fields={"identifier": f"at most {IDENTIFIER_MAX} characters"},
        )
    if any(ord(ch) < 32 for ch in identifier):
        raise ValidationError(
            "identifier contains control characters",
            fields={"identifier": "must not contain control characters"},
        )


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def browser_cookie_name(auth_request_id: str) -> str:
    return f"{LINK_COOKIE_PREFIX}{auth_request_id}"


def _browser_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _same_browser(request: AuthRequestRecord, cookies: Mapping[str, str]) -> bool:
    """Whether this browser is the one that clicked through ``/connect`` for ``request``."""
    value = cookies.get(browser_cookie_name(request.id))
    if request.browser_hash is None or not value:
        return False
    return hmac.compare_digest(_browser_hash(value), request.browser_hash)


# What a failed code exchange means, for the operator (``status_reason``, the log) and the person.
_EXCHANGE_HINTS = {
    "invalid_client": "check the connection's client id and client secret",
    "invalid_grant": "the code was invalid, expired or already used, or the redirect URI "
    "registered at Discord does not match the connection's",
    "invalid_request": "Discord refused the request's form (PKCE or redirect URI)",
    "unauthorized_client": "the Discord application may not use this grant type",
}


def _exchange_reason(error: str, *, unavailable: bool) -> str:
    if unavailable:
        return (
            "the last authorization attempt failed: Discord could not be reached to exchange "
            f"the code ({error}); the user can open a new link later"
        )
    hint = _EXCHANGE_HINTS.get(error, "see the event for details")
    return f"the last authorization attempt failed: Discord answered {error} ({hint})"


class OAuthService:
    """``endpoints_for`` picks each connection's provider's OAuth2 endpoints (see
    :mod:`tokenward.connectors`); without it every connection uses ``endpoints``, which is also
    what single-provider callers (tests) read."""

    def __init__(
        self,
        vault: Vault,
        endpoints: OAuthEndpoints,
        settings: Settings,
        clock: Clock,
        *,
        endpoints_for: EndpointsFor | None = None,
    ) -> None:
        self.vault = vault
        self.endpoints = endpoints
        self.settings = settings
        self.clock = clock
        self._endpoints_for = endpoints_for

    def endpoints_of(self, connection: ConnectionRecord) -> OAuthEndpoints:
        """The OAuth2 endpoints for ``connection``; a ValidationError for one without OAuth."""
        if connection.client_id is None:
            raise no_oauth(connection)
        if self._endpoints_for is None:
            return self.endpoints
        endpoints = self._endpoints_for(connection)
        if endpoints is None:
            raise no_oauth(connection)
        return endpoints

    # -- links ---------------------------------------------------------------------------------

    def redirect_uri(self, connection_id: str) -> str:
        return f"{self.settings.public_base}/sso/v1/oauth/{connection_id}/callback"

    def link_url(self, auth_request_id: str) -> str:
        return f"{self.settings.public_base}/connect/{auth_request_id}"

    @staticmethod
    def result_url(request: AuthRequestRecord) -> str:
        return f"{request.redirect_uri}/result/{request.id}"

    async def create_link(
        self,
        connection_name: str,
        identifier: str,
        *,
        user_verify_url: str | None = None,
        state: str | None = None,
        allow_user_change: bool = False,
    ) -> AuthorizationLink:
        """Create (or reuse) the account in ``PENDING_AUTH`` unless it is already linked, and a
        single-use authorization request; returns the link to send to the user.

        On a connection with ``require_user_verification`` every link needs a
        ``user_verify_url``: without one, the identifier's last one is reused (so the fresh links
        tokenward puts in errors keep working), and with none ever given the link is refused
        (400 naming ``user_verify_url``).
        """
        validate_identifier(identifier)
        if state is not None and len(state) > 1024:
            raise ValidationError("state is too long", fields={"state": "at most 1024 characters"})
        connection = await self.vault.get_connection_by_name(connection_name)
        self.endpoints_of(connection)  # a bot connection has no links
        existing = await self.vault.find_account(connection.id, identifier)
        if connection.require_user_verification and user_verify_url is None:
            if existing is not None:
                user_verify_url = await self.vault.latest_user_verify_url(existing.id)
            if user_verify_url is None:
                raise ValidationError(
                    f"connection {connection_name!r} requires user verification: give "
                    "user_verify_url, the page of your application the browser returns to so "
                    "you can confirm the user (then call verify)",
                    fields={"user_verify_url": "required by the connection's user verification"},
                )
        account = existing or await self.vault.get_or_create_account(connection.id, identifier)
        request = await self.vault.create_auth_request(
            connection_id=connection.id,
            account_id=account.id,
            identifier=identifier,
            state=pkce.new_state(),  # replaced by a fresh one when the button is clicked
            code_verifier=pkce.new_verifier(),
            redirect_uri=self.redirect_uri(connection.id),
            ttl_seconds=self.settings.link_ttl_seconds,
            user_verify_url=user_verify_url,
            app_state=state,
            allow_user_change=allow_user_change,
        )
        return AuthorizationLink(
            link=self.link_url(request.id),
            expires_at=request.expires_at,
            auth_request_id=request.id,
            account=account,
        )

    async def _pending_request(self, auth_request_id: str) -> AuthRequestRecord:
        request = await self.vault.get_auth_request(auth_request_id)
        if (
            request is None
            or request.consumed_at is not None
            or request.expires_at <= self.clock.time()
        ):
            raise NotFoundError(
                "This authorization link is unknown, expired or already used.",
                code="LINK_INVALID",
            )
        return request

    @staticmethod
    def _problem(connection: ConnectionRecord, request: AuthRequestRecord) -> str | None:
        if connection.require_user_verification and request.user_verify_url is None:
            return (
                "This link was made before the application started to require user "
                "verification, so it can no longer be used. Ask the application for a new link."
            )
        return None

    async def describe(self, auth_request_id: str) -> LinkDescription:
        """What the ``/connect`` page shows. Raises :class:`NotFoundError` (``LINK_INVALID``) for
        an unknown, used or expired link. Changes nothing."""
        request = await self._pending_request(auth_request_id)
        connection = await self.vault.get_connection(request.connection_id)
        account = await self.vault.get_account(request.account_id)
        return LinkDescription(
            auth_request_id=request.id,
            connection_name=connection.name,
            client_id=connection.client_id or "",
            identifier=request.identifier,
            scopes=connection.scopes,
            expires_at=request.expires_at,
            relink=account.provider_user_id is not None,
            linked_user_id=account.provider_user_id,
            problem=self._problem(connection, request),
        )

    async def begin(self, auth_request_id: str) -> LinkStart:
        """The button on the ``/connect`` page was clicked: a fresh state and verifier, bound to
        a new browser cookie; returns the Discord authorize URL and that cookie. Raises
        :class:`NotFoundError` for an unknown, used or expired link and :class:`ConflictError`
        (``LINK_UNUSABLE``) for one the connection's settings no longer allow."""
        pending = await self._pending_request(auth_request_id)
        connection = await self.vault.get_connection(pending.connection_id)
        problem = self._problem(connection, pending)
        if problem is not None:
            raise ConflictError(problem, code="LINK_UNUSABLE")
        state = pkce.new_state()
        verifier = pkce.new_verifier()
        browser_secret = secrets.token_urlsafe(32)
        request = await self.vault.restate_auth_request(
            auth_request_id,
            state=state,
            code_verifier=verifier,
            browser_hash=_browser_hash(browser_secret),
        )
        if request is None:
            raise NotFoundError(
                "This authorization link is unknown, expired or already used.",
                code="LINK_INVALID",
            )
        url = self.endpoints_of(connection).authorize_url(
            client_id=client_credentials(connection).client_id,
            redirect_uri=request.redirect_uri,
            scopes=connection.scopes,
            state=state,
            code_challenge=pkce.challenge(verifier),
        )
        remaining = max(0.0, request.expires_at - self.clock.time())
        return LinkStart(
            authorize_url=url,
            cookie_name=browser_cookie_name(request.id),
            cookie_value=browser_secret,
            cookie_path=urlsplit(request.redirect_uri).path or "/",
            cookie_max_age=int(remaining) + RESULT_COOKIE_GRACE_SECONDS,
            cookie_secure=self.settings.public_base.lower().startswith("https://"),
        )

    # -- callback ------------------------------------------------------------------------------

    async def complete(
        self,
        connection_id: str,
        params: Mapping[str, str],
        cookies: Mapping[str, str] | None = None,
    ) -> CallbackOutcome:
        """Handle ``GET /sso/v1/oauth/{connection_id}/callback``. Never raises for bad input.

        Once the state is claimed, the outcome is stored (the account, an event) and the browser
        is sent to the result page, which shows it; a reload of the callback in the same browser
        goes there too.
        """
        cookies = cookies or {}
        try:
            connection = await self.vault.get_connection(connection_id)
        except NotFoundError:
            return _unknown_connection()
        state = params.get("state") or ""
        error = params.get("error")
        code = params.get("code")
        if not state:
            return self._refused(
                "missing_state",
                "Sign-in could not be verified",
                "Discord sent no state, so this sign-in cannot be matched to a request.",
            )
        request = await self.vault.inspect_auth_request(state)
        if request is None or request.connection_id != connection_id:
            return self._refused(
                "unknown_state",
                "Sign-in could not be verified",
                "This sign-in does not match any pending authorization request.",
            )
        if not _same_browser(request, cookies):
            await self.vault.record_event(
                "authorization.browser_mismatch",
                connection_id=connection_id,
                account_id=request.account_id,
                data={"auth_request_id": request.id, "cookie_present": bool(cookies)},
            )
            log.warning(
                "authorization callback for account %s (connection %r) refused: it came back to "
                "a browser that did not start it (browser cookie missing or different)",
                request.account_id,
                connection.name,
            )
            return self._refused(
                "browser_mismatch",
                "Sign-in could not be verified",
                "This sign-in was started in another browser (or this browser's cookie for it "
                "is missing), so it cannot be completed here.",
                action="Nothing was changed. Open the authorization link in the browser you "
                "want to use and continue from there.",
            )
        if request.consumed_at is not None:
            # A reload in the same browser: show what happened, exchange nothing.
            return _to_result(self.result_url(request), connection.name)
        if error:
            return await self._provider_error(connection, request, error)
        if not code:
            return self._refused(
                "missing_code",
                "Sign-in incomplete",
                "Discord sent neither an authorization code nor an error.",
            )
        claimed = await self.vault.consume_auth_request(state, connection_id)
        if claimed is None:
            known = await self.vault.inspect_auth_request(state)
            if known is not None and known.consumed_at is not None:
                return _to_result(self.result_url(known), connection.name)
            return self._refused(
                "expired_state",
                "Sign-in could not be verified",
                "This authorization request has expired.",
            )
        return await self._exchange(connection, claimed, code)

    async def _provider_error(
        self, connection: ConnectionRecord, request: AuthRequestRecord, error: str
    ) -> CallbackOutcome:
        """Discord sent the browser back with ``error=`` (the request stays pending)."""
        error = error[:64]
        if error == "access_denied":
            await self.vault.record_event(
                "authorization.denied",
                connection_id=connection.id,
                account_id=request.account_id,
                data={"error": error, "auth_request_id": request.id},
            )
            return CallbackOutcome(
                ok=False,
                status_code=200,
                title="Authorization cancelled",
                message="You cancelled on Discord, so nothing was connected.",
                action="If that was a mistake, open the authorization link again and "
                "choose Authorize.",
                connection_name=connection.name,
                reason="access_denied",
            )
        reason = (
            f"the last authorization attempt failed: Discord refused the authorization request "
            f"({error}); check the connection's scopes and redirect URI"
        )
        await self._note_failure(
            connection,
            request,
            reason,
            "authorization.error",
            {"error": error, "auth_request_id": request.id},
        )
        return CallbackOutcome(
            ok=False,
            status_code=400,
            title="Discord refused the request",
            message=f"Discord answered with the error '{error}'.",
            action="Ask the application for a new authorization link. If it happens again, "
            "the connection's scopes or redirect URI may be misconfigured.",
            connection_name=connection.name,
            reason=error,
        )

    async def _note_failure(
        self,
        connection: ConnectionRecord,
        request: AuthRequestRecord,
        reason: str,
        kind: str,
        data: dict[str, Any],
    ) -> None:
        """A failed authorization, where the operator sees it: the account's ``status_reason``
        (its status unchanged: an ``ACTIVE`` account keeps its working grant), an event, and a
        WARNING log line. Only error codes go there, never a token, code or secret."""
        await self.vault.note_authorization_failure(request.account_id, reason, kind, data)
        log.warning(
            "authorization of account %s (connection %r) failed: %s",
            request.account_id,
            connection.name,
            reason.removeprefix("the last authorization attempt failed: "),
        )

    async def _exchange(
        self, connection: ConnectionRecord, request: AuthRequestRecord, code: str
    ) -> CallbackOutcome:
        result = self.result_url(request)
        try:
            tokens = await self.endpoints_of(connection).exchange_code(
                client_credentials(connection),
                code=code,
                redirect_uri=request.redirect_uri,
                code_verifier=request.code_verifier.get_secret_value(),
            )
        except OAuthRejected as exc:
            await self._note_failure(
                connection,
                request,
                _exchange_reason(exc.error[:64], unavailable=False),
                "authorization.exchange_failed",
                {"auth_request_id": request.id, "error": exc.error[:64], "http_status": exc.status},
            )
            return _to_result(result, connection.name)
        except OAuthUnavailable as exc:
            await self._note_failure(
                connection,
                request,
                _exchange_reason(exc.reason, unavailable=True),
                "authorization.exchange_failed",
                {"auth_request_id": request.id, "error": "unavailable", "detail": exc.reason},
            )
            return _to_result(result, connection.name)
        user_id: str | None = None
        username: str | None = None
        if "identify" in tokens.scopes:
            try:
                me = await self.endpoints_of(connection).current_user(tokens.access_token)
                user_id = str(me.get("id")) if me.get("id") else None
                username = str(me.get("global_name") or me.get("username") or "") or None
            except (OAuthUnavailable, OAuthRejected):
                log.warning(
                    "could not read /users/@me after linking account %s", request.account_id
                )
        status = (
            AccountStatus.PENDING_VERIFICATION if request.user_verify_url else AccountStatus.ACTIVE
        )
        try:
            account = await self.vault.store_tokens_after_callback(
                request.account_id,
                auth_request_id=request.id,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=self.clock.time() + tokens.expires_in,
                granted_scopes=tokens.scopes,
                provider_user_id=user_id,
                status=status,
                allow_user_change=request.allow_user_change,
                username=username,
            )
        except ConflictError as exc:
            if exc.code != "USER_CHANGE_REFUSED":
                raise
            await self._refuse_user_change(connection, request, exc, tokens, user_id)
            return _to_result(result, connection.name)
        if request.user_verify_url:
            params_out = {"auth_request_id": request.id}
            if request.app_state is not None:
                params_out["state"] = request.app_state
            return CallbackOutcome(
                ok=True,
                status_code=302,
                redirect_to=_with_query(request.user_verify_url, params_out),
                connection_name=connection.name,
                username=username,
                pending_verification=True,
                account=account,
            )
        return _to_result(result, connection.name, account=account)

    async def _refuse_user_change(
        self,
        connection: ConnectionRecord,
        request: AuthRequestRecord,
        exc: ConflictError,
        tokens: TokenSet,
        user_id: str | None,
    ) -> None:
        """The identifier is linked to another Discord user and the link did not allow a change:
        the account stays as it was; the new grant is dropped (and revoked at Discord unless
        another account holds a grant of that Discord user, which the revocation would end)."""
        revoked = False
        if user_id is not None and not await self.vault.grant_holders(connection.id, user_id):
            try:
                await self.endpoints_of(connection).revoke(
                    client_credentials(connection), tokens.access_token, "access_token"
                )
                revoked = True
            except (OAuthRejected, OAuthUnavailable):
                log.warning(
                    "could not revoke the refused grant of Discord user %s on connection %r",
                    user_id,
                    connection.name,
                )
        await self.vault.record_event(
            "account.user_change_refused",
            connection_id=connection.id,
            account_id=request.account_id,
            data={
                "auth_request_id": request.id,
                "provider_user_id": exc.details.get("provider_user_id"),
                "refused_provider_user_id": user_id,
                "new_grant_revoked": revoked,
            },
        )
        log.warning(
            "authorization of account %s (connection %r) refused: the identifier is linked to "
            "Discord user %s and Discord user %s approved; the link did not allow a user change",
            request.account_id,
            connection.name,
            exc.details.get("provider_user_id"),
            user_id,
        )

    # -- result page ---------------------------------------------------------------------------

    async def result(
        self, connection_id: str, auth_request_id: str, cookies: Mapping[str, str]
    ) -> CallbackOutcome:
        """The result page after the callback: the stored outcome of ``auth_request_id``, shown
        only in the browser that completed it. Changes nothing; a reload shows the same."""
        request = await self.vault.get_auth_request(auth_request_id)
        if request is None or request.connection_id != connection_id:
            return CallbackOutcome(
                ok=False,
                status_code=404,
                title="Unknown sign-in",
                message="There is no sign-in with this address.",
                action="Ask the application for a new authorization link.",
                reason="unknown_request",
            )
        connection = await self.vault.get_connection(connection_id)
        if not _same_browser(request, cookies):
            return CallbackOutcome(
                ok=False,
                status_code=403,
                title="Result not available here",
                message="The result of this sign-in is shown only in the browser that "
                "completed it.",
                action="Go back to the application to see whether your account is connected.",
                connection_name=connection.name,
                reason="browser_mismatch",
            )
        if request.consumed_at is None:
            return CallbackOutcome(
                ok=False,
                status_code=409,
                title="Sign-in not finished",
                message="This sign-in has not come back from Discord yet.",
                action="Finish the steps on Discord, or open the authorization link again.",
                connection_name=connection.name,
                reason="not_finished",
            )
        event = await self.vault.auth_request_outcome(request, OUTCOME_EVENTS)
        return _stored_outcome(
            connection.name, event.kind if event else None, event.data if event else {}
        )

    @staticmethod
    def _refused(reason: str, title: str, message: str, *, action: str = "") -> CallbackOutcome:
        return CallbackOutcome(
            ok=False,
            status_code=400,
            title=title,
            message=message,
            action=action
            or "Nothing was changed. Ask the application for a new authorization link and "
            "open it in this browser.",
            reason=reason,
        )

    # -- verification --------------------------------------------------------------------------

    async def verify(self, auth_request_id: str, identifier: str) -> AccountRecord:
        """The application confirms that the person who linked is ``identifier``."""
        request = await self.vault.get_auth_request(auth_request_id)
        if request is None:
            raise NotFoundError(
                "no such authorization request",
                code="AUTH_REQUEST_NOT_FOUND",
                details={"auth_request_id": auth_request_id},
            )
        if request.identifier != identifier:
            raise ValidationError(
                "identifier does not match the one this authorization was created for",
                fields={"identifier": "does not match the authorization request"},
            )
        account = await self.vault.get_account(request.account_id)
        if request.completed_at is None or account.status != AccountStatus.PENDING_VERIFICATION:
            raise ConflictError(
                f"account is {account.status.value}, not waiting for verification",
                details={"status": account.status.value},
            )
        return await self.vault.set_account_status(account.id, AccountStatus.ACTIVE, None)

    # -- deletion ------------------------------------------------------------------------------

    async def _revoke(
        self, connection: ConnectionRecord, account: AccountRecord
    ) -> tuple[bool, str | None]:
        """Revoke the account's grant at Discord: ``(revoked, error)``; ``(False, None)`` when
        the account holds no token, or a bot token (a connection without OAuth: Discord has no
        API to revoke a bot token; it is reset in the Developer Portal)."""
        token = account.refresh_token or account.access_token
        if token is None or connection.client_id is None:
            return False, None
        try:
            await self.endpoints_of(connection).revoke(
                client_credentials(connection),
                token.get_secret_value(),
                "refresh_token" if account.refresh_token is not None else "access_token",
            )
        except OAuthRejected as exc:
            return False, f"Discord refused the revocation ({exc.error})"
        except OAuthUnavailable as exc:
            return False, f"Discord could not be reached to revoke the grant ({exc.reason})"
        return True, None

    async def delete_account(
        self,
        account_id: str,
        *,
        force: bool = False,
        revoke: bool = True,
        revoke_siblings: bool = False,
    ) -> DeleteOutcome:
        """Revoke the grant at Discord, then delete.

        Discord's revocation ends the whole grant of that Discord user and application, so other
        accounts linked to the same Discord user (:meth:`Vault.grant_siblings`) would stop
        working too: unless ``revoke_siblings`` is set, such a deletion is refused
        (:class:`ConflictError` ``SIBLINGS_AFFECTED``, nothing changed, the siblings listed);
        with it, they become ``DISCONNECTED`` with a reason and an event each. ``revoke=False``
        deletes here only (the grant stays alive at Discord, the siblings keep working).

        A revoke failure is reported: unless ``force`` is set the account is then kept
        (``REVOKE_FAILED``); with ``force`` it is deleted and the siblings are left alone.
        """
        account = await self.vault.get_account(account_id)
        connection = await self.vault.get_connection(account.connection_id)
        if not revoke:
            await self.vault.delete_account(account.id, revoked=False)
            return DeleteOutcome(account_id=account.id, revoked=False)
        if connection.client_id is not None and (
            account.refresh_token is not None or account.access_token is not None
        ):
            siblings = await self.vault.grant_siblings(account.id)
            if siblings and not revoke_siblings:
                names = ", ".join(repr(s.identifier) for s in siblings[:10])
                more = f" and {len(siblings) - 10} more" if len(siblings) > 10 else ""
                raise ConflictError(
                    f"revoking this account's grant at Discord would also disconnect "
                    f"{len(siblings)} other identifier(s) linked to the same Discord user: "
                    f"{names}{more}. Nothing was changed: pass revoke_siblings=true to revoke "
                    "anyway (they become DISCONNECTED), or revoke=false to delete this account "
                    "here only",
                    code="SIBLINGS_AFFECTED",
                    details={
                        "account_id": account.id,
                        "identifier": account.identifier,
                        "provider_user_id": account.provider_user_id,
                        "siblings": [s.public() for s in siblings],
                    },
                )
        revoked, revoke_error = await self._revoke(connection, account)
        if revoke_error is not None and not force:
            await self.vault.record_event(
                "account.revoke_failed",
                connection_id=connection.id,
                account_id=account.id,
                data={"reason": revoke_error},
            )
            raise ConflictError(
                f"{revoke_error}; the account was not deleted (retry, or force the deletion)",
                code="REVOKE_FAILED",
                details={"account_id": account.id},
            )
        disconnected = await self.vault.delete_account(
            account.id, revoked=revoked, disconnect_siblings=revoked
        )
        if disconnected:
            log.info(
                "deleting account %s revoked its Discord grant: %d other account(s) of the same "
                "Discord user are now DISCONNECTED",
                account.id,
                len(disconnected),
            )
        return DeleteOutcome(
            account_id=account.id,
            revoked=revoked,
            revoke_error=revoke_error,
            siblings_disconnected=tuple(disconnected),
        )

    async def connection_accounts(self, connection_id: str) -> list[AccountRecord]:
        accounts: list[AccountRecord] = []
        token: str | None = None
        while True:
            page = await self.vault.list_accounts(
                connection_id=connection_id, page_size=200, page_token=token, with_tokens=True
            )
            accounts.extend(page.items)
            token = page.next_page_token
            if not token:
                return accounts

    async def delete_connection(
        self,
        name: str,
        *,
        revoke: bool = True,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ConnectionDeleteOutcome:
        """Revoke every account's grant at Discord (``REVOKE_CONCURRENCY`` at a time;
        ``on_progress(done, total)`` after each), then delete the connection and its accounts.

        A revoke failure does not stop the deletion (the operator asked to remove the
        connection); each one is reported in the outcome, as an event and a WARNING line.
        ``revoke=False`` skips Discord (the grants stay alive there).
        """
        connection = await self.vault.get_connection_by_name(name)
        accounts = await self.connection_accounts(connection.id)
        holding = [a for a in accounts if a.refresh_token is not None or a.access_token is not None]
        if connection.client_id is None:
            holding = []  # bot tokens: nothing to revoke at Discord
        failures: list[RevokeFailure] = []
        revoked = 0
        if revoke and holding:
            gate = asyncio.Semaphore(REVOKE_CONCURRENCY)
            done = 0

            async def one(account: AccountRecord) -> tuple[AccountRecord, bool, str | None]:
                nonlocal done
                async with gate:
                    ok, error = await self._revoke(connection, account)
                done += 1
                if on_progress is not None:
                    on_progress(done, len(holding))
                return account, ok, error

            for account, ok, error in await asyncio.gather(*(one(a) for a in holding)):
                if ok:
                    revoked += 1
                elif error is not None:
                    failures.append(RevokeFailure(account.id, account.identifier, error))
            for failure in failures:
                await self.vault.record_event(
                    "account.revoke_failed",
                    connection_id=connection.id,
                    account_id=failure.account_id,
                    data={"reason": failure.error, "during": "connection.deleted"},
                )
            if failures:
                log.warning(
                    "deleting connection %r: %d of %d grant(s) could not be revoked at Discord "
                    "(first: %s); the connection is deleted anyway",
                    connection.name,
                    len(failures),
                    len(holding),
                    failures[0].error,
                )
        await self.vault.delete_connection(
            connection.id,
            summary={
                "accounts": len(accounts),
                "revoke_attempted": revoke,
                "revoked": revoked,
                "revoke_failed": len(failures),
            },
        )
        return ConnectionDeleteOutcome(
            connection=connection,
            accounts=len(accounts),
            with_tokens=len(holding),
            revoked=revoked,
            failures=tuple(failures),
            revoke_attempted=revoke,
        )

    async def find_account(self, connection_name: str, identifier: str) -> AccountRecord:
        connection = await self.vault.get_connection_by_name(connection_name)
        account = await self.vault.find_account(connection.id, identifier)
        if account is None:
            raise AccountNotFound(
                f"no connected account for identifier {identifier!r} on connection "
                f"{connection_name!r}",
                details={"connection_name": connection_name, "identifier": identifier},
            )
        return account


# -- outcomes ---------------------------------------------------------------------------------


def _unknown_connection() -> CallbackOutcome:
    return CallbackOutcome(
        ok=False,
        status_code=404,
        title="Unknown connection",
        message="This sign-in came back to a connection that does not exist here.",
        action="Check the redirect URI registered in Discord's Developer Portal, then "
        "start again from a new authorization link.",
        reason="unknown_connection",
    )


def _to_result(
    url: str, connection_name: str, *, account: AccountRecord | None = None
) -> CallbackOutcome:
    """Send the browser to the result page (303: the reload of a GET, never a re-POST)."""
    return CallbackOutcome(
        ok=True, status_code=303, redirect_to=url, connection_name=connection_name, account=account
    )


def _stored_outcome(
    connection_name: str, kind: str | None, data: Mapping[str, Any]
) -> CallbackOutcome:
    """The page for a consumed auth request, from the event its callback recorded."""
    if kind == "account.linked":
        username = data.get("username")
        return CallbackOutcome(
            ok=True,
            title="Discord connected",
            connection_name=connection_name,
            username=str(username) if username else None,
            pending_verification=data.get("status") == AccountStatus.PENDING_VERIFICATION.value,
        )
    if kind == "account.user_change_refused":
        return CallbackOutcome(
            ok=False,
            status_code=409,
            title="Another Discord account is already connected",
            message="This account of the application is already connected to a different "
            "Discord account, so the Discord account you approved with was not connected. "
            "Nothing was changed.",
            action="If you meant to switch Discord accounts, ask the application for a link "
            "that allows changing the Discord account; otherwise sign in to Discord as the "
            "account that is already connected.",
            connection_name=connection_name,
            reason="user_change_refused",
        )
    if kind == "authorization.exchange_failed":
        error = str(data.get("error") or "unknown")
        if error == "unavailable":
            return CallbackOutcome(
                ok=False,
                status_code=502,
                title="Discord could not be reached",
                message="Discord did not answer while completing the sign-in.",
                action="Wait a moment, then open a new authorization link.",
                connection_name=connection_name,
                reason="unavailable",
            )
        return CallbackOutcome(
            ok=False,
            status_code=400,
            title="Discord did not accept the sign-in",
            message=f"Exchanging the authorization code failed ({error}).",
            action="Open a new authorization link and try again. If it keeps failing, check "
            "the connection's client id, secret and redirect URI.",
            connection_name=connection_name,
            reason=error,
        )
    return CallbackOutcome(
        ok=False,
        status_code=409,
        title="Sign-in did not complete",
        message="This sign-in came back from Discord but did not finish.",
        action="Ask the application for a new authorization link.",
        connection_name=connection_name,
        reason="incomplete",
    )
