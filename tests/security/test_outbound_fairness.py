"""Outbound webhooks under a noisy neighbour (issue 10, finding 6): one platform's burst of 40,000 changes to
a receiver that hangs must not hold up another platform's webhook, nor its API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.http import HttpKit
from connectors.kit.records import RemoteRecord
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.store import Store, utcnow
from sync.storage.tables import webhook_deliveries
from sync.webhooks.outbound import BoundedLog, NewDestination, Outbound, Tunables, create_destination, generate_secret
from sync.worker.scheduler import Worker
from tests.support import Tenant, gateway, new_tenant, sandbox_egress, serve
from tests.test_webhooks_out import account

BURST = 40_000
# A hanging receiver keeps each attempt for the whole timeout, the worst a platform's receiver can do; the
# timeout outlasts the test, so every attempt the noisy platform got is still hanging at the end.
TUNABLES = Tunables(timeout=60.0, lease=120.0, concurrency=16, per_platform=4)
CONTACTS = "query { contacts(first: 5) { edges { node { id } } } }"


@dataclass
class Receivers:
    """One server: `/hang` holds every request until released (tenant A's), `/fine` answers at once (B's)."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    hanging: int = 0
    arrived: dict[str, float] = field(default_factory=dict)
    first_hang: asyncio.Event = field(default_factory=asyncio.Event)
    fine_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        async def hang(request: Request) -> Response:
            await request.body()
            self.hanging += 1
            self.first_hang.set()
            await self.release.wait()
            return Response(status_code=200)

        async def fine(request: Request) -> Response:
            event = orjson.loads(await request.body())
            self.arrived.setdefault(event["remoteId"], time.perf_counter())
            self.fine_arrived.set()
            return Response(status_code=200)

        return Starlette(routes=[Route("/hang", hang, methods=["POST"]), Route("/fine", fine, methods=["POST"])])


async def quiet_connection(store: Store, tenant: Tenant, external_user_id: str = "user-1") -> StreamTarget:
    """A connection whose streams are not due (the changes are written straight into the cache)."""
    return (await account(store, tenant, external_user_id)).target()


async def burst(store: Store, target: StreamTarget, count: int, *, per_transaction: int = 5_000) -> None:
    """`count` new records, so `count` changes, in a few large transactions (as a backfill writes them)."""
    now = utcnow()
    for start in range(0, count, per_transaction):
        batch = [
            RemoteRecord(f"a{n}", {"id": f"a{n}", "properties": {"firstname": "A"}}, {"first_name": f"A{n}"})
            for n in range(start, min(count, start + per_transaction))
        ]
        async with store.engine.begin() as conn:
            await upsert_records(conn, target, batch, now)


async def pending(store: Store, platform_id: uuid.UUID) -> int:
    async with store.engine.connect() as conn:
        query = select(func.count()).where(
            webhook_deliveries.c.platform_id == platform_id, webhook_deliveries.c.status == "pending"
        )
        return int((await conn.execute(query)).scalar_one())


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[None]:
    loop = asyncio.create_task(worker.run_forever())
    try:
        yield
    finally:
        await worker.stop()
        await loop


async def test_a_burst_to_a_hanging_receiver_leaves_another_platforms_webhook_and_api_on_time(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    receivers = Receivers()
    noisy, quiet = await new_tenant(store, "noisy"), await new_tenant(store, "quiet")
    noisy_target, quiet_target = await quiet_connection(store, noisy), await quiet_connection(store, quiet)
    async with serve(receivers.app(), lifespan="off") as url, gateway(store, kit, secret_key) as api:
        for tenant, path in ((noisy, "hang"), (quiet, "fine")):
            await create_destination(
                store, NewDestination(tenant.platform_id, f"{url}/{path}", generate_secret(), cursor=0)
            )
        await burst(store, noisy_target, BURST)
        worker = Worker(store, kit, poll_interval=0.2, webhooks=TUNABLES)
        try:
            async with running(worker):
                await asyncio.wait_for(receivers.first_hang.wait(), 30)  # the noisy platform's storm is on
                written = time.perf_counter()
                async with store.engine.begin() as conn:
                    await upsert_records(
                        conn, quiet_target, [RemoteRecord("b1", {"id": "b1"}, {"first_name": "B"})], utcnow()
                    )
                store.changes_appended.notify()
                latencies: list[float] = []
                while not receivers.fine_arrived.is_set():
                    began = time.perf_counter()
                    answer = await api.graphql(CONTACTS, quiet.api_key)
                    assert answer["_status"] == 200 and not answer.get("errors"), answer
                    latencies.append(time.perf_counter() - began)
                    assert time.perf_counter() - written < 15, "the quiet platform's webhook did not arrive"
                    with contextlib.suppress(TimeoutError):  # a query every 100 ms, within the key's rate
                        await asyncio.wait_for(receivers.fine_arrived.wait(), 0.1)
                webhook_latency = receivers.arrived["b1"] - written
                stuck = receivers.hanging
                backlog = await pending(store, noisy.platform_id)
        finally:
            receivers.release.set()
    # The noisy platform held its own slots and no more, with its burst (enqueued so far) waiting behind them.
    assert stuck == TUNABLES.per_platform
    assert backlog > TUNABLES.per_platform
    # Generous bounds: tests/benchmarks/noisy_neighbour.py measures the real figures.
    assert webhook_latency < 10.0
    assert latencies and max(latencies) < 3.0 and statistics.median(latencies) < 1.0, latencies


async def test_a_storm_of_failing_deliveries_writes_no_log_line_per_delivery(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    refused: list[int] = []

    async def refuse(request: Request) -> Response:
        await request.body()
        refused.append(1)
        return Response(status_code=500)

    noisy = await new_tenant(store, "noisy")
    target = await quiet_connection(store, noisy)
    fast_retries = Tunables(backoff_base=0.01, backoff_cap=0.02, timeout=2.0, lease=5.0)
    async with serve(Starlette(routes=[Route("/refuse", refuse, methods=["POST"])]), lifespan="off") as url:
        await create_destination(store, NewDestination(noisy.platform_id, f"{url}/refuse", generate_secret(), cursor=0))
        await burst(store, target, 100)
        with caplog.at_level(logging.DEBUG, logger="sync.webhooks.outbound"):
            async with Outbound(store, fast_retries, egress=sandbox_egress()) as out:
                await out.enqueue()
                await out.deliver_due(rounds=100)
    assert len(refused) >= 300  # every delivery failed, again and again
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_unexpected_failures_are_logged_once_a_minute_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    bounded = BoundedLog(logging.getLogger("xkit.test.bounded"), every=60.0)
    with caplog.at_level(logging.ERROR, logger="xkit.test.bounded"):
        for _ in range(1000):
            try:
                raise ConnectionError("the pool is exhausted")
            except ConnectionError:
                bounded.exception("a webhook delivery failed unexpectedly")
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None
    bounded._next = 0.0  # the minute has passed
    with caplog.at_level(logging.ERROR, logger="xkit.test.bounded"):
        try:
            raise ConnectionError("still exhausted")
        except ConnectionError:
            bounded.exception("a webhook delivery failed unexpectedly")
    assert "999 more since the last report" in caplog.records[-1].getMessage()
