"""Providers at run time: connections without an OAuth client, tool policy, no base URL override.

- ``connections.client_id`` and ``connections.client_secret_enc`` become nullable: a connection of
  a provider without OAuth (``discordbot``) has neither; each of its connected accounts holds its
  own bot token (in ``connected_accounts.access_token_enc``, encrypted like every secret).
- ``connections.allowed_tools``: the tools the connection may run, as JSON glob patterns (``!``
  marks a deny rule, the last matching pattern wins); NULL allows every tool.
- ``connections.base_url`` is dropped: it was accepted and never used, and a per-connection
  override would let whoever may edit a connection send its users' tokens to any host.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.alter_column("client_id", existing_type=sa.String(255), nullable=True)
        batch.alter_column("client_secret_enc", existing_type=sa.Text(), nullable=True)
        batch.drop_column("base_url")
        batch.add_column(sa.Column("allowed_tools", sa.JSON(), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    orphans = bind.execute(
        sa.text("SELECT count(*) FROM connections WHERE client_id IS NULL")
    ).scalar_one()
    if orphans:
        raise RuntimeError(
            f"{orphans} connection(s) have no OAuth client (provider discordbot), which revision "
            "0002 cannot hold; delete them before downgrading"
        )
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("allowed_tools")
        batch.add_column(sa.Column("base_url", sa.String(2048), nullable=True))
        batch.alter_column("client_secret_enc", existing_type=sa.Text(), nullable=False)
        batch.alter_column("client_id", existing_type=sa.String(255), nullable=False)
