"""Hardening: refresh intent, named lease holders, link binding, verification, API-client scopes.

- ``connected_accounts.refresh_started_at``: set, under the refresh lease, just before the refresh
  token is sent to Discord and cleared in the transaction that stores the answer. A value left
  behind means a refresh was in flight when its process died: start-up and lease recovery
  re-check those accounts (see ``tokenward.oauth.refresh``).
- ``connected_accounts.refresh_lease_owner`` grows to 255 characters: it names its holder
  (host, boot, process and its start time), so a lease of a dead process is taken over at once.
- ``connections.require_user_verification``: every link of the connection needs the application
  to confirm the user (``PENDING_VERIFICATION``) before the account becomes ``ACTIVE``.
- ``auth_requests.browser_hash``: the hash of the cookie set on the browser that clicked through
  ``/connect``; the callback must come back with it. ``auth_requests.allow_user_change``: the
  application allows this link to bind the identifier to a different Discord user.
- ``api_clients.scopes``: what an API client may do; existing clients keep full access.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("connected_accounts") as batch:
        batch.add_column(sa.Column("refresh_started_at", sa.Double(), nullable=True))
        batch.alter_column(
            "refresh_lease_owner",
            existing_type=sa.String(128),
            type_=sa.String(255),
            existing_nullable=True,
        )
    op.create_index(
        "ix_connected_accounts_refresh_started_at", "connected_accounts", ["refresh_started_at"]
    )
    with op.batch_alter_table("connections") as batch:
        batch.add_column(
            sa.Column(
                "require_user_verification",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("auth_requests") as batch:
        batch.add_column(sa.Column("browser_hash", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("allow_user_change", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("scopes", sa.Text(), nullable=False, server_default="admin"))


def downgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("scopes")
    with op.batch_alter_table("auth_requests") as batch:
        batch.drop_column("allow_user_change")
        batch.drop_column("browser_hash")
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("require_user_verification")
    op.drop_index("ix_connected_accounts_refresh_started_at", table_name="connected_accounts")
    with op.batch_alter_table("connected_accounts") as batch:
        batch.alter_column(
            "refresh_lease_owner",
            existing_type=sa.String(255),
            type_=sa.String(128),
            existing_nullable=True,
        )
        batch.drop_column("refresh_started_at")
