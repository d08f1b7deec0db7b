"""Records and changes keep their platform through their connection only.

Both tables carry `platform_id` for scoping and indexes, and both reference their connection with
ON DELETE CASCADE, and connections reference their platform the same way: deleting a platform still
removes its records and changes. Their own foreign key to platforms added nothing but a trigger per
inserted row, which cost backfills 7-10 % of their speed (two per record: the record and its change).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("records", "changes")


def _rebuilt_on_sqlite(table: str) -> dict[str, object]:
    # SQLite rebuilds the table to drop a constraint; `changes` must keep AUTOINCREMENT (sequence numbers
    # are never reused, even once retention has pruned every row).
    return {"table_kwargs": {"sqlite_autoincrement": True}} if table == "changes" else {}


def _sqlite_sequence() -> int | None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    found = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")).scalar()
    return int(found) if found is not None else None


def _restore_sqlite_sequence(last: int | None) -> None:
    if last is None:
        return
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'changes'"))
    bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('changes', :seq)"), {"seq": last})


def upgrade() -> None:
    last = _sqlite_sequence()
    for table in TABLES:
        with op.batch_alter_table(table, **_rebuilt_on_sqlite(table)) as batch:  # type: ignore[arg-type]
            batch.drop_constraint(f"fk_{table}_platform_id_platforms", type_="foreignkey")
    _restore_sqlite_sequence(last)


def downgrade() -> None:
    last = _sqlite_sequence()
    for table in TABLES:
        with op.batch_alter_table(table, **_rebuilt_on_sqlite(table)) as batch:  # type: ignore[arg-type]
            batch.create_foreign_key(
                f"fk_{table}_platform_id_platforms", "platforms", ["platform_id"], ["id"], ondelete="CASCADE"
            )
    _restore_sqlite_sequence(last)
