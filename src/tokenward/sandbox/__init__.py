"""The Discord sandbox: an emulator of Discord's OAuth2 server and REST API, on loopback.

``create_sandbox_app()`` returns an ASGI app of its own; ``tokenward sandbox`` serves it.
"""

from __future__ import annotations

from tokenward.sandbox.app import create_sandbox_app
from tokenward.sandbox.settings import SandboxSettings
from tokenward.sandbox.state import SandboxState

__all__ = ["SandboxSettings", "SandboxState", "create_sandbox_app"]
