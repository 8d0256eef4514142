"""The vault's first schema: connections, connected accounts, auth requests, API clients, events.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("bot_token_enc", sa.Text(), nullable=True),
        sa.Column("base_url", sa.String(2048), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_connections"),
        sa.UniqueConstraint("name", name="uq_connections_name"),
    )
    op.create_table(
        "connected_accounts",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("connection_id", sa.String(26), nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("granted_scopes", sa.Text(), nullable=True),
        sa.Column("provider_user_id", sa.String(64), nullable=True),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("refresh_lease_owner", sa.String(128), nullable=True),
        sa.Column("refresh_lease_until", sa.Double(), nullable=True),
        sa.Column("last_used_at", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_connected_accounts_connection_id_connections",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_connected_accounts"),
        sa.UniqueConstraint(
            "connection_id", "identifier", name="uq_connected_accounts_connection_id_identifier"
        ),
    )
    op.create_index("ix_connected_accounts_status", "connected_accounts", ["status"])
    op.create_table(
        "auth_requests",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("connection_id", sa.String(26), nullable=False),
        sa.Column("account_id", sa.String(26), nullable=False),
        sa.Column("identifier", sa.String(255), nullable=False),
        sa.Column("code_verifier_enc", sa.Text(), nullable=False),
        sa.Column("user_verify_url", sa.String(2048), nullable=True),
        sa.Column("app_state", sa.Text(), nullable=True),
        sa.Column("redirect_uri", sa.String(2048), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("consumed_at", sa.Double(), nullable=True),
        sa.Column("completed_at", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_auth_requests_connection_id_connections",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["connected_accounts.id"],
            name="fk_auth_requests_account_id_connected_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_auth_requests"),
        sa.UniqueConstraint("state_hash", name="uq_auth_requests_state_hash"),
    )
    op.create_index("ix_auth_requests_connection_id", "auth_requests", ["connection_id"])
    op.create_index("ix_auth_requests_account_id", "auth_requests", ["account_id"])
    op.create_table(
        "api_clients",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_api_clients"),
    )
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("connection_id", sa.String(26), nullable=True),
        sa.Column("account_id", sa.String(26), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_account_id", "events", ["account_id"])
    op.create_index("ix_events_connection_id", "events", ["connection_id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("api_clients")
    op.drop_table("auth_requests")
    op.drop_table("connected_accounts")
    op.drop_table("connections")
