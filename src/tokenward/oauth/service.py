"""The authorization lifecycle: links, the callback, verification, deletion with revocation.

``OAuthService`` knows the vault and Discord's OAuth endpoints (through the
:class:`~tokenward.oauth.discord.OAuthEndpoints` protocol) and nothing about HTTP servers: the
server turns its :class:`CallbackOutcome` into a page or a redirect.

Security properties (tested in ``tests/integration/test_oauth_lifecycle.py``):

- a link is ``{PUBLIC_URL}/connect/{auth_request_id}``; every visit mints a fresh 256-bit state and
  a fresh PKCE verifier (only the state's hash and the encrypted verifier are stored) and
  redirects to Discord with ``code_challenge_method=S256``;
- the callback claims the state atomically (single use, unexpired, same connection): a replayed,
  expired, forged or foreign state changes nothing;
- the code is exchanged with the verifier; tokens are stored encrypted before anything else is
  done with them; ``identify`` lets us record the Discord user id;
- with a ``user_verify_url`` the account waits in ``PENDING_VERIFICATION`` until the application
  confirms the identifier.
"""

from __future__ import annotations

import logging
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
from tokenward.oauth.discord import (
    ClientCredentials,
    OAuthEndpoints,
    OAuthRejected,
    OAuthUnavailable,
)
from tokenward.vault.models import AccountStatus
from tokenward.vault.repository import AccountRecord, ConnectionRecord, Vault

log = logging.getLogger("tokenward.oauth")

IDENTIFIER_MAX = 255


@dataclass(frozen=True)
class AuthorizationLink:
    link: str
    expires_at: float
    auth_request_id: str
    account: AccountRecord


@dataclass(frozen=True)
class CallbackOutcome:
    """What the callback page should show (or where to send the browser)."""

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


def client_credentials(connection: ConnectionRecord) -> ClientCredentials:
    return ClientCredentials(connection.client_id, connection.client_secret.get_secret_value())


def _validate_identifier(identifier: str) -> None:
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


