"""MCP sessions on record, so that one can be listed and revoked.

``mcp_sessions`` holds each minted session's id (the token's ``jti``; the token itself is never
stored), whom it acts for, its tools, ``read_only``, its lifetime and ``revoked_at``. The janitor
deletes a session a day after it expired.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "mcp_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("connection_name", sa.String(64), nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=True),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mcp_sessions"),
    )
    op.create_index(
        "ix_mcp_sessions_connection_name_identifier",
        "mcp_sessions",
        ["connection_name", "identifier"],
    )
    # The janitor deletes sessions a day past their expiry.
    op.create_index("ix_mcp_sessions_expires_at", "mcp_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_mcp_sessions_expires_at", table_name="mcp_sessions")
    op.drop_index("ix_mcp_sessions_connection_name_identifier", table_name="mcp_sessions")
    op.drop_table("mcp_sessions")
