"""The migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select

from connectors.kit.credentials import Credentials
from connectors.kit.field_mappings import CustomFieldType
from connectors.kit.records import RemoteRecord
from sync.cache.changes import latest, prune
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.crypto import Vault, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import alembic_config, upgrade
from sync.storage.store import Store, utcnow
from sync.storage.tables import changes, connections, metadata, platforms, records
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.field_mappings import define_field
from sync.tenancy.platforms import create_platform


async def test_migrations_match_the_declared_tables(store: Store) -> None:
    def differences(sync_conn: Any) -> list[Any]:
        with warnings.catch_warnings():
            # SQLite cannot reflect indexes over expressions, so autogenerate skips them there (PostgreSQL
            # compares them); that they exist at all is checked below.
            warnings.filterwarnings("ignore", r".*expression-based index", category=Warning)
            return list(compare_metadata(MigrationContext.configure(sync_conn), metadata))

    def index_names(sync_conn: Any) -> set[str]:
        return {str(index["name"]) for index in inspect(sync_conn).get_indexes("records")}

    async with store.engine.connect() as conn:
        diff = await conn.run_sync(differences)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r".*expression-based index", category=Warning)
            indexed = await conn.run_sync(index_names)
        if conn.dialect.name == "sqlite":
            listed = await conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
            indexed |= {row[0] for row in listed}
    assert diff == [], "tables.py and sync/storage/migrations differ: add a migration"
    assert {str(index.name) for index in records.indexes} <= indexed


async def test_dropping_the_platform_keys_of_records_and_changes_keeps_sequence_and_cascade(
    database_url: str, secret_key: str
) -> None:
    """Migration 0008 on a database with data: the log's sequence goes on after its last number even once
    every change was pruned, and deleting a platform still removes its records and changes."""
    engine = create_engine(database_url)
    await upgrade(engine)
    store = Store(engine, Vault(parse_secret_key(secret_key)))
    platform_id = await create_platform(store, "migrated")
    connection_id = await create_connection(
        store, NewConnection(platform_id, "hubspot", "user-1", Credentials(access_token="x"))
    )
    # The connection is made by today's code, then the database goes back to before 0008 with it inside
    # (later migrations' downgrades keep it too).
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.downgrade(alembic_config(sync_conn), "0007"))
    async with engine.connect() as conn:
        end_user_id = (
            await conn.execute(select(connections.c.end_user_id).where(connections.c.id == connection_id))
        ).scalar_one()
    target = StreamTarget(platform_id, connection_id, end_user_id, "contacts", "Contact")

    async def write(remote_ids: list[str]) -> None:
        async with engine.begin() as conn:
            batch = [RemoteRecord(r, {"id": r}, {"first_name": r}) for r in remote_ids]
            await upsert_records(conn, target, batch, utcnow())

    # Today's cache writer also reads and writes `records.custom` (0014): lent for the writes at 0007 only.
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE records ADD COLUMN custom JSON")
    await write(["1", "2", "3"])
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE records DROP COLUMN custom")
    async with engine.connect() as conn:
        before = await latest(conn)
    assert await prune(store, retention=timedelta(seconds=-1)) == 3  # the log is empty, its numbers are not

    await upgrade(engine, "head")
    await write(["4"])
    async with engine.connect() as conn:
        after = (await conn.execute(select(changes.c.seq))).scalars().all()
    assert after == [before + 1]

    async with engine.begin() as conn:
        await conn.execute(delete(platforms).where(platforms.c.id == platform_id))
    async with engine.connect() as conn:
        left = [(await conn.execute(select(func.count()).select_from(t))).scalar_one() for t in (records, changes)]
    assert left == [0, 0]

    # And back: the keys return, and the way forward still works.
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.downgrade(alembic_config(sync_conn), "0007"))
    await upgrade(engine, "head")
    await engine.dispose()


async def test_field_mapping_storage_comes_and_goes_with_migration_0015(database_url: str, secret_key: str) -> None:
    """Down to 0014 drops the definitions, mappings, derived values and catalogs and keeps the connections;
    back up, every connection starts at mapping revision 0 with nothing due."""
    engine = create_engine(database_url)
    await upgrade(engine)
    store = Store(engine, Vault(parse_secret_key(secret_key)))
    platform_id = await create_platform(store, "migrated")
    connection_id = await create_connection(
        store, NewConnection(platform_id, "hubspot", "user-1", Credentials(access_token="x"))
    )
    await define_field(store, platform_id, "Contact", "tier", CustomFieldType.STRING, "Tier", "")
    added = ("custom_field_definitions", "field_mappings", "record_custom_values", "available_fields")

    def tables_and_columns(sync_conn: Any) -> tuple[set[str], set[str], set[str]]:
        inspector = inspect(sync_conn)
        names = set(inspector.get_table_names())
        columns = {c["name"] for c in inspector.get_columns("connections")}
        record_columns = {c["name"] for c in inspector.get_columns("records")}
        return names, columns, record_columns

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.downgrade(alembic_config(sync_conn), "0014"))
    async with engine.connect() as conn:
        names, columns, record_columns = await conn.run_sync(tables_and_columns)
        kept = (await conn.execute(select(connections.c.id))).scalars().all()
    assert not names & set(added)
    assert not {"field_mapping_revision", "field_mappings_due_at"} & columns
    assert "custom" not in record_columns
    assert kept == [connection_id]

    await upgrade(engine, "head")
    async with engine.connect() as conn:
        names, _, _ = await conn.run_sync(tables_and_columns)
        state = (
            await conn.execute(select(connections.c.field_mapping_revision, connections.c.field_mappings_due_at))
        ).one()
    assert set(added) <= names
    assert tuple(state) == (0, None)
    await engine.dispose()
