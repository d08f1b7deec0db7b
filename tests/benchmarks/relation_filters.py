"""Relation filters on a large cache: `invoices(filter: {customerRemoteId: ...})` over 100,000 invoices, on
PostgreSQL and SQLite. The first page's statement (the one the list resolver runs) is timed and explained
with the relation's index and again without it, for a customer with a few invoices and for one with
10,000; and what the relation indexes cost the ingest (the same 100,000 invoices stored without them)."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.kit.credentials import Credentials
from connectors.kit.models import COMMON_MODELS
from connectors.kit.records import RemoteRecord
from resolvers.records import RecordQuery, StringMatch, _filter_shape, _page_statement
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store
from sync.storage.tables import connections, indexed_relations
from sync.tenancy.connections import NewConnection, create_connection
from tests.benchmarks.common import fresh_postgres
from tests.support import new_tenant

INVOICES = 100_000
BIG_CUSTOMER_INVOICES = 10_000
INVOICES_PER_CUSTOMER = 9
BATCH = 1_000
RUNS = 30
START = datetime(2025, 1, 1, tzinfo=UTC)
INDEX = "ix_records_model_customer"


def _invoice(n: int) -> RemoteRecord:
    big = n < BIG_CUSTOMER_INVOICES
    customer = "cus_big" if big else f"cus_{n // INVOICES_PER_CUSTOMER}"
    total = {"amount": f"{n}.{n % 100:02}", "currency": "USD"}
    common = {"number": f"INV-{n}", "status": "PAID", "currency": "USD", "total": total, "customer": customer}
    moment = START + timedelta(seconds=n)
    return RemoteRecord(f"in_{n}", raw={"id": f"in_{n}"}, common=common, created_at=moment, updated_at=moment)


@contextlib.asynccontextmanager
async def _database(backend: str) -> AsyncIterator[str]:
    if backend == "postgresql":
        async with fresh_postgres("xkit_bench_relations") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite+aiosqlite:///{Path(directory) / 'xkit.db'}"


async def _fill(store: Store) -> tuple[uuid.UUID, float]:
    tenant = await new_tenant(store)
    connection_id = await create_connection(
        store, NewConnection(tenant.platform_id, "hubspot", "alice", Credentials(access_token="x"))
    )
    started = time.perf_counter()
    async with store.engine.begin() as conn:
        row = (await conn.execute(select(connections).where(connections.c.id == connection_id))).one()
        target = StreamTarget(row.platform_id, row.id, row.end_user_id, "invoices", "Invoice")
    for first in range(0, INVOICES, BATCH):
        async with store.engine.begin() as conn:
            await upsert_records(conn, target, [_invoice(n) for n in range(first, first + BATCH)], START)
    return tenant.platform_id, INVOICES / (time.perf_counter() - started)


async def _measure(engine: AsyncEngine, platform_id: uuid.UUID, customer: str) -> dict[str, Any]:
    query = RecordQuery(model="Invoice", fields={"customer": StringMatch(eq=customer)})
    async with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        statement = _page_statement(_filter_shape(query, conn.dialect.name), "desc", (False, False, False))
        values = {"platform_id": platform_id, "model": "Invoice", "customer_eq": customer, "page_limit": 51}
        timings = []
        for _ in range(RUNS):
            started = time.perf_counter()
            rows = (await conn.execute(statement, values)).all()
            timings.append((time.perf_counter() - started) * 1000)
        compiled = statement.compile(dialect=conn.dialect)
        bound = tuple(
            value.hex if isinstance(value, uuid.UUID) and not postgres else value
            for value in ({**compiled.params, **values}[name] for name in compiled.positiontup or ())
        )
        explain = "EXPLAIN (ANALYZE, BUFFERS)" if postgres else "EXPLAIN QUERY PLAN"
        plan = (await conn.exec_driver_sql(f"{explain} {compiled.string}", bound)).all()
    return {
        "rows": len(rows),
        "median_ms": round(statistics.median(timings), 2),
        "p95_ms": round(sorted(timings)[int(RUNS * 0.95) - 1], 2),
        "plan": [str(line[-1]) for line in plan],
    }


async def _ingest_without_relation_indexes(backend: str) -> float:
    async with _database(backend) as url:
        engine = create_engine(url)
        await upgrade(engine)
        async with engine.begin() as conn:
            for relation in indexed_relations(COMMON_MODELS.values()):
                await conn.exec_driver_sql(f"DROP INDEX ix_records_model_{relation}")
        _, rate = await _fill(Store(engine, Vault(parse_secret_key(generate_secret_key()))))
        await engine.dispose()
    return rate


async def _backend(backend: str) -> dict[str, Any]:
    without_indexes = await _ingest_without_relation_indexes(backend)
    async with _database(backend) as url:
        engine = create_engine(url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(generate_secret_key())))
        platform_id, ingest_rate = await _fill(store)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE records" if backend == "postgresql" else "ANALYZE")
        result: dict[str, Any] = {
            "ingest_invoices_per_second": round(ingest_rate),
            "ingest_invoices_per_second_without_relation_indexes": round(without_indexes),
        }
        for label in ("with_index", "without_index"):
            if label == "without_index":
                async with engine.begin() as conn:
                    await conn.exec_driver_sql(f"DROP INDEX {INDEX}")
                    await conn.exec_driver_sql("ANALYZE records" if backend == "postgresql" else "ANALYZE")
            result[label] = {
                "few_invoices": await _measure(engine, platform_id, "cus_2000"),
                "10k_invoices": await _measure(engine, platform_id, "cus_big"),
            }
        await engine.dispose()
    return result


async def run_relation_filters() -> dict[str, Any]:
    return {backend: await _backend(backend) for backend in ("postgresql", "sqlite")}


if __name__ == "__main__":
    import asyncio
    import json

    print(json.dumps(asyncio.run(run_relation_filters()), indent=2))
