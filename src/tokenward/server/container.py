"""The composition root: builds every service from :class:`~tokenward.config.Settings`.

Everything else receives what it needs as arguments; tests build a ``Container`` with their own
settings and clock instead of patching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tokenward import __version__
from tokenward.clock import Clock, SystemClock
from tokenward.config import Settings
from tokenward.connectors import Connector, Connectors
from tokenward.events.delivery import AiohttpSender, Deliverer
from tokenward.events.relay import DiscordRelay
from tokenward.events.service import WebhookService
from tokenward.mcp.sessions import RevocationCache
from tokenward.oauth.endpoints import OAuthEndpoints
from tokenward.oauth.refresh import TokenManager
from tokenward.oauth.service import OAuthService, no_oauth
from tokenward.proxy.accounts import AccountDirectory
from tokenward.proxy.client import ProviderClient
from tokenward.proxy.ratelimit import Limiter, RateLimiter
from tokenward.proxy.retry import RetryPolicy
from tokenward.proxy.transport import AiohttpTransport, Http1Transport, Timeouts, Transport
from tokenward.server.api.observability import Metrics
from tokenward.server.bookkeeping import Bookkeeper
from tokenward.server.bot_accounts import BotAccounts
from tokenward.server.janitor import Janitor
from tokenward.server.readiness import Readiness
from tokenward.shared import RESYNC, SharedRedis
from tokenward.tools.runner import ToolRunner
from tokenward.vault.admins import AdminStore
from tokenward.vault.mcp_sessions import McpSessionStore
from tokenward.vault.repository import ConnectionRecord, Vault
from tokenward.vault.webhooks import EventLinks, WebhookStore

log = logging.getLogger("tokenward")

DISCORD_BASE_URL = "https://discord.com"
"""The base URL ``TOKENWARD_DISCORD_BASE_URL`` replaces in every provider that names it."""


class Container:
    """Owns the process-wide resources (database engine, HTTP transport) and the services."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.vault = Vault.from_settings(settings, self.clock)
        self._oauth: OAuthService | None = None
        self._tokens: TokenManager | None = None
        self.transport: Transport = transport or (
            Http1Transport if settings.upstream_client == "http1" else AiohttpTransport
        )(
            timeouts=Timeouts(total=settings.upstream_timeout_seconds),
            max_response_bytes=settings.max_response_bytes,
        )
        # Every provider folder, at run time: connection.provider picks one (OAuth endpoints
        # or none, auth schemes, base URL, error mapping, tools). OAuth calls share the transport.
        self.connectors = Connectors.build(
            transport=self.transport,
            version=__version__,
            base_urls={DISCORD_BASE_URL: settings.discord_base},
            oauth_timeout=settings.upstream_timeout_seconds,
        )
        self.catalog = self.connectors  # every provider's tools, as one catalog
        self.metrics = Metrics()
        self.directory = AccountDirectory(self.vault, self.clock)
        # With Redis: rate limits shared by every replica and worker, and invalidations that
        # reach them all at once (tokenward.shared); without it (or while it is away), limits
        # are this process's own.
        self.shared: SharedRedis | None = None
        self.limiter: Limiter
        self._invalidation_hooks: list[Callable[[str, str], None]] = []
        if settings.redis_url:
            from tokenward.proxy.redis_ratelimit import RedisRateLimiter

            self.shared = SharedRedis(
                settings.redis_url,
                self.clock,
                prefix=settings.redis_prefix,
                on_state=self.metrics.record_redis,
            )
            self.metrics.record_redis(True)
            self.shared.subscribe(self._invalidated)
            self.limiter = RedisRateLimiter(
                self.shared, self.clock, max_wait=settings.max_rate_limit_wait_seconds
            )
        else:
            self.metrics.record_redis(False)
            self.limiter = RateLimiter(self.clock, max_wait=settings.max_rate_limit_wait_seconds)
        self.bookkeeper = Bookkeeper(self.vault, self.clock)
        self.readiness = Readiness(settings, self.vault, shared=self.shared)
        self.vault.event_links = EventLinks(settings.public_base, settings.event_link_ttl_seconds)
        self.webhooks = WebhookStore(self.vault)
        self.admins = AdminStore(self.vault, session_ttl=settings.dashboard_session_ttl_seconds)
        self.webhook_service = WebhookService(self.webhooks, settings)
        self.deliverer = Deliverer(
            self.webhooks,
            self.clock,
            AiohttpSender(allow_loopback=settings.webhooks_allow_insecure),
            poll_interval=settings.webhooks_poll_interval_seconds,
            first_retry=settings.webhooks_first_retry_seconds,
            max_attempts=settings.webhooks_max_attempts,
            disable_after=settings.webhooks_disable_after_seconds,
            timeout=settings.webhooks_timeout_seconds,
        )
        self.vault.on_outbox = self.deliverer.wake
        # Discord's interactions go to the application synchronously, on a pool of their own.
        self.relay = DiscordRelay(
            self.webhooks,
            self.deliverer,
            AiohttpSender(allow_loopback=settings.webhooks_allow_insecure),
            budget=settings.discord_interaction_timeout_seconds,
            on_outcome=self.metrics.record_discord_inbound,
        )
        self.janitor = Janitor(
            self.vault,
            self.clock,
            pending_ttl=settings.pending_account_ttl_seconds,
            interval=settings.janitor_interval_seconds,
            ready=lambda: self.readiness.prepared,
            purge_events=lambda older_than: self.webhooks.purge(older_than=older_than),
            event_retention=settings.webhooks_retention_seconds,
            purge_sessions=self._purge_sessions,
        )
        self._clients: dict[tuple[str, str, str], ProviderClient] = {}
        self._runner: ToolRunner | None = None
        self.mcp_sessions = McpSessionStore(self.vault)
        self.mcp_revocations = RevocationCache(
            self.mcp_sessions.is_revoked,
            self.clock,
            ttl=settings.mcp_revocation_cache_seconds,
        )
        self.bot_accounts = BotAccounts(
            self.vault, self.connectors, self.client_for, self.directory
        )

    async def start(self, *, migrate: bool | None = None, serving: bool = False) -> None:
        """Reach and migrate the database (SQLite by default) and check the keys against it
        (:mod:`tokenward.server.readiness`). ``serving``: tolerate a database that is not ready
        yet (``/readyz`` says why) and run the janitor."""
        self.readiness.migrate = migrate if migrate is not None else self.settings.is_sqlite
        if serving:
            self.readiness.on_ready(self._start_delivery)
        await self.readiness.start(serving=serving)
        if self.shared is not None and serving:
            await self.shared.ping()  # logs a warning now if Redis is away at start
            self.shared.start()
        self.bookkeeper.start()
        if serving:
            self.janitor.start()

    async def close(self) -> None:
        if self._tokens is not None:
            # Refreshes in flight finish (and are stored) before anything is closed.
            await self._tokens.drain(self.settings.shutdown_grace_seconds)
        await self.relay.close()
        await self.deliverer.close()
        await self.janitor.close()
        await self.readiness.close()
        await self.bookkeeper.close()
        await self.limiter.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        await self.transport.aclose()
        await self.vault.close()

    # -- invalidations ---------------------------------------------------------------------------

    def on_invalidation(self, hook: Callable[[str, str], None]) -> None:
        """Also call ``hook(kind, value)`` for every invalidation (the app's API-token cache)."""
        self._invalidation_hooks.append(hook)

    def announce(self, kind: str, value: str) -> None:
        """Drop cached state here and in every other process sharing Redis.

        ``kind``: ``connection`` (value: its name), ``account`` (its id), ``account_key``
        (``connection_id`` and ``identifier`` separated by a newline), ``api_client`` (its
        client id) or ``mcp_session`` (a revoked session's id). Without Redis (or while it is
        away) only this process drops it; the others re-read when their cache entries expire.
        """
        self._invalidated(kind, value)
        if self.shared is not None:
            self.shared.publish(kind, value)

    def _invalidated(self, kind: str, value: str) -> None:
        directory = self.directory
        if kind == "connection":
            directory.forget_connection(value)
        elif kind == "account":
            directory.forget_by_id(value)
        elif kind == "account_key":
            connection_id, _, identifier = value.partition("\n")
            directory.forget(connection_id, identifier)
        elif kind == "mcp_session":
            self.mcp_revocations.mark_revoked(value)
        elif kind == RESYNC:
            directory.clear()  # messages may have been missed while disconnected
        for hook in self._invalidation_hooks:
            hook(kind, value)

    async def _purge_sessions(self) -> int:
        """Dashboard sessions past their expiry, MCP sessions a day past theirs."""
        return await self.admins.purge_expired() + await self.mcp_sessions.purge_expired()

    async def _start_delivery(self) -> None:
        """Webhook deliveries start once the database is ready (``serve`` only)."""
        self.deliverer.start()

    # -- providers -------------------------------------------------------------------------------

    def connector(self, connection: ConnectionRecord) -> Connector:
        """The provider behind ``connection`` (its ``provider`` field)."""
        return self.connectors.provider(connection.provider)

    def _oauth_endpoints(self, connection: ConnectionRecord) -> OAuthEndpoints:
        endpoints = self.connector(connection).oauth
        if endpoints is None:
            raise no_oauth(connection)
        return endpoints

    def _default_endpoints(self) -> OAuthEndpoints:
        for connector in self.connectors.providers():
            if connector.oauth is not None:
                return connector.oauth
        raise RuntimeError("no installed provider has OAuth endpoints")

    def client_for(self, connector: Connector) -> ProviderClient:
        """The proxy core for a provider's API (shared by providers on the same base URL)."""
        key = (connector.base_url, connector.user_agent, connector.api_prefix)
        client = self._clients.get(key)
        if client is None:
            client = ProviderClient(
                transport=self.transport,
                limiter=self.limiter,
                clock=self.clock,
                base_url=connector.base_url,
                user_agent=connector.user_agent,
                timeout=self.settings.upstream_timeout_seconds,
                observer=self.metrics,
                retry_policy=RetryPolicy(deadline=self.settings.retry_deadline_seconds),
            )
            self._clients[key] = client
        return client

    def discord_urls(self, connection_id: str) -> tuple[str, str]:
        """The connection's Interactions Endpoint URL and Webhook Events URL (to paste in the
        Developer Portal)."""
        base = f"{self.settings.public_base}/discord/{connection_id}"
        return f"{base}/interactions", f"{base}/events"

    @property
    def provider_client(self) -> ProviderClient:
        """The proxy core of the first provider (every Discord provider shares it)."""
        return self.client_for(self.connectors.providers()[0])

    # -- services --------------------------------------------------------------------------------

    @property
    def oauth(self) -> OAuthService:
        if self._oauth is None:
            self._oauth = OAuthService(
                self.vault,
                self._default_endpoints(),
                self.settings,
                self.clock,
                endpoints_for=lambda connection: self.connector(connection).oauth,
            )
        return self._oauth

    @property
    def tokens(self) -> TokenManager:
        if self._tokens is None:
            self._tokens = TokenManager(
                self.vault,
                self.oauth.endpoints,
                self.clock,
                leeway=self.settings.refresh_leeway_seconds,
                attempt_timeout=self.settings.upstream_timeout_seconds,
                recovery_interval=self.settings.refresh_recovery_interval_seconds,
                link_factory=self._fresh_link,
                on_refresh=self.metrics.record_refresh,
                endpoints_for=self._oauth_endpoints,
            )
        return self._tokens

    @property
    def runner(self) -> ToolRunner:
        if self._runner is None:
            self._runner = ToolRunner(
                connectors=self.connectors,
                clients=self.client_for,
                directory=self.directory,
                tokens=self.tokens,
                clock=self.clock,
                link_factory=self.link_for,
                on_result=lambda tool, status, ms: self.metrics.record_tool_call(
                    tool, status, ms / 1000
                ),
                on_event=self.bookkeeper.note_event,
                on_used=self.bookkeeper.note_used,
            )
        return self._runner

    async def link_for(self, connection_name: str, identifier: str) -> str:
        """A fresh authorization link (for errors that ask the user to authorize again)."""
        return (await self.oauth.create_link(connection_name, identifier)).link

    async def _fresh_link(self, account_id: str) -> str | None:
        account = await self.vault.get_account(account_id)
        connection = await self.vault.get_connection(account.connection_id)
        if not self.connector(connection).uses_oauth:
            return None  # a bot account is repaired with a new token, not a link
        link = await self.oauth.create_link(connection.name, account.identifier)
        return link.link
