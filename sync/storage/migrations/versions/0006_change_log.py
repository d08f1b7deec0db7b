"""The change log and its retention horizon.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sync.storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("end_user_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=50), nullable=True),
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("changed_fields", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("occurred_at", sync.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name=op.f("fk_changes_connection_id_connections"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_changes_platform_id_platforms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_changes_platform_id_seq"), "changes", ["platform_id", "seq"])
    op.create_index(op.f("ix_changes_occurred_at"), "changes", ["occurred_at"])
    op.create_table(
        "change_log_horizon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_log_horizon")),
    )


def downgrade() -> None:
    op.drop_table("change_log_horizon")
    op.drop_index(op.f("ix_changes_occurred_at"), table_name="changes")
    op.drop_index(op.f("ix_changes_platform_id_seq"), table_name="changes")
    op.drop_table("changes")
