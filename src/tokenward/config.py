"""Settings, read from the environment (prefix ``TOKENWARD_``) only when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Addresses that mean "every interface": they name no host a browser could use.
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (recognised here, not bound)


def _default_data_dir() -> Path:
    return Path.home() / ".tokenward"


class Settings(BaseSettings):
    """Gateway configuration. Construct it explicitly; nothing is read at import time."""

    model_config = SettingsConfigDict(env_prefix="TOKENWARD_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    encryption_keys: str | None = Field(default=None, repr=False)
    # Unset: derived from HOST and PORT (see public_base); `serve` says which URL it uses.
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # Shared rate limits and invalidations for several replicas/workers (tokenward.shared).
    redis_url: str | None = None
    # Key and channel prefix in Redis: deployments sharing one Redis use different prefixes.
    redis_prefix: str = Field(default="tokenward:", min_length=1)
    # `serve` worker processes on one port; more than 1 needs redis_url.
    workers: int = Field(default=1, ge=1, le=64)
    # The compatibility port (the hosted platform's SDKs: gRPC + REST on one port); unset: off.
    compat_port: int | None = Field(default=None, ge=0, le=65535)
    # Certificate chain and key (PEM) for TLS on the compatibility port; unset: h2c + HTTP/1.1.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    discord_base_url: str = "https://discord.com"
    log_level: str = "INFO"
    # One access-log line per proxied request costs a fifth of /proxy's throughput; /metrics
    # counts every request either way.
    proxy_access_log: bool = False
    link_ttl_seconds: int = 600
    refresh_leeway_seconds: int = 300
    refresh_recovery_interval_seconds: float = 30.0
    shutdown_grace_seconds: float = 30.0
    api_token_ttl_seconds: int = 3600
    max_rate_limit_wait_seconds: float = 30.0
    upstream_timeout_seconds: float = 30.0
    # The HTTP client for calls to Discord: tokenward's own pooled HTTP/1.1 client, or aiohttp's
    # (the same behaviour at about twice the CPU per call; see bench/proxy.py).
    upstream_client: Literal["http1", "aiohttp"] = "http1"
    # Time budget of one call to Discord for retrying transient failures (5xx, dropped
    # connections) of idempotent requests, from its first send; at most the upstream timeout.
    retry_deadline_seconds: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    max_response_bytes: int = 10 * 1024 * 1024
    # Who may read /metrics: unset = anyone who can reach it; set = `Authorization: Bearer <it>`.
    metrics_token: str | None = Field(default=None, repr=False)
    # Reverse proxies whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated); unset =
    # the caller's address is the socket peer.
    trusted_proxies: str | None = None
    # POST /oauth/token: failed client authentications allowed per (client id, address) and per
    # address within the window before that key is answered 429.
    auth_failures_per_client_address: int = Field(default=10, ge=1)
    auth_failures_per_address: int = Field(default=30, ge=1)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    # PENDING_AUTH accounts with no live link are deleted after this long (0 keeps them).
    pending_account_ttl_seconds: float = Field(default=86_400.0, ge=0)
    # How often `serve` runs its janitor (stale accounts, long-expired auth requests); 0: never.
    janitor_interval_seconds: float = Field(default=600.0, ge=0)
    # Webhooks (events to the application). Plain http and loopback URLs only with this set.
    webhooks_allow_insecure: bool = False
    webhooks_poll_interval_seconds: float = Field(default=1.0, gt=0)
    webhooks_first_retry_seconds: float = Field(default=5.0, gt=0)
    webhooks_max_attempts: int = Field(default=11, ge=1, le=50)
    webhooks_disable_after_seconds: float = Field(default=3 * 86400.0, gt=0)
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhooks_retention_seconds: float = Field(default=7 * 86400.0, gt=0)
    # Lifetime of the authorization links sent in status events (longer than a link made on
    # request: the event may be read later).
    event_link_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    # The dashboard (/dashboard): how long a sign-in lasts, and how many failed sign-ins one
    # username may have within the window before further attempts for it are refused.
    dashboard_session_ttl_seconds: float = Field(default=12 * 3600.0, gt=0)
    dashboard_sign_in_failures: int = Field(default=5, ge=1)
    dashboard_sign_in_window_seconds: float = Field(default=300.0, gt=0)
    # How long a process trusts that an MCP session is not revoked before asking the database
    # again (with Redis a revocation reaches every process at once regardless).
    mcp_revocation_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Requests from Discord (interactions, webhook events): a signature timestamp further than
    # this from now is refused (a replay); how long an interaction waits for the application's
    # answer before tokenward answers a deferred response (Discord allows 3 s in all).
    discord_signature_tolerance_seconds: float = Field(default=300.0, gt=0, le=3600)
    discord_interaction_timeout_seconds: float = Field(default=2.0, gt=0, le=2.5)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'tokenward.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def public_url_derived(self) -> bool:
        """Whether :attr:`public_base` comes from the bind address (``PUBLIC_URL`` unset)."""
        return not self.public_url

    @property
    def public_base(self) -> str:
        """The base of every link and redirect URI: ``PUBLIC_URL``, or ``http://HOST:PORT``
        (an all-interfaces bind such as ``0.0.0.0`` names no host a browser can use; then
        ``127.0.0.1``)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host.strip("[]")
        if host in ANY_ADDRESS:
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def discord_base(self) -> str:
        return self.discord_base_url.rstrip("/")
