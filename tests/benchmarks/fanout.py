"""Fan-out: 1,000 subscribers on one gateway process, a burst of 1,000 changes.

Three shapes, all over graphql-transport-ws with plain `websockets` clients in this process:
- per end user: 1,000 connections, one subscriber each (filtered by connectionIds), one change each
  (1,000 deliveries);
- shared: the same 1,000 subscribers spread over 100 end users, ten each, with ten changes per end user
  (10,000 deliveries): subscribers with the same subscription share each change's execution;
- broadcast: 100 subscribers to the whole platform, each receiving all 1,000 changes (100,000
  deliveries), the worst case.
Latency is from the commit of a change's transaction to its arrival at the subscriber. The gateway
runs in its own process on PostgreSQL; its peak RSS is sampled while it works.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from functools import partial
from typing import Any

import psutil
from sqlalchemy import select

from connectors.kit.credentials import Credentials
from connectors.kit.records import RemoteRecord
from resolvers.ids import to_global_id
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections
from sync.tenancy.connections import NewConnection, create_connection
from tests.benchmarks.common import free_port, fresh_postgres, subprocess_running, subscription_results
from tests.support import new_tenant

SUBSCRIBERS = 1000
CHANGES = 1000
PER_TRANSACTION = 100

QUERY = "subscription($c: [ID!]) { changes(connectionIds: $c) { cursor op remoteId } }"


class Subscriber:
    def __init__(self, url: str, api_key: str, connection: str | None) -> None:
        self.url, self.api_key, self.connection = url, api_key, connection
        self.arrivals: list[tuple[str, float]] = []
        self.ready = asyncio.Event()

    async def run(self, expected: int) -> None:
        variables = {"c": [self.connection]} if self.connection else {}
        async for data in subscription_results(self.url, self.api_key, QUERY, variables, self.ready):
            self.arrivals.append((data["changes"]["remoteId"], time.perf_counter()))
            if len(self.arrivals) == expected:
                return


async def _burst(store: Store, targets: list[StreamTarget], per_target: int, tag: str) -> dict[str, float]:
    """Write new records (each one change); when each committed, by remote id."""
    committed: dict[str, float] = {}
    now = utcnow()
    work = [(t, f"{tag}-{t.connection_id}-{i}") for t in targets for i in range(per_target)]
    for start in range(0, len(work), PER_TRANSACTION):
        chunk = work[start : start + PER_TRANSACTION]
        async with store.engine.begin() as conn:
            for target, remote_id in chunk:
                record = RemoteRecord(remote_id, {"id": remote_id, "v": 1}, {"first_name": "Burst"})
                await upsert_records(conn, target, [record], now)
        stamp = time.perf_counter()
        committed.update({remote_id: stamp for _, remote_id in chunk})
    return committed


async def _scenario(
    url: str,
    store: Store,
    api_key: str,
    targets: list[StreamTarget],
    *,
    broadcast: bool,
    process: psutil.Process,
    subscribers: int = SUBSCRIBERS,
    tag: str,
) -> dict[str, Any]:
    per_target = CHANGES // len(targets)
    expected = CHANGES if broadcast else per_target
    clients = [
        Subscriber(
            url, api_key, None if broadcast else to_global_id("Connection", targets[i % len(targets)].connection_id)
        )
        for i in range(subscribers)
    ]
    tasks = [asyncio.create_task(s.run(expected)) for s in clients]
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in clients)), 120)
    await asyncio.sleep(1.0)  # every subscription is registered with the server
    peak = process.memory_info().rss

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    committed = await _burst(store, targets, per_target, tag)
    await asyncio.wait_for(asyncio.gather(*tasks), 600)
    sampler.cancel()
    latencies = sorted((arrived - committed[remote_id]) * 1000 for s in clients for remote_id, arrived in s.arrivals)
    return {
        "subscribers": subscribers,
        "deliveries": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 1),
        "max_ms": round(latencies[-1], 1),
        "gateway_peak_rss_mb": round(peak / 2**20, 1),
    }


async def run_fanout() -> dict[str, Any]:
    secret = generate_secret_key()
    async with fresh_postgres("xkit_bench_fanout") as database_url:
        engine = create_engine(database_url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(secret)))
        tenant = await new_tenant(store)
        targets = []
        for i in range(SUBSCRIBERS):
            connection_id = await create_connection(
                store, NewConnection(tenant.platform_id, "hubspot", f"user-{i}", Credentials(access_token="x"))
            )
            targets.append(connection_id)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(connections.c.id, connections.c.end_user_id))).all()
        end_users = {row.id: row.end_user_id for row in rows}
        stream_targets = [StreamTarget(tenant.platform_id, c, end_users[c], "contacts", "Contact") for c in targets]
        port = free_port()
        server = ["-m", "tests.benchmarks.query_server", "--database-url", database_url, "--secret-key", secret]
        with subprocess_running([*server, "--port", str(port)], port) as gateway:
            process = psutil.Process(gateway.pid)
            url = f"ws://127.0.0.1:{port}/graphql"
            run = partial(_scenario, url, store, tenant.api_key, process=process)
            per_user = await run(stream_targets, broadcast=False, tag="per-user")
            print(f"per end user: {per_user}", file=sys.stderr, flush=True)
            shared = await run(stream_targets[:100], broadcast=False, tag="shared")
            print(f"shared: {shared}", file=sys.stderr, flush=True)
            broadcast = await run(stream_targets[:10], broadcast=True, subscribers=100, tag="broadcast")
        await engine.dispose()
    return {
        "subscribers": SUBSCRIBERS,
        "changes": CHANGES,
        "per_end_user": per_user,
        "ten_subscribers_per_end_user": shared,
        "broadcast": broadcast,
    }
