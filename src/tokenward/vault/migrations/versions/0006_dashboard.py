"""Operators of the dashboard and their sessions.

``admins`` holds each operator's username and scrypt password hash; ``admin_sessions`` the
signed-in browsers, keyed by the SHA-256 of the session cookie (the cookie itself is never
stored), so signing out or deleting an operator ends a session on every replica at
once. An index on ``events (kind, at)`` serves the dashboard's counts of the last day.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("last_sign_in_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_admins"),
        sa.UniqueConstraint("username", name="uq_admins_username"),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("admin_id", sa.String(26), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("last_seen_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["admins.id"],
            name="fk_admin_sessions_admin_id_admins",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name="pk_admin_sessions"),
    )
    op.create_index("ix_admin_sessions_admin_id", "admin_sessions", ["admin_id"])
    # The overview counts events of a kind over the last day.
    op.create_index("ix_events_kind_at", "events", ["kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_events_kind_at", table_name="events")
    op.drop_index("ix_admin_sessions_admin_id", table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admins")
