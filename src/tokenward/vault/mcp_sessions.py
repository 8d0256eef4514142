"""MCP sessions on record: minted sessions can be listed per user and revoked.

A session token stays a signed, self-contained credential (:mod:`tokenward.mcp.sessions`); this
table adds what a signature alone cannot say: that the operator withdrew it. The token is never
stored, only its id (the ``jti`` claim) and what it grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Row, Table, delete, insert, select, update

from tokenward.errors import NotFoundError
from tokenward.mcp.sessions import McpSession
from tokenward.vault.models import Base
from tokenward.vault.repository import Vault

__all__ = ["KEEP_EXPIRED_SECONDS", "MAX_LISTED", "McpSessionRecord", "McpSessionStore"]

SESSIONS: Final[Table] = Base.metadata.tables["mcp_sessions"]
MAX_LISTED: Final = 200
KEEP_EXPIRED_SECONDS: Final = 86_400.0
"""An expired session stays on record (listed with ``include_inactive``) for this long."""


@dataclass(frozen=True, slots=True)
class McpSessionRecord:
    id: str
    connection_name: str
    identifier: str
    tools: tuple[str, ...] | None
    read_only: bool
    created_at: float
    expires_at: float
    revoked_at: float | None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and self.expires_at > now


def _record(row: Row[Any]) -> McpSessionRecord:
    return McpSessionRecord(
        row.id,
        row.connection_name,
        row.identifier,
        None if row.tools is None else tuple(row.tools),
        bool(row.read_only),
        row.created_at,
        row.expires_at,
        row.revoked_at,
    )


class McpSessionStore:
    """The ``mcp_sessions`` table, in the vault's database."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    async def record(self, session: McpSession) -> None:
        """Keep a freshly minted session on record (and audit its creation)."""
        async with self.vault.write() as conn:
            await conn.execute(
                insert(SESSIONS).values(
                    id=session.session_id,
                    connection_name=session.connection_name,
                    identifier=session.identifier,
                    tools=None if session.tools is None else list(session.tools),
                    read_only=session.read_only,
                    created_at=self.vault.clock.time(),
                    expires_at=session.expires_at,
                )
            )
            await self.vault.audit(
                conn,
                "mcp_session.created",
                data={
                    "session_id": session.session_id,
                    "connection_name": session.connection_name,
                    "identifier": session.identifier,
                },
            )

    async def list(
        self,
        *,
        connection_name: str | None = None,
        identifier: str | None = None,
        include_inactive: bool = False,
    ) -> list[McpSessionRecord]:
        """Sessions, newest first (at most :data:`MAX_LISTED`); by default only those still
        usable (neither revoked nor expired)."""
        stmt = select(SESSIONS)
        if connection_name is not None:
            stmt = stmt.where(SESSIONS.c.connection_name == connection_name)
        if identifier is not None:
            stmt = stmt.where(SESSIONS.c.identifier == identifier)
        if not include_inactive:
            stmt = stmt.where(
                SESSIONS.c.revoked_at.is_(None), SESSIONS.c.expires_at > self.vault.clock.time()
            )
        stmt = stmt.order_by(SESSIONS.c.created_at.desc(), SESSIONS.c.id).limit(MAX_LISTED)
        async with self.vault.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_record(row) for row in rows]

    async def get(self, session_id: str) -> McpSessionRecord:
        async with self.vault.engine.connect() as conn:
            row = (await conn.execute(select(SESSIONS).where(SESSIONS.c.id == session_id))).first()
        if row is None:
            raise _not_found(session_id)
        return _record(row)

    async def revoke(self, session_id: str) -> McpSessionRecord:
        """Revoke a session (again: no change). The caller announces it to every process."""
        now = self.vault.clock.time()
        async with self.vault.write() as conn:
            row = (await conn.execute(select(SESSIONS).where(SESSIONS.c.id == session_id))).first()
            if row is None:
                raise _not_found(session_id)
            if row.revoked_at is None:
                await conn.execute(
                    update(SESSIONS).where(SESSIONS.c.id == session_id).values(revoked_at=now)
                )
                await self.vault.audit(
                    conn,
                    "mcp_session.revoked",
                    data={
                        "session_id": session_id,
                        "connection_name": row.connection_name,
                        "identifier": row.identifier,
                    },
                )
                row = (
                    await conn.execute(select(SESSIONS).where(SESSIONS.c.id == session_id))
                ).one()
        return _record(row)

    async def purge_expired(self) -> int:
        """Delete sessions expired over :data:`KEEP_EXPIRED_SECONDS` ago (their tokens are
        refused by their signature's expiry anyway); how many went."""
        cutoff = self.vault.clock.time() - KEEP_EXPIRED_SECONDS
        async with self.vault.write() as conn:
            result = await conn.execute(delete(SESSIONS).where(SESSIONS.c.expires_at <= cutoff))
        return int(result.rowcount or 0)

    async def is_revoked(self, session_id: str) -> bool:
        """Whether the session was revoked (one on no record, minted before sessions were
        recorded, is not)."""
        stmt = select(SESSIONS.c.revoked_at).where(SESSIONS.c.id == session_id)
        async with self.vault.engine.connect() as conn:
            revoked_at = (await conn.execute(stmt)).scalar_one_or_none()
        return revoked_at is not None


def _not_found(session_id: str) -> NotFoundError:
    return NotFoundError(
        f"MCP session {session_id!r} does not exist",
        code="MCP_SESSION_NOT_FOUND",
        details={"session_id": session_id[:64]},
    )
