"""Small routes outside the resource families that still answer from the sandbox's state."""

from __future__ import annotations

from typing import Any

from tokenward.sandbox.rest import Ctx, handles


@handles("get_public_keys")
def get_public_keys(ctx: Ctx) -> Any:
    """The same JWKS as ``oauth.py`` serves (reached here under ``/api/v9``)."""
    return ctx.state.signing_key.jwks()
