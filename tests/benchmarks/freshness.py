"""Freshness: a change made in the HubSpot sandbox -> the event at a GraphQL subscriber.

The gateway (with its syncer) runs in its own process on PostgreSQL; the sandbox and one subscriber
(graphql-transport-ws) run here. Two paths, measured one after the other:
- webhook: the sandbox sends its signed webhooks to /webhooks/hubspot; polling is pushed far out so
  only the webhook path can deliver;
- polling: webhooks off, the connection syncs every POLL_INTERVAL seconds; changes are made at random
  moments, so each waits for the next run as it would in use.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections, stream_states
from sync.worker.scheduler import Worker
from tests.benchmarks.common import free_port, fresh_postgres, subprocess_running, subscription_results
from tests.support import connect_hubspot, new_tenant, sandbox_egress

WEBHOOK_SAMPLES = 40
POLL_SAMPLES = 25
POLL_INTERVAL = 5
QUERY = "subscription { changes(objects: [CONTACT]) { remoteId node { ... on Contact { jobTitle } } } }"


class Subscriber:
    def __init__(self) -> None:
        self.arrived: dict[tuple[str, str], float] = {}

    async def run(self, url: str, api_key: str, ready: asyncio.Event) -> None:
        async for data in subscription_results(url, api_key, QUERY, {}, ready):
            change = data["changes"]
            title = (change.get("node") or {}).get("jobTitle") or ""
            self.arrived.setdefault((change["remoteId"], title), time.perf_counter())


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "samples": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def _wait_for(subscriber: Subscriber, keys: list[tuple[str, str]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(k not in subscriber.arrived for k in keys):
        if time.monotonic() > deadline:
            missing = [k for k in keys if k not in subscriber.arrived]
            raise TimeoutError(f"{len(missing)} changes never arrived: {missing[:3]}")
        await asyncio.sleep(0.005)


async def _set_interval(store: Store, seconds: int, *, now: bool) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(update(connections).values(sync_interval_seconds=seconds))
        next_run = utcnow() if now else utcnow() + timedelta(seconds=seconds)
        await conn.execute(update(stream_states).values(next_run_at=next_run))


async def run_freshness() -> dict[str, Any]:
    secret = generate_secret_key()
    sandbox = HubSpotSandbox(seed=3, size=SandboxSize(contacts=300, companies=20, deals=10, owners=3, notes=5, tasks=5))
    sandbox.faults.rate_limit_enabled = False
    contacts = sorted(sandbox.all_ids("contacts"), key=int)
    async with fresh_postgres("xkit_bench_freshness") as database_url:
        engine = create_engine(database_url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(secret)))
        with serve_in_thread(create_app(sandbox)) as sandbox_url:
            tenant = await new_tenant(store)
            await connect_hubspot(store, tenant, sandbox, sandbox_url, rate_limit={"requests": 0})
            kit = HttpKit(egress=sandbox_egress())
            await Worker(store, kit).drain()
            await kit.aclose()
            await _set_interval(store, 3600, now=False)  # webhooks only, first
            port = free_port()
            server = ["-m", "tests.benchmarks.query_server", "--database-url", database_url, "--secret-key", secret]
            with subprocess_running([*server, "--port", str(port), "--worker"], port):
                sandbox.configure_webhooks(f"http://127.0.0.1:{port}/webhooks/hubspot")
                subscriber, ready = Subscriber(), asyncio.Event()
                listening = asyncio.create_task(subscriber.run(f"ws://127.0.0.1:{port}/graphql", tenant.api_key, ready))
                await asyncio.wait_for(ready.wait(), 30)
                await asyncio.sleep(0.5)

                webhook: list[float] = []
                for i in range(WEBHOOK_SAMPLES):
                    key = (contacts[i], f"webhook {i}")
                    started = time.perf_counter()
                    sandbox.update("contacts", key[0], {"jobtitle": key[1]})
                    await _wait_for(subscriber, [key], 30)
                    webhook.append((subscriber.arrived[key] - started) * 1000)
                    await asyncio.sleep(random.uniform(0.05, 0.3))

                sandbox.disable_webhooks()
                await _set_interval(store, POLL_INTERVAL, now=True)
                await asyncio.sleep(POLL_INTERVAL + 2)  # the first runs after the switch are done
                started_at: dict[tuple[str, str], float] = {}
                for i in range(POLL_SAMPLES):
                    key = (contacts[WEBHOOK_SAMPLES + i], f"polling {i}")
                    started_at[key] = time.perf_counter()
                    sandbox.update("contacts", key[0], {"jobtitle": key[1]})
                    await asyncio.sleep(random.uniform(0.2, 1.5))
                await _wait_for(subscriber, list(started_at), POLL_INTERVAL * 6)
                polling = [(subscriber.arrived[k] - t) * 1000 for k, t in started_at.items()]
                listening.cancel()
        await engine.dispose()
    return {
        "webhook": _summary(webhook),
        "polling": {**_summary(polling), "interval_s": POLL_INTERVAL},
    }
