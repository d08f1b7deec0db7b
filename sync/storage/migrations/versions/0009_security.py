"""What the security work needs from the database.

- `connections.account_id`: the provider account of a connection in the clear (HubSpot's portal id), so an
  incoming webhook is checked only against the platforms owning that account.
- `webhook_receipts`: provider webhooks already accepted, to refuse a replay within the freshness window.
- `platform_redirect_uris`: the redirect URIs a platform registered; `connectUrl` accepts only those.
- `oauth_states.authorize_url` and `.browser_binding`: the connect link is opened through the gateway,
  which binds it to the first browser that opens it (a cookie) before sending it to the provider.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.storage.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("account_id", sa.String(length=100), nullable=True))
        batch.create_index(batch.f("ix_connections_provider_account_id"), ["provider", "account_id"])
    with op.batch_alter_table("oauth_states") as batch:
        batch.add_column(sa.Column("authorize_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("browser_binding", sa.String(length=64), nullable=True))
    op.create_table(
        "platform_redirect_uris",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("uri", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sync.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_platform_redirect_uris_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_redirect_uris")),
        sa.UniqueConstraint("platform_id", "uri", name=op.f("uq_platform_redirect_uris_platform_id_uri")),
    )
    op.create_table(
        "webhook_receipts",
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("received_at", sync.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "digest", name=op.f("pk_webhook_receipts")),
    )
    op.create_index(op.f("ix_webhook_receipts_received_at"), "webhook_receipts", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_receipts_received_at"), table_name="webhook_receipts")
    op.drop_table("webhook_receipts")
    op.drop_table("platform_redirect_uris")
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_column("browser_binding")
        batch.drop_column("authorize_url")
    with op.batch_alter_table("connections") as batch:
        batch.drop_index(batch.f("ix_connections_provider_account_id"))
        batch.drop_column("account_id")
