"""The composition root: builds every service from :class:`~tokenward.config.Settings`.

Everything else receives what it needs as arguments; tests build a ``Container`` with their own
settings and clock instead of patching.
"""

from __future__ import annotations

import logging

import aiohttp

from tokenward import __version__
from tokenward.clock import Clock, SystemClock
from tokenward.config import Settings
from tokenward.events.delivery import AiohttpSender, Deliverer
from tokenward.events.service import WebhookService
from tokenward.oauth.discord import DiscordOAuthClient
from tokenward.oauth.refresh import TokenManager
from tokenward.oauth.service import OAuthService
from tokenward.proxy.accounts import AccountDirectory
from tokenward.proxy.client import ProviderClient
from tokenward.proxy.ratelimit import RateLimiter
from tokenward.proxy.retry import RetryPolicy
from tokenward.proxy.transport import AiohttpTransport, Timeouts, Transport
from tokenward.server.api.observability import Metrics
from tokenward.server.bookkeeping import Bookkeeper
from tokenward.server.janitor import Janitor
from tokenward.server.readiness import Readiness
from tokenward.tools.catalog import Catalog
from tokenward.tools.runner import ToolRunner
from tokenward.vault.repository import Vault
from tokenward.vault.webhooks import EventLinks, WebhookStore

log = logging.getLogger("tokenward")


class Container:
    """Owns the process-wide resources (database engine, HTTP session) and the services."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._session: aiohttp.ClientSession | None = None
        self.vault = Vault.from_settings(settings, self.clock)
        self._oauth: OAuthService | None = None
        self._tokens: TokenManager | None = None
        self.catalog = Catalog.load("discord")
        self.transport: Transport = transport or AiohttpTransport(
            timeouts=Timeouts(total=settings.upstream_timeout_seconds),
            max_response_bytes=settings.max_response_bytes,
        )
        self.limiter = RateLimiter(self.clock, max_wait=settings.max_rate_limit_wait_seconds)
        self.directory = AccountDirectory(self.vault, self.clock)
        self.metrics = Metrics()
        self.bookkeeper = Bookkeeper(self.vault, self.clock)
        self.readiness = Readiness(settings, self.vault)
        self.vault.event_links = EventLinks(settings.public_base, settings.event_link_ttl_seconds)
        self.webhooks = WebhookStore(self.vault)
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
        self.janitor = Janitor(
            self.vault,
            self.clock,
            pending_ttl=settings.pending_account_ttl_seconds,
            interval=settings.janitor_interval_seconds,
            ready=lambda: self.readiness.prepared,
            purge_events=lambda older_than: self.webhooks.purge(older_than=older_than),
            event_retention=settings.webhooks_retention_seconds,
        )
        self._provider_client: ProviderClient | None = None
        self._runner: ToolRunner | None = None

    async def start(self, *, migrate: bool | None = None, serving: bool = False) -> None:
        """Open the HTTP session; reach and migrate the database (SQLite by default) and check
        the keys against it (:mod:`tokenward.server.readiness`). ``serving``: tolerate a
        database that is not ready yet (``/readyz`` says why) and run the janitor."""
        # The HTTP session first: readiness hooks (refresh recovery) may call Discord.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=512, limit_per_host=256, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self.readiness.migrate = migrate if migrate is not None else self.settings.is_sqlite
        if serving:
            self.readiness.on_ready(self._start_delivery)
        await self.readiness.start(serving=serving)
        if self.settings.redis_url:
            log.warning(
                "TOKENWARD_REDIS_URL is set but this version keeps rate-limit state per process; "
                "refresh is coordinated through the database"
            )
        self.bookkeeper.start()
        if serving:
            self.janitor.start()

    async def close(self) -> None:
        if self._tokens is not None:
            # Refreshes in flight finish (and are stored) before anything is closed.
            await self._tokens.drain(self.settings.shutdown_grace_seconds)
        await self.deliverer.close()
        await self.janitor.close()
        await self.readiness.close()
        await self.bookkeeper.close()
        await self.transport.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.vault.close()

    async def _start_delivery(self) -> None:
        """Webhook deliveries start once the database is ready (``serve`` only)."""
        self.deliverer.start()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Container.start() has not run")
        return self._session

    @property
    def oauth(self) -> OAuthService:
        if self._oauth is None:
            endpoints = DiscordOAuthClient(
                self.session,
                self.settings.discord_base,
                timeout=self.settings.upstream_timeout_seconds,
            )
            self._oauth = OAuthService(self.vault, endpoints, self.settings, self.clock)
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
            )
        return self._tokens

    @property
    def provider_client(self) -> ProviderClient:
        if self._provider_client is None:
            self._provider_client = ProviderClient(
                transport=self.transport,
                limiter=self.limiter,
                clock=self.clock,
                base_url=self.settings.discord_base,
                user_agent=self.catalog.provider.user_agent_for(__version__),
                timeout=self.settings.upstream_timeout_seconds,
                observer=self.metrics,
                retry_policy=RetryPolicy(deadline=self.settings.retry_deadline_seconds),
            )
        return self._provider_client

    @property
    def runner(self) -> ToolRunner:
        if self._runner is None:
            self._runner = ToolRunner(
                catalog=self.catalog,
                client=self.provider_client,
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
        link = await self.oauth.create_link(connection.name, account.identifier)
        return link.link
