"""When each stream last listed the provider's deleted records.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.storage.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stream_states") as batch:
        batch.add_column(
            sa.Column("deletions_checked_at", sync.storage.types.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("stream_states") as batch:
        batch.drop_column("deletions_checked_at")
