"""Children found by the relation that names their parent (a ticket's comments): indexed by model and the
parent's remote id (sync/storage/tables.py derives one such index per relation).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Partial: only records naming a parent are indexed (see sync/storage/tables.py).
    names_parent = sa.text("(common ->> 'ticket') IS NOT NULL")
    op.create_index(
        "ix_records_model_ticket",
        "records",
        ["model", sa.text("(common ->> 'ticket')")],
        postgresql_where=names_parent,
        sqlite_where=names_parent,
    )


def downgrade() -> None:
    op.drop_index("ix_records_model_ticket", table_name="records")