class OAuthService:
    def __init__(
        self,
        vault: Vault,
        endpoints: OAuthEndpoints,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.vault = vault
        self.endpoints = endpoints
        self.settings = settings
        self.clock = clock

    # -- links ---------------------------------------------------------------------------------

    def redirect_uri(self, connection_id: str) -> str:
        return f"{self.settings.public_base}/sso/v1/oauth/{connection_id}/callback"

    def link_url(self, auth_request_id: str) -> str:
        return f"{self.settings.public_base}/connect/{auth_request_id}"

    async def create_link(
        self,
        connection_name: str,
        identifier: str,
        *,
        user_verify_url: str | None = None,
        state: str | None = None,
    ) -> AuthorizationLink:
        """Create (or reuse) the account in ``PENDING_AUTH`` unless it is already linked, and a
        single-use authorization request; returns the link to send to the user."""
        _validate_identifier(identifier)
        if state is not None and len(state) > 1024:
            raise ValidationError("state is too long", fields={"state": "at most 1024 characters"})
        connection = await self.vault.get_connection_by_name(connection_name)
        account = await self.vault.get_or_create_account(connection.id, identifier)
        request = await self.vault.create_auth_request(
            connection_id=connection.id,
            account_id=account.id,
            identifier=identifier,
            state=pkce.new_state(),  # replaced by a fresh one when the link is opened
            code_verifier=pkce.new_verifier(),
            redirect_uri=self.redirect_uri(connection.id),
            ttl_seconds=self.settings.link_ttl_seconds,
            user_verify_url=user_verify_url,
            app_state=state,
        )
        return AuthorizationLink(
            link=self.link_url(request.id),
            expires_at=request.expires_at,
            auth_request_id=request.id,
            account=account,
        )

    async def begin(self, auth_request_id: str) -> str:
        """The Discord authorize URL for a link that is still pending, with a fresh state and
        verifier. Raises :class:`NotFoundError` for an unknown, used or expired link."""
        state = pkce.new_state()
        verifier = pkce.new_verifier()
        request = await self.vault.restate_auth_request(
            auth_request_id, state=state, code_verifier=verifier
        )
        if request is None:
            raise NotFoundError(
                "This authorization link is unknown, expired or already used.",
                code="LINK_INVALID",
            )
        connection = await self.vault.get_connection(request.connection_id)
        return self.endpoints.authorize_url(
            client_id=connection.client_id,
            redirect_uri=request.redirect_uri,
            scopes=connection.scopes,
            state=state,
            code_challenge=pkce.challenge(verifier),
        )

    # -- callback ------------------------------------------------------------------------------

    async def complete(self, connection_id: str, params: dict[str, str]) -> CallbackOutcome:
        """Handle ``GET /sso/v1/oauth/{connection_id}/callback``. Never raises for bad input."""
        try:
            connection = await self.vault.get_connection(connection_id)
        except NotFoundError:
            return CallbackOutcome(
                ok=False,
                status_code=404,
                title="Unknown connection",
                message="This sign-in came back to a connection that does not exist here.",
                action="Check the redirect URI registered in Discord's Developer Portal, then "
                "start again from a new authorization link.",
                reason="unknown_connection",
            )
        state = params.get("state") or ""
        error = params.get("error")
        code = params.get("code")
        if not state:
            return self._refused(
                "missing_state",
                "Sign-in could not be verified",
                "Discord sent no state, so this sign-in cannot be matched to a request.",
            )
        if error:
            pending = await self.vault.inspect_auth_request(state)
            if pending is None or pending.connection_id != connection_id:
                return self._refused(
                    "unknown_state",
                    "Sign-in could not be verified",
                    "This sign-in does not match any pending authorization request.",
                )
            await self.vault.record_event(
                "authorization.denied" if error == "access_denied" else "authorization.error",
                connection_id=connection_id,
                account_id=pending.account_id,
                data={"error": error[:64]},
            )
            if error == "access_denied":
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
            return CallbackOutcome(
                ok=False,
                status_code=400,
                title="Discord refused the request",
                message=f"Discord answered with the error '{error[:64]}'.",
                action="Ask the application for a new authorization link. If it happens again, "
                "the connection's scopes or redirect URI may be misconfigured.",
                connection_name=connection.name,
                reason=error[:64],
            )
        if not code:
            return self._refused(
                "missing_code",
                "Sign-in incomplete",
                "Discord sent neither an authorization code nor an error.",
            )
        request = await self.vault.consume_auth_request(state, connection_id)
        if request is None:
            known = await self.vault.inspect_auth_request(state)
            if known is None or known.connection_id != connection_id:
                why = "This sign-in does not match any pending authorization request."
                reason = "unknown_state"
            elif known.consumed_at is not None:
                why = "This sign-in was already completed once; a link works only once."
                reason = "replayed_state"
            else:
                why = "This authorization request has expired."
                reason = "expired_state"
            return self._refused(reason, "Sign-in could not be verified", why)
        credentials = client_credentials(connection)
        try:
            tokens = await self.endpoints.exchange_code(
                credentials,
                code=code,
                redirect_uri=request.redirect_uri,
                code_verifier=request.code_verifier.get_secret_value(),
            )
        except OAuthRejected as exc:
            await self.vault.record_event(
                "authorization.exchange_failed",
                connection_id=connection_id,
                account_id=request.account_id,
                data={"error": exc.error, "status": exc.status},
            )
            return CallbackOutcome(
                ok=False,
                status_code=400,
                title="Discord did not accept the sign-in",
                message=f"Exchanging the authorization code failed ({exc.error}).",
                action="Open a new authorization link and try again. If it keeps failing, check "
                "the connection's client id, secret and redirect URI.",
                connection_name=connection.name,
                reason=exc.error,
            )
        except OAuthUnavailable as exc:
            await self.vault.record_event(
                "authorization.exchange_failed",
                connection_id=connection_id,
                account_id=request.account_id,
                data={"error": "unavailable", "reason": exc.reason},
            )
            return CallbackOutcome(
                ok=False,
                status_code=502,
                title="Discord could not be reached",
                message="Discord did not answer while completing the sign-in.",
                action="Wait a moment, then open a new authorization link.",
                connection_name=connection.name,
                reason="unavailable",
            )
        user_id: str | None = None
        username: str | None = None
        if "identify" in tokens.scopes:
            try:
                me = await self.endpoints.current_user(tokens.access_token)
                user_id = str(me.get("id")) if me.get("id") else None
                username = str(me.get("global_name") or me.get("username") or "") or None
            except OAuthUnavailable:
                log.warning(
                    "could not read /users/@me after linking account %s", request.account_id
                )
        status = (
            AccountStatus.PENDING_VERIFICATION if request.user_verify_url else AccountStatus.ACTIVE
        )
        account = await self.vault.store_tokens_after_callback(
            request.account_id,
            auth_request_id=request.id,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=self.clock.time() + tokens.expires_in,
            granted_scopes=tokens.scopes,
            provider_user_id=user_id,
            status=status,
        )
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
        return CallbackOutcome(
            ok=True,
            title="Discord connected",
            connection_name=connection.name,
            username=username,
            account=account,
        )

    @staticmethod
    def _refused(reason: str, title: str, message: str) -> CallbackOutcome:
        return CallbackOutcome(
            ok=False,
            status_code=400,
            title=title,
            message=message,
            action="Nothing was changed. Ask the application for a new authorization link and "
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

    async def delete_account(self, account_id: str, *, force: bool = False) -> DeleteOutcome:
        """Revoke the grant at Discord, then delete. A revoke failure is reported; unless
        ``force`` is set the account is then kept (marked ``DISCONNECTED`` is not done silently)."""
        account = await self.vault.get_account(account_id)
        connection = await self.vault.get_connection(account.connection_id)
        token = account.refresh_token or account.access_token
        revoked = False
        revoke_error: str | None = None
        if token is not None:
            try:
                await self.endpoints.revoke(
                    client_credentials(connection),
                    token.get_secret_value(),
                    "refresh_token" if account.refresh_token is not None else "access_token",
                )
                revoked = True
            except OAuthRejected as exc:
                revoke_error = f"Discord refused the revocation ({exc.error})"
            except OAuthUnavailable as exc:
                revoke_error = f"Discord could not be reached to revoke the grant ({exc.reason})"
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
        await self.vault.delete_account(account.id)
        return DeleteOutcome(account_id=account.id, revoked=revoked, revoke_error=revoke_error)

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
