"""Who is acting: an operator's name carried into every audit event written on their behalf.

The dashboard wraps each action in :func:`acting_as`; the vault's event writer adds ``actor`` to
the event's data. The services themselves take no extra argument, so the dashboard and the API
call the very same functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["acting_as", "current_actor", "set_request_actor"]

_ACTOR: ContextVar[str | None] = ContextVar("tokenward_actor", default=None)


def current_actor() -> str | None:
    return _ACTOR.get()


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Events written inside this block carry ``actor`` (e.g. ``operator:alice``)."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def set_request_actor(actor: str) -> None:
    """Name the caller for the rest of the current request (its own task and context): the API
    token check sets ``api_client:<client id>`` so the events a call causes say who made it."""
    if _ACTOR.get() is None:
        _ACTOR.set(actor)
