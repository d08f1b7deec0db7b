"""Trusted documents: the operations a platform registered, and the switch that runs only those.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.storage.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not in batch mode: on SQLite that copies the table, and dropping the old `platforms` would cascade
    # to every row that references it. Both databases add (and drop) a column in place.
    op.add_column(
        "platforms", sa.Column("trusted_documents_only", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "persisted_documents",
        sa.Column("platform_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("operation_names", sa.Text(), nullable=False),
        sa.Column("created_at", sync.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_persisted_documents_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("platform_id", "sha256", name=op.f("pk_persisted_documents")),
    )


def downgrade() -> None:
    op.drop_table("persisted_documents")
    op.drop_column("platforms", "trusted_documents_only")
