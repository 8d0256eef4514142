"""Discord in: a connection may carry its Discord application's public key; events may hold
sealed data.

- ``connections.public_key``: the application's Ed25519 public key (64 hex characters, as the
  Developer Portal shows it; NULL: none). With it, tokenward serves the connection's Interactions
  Endpoint URL and Webhook Events URL and checks each request's signature against it. It is
  public, so it is stored in clear.
- ``outbox_events.data_enc``: an event's ``data`` encrypted like every secret (AES-256-GCM, bound
  to the row), for events that carry a credential: a ``discord.interaction`` holds the
  interaction's token, which can answer for 15 minutes. NULL: the data is in ``payload``.

A downgrade drops both: the public keys must be set again after upgrading once more (``tokenward
connections update NAME --public-key HEX``), and events with sealed data are deleted with their
deliveries (their interaction tokens have long expired).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("public_key", sa.String(64), nullable=True))
    with op.batch_alter_table("outbox_events") as batch:
        batch.add_column(sa.Column("data_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute(
        "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT d.id FROM webhook_deliveries d"
        " JOIN outbox_events e ON e.id = d.event_id WHERE e.data_enc IS NOT NULL)"
    )
    op.execute(
        "DELETE FROM webhook_deliveries WHERE event_id IN"
        " (SELECT id FROM outbox_events WHERE data_enc IS NOT NULL)"
    )
    op.execute("DELETE FROM outbox_events WHERE data_enc IS NOT NULL")
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("data_enc")
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("public_key")
