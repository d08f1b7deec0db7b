"""Re-deriving a connection's cached records after a field-mapping change: 100,000 HubSpot contacts, on
PostgreSQL and SQLite, with the worker's batch size. Timed: the first derive after a custom field is mapped
(every record gains the value), (a) a new source for it (every record's value changes: each one rewritten,
re-indexed and logged), (b) the same mapping set again (a new revision, no value changes: read and compared
only). The provider is never asked; records/s is of records looked at."""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connectors.hubspot.connector import HUBSPOT
from connectors.kit.credentials import Credentials
from connectors.kit.declaration import StreamContext
from connectors.kit.field_mappings import CustomFieldType, FieldSource
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.storage.tables import changes, connections
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.field_mappings import MappingTarget, define_field, set_mapping
from sync.worker.rederive import DEFAULT_BATCH, rederive_connection
from tests.benchmarks.common import fresh_postgres
from tests.support import new_tenant

CONTACTS = 100_000
FILL_BATCH = 1_000
START = datetime(2025, 1, 1, tzinfo=UTC)
TIERS = ("bronze", "silver", "gold", "platinum")
STREAM = HUBSPOT.stream("contacts")


def _contact(n: int) -> dict[str, Any]:
    moment = (START + timedelta(seconds=n)).isoformat()
    return {
        "id": str(n),
        "properties": {
            "firstname": f"First{n}",
            "lastname": f"Last{n}",
            "email": f"person{n}@example.com",
            "phone": f"+1 555 {n:07d}",
            "jobtitle": "Engineer",
            "lifecyclestage": "lead",
            "loyalty_tier": TIERS[n % 4],
            "favorite_color": f"colour-{n}",
            "lastmodifieddate": moment,
            "createdate": moment,
        },
        "createdAt": moment,
        "updatedAt": moment,
    }


@contextlib.asynccontextmanager
async def _database(backend: str) -> AsyncIterator[str]:
    if backend == "postgresql":
        async with fresh_postgres("xkit_bench_rederive") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite+aiosqlite:///{Path(directory) / 'xkit.db'}"


async def _fill(store: Store) -> tuple[MappingTarget, uuid.UUID]:
    tenant = await new_tenant(store)
    connection_id = await create_connection(
        store, NewConnection(tenant.platform_id, "hubspot", "alice", Credentials(access_token="x"))
    )
    async with store.engine.begin() as conn:
        row = (await conn.execute(select(connections).where(connections.c.id == connection_id))).one()
    target = StreamTarget.of(row, STREAM, max_record_bytes=1 << 20)
    ctx = StreamContext(session=None, stream=STREAM)  # type: ignore[arg-type]  # mapping only, no requests
    for first in range(0, CONTACTS, FILL_BATCH):
        batch = [ctx.to_record(_contact(n)) for n in range(first, first + FILL_BATCH)]
        async with store.engine.begin() as conn:
            await upsert_records(conn, target, batch, START)
    return MappingTarget(tenant.platform_id, "hubspot", connection_id), connection_id


async def _logged(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(changes))).scalar_one())


async def _timed(store: Store, connection_id: uuid.UUID) -> dict[str, Any]:
    before = await _logged(store)
    started = time.perf_counter()
    changed = await rederive_connection(store, connection_id, batch_size=DEFAULT_BATCH)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "records_per_second": round(CONTACTS / seconds),
        "records_changed": changed,
        "changes_logged": await _logged(store) - before,
    }


async def _backend(backend: str) -> dict[str, Any]:
    async with _database(backend) as url:
        engine = create_engine(url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(generate_secret_key())))
        mapping, connection_id = await _fill(store)
        platform_id = mapping.platform_id
        await define_field(store, platform_id, "Contact", "tier", CustomFieldType.STRING, "Tier", "")
        first = FieldSource("properties.loyalty_tier")
        await set_mapping(store, mapping, "Contact", "tier", first, CustomFieldType.STRING)
        result = {"first_mapping": await _timed(store, connection_id)}
        every = FieldSource("properties.favorite_color")
        await set_mapping(store, mapping, "Contact", "tier", every, CustomFieldType.STRING)
        result["a_changes_every_record"] = await _timed(store, connection_id)
        await set_mapping(store, mapping, "Contact", "tier", every, CustomFieldType.STRING)
        result["b_changes_none"] = await _timed(store, connection_id)
        await engine.dispose()
    return result


async def run_rederive() -> dict[str, Any]:
    return {backend: await _backend(backend) for backend in ("postgresql", "sqlite")}


if __name__ == "__main__":
    import asyncio
    import json

    print(json.dumps(asyncio.run(run_rederive()), indent=2))
