"""Lists filtered by a relation (`invoices(filter: {customerRemoteId: ...})`): indexed by model and the
related record's remote id, like the children found by their parent in 0011 (sync/storage/tables.py
derives one such index per relation it names in `indexed_relations`).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

RELATIONS = ("assignee", "author_contact", "author_user", "customer", "invoice", "requester", "subscription")


def upgrade() -> None:
    for relation in RELATIONS:
        # Partial: only records naming a related record are indexed (see sync/storage/tables.py).
        names_related = sa.text(f"(common ->> '{relation}') IS NOT NULL")
        op.create_index(
            f"ix_records_model_{relation}",
            "records",
            ["model", sa.text(f"(common ->> '{relation}')")],
            postgresql_where=names_related,
            sqlite_where=names_related,
        )


def downgrade() -> None:
    for relation in RELATIONS:
        op.drop_index(f"ix_records_model_{relation}", table_name="records")
