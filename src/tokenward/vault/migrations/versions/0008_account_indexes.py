"""Indexes for listing and finding connected accounts at a million rows.

- ``identifier`` alone: ``GET /api/v1/connected-accounts?identifier=…`` without a connection
  (and the dashboard's search) scanned the whole table on PostgreSQL (3 ms at a thousand rows,
  about 150 ms at a million); the unique ``(connection_id, identifier)`` index cannot serve it.
- ``(connection_id, id)`` and ``(status, id)``: a page of one connection's or one status's
  accounts in keyset order reads just that page, however the rows are spread.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

INDEXES = {
    "ix_connected_accounts_identifier": ["identifier"],
    "ix_connected_accounts_connection_id_id": ["connection_id", "id"],
    "ix_connected_accounts_status_id": ["status", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "connected_accounts", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="connected_accounts")
