"""``ProviderClient``: one outbound call to the provider, done right.

Used by the tools and by the HTTP proxy alike. For each call it guards the path
(:func:`~tokenward.proxy.paths.safe_path`), injects the credential and a ``User-Agent``, passes
the :class:`~tokenward.proxy.ratelimit.RateLimiter`, sends through the
:class:`~tokenward.proxy.transport.Transport`, reports the answer to the limiter and then:

* **401** with a user or bot credential: asks the :class:`CredentialSource` to ``invalidate`` the
  failed token once (the source refreshes, single-flight, or says re-authorization is needed) and
  retries once with the new credential; a second 401, or no new credential, raises
  :class:`~tokenward.errors.ReauthorizationRequired`. The failed token is never sent again.
* **429**: the limiter has recorded the wait; the call is re-acquired (which waits, or raises
  :class:`~tokenward.errors.RateLimited` when the wait is over the bound) and resent, a few times
  at most. A 429 that is not Discord's JSON (Cloudflare) raises at once.
* **5xx and connection errors**: retried per :func:`~tokenward.proxy.retry.decide_retry`
  (idempotent methods, or nothing sent; capped exponential backoff with jitter) until the retry
  policy's ``deadline``, which is never past ``timeout``, counted from the first send (or from
  the resend after a 429 or a refreshed token: the limiter's waits have a bound of their own and
  do not eat the fault budget); each retry gets what is left of ``timeout``. The body is read
  before the answer is returned (with ``stream``, up to ``buffer_limit`` bytes), so an answer
  cut off mid-body is retried too. A streamed request body is never resent. When the budget
  runs out the caller learns how many attempts were made and when to try again (``attempts``
  and ``retry_after``: on the TransportError's details, or on the returned 5xx answer).
* everything else, success or error, is returned as it is, so the HTTP proxy passes it through;
  :func:`provider_error` turns an error answer into a structured error for tools.

No token ever appears in an exception, a log line or a repr.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol
from urllib.parse import urlencode, urlsplit

from tokenward.clock import Clock
from tokenward.errors import (
    ConfigError,
    ProviderError,
    RateLimited,
    ReauthorizationRequired,
    TokenwardError,
    ValidationError,
)
from tokenward.proxy.paths import safe_path
from tokenward.proxy.ratelimit import Limiter, route_of, token_identity
from tokenward.proxy.redaction import redact_text
from tokenward.proxy.retry import DEFAULT_POLICY, RetryPolicy, decide_retry, retry_hint
from tokenward.proxy.transport import (
    Transport,
    TransportError,
    UpstreamRequest,
    UpstreamResponse,
    strip_hop_by_hop,
)

CredentialKind = Literal["bearer", "bot", "none"]
# With ``stream=True``, answers up to this size are still read whole before they are returned.
DEFAULT_BUFFER_LIMIT = 1024 * 1024
METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
# Request headers a caller may not set: tokenward sets them, or they must not reach Discord.
_CALLER_HEADERS_DROPPED = frozenset(
    {
        "authorization",
        "host",
        "user-agent",
        "cookie",
        "content-length",
        "connection_name",
        "connection-name",
        "identifier",
    }
)


@dataclass(frozen=True, slots=True)
class Credential:
    """What to send as ``Authorization``. ``identity`` names it for the rate limiter: a stable key
    for the Discord identity behind the token (an account id, a bot user), or empty to use a hash
    of the Authorization value. ``scheme`` is the provider's auth scheme for this kind of token
    (``provider.yaml``: ``user_auth_scheme`` / ``bot_auth_scheme``); by default ``Bearer`` for a
    bearer credential and ``Bot`` for a bot one."""

    kind: CredentialKind
    token: str | None = field(default=None, repr=False)
    identity: str = ""
    scheme: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("bearer", "bot", "none"):
            raise ValueError("kind must be 'bearer', 'bot' or 'none'")
        if self.kind != "none" and not self.token:
            raise ValueError(f"a {self.kind} credential needs a token")
        if self.scheme is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", self.scheme):
            raise ValueError("scheme must be one word")

    def authorization(self) -> str | None:
        if self.kind == "none" or not self.token:
            return None
        scheme = self.scheme or ("Bearer" if self.kind == "bearer" else "Bot")
        return f"{scheme} {self.token}"

    def rate_limit_identity(self) -> str:
        if self.kind == "none":
            return "ip"
        return self.identity or token_identity(self.authorization())


ANONYMOUS = Credential("none", None, "ip")


class CredentialSource(Protocol):
    """Where a call's credential comes from (the vault-backed account, a bot token, nothing).

    ``invalidate(failed_token)`` is called after a 401: refresh (single-flight is the source's
    job; a caller whose failed token is no longer the stored one just gets the stored one) and
    return the new credential, or None when the user must authorize again (the source marks the
    account). It may also raise ReauthorizationRequired itself, with a link in its details.
    """

    async def get(self) -> Credential: ...

    async def invalidate(self, failed_token: str | None) -> Credential | None: ...


class StaticCredentials:
    """A fixed credential (a bot token, or none); a 401 cannot be repaired."""

    def __init__(self, credential: Credential = ANONYMOUS) -> None:
        self._credential = credential

    def __repr__(self) -> str:
        return f"StaticCredentials(kind={self._credential.kind!r})"

    async def get(self) -> Credential:
        return self._credential

    async def invalidate(self, failed_token: str | None) -> Credential | None:
        return None


QueryValue = str | int | float | bool | None | Sequence[str | int | float | bool]
Query = Mapping[str, QueryValue] | Iterable[tuple[str, str | int | float | bool]]


def _query_pairs(query: Query | None) -> list[tuple[str, str]]:
    if not query:
        return []

    def text(value: str | int | float | bool) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    pairs: list[tuple[str, str]] = []
    items = query.items() if isinstance(query, Mapping) else query
    for key, value in items:
        if value is None:
            continue
        if isinstance(value, list | tuple):
            pairs.extend((str(key), text(item)) for item in value)
        else:
            pairs.append((str(key), text(value)))  # type: ignore[arg-type]
    return pairs


def _json_body(content: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _discord_fields(body: dict[str, Any] | None) -> dict[str, Any]:
    if not body:
        return {}
    out: dict[str, Any] = {}
    if isinstance(body.get("code"), int):
        out["code"] = body["code"]
    if isinstance(body.get("message"), str):
        out["message"] = redact_text(body["message"])[:500]
    return out


def _counted(error: RateLimited, attempts: int) -> RateLimited:
    error.details["attempts"] = attempts
    return error


class UpstreamObserver(Protocol):
    """Receives one call per answer from the provider (metrics)."""

    def record_upstream(self, method: str, route: str, status: int, seconds: float) -> None: ...

    def record_rate_limited(self, scope: str | None) -> None: ...


class ProviderClient:
    """Sends one request to the provider with credentials, rate limits, retries and a path guard."""

    def __init__(
        self,
        *,
        transport: Transport,
        limiter: Limiter,
        clock: Clock,
        base_url: str,
        user_agent: str,
        base_prefix: str = "/api",
        retry_policy: RetryPolicy = DEFAULT_POLICY,
        rand: Callable[[], float] = random.random,
        max_rate_limit_retries: int = 3,
        timeout: float | None = None,
        observer: UpstreamObserver | None = None,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(
                "base_url must be an http(s) URL with a host",
                details={"field": "base_url", "reason": "not an http(s) URL with a host"},
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigError(
                "base_url must not carry credentials, a query or a fragment",
                details={"field": "base_url", "reason": "credentials, query or fragment present"},
            )
        if not user_agent or any(ord(c) < 0x20 for c in user_agent):
            raise ConfigError(
                "user_agent must be a non-empty single line",
                details={"field": "user_agent", "reason": "empty or has control characters"},
            )
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.limiter = limiter
        self.clock = clock
        self.user_agent = user_agent
        self.base_prefix = base_prefix
        if timeout is not None and retry_policy.deadline > timeout:
            # Retries never outlast the upstream timeout: a call ends within it.
            retry_policy = replace(retry_policy, deadline=timeout)
        self.retry_policy = retry_policy
        self.buffer_limit = buffer_limit
        self.rand = rand
        self.max_rate_limit_retries = max_rate_limit_retries
        self.timeout = timeout
        self.observer = observer

    def __repr__(self) -> str:
        return f"ProviderClient(base_url={self.base_url!r})"

    def url_for(self, path: str, query: Query | None = None) -> str:
        """The absolute URL for ``path`` (guarded; raises PathRejected) and ``query``."""
        url = self.base_url + safe_path(path, self.base_prefix)
        pairs = _query_pairs(query)
        return f"{url}?{urlencode(pairs)}" if pairs else url

    async def request(
        self,
        method: str,
        path: str,
        *,
        credentials: CredentialSource,
        query: Query | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | AsyncIterable[bytes] | None = None,
        stream: bool = False,
        max_wait: float | None = None,
        retry_safe: bool = False,
    ) -> UpstreamResponse:
        """Send one call. Returns the provider's answer with its body read: whole, or with
        ``stream`` whole when it is at most ``buffer_limit`` bytes and otherwise after its first
        ``buffer_limit`` bytes, the rest left to ``iter_bytes``. Reading before returning is what
        lets an answer cut off mid-body be retried like any other failure. The answer's
        ``attempts`` says how many requests were sent; a transient error status given up on has
        ``retry_after``.

        ``retry_safe`` marks a call of a non-idempotent method that may be repeated all the same
        (a message with a ``nonce`` and ``enforce_nonce``): it is retried like a GET. Any other
        POST or PATCH is never resent once it may have reached Discord.

        Raises PathRejected / ValidationError before anything is sent; RateLimited,
        ReauthorizationRequired or TransportError (UPSTREAM_UNAVAILABLE, with ``attempts`` and
        ``retry_after`` in its details) when no usable answer could be had. Other error statuses
        come back as responses.
        """
        verb = method.upper()
        if verb not in METHODS:
            raise ValidationError(
                f"method {verb!r} is not supported",
                fields={"method": f"must be one of {', '.join(sorted(METHODS))}"},
            )
        guarded = safe_path(path, self.base_prefix)
        url = self.url_for(guarded, query)
        route = route_of(verb, guarded)
        replayable = body is None or isinstance(body, bytes)
        forwarded = strip_hop_by_hop(headers, _CALLER_HEADERS_DROPPED)
        credential = await credentials.get()
        safe = True if retry_safe else None
        failed_token: str | None = None
        refreshed = False
        attempt = 0  # tries since the credential changed or a 429: the backoff's step
        sends = 0  # every request sent for this call
        started = 0.0  # when the retry budget started: the first send, or the first after a 429
        fresh_budget = True
        rate_limited = 0
        while True:
            attempt += 1
            failure: TransportError | None = None
            response: UpstreamResponse | None = None
            error_body: dict[str, Any] | None = None
            identity = credential.rate_limit_identity()
            if credential.kind == "none" and route.identity is not None:
                # A webhook-token or interaction route: limited per webhook or interaction, not
                # against the gateway IP's budget shared by every anonymous call.
                identity = route.identity
            async with self.limiter.acquire(
                route.key, identity, route.major, max_wait=max_wait
            ) as slot:
                # The wait for a slot may have outlived the token (another call refreshed it):
                # take the current one, so a queued call does not spend an invalid request.
                current = await credentials.get()
                if current.token != failed_token:
                    credential = current
                out_headers = [*forwarded, ("User-Agent", self.user_agent)]
                authorization = credential.authorization()
                if authorization is not None:
                    out_headers.append(("Authorization", authorization))
                now = self.clock.monotonic()
                if fresh_budget:
                    started, fresh_budget = now, False
                upstream = UpstreamRequest(
                    verb,
                    url,
                    tuple(out_headers),
                    body,
                    self._attempt_timeout(started, now),
                    read_whole_below=self.buffer_limit,
                )
                sends += 1
                sent_at = time.perf_counter()
                try:
                    response = await self.transport.send(upstream)
                except TransportError as exc:
                    failure = exc
                if self.observer is not None:
                    self.observer.record_upstream(
                        verb,
                        route.key.partition(" ")[2],
                        response.status if response is not None else 0,
                        time.perf_counter() - sent_at,
                    )
                    if response is not None and response.status == 429:
                        self.observer.record_rate_limited(response.headers.get("X-RateLimit-Scope"))
                if response is not None:
                    if response.status == 429:
                        try:
                            error_body = _json_body(await response.read())
                        except TransportError:
                            error_body = None
                        retry_after = error_body.get("retry_after") if error_body else None
                        slot.update(
                            429,
                            response.headers,
                            float(retry_after) if isinstance(retry_after, int | float) else None,
                            bool(error_body.get("global")) if error_body else False,
                        )
                    else:
                        slot.update(response.status, response.headers)

            if failure is not None:
                if replayable and await self._pause(verb, attempt, None, failure, started, safe):
                    continue
                raise self._give_up(verb, attempt, sends, started, failure, safe) from failure
            assert response is not None
            response.attempts = sends
            status = response.status

            if status == 401 and credential.kind != "none":
                details = _discord_fields(_json_body(await self._read_small(response)))
                if refreshed:
                    raise ReauthorizationRequired(
                        "Discord rejected the refreshed credential too; the account must be "
                        "authorized again",
                        details={"status": 401, **details},
                    )
                refreshed = True
                failed_token = credential.token
                renewed = await credentials.invalidate(credential.token)
                if renewed is None:
                    raise ReauthorizationRequired(
                        "Discord rejected the credential and it could not be refreshed; the "
                        "account must be authorized again",
                        details={"status": 401, **details},
                    )
                credential = renewed
                if not replayable:
                    return response  # a streamed body cannot be sent twice; the next call can
                attempt, fresh_budget = 0, True
                continue

            if status == 429:
                retry_after = self._retry_after(response, error_body)
                if error_body is None or "retry_after" not in error_body:
                    raise _counted(
                        RateLimited(
                            "rate limited by the provider's edge (not a Discord API limit); wait "
                            "before calling again",
                            retry_after=retry_after,
                            scope="cloudflare",
                        ),
                        sends,
                    )
                rate_limited += 1
                scope = response.headers.get("X-RateLimit-Scope") or (
                    "global" if error_body.get("global") else "user"
                )
                if rate_limited > self.max_rate_limit_retries or not replayable:
                    raise _counted(
                        RateLimited(
                            f"rate limited by Discord ({scope}); retry after {retry_after:.3f}s",
                            retry_after=retry_after,
                            scope=scope,
                        ),
                        sends,
                    )
                # The limiter has waited out (or will wait out) retry_after, within its own
                # bound; faults after that get a budget of their own.
                attempt, fresh_budget = 0, True
                continue

            if status >= 500:
                if replayable and await self._pause(verb, attempt, response, None, started, safe):
                    continue
                response.retry_after = retry_hint(
                    verb,
                    attempt,
                    status,
                    None,
                    response.headers,
                    policy=self.retry_policy,
                    idempotent=safe,
                )

            try:
                if stream:
                    await response.buffer(self.buffer_limit)
                else:
                    await response.read()
            except TransportError as exc:  # the answer broke off mid-body
                await response.aclose()
                if replayable and await self._pause(verb, attempt, None, exc, started, safe):
                    continue
                raise self._give_up(verb, attempt, sends, started, exc, safe) from exc
            return response

    def _attempt_timeout(self, started: float, now: float) -> float | None:
        """A retry gets what is left of the first attempt's timeout: however many attempts it
        takes, a call ends within ``timeout`` of its first send."""
        if self.timeout is None:
            return None
        return max(0.001, min(self.timeout, started + self.timeout - now))

    async def _pause(
        self,
        verb: str,
        attempt: int,
        response: UpstreamResponse | None,
        failure: TransportError | None,
        started: float,
        idempotent: bool | None,
    ) -> bool:
        """Decide (:func:`decide_retry`) and, when retrying, wait the backoff. True to retry."""
        decision = decide_retry(
            verb,
            attempt,
            response.status if response is not None else None,
            failure.kind if failure is not None else None,
            response.headers if response is not None else None,
            elapsed=self.clock.monotonic() - started,
            policy=self.retry_policy,
            rand=self.rand,
            idempotent=idempotent,
        )
        if not decision.retry:
            return False
        if response is not None:
            await response.aclose()
        await self.clock.sleep(decision.wait)
        return True

    def _give_up(
        self,
        verb: str,
        attempt: int,
        sends: int,
        started: float,
        failure: TransportError,
        idempotent: bool | None,
    ) -> TransportError:
        return failure.gave_up(
            attempts=sends,
            seconds=self.clock.monotonic() - started,
            retry_after=retry_hint(
                verb, attempt, None, failure.kind, policy=self.retry_policy, idempotent=idempotent
            ),
        )

    @staticmethod
    async def _read_small(response: UpstreamResponse) -> bytes:
        try:
            return await response.read()
        except TransportError:
            return b""

    @staticmethod
    def _retry_after(response: UpstreamResponse, body: dict[str, Any] | None) -> float:
        value = body.get("retry_after") if body else None
        if isinstance(value, int | float) and value >= 0:
            return float(value)
        for name in ("Retry-After", "X-RateLimit-Reset-After"):
            header = response.headers.get(name)
            if header is not None:
                try:
                    return max(0.0, float(header))
                except ValueError:
                    continue
        return 1.0


# -- error answers → structured errors ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorMapping:
    """How a provider's error answers read to a caller: its name, a hint per error code, and the
    OAuth2 scope each route needs (for a "missing scope" answer that does not name it). Loaded
    from the provider's folder (``errors.yaml``, see :mod:`tokenward.connectors`)."""

    provider: str = "The provider"
    hints: Mapping[int, str] = field(default_factory=dict)
    scopes_by_route: tuple[tuple[re.Pattern[str], str], ...] = ()

    def scope_for_path(self, path: str) -> str | None:
        """The OAuth2 scope a route needs, from its path (``/api/v10/...`` or ``/...``)."""
        relative = re.sub(r"^/api(/v\d+)?", "", path.split("?", 1)[0])
        for pattern, scope in self.scopes_by_route:
            if pattern.match(relative):
                return scope
        return None


