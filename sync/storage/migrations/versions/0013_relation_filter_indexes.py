"""Lists filtered by a relation (`invoices(filter: {customerRemoteId: ...})`): indexed by model, the related
record's remote id and the lists' order, so a page is read in order from the index (sync/storage/tables.py
derives one such index per relation `indexed_relations` names). The children-by-parent index of 0011 takes
the same shape.

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

RELATIONS = ("assignee", "author_contact", "author_user", "customer", "invoice", "requester", "subscription", "ticket")


def _names_related(relation: str) -> sa.TextClause:
    # Partial: only records naming a related record are indexed (see sync/storage/tables.py).
    return sa.text(f"(common ->> '{relation}') IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_records_model_ticket", table_name="records")
    for relation in RELATIONS:
        op.create_index(
            f"ix_records_model_{relation}",
            "records",
            ["model", sa.text(f"(common ->> '{relation}')"), "remote_updated_at", "id"],
            postgresql_where=_names_related(relation),
            sqlite_where=_names_related(relation),
        )


def downgrade() -> None:
    for relation in RELATIONS:
        op.drop_index(f"ix_records_model_{relation}", table_name="records")
    op.create_index(
        "ix_records_model_ticket",
        "records",
        ["model", sa.text("(common ->> 'ticket')")],
        postgresql_where=_names_related("ticket"),
        sqlite_where=_names_related("ticket"),
    )
