"""Noisy neighbour: another platform's webhook and API latency while one platform's 40,000-change burst goes
to a receiver that stalls every request.

On PostgreSQL, in this process: the gateway, one worker with the production delivery settings, and two
receivers (the quiet one answers at once; the noisy one just before each attempt would time out). The
quiet platform writes one change at a time and waits for its webhook, querying its API in between; first
alone, then during the burst. Sessions waiting on a lock are sampled from pg_stat_activity meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.records import RemoteRecord
from gateway.settings import Settings
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store, utcnow
from sync.webhooks.outbound import NewDestination, Tunables, create_destination, generate_secret
from sync.worker.scheduler import Worker
from tests.benchmarks.common import PG_ADMIN_DSN, fresh_postgres
from tests.security.test_outbound_fairness import burst, quiet_connection
from tests.support import Gateway, fast_kit, gateway, new_tenant, sandbox_egress, serve

BURST = 40_000
SAMPLES = 20
QUERY = "query { contacts(first: 5) { edges { node { id } } } }"


class Receivers:
    """`/hang` answers each request only just before the attempt would time out (`hold` seconds)."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.arrived: dict[str, asyncio.Event] = {}
        self.hanging = self.most_hanging = 0
        self.release = asyncio.Event()

    def app(self) -> Starlette:
        async def hang(request: Request) -> Response:
            await request.body()
            self.hanging += 1
            self.most_hanging = max(self.most_hanging, self.hanging)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.release.wait(), self.hold)
            finally:
                self.hanging -= 1
            return Response(status_code=200)

        async def fine(request: Request) -> Response:
            event = orjson.loads(await request.body())
            self.arrived.setdefault(event["remoteId"], asyncio.Event()).set()
            return Response(status_code=200)

        return Starlette(routes=[Route("/hang", hang, methods=["POST"]), Route("/fine", fine, methods=["POST"])])


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def _quiet_platform(
    store: Store, api: Gateway, api_key: str, target: StreamTarget, receivers: Receivers, tag: str
) -> dict[str, Any]:
    webhook: list[float] = []
    queries: list[float] = []
    for n in range(SAMPLES):
        remote_id = f"{tag}-{n}"
        arrived = receivers.arrived.setdefault(remote_id, asyncio.Event())
        written = time.perf_counter()
        async with store.engine.begin() as conn:
            await upsert_records(
                conn, target, [RemoteRecord(remote_id, {"id": remote_id}, {"first_name": tag})], utcnow()
            )
        store.changes_appended.notify()
        for _ in range(5):
            began = time.perf_counter()
            answer = await api.graphql(QUERY, api_key)
            assert answer["_status"] == 200, answer
            queries.append((time.perf_counter() - began) * 1000)
        await asyncio.wait_for(arrived.wait(), 120)
        webhook.append((time.perf_counter() - written) * 1000)
    return {"webhook": _summary(webhook), "api": _summary(queries)}


@contextlib.asynccontextmanager
async def _lock_waiters(database: str) -> AsyncIterator[list[int]]:
    """Samples, every 100 ms, how many sessions of `database` wait on a lock."""
    samples: list[int] = []
    conn = await asyncpg.connect(PG_ADMIN_DSN)

    async def sample() -> None:
        while True:
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", database
            )
            samples.append(int(count))
            await asyncio.sleep(0.1)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await conn.close()


async def run_noisy_neighbour() -> dict[str, Any]:
    secret = generate_secret_key()
    settings = Settings()
    tunables = Tunables(
        concurrency=settings.webhook_delivery_concurrency,
        per_platform=settings.webhook_delivery_concurrency_per_platform,
    )
    receivers = Receivers(hold=tunables.timeout - 0.5)
    async with fresh_postgres("xkit_bench_noisy") as database_url:
        engine = create_engine(database_url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(secret)))
        noisy, quiet = await new_tenant(store, "noisy"), await new_tenant(store, "quiet")
        noisy_target, quiet_target = await quiet_connection(store, noisy), await quiet_connection(store, quiet)
        async with (
            serve(receivers.app(), lifespan="off") as url,
            fast_kit(sandbox_egress()) as kit,
            gateway(store, kit, secret) as api,
        ):
            for tenant, path in ((noisy, "hang"), (quiet, "fine")):
                await create_destination(
                    store, NewDestination(tenant.platform_id, f"{url}/{path}", generate_secret(), 0)
                )
            worker = Worker(store, kit, webhooks=tunables)
            loop = asyncio.create_task(worker.run_forever())
            try:
                alone = await _quiet_platform(store, api, quiet.api_key, quiet_target, receivers, "alone")
                began = time.perf_counter()
                await burst(store, noisy_target, BURST)
                burst_written_s = time.perf_counter() - began
                async with _lock_waiters(database_url.rsplit("/", 1)[1]) as waiters:
                    during = await _quiet_platform(store, api, quiet.api_key, quiet_target, receivers, "during")
            finally:
                receivers.release.set()
                await worker.stop()
                await loop
        await engine.dispose()
    return {
        "burst": BURST,
        "burst_written_s": round(burst_written_s, 1),
        "per_platform_cap": tunables.per_platform,
        "quiet_alone": alone,
        "quiet_during_burst": during,
        "noisy_attempts_in_flight_max": receivers.most_hanging,
        "sessions_waiting_on_locks_max": max(waiters, default=0),
    }
