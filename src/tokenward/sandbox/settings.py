"""Sandbox settings: flags of ``tokenward sandbox`` and ``TOKENWARD_SANDBOX_*`` variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOKENWARD_SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8090
    # Lifetime of issued access tokens, seconds (Discord: 604800, seven days).
    token_lifetime: int = 604_800
    # Lifetime of authorization codes, seconds (Discord: about ten minutes).
    code_lifetime: int = 600
    # Per-route bucket: ``bucket_limit`` requests per ``bucket_window`` seconds, unless a route
    # declares its own limit (see ``ratelimit.py``); each window length is scaled by
    # ``window_scale`` so tests can run Discord's shapes quickly.
    bucket_limit: int = 5
    bucket_window: float = 5.0
    window_scale: float = 1.0
    # Global limit per token (or per IP when unauthenticated): requests per second.
    global_limit: int = 50
    global_window: float = 1.0
    rate_limits: bool = True
    # Issuer written in ID tokens.
    issuer: str = "https://discord.com"