GENERIC_ERRORS = ErrorMapping()


def _flatten_errors(tree: Any, prefix: str = "") -> dict[str, str]:
    """Discord's nested ``errors`` tree as ``{"field.0.name": "message; message"}``."""
    out: dict[str, str] = {}
    if not isinstance(tree, dict):
        return out
    for key, value in tree.items():
        if key == "_errors" and isinstance(value, list):
            messages = [
                str(item.get("message", item.get("code", "")))
                for item in value
                if isinstance(item, dict)
            ]
            out[prefix or "_request"] = redact_text("; ".join(messages))[:500]
        elif isinstance(value, dict):
            out.update(_flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def provider_error(
    status: int,
    content: bytes | dict[str, Any] | None,
    headers: Mapping[str, str] | None = None,
    *,
    path: str | None = None,
    required_scopes: Sequence[str] | None = None,
    authorization_link: str | None = None,
    attempts: int | None = None,
    retry_after: float | None = None,
    errors: ErrorMapping = GENERIC_ERRORS,
) -> TokenwardError:
    """A structured error for an error answer: the provider's status, code and message in
    ``details.discord``, and a ``details.hint`` an agent can act on (from the provider's
    ``errors`` mapping where it has one for the code). A 429 becomes RateLimited. A 5xx also says
    how many ``attempts`` were made and, when trying again may help, ``retry_after`` (in
    ``details`` and as an HTTP ``Retry-After``)."""
    body = content if isinstance(content, dict) else _json_body(content) if content else None
    discord: dict[str, Any] = {"status": status, **_discord_fields(body)}
    code = discord.get("code")
    message = discord.get("message") or f"HTTP {status}"
    details: dict[str, Any] = {"discord": discord}
    if body and isinstance(body.get("errors"), dict):
        details["errors"] = _flatten_errors(body["errors"])

    if status == 429:
        retry_after = body.get("retry_after") if body else None
        if not isinstance(retry_after, int | float):
            header = (headers or {}).get("Retry-After")
            try:
                retry_after = float(header) if header is not None else 1.0
            except ValueError:
                retry_after = 1.0
        scope = (headers or {}).get("X-RateLimit-Scope")
        return RateLimited(
            f"rate limited by Discord; retry after {float(retry_after):.3f}s",
            retry_after=float(retry_after),
            scope=scope,
        )

    hint: str
    if code == 50026:
        scopes = list(required_scopes or [])
        if not scopes and path and (guess := errors.scope_for_path(path)):
            scopes = [guess]
        details["missing_scopes"] = scopes
        named = ", ".join(scopes) if scopes else "the scope this call needs"
        hint = (
            f"The account did not grant the OAuth2 scope {named}; send the user a new "
            "authorization link that includes it."
        )
        if authorization_link:
            details["authorization_link"] = authorization_link
    elif isinstance(code, int) and code in errors.hints:
        hint = errors.hints[code]
    elif status == 401:
        hint = "The credential was rejected; the account must be authorized again."
        if authorization_link:
            details["authorization_link"] = authorization_link
    elif status == 403:
        hint = "The credential lacks permission for this resource; do not retry."
    elif status == 404:
        hint = "Not found: check the ids and codes in the request."
    elif status >= 500:
        hint = f"{errors.provider} had a server error; retry later."
        if attempts is not None:
            details["attempts"] = attempts
        if retry_after is not None:
            details["retry_after"] = retry_after
            hint = f"{errors.provider} had a server error; retry after {retry_after:g}s."
    else:
        hint = f"{errors.provider} refused the request; check the input."
    details["hint"] = hint
    error = ProviderError(
        f"{errors.provider} answered {status}: {message}", details=details, status=status
    )
    if status >= 500 and retry_after is not None:
        # The HTTP API's error handler sends these headers with the envelope.
        retry_header = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        error.headers = retry_header  # type: ignore[attr-defined]
    return error


def error_from_response(
    response: UpstreamResponse,
    *,
    path: str | None = None,
    required_scopes: Sequence[str] | None = None,
    authorization_link: str | None = None,
    errors: ErrorMapping = GENERIC_ERRORS,
) -> TokenwardError:
    """:func:`provider_error` for a response whose body has been read."""
    return provider_error(
        response.status,
        response.content,
        response.headers,
        path=path,
        required_scopes=required_scopes,
        authorization_link=authorization_link,
        attempts=response.attempts,
        retry_after=response.retry_after,
        errors=errors,
    )
