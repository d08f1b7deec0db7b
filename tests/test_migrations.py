"""The migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sync.store import Store
from sync.tables import metadata


async def test_migrations_match_the_declared_tables(store: Store) -> None:
    def differences(sync_conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(sync_conn), metadata))

    async with store.engine.connect() as conn:
        diff = await conn.run_sync(differences)
    assert diff == [], "tables.py and sync/migrations differ: add a migration"
