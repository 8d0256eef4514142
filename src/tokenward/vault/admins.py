"""Operators of the dashboard and their server-side sessions.

Passwords are stored as scrypt hashes (the same parameters as API-client secrets, RFC 7914).
A session is a random cookie value; the table keeps only its SHA-256, so a copy of the database
signs nobody in. The CSRF token of a session is derived from the cookie with a keyed hash: it is
the same for the whole session, differs between sessions, and needs no column of its own.
Signing out deletes the row, so the cookie is worthless afterwards on every replica.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tokenward.errors import ConflictError, NotFoundError, ValidationError
from tokenward.vault.models import Base, new_id
from tokenward.vault.repository import (
    DUMMY_SECRET_HASH,
    Vault,
    hash_api_secret,
    verify_api_secret,
)

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "AdminRecord",
    "AdminSession",
    "AdminStore",
    "check_password",
    "check_username",
]

ADMINS: Final[Table] = Base.metadata.tables["admins"]
SESSIONS: Final[Table] = Base.metadata.tables["admin_sessions"]

USERNAME_RE: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024


@dataclass(frozen=True, slots=True)
class AdminRecord:
    id: str
    username: str
    created_at: float
    last_sign_in_at: float | None


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A live session: who, and the CSRF token every form of it must carry."""

    admin: AdminRecord
    csrf_token: str
    expires_at: float

    def __repr__(self) -> str:
        return f"AdminSession(admin={self.admin.username!r}, expires_at={self.expires_at})"


def check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        reason = "must be 1-64 characters of A-Z a-z 0-9 _ . @ -"
        raise ValidationError(f"username {reason}", fields={"username": reason})
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        reason = f"must be at least {MIN_PASSWORD_LENGTH} characters"
        raise ValidationError(f"password {reason}", fields={"password": reason})
    if len(password) > MAX_PASSWORD_LENGTH:
        reason = f"must be at most {MAX_PASSWORD_LENGTH} characters"
        raise ValidationError(f"password {reason}", fields={"password": reason})
    return password


def _session_hash(token: str) -> str:
    return hashlib.sha256(b"session:" + token.encode("utf-8", "surrogateescape")).hexdigest()


def _csrf_for(token: str) -> str:
    return hmac.new(token.encode("utf-8", "surrogateescape"), b"csrf", hashlib.sha256).hexdigest()


def _admin(row: Row[Any]) -> AdminRecord:
    return AdminRecord(row.id, row.username, row.created_at, row.last_sign_in_at)


class AdminStore:
    """Operators and their sessions, in the vault's database."""

    def __init__(self, vault: Vault, *, session_ttl: float = 12 * 3600.0) -> None:
        self.vault = vault
        self.session_ttl = session_ttl

    # -- operators -------------------------------------------------------------------------------

    async def create(self, username: str, password: str) -> AdminRecord:
        check_username(username)
        check_password(password)
        encoded = await asyncio.to_thread(hash_api_secret, password)
        now = self.vault.clock.time()
        admin_id = new_id(now)
        try:
            async with self.vault.write() as conn:
                await conn.execute(
                    insert(ADMINS).values(
                        id=admin_id, username=username, password_hash=encoded, created_at=now
                    )
                )
                await self.vault.audit(
                    conn, "admin.created", data={"admin_id": admin_id, "username": username}
                )
        except IntegrityError as exc:
            raise ConflictError(
                f"an operator named {username!r} already exists",
                code="ADMIN_EXISTS",
                details={"fields": {"username": "already taken"}},
            ) from exc
        return AdminRecord(admin_id, username, now, None)

    async def list(self) -> list[AdminRecord]:
        async with self.vault.engine.connect() as conn:
            rows = (await conn.execute(select(ADMINS).order_by(ADMINS.c.username))).all()
        return [_admin(row) for row in rows]

    async def delete(self, username: str) -> None:
        """Delete an operator; their sessions end with them (cascade)."""
        async with self.vault.write() as conn:
            row = (await conn.execute(select(ADMINS).where(ADMINS.c.username == username))).first()
            if row is None:
                raise NotFoundError(
                    f"no operator named {username!r}",
                    code="ADMIN_NOT_FOUND",
                    details={"username": username},
                )
            await conn.execute(delete(SESSIONS).where(SESSIONS.c.admin_id == row.id))
            await conn.execute(delete(ADMINS).where(ADMINS.c.id == row.id))
            await self.vault.audit(
                conn, "admin.deleted", data={"admin_id": row.id, "username": username}
            )

    async def count(self) -> int:
        async with self.vault.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(ADMINS))).scalar_one())

    # -- signing in and out ----------------------------------------------------------------------

    async def verify(self, username: str, password: str) -> AdminRecord | None:
        """The operator if the password matches; the same work whether or not they exist."""
        async with self.vault.engine.connect() as conn:
            row = (await conn.execute(select(ADMINS).where(ADMINS.c.username == username))).first()
        # An unknown username costs the same scrypt work as a real one.
        encoded = DUMMY_SECRET_HASH if row is None else row.password_hash
        ok = await asyncio.to_thread(verify_api_secret, password[:MAX_PASSWORD_LENGTH], encoded)
        if row is None or not ok:
            return None
        return _admin(row)

    async def start_session(self, admin: AdminRecord) -> tuple[str, AdminSession]:
        """A new session for ``admin``: the cookie value (shown to the browser only) and the
        session."""
        token = secrets.token_urlsafe(32)
        now = self.vault.clock.time()
        expires = now + self.session_ttl
        async with self.vault.write() as conn:
            await conn.execute(
                insert(SESSIONS).values(
                    id_hash=_session_hash(token),
                    admin_id=admin.id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires,
                )
            )
            await conn.execute(
                update(ADMINS).where(ADMINS.c.id == admin.id).values(last_sign_in_at=now)
            )
            await self.vault.audit(
                conn,
                "admin.signed_in",
                data={"admin_id": admin.id, "actor": f"operator:{admin.username}"},
            )
        return token, AdminSession(admin, _csrf_for(token), expires)

    async def session(self, token: str | None) -> AdminSession | None:
        """The live session behind a cookie value, or None (unknown, ended or expired)."""
        if not token or len(token) > 256:
            return None
        now = self.vault.clock.time()
        stmt = (
            select(SESSIONS.c.expires_at, ADMINS)
            .join(ADMINS, ADMINS.c.id == SESSIONS.c.admin_id)
            .where(SESSIONS.c.id_hash == _session_hash(token), SESSIONS.c.expires_at > now)
        )
        async with self.vault.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        return AdminSession(_admin(row), _csrf_for(token), row.expires_at)

    async def end_session(self, token: str) -> bool:
        async with self.vault.write() as conn:
            found = (
                await conn.execute(
                    select(SESSIONS.c.admin_id).where(SESSIONS.c.id_hash == _session_hash(token))
                )
            ).first()
            if found is None:
                return False
            await conn.execute(delete(SESSIONS).where(SESSIONS.c.id_hash == _session_hash(token)))
            await self.vault.audit(conn, "admin.signed_out", data={"admin_id": found.admin_id})
        return True

    async def purge_expired(self) -> int:
        async with self.vault.write() as conn:
            result = await conn.execute(
                delete(SESSIONS).where(SESSIONS.c.expires_at <= self.vault.clock.time())
            )
        return int(result.rowcount or 0)
