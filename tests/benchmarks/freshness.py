"""Freshness: a change made in a provider's sandbox -> the event at a GraphQL subscriber.

The gateway (with its syncer) runs in its own process on PostgreSQL; the sandbox and one subscriber
(graphql-transport-ws) run here. Two paths, measured one after the other:
- webhook: the sandbox sends its signed webhooks to /webhooks/<provider>; polling is pushed far out so
  only the webhook path can deliver;
- polling: webhooks off, the connection syncs every POLL_INTERVAL seconds; changes are made at random
  moments, so each waits for the next run as it would in use.

HubSpot changes a contact's job title (its polling reads the contacts list by modification date); Stripe
changes a customer's name (its webhooks are Connect events signed like Stripe's, its polling reads the Events
API after the last event seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import update

from connectors.hubspot.sandbox import HubSpotSandbox, create_app
from connectors.hubspot.sandbox import SandboxSize as HubSpotSize
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import serve_in_thread
from connectors.stripe.sandbox import SandboxSize as StripeSize
from connectors.stripe.sandbox import StripeSandbox
from connectors.stripe.sandbox import create_app as create_stripe_app
from sync.storage.crypto import Vault, generate_secret_key, parse_secret_key
from sync.storage.db import create_engine
from sync.storage.migrate import upgrade
from sync.storage.store import Store, utcnow
from sync.storage.tables import connections, stream_states
from sync.tenancy.platforms import set_provider_app
from sync.worker.scheduler import Worker
from tests.benchmarks.common import free_port, fresh_postgres, subprocess_running, subscription_results
from tests.support import Tenant, connect_hubspot, data, gateway, new_tenant, sandbox_egress

WEBHOOK_SAMPLES = 40
POLL_SAMPLES = 25
POLL_INTERVAL = 5


class Provider(Protocol):
    """One provider's side of the benchmark: its sandbox, the connection to it, and the change made."""

    name: str
    # The subscription whose events are timed, and the field of its node that carries the changed value.
    query: str
    field: str

    def serve(self) -> contextlib.AbstractContextManager[str]:
        """The sandbox served over HTTP; its URL."""
        ...

    async def connect(self, store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, sandbox_url: str) -> None:
        """The tenant's connection to the sandbox (backfilled afterwards by the caller)."""
        ...

    def record_ids(self) -> list[str]:
        """Ids of records to change, enough for every sample of both paths."""
        ...

    def change(self, remote_id: str, value: str) -> None:
        """Set the record's timed field to `value`, as someone using the provider would."""
        ...

    def send_webhooks_to(self, url: str) -> None: ...

    def stop_webhooks(self) -> None: ...


class HubSpot:
    name = "hubspot"
    query = "subscription { changes(objects: [CONTACT]) { remoteId node { ... on Contact { jobTitle } } } }"
    field = "jobTitle"

    def __init__(self) -> None:
        size = HubSpotSize(contacts=300, companies=20, deals=10, owners=3, notes=5, tasks=5)
        self.sandbox = HubSpotSandbox(seed=3, size=size)
        self.sandbox.faults.rate_limit_enabled = False

    def serve(self) -> contextlib.AbstractContextManager[str]:
        return serve_in_thread(create_app(self.sandbox))

    async def connect(self, store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, sandbox_url: str) -> None:
        await connect_hubspot(store, tenant, self.sandbox, sandbox_url, rate_limit={"requests": 0})

    def record_ids(self) -> list[str]:
        return sorted(self.sandbox.all_ids("contacts"), key=int)

    def change(self, remote_id: str, value: str) -> None:
        self.sandbox.update("contacts", remote_id, {"jobtitle": value})

    def send_webhooks_to(self, url: str) -> None:
        self.sandbox.configure_webhooks(url)

    def stop_webhooks(self) -> None:
        self.sandbox.disable_webhooks()


CREATE_CONNECTION = "mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }"


class Stripe:
    name = "stripe"
    query = "subscription { changes(objects: [CUSTOMER]) { remoteId node { ... on Customer { name } } } }"
    field = "name"

    def __init__(self) -> None:
        self.sandbox = StripeSandbox(seed=3, size=StripeSize(customers=300, invoices=50, subscriptions=10))
        self.sandbox.faults.rate_limit_enabled = False
        self.endpoint: str | None = None

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        with self.sandbox, serve_in_thread(create_stripe_app(self.sandbox)) as url:
            yield url

    async def connect(self, store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, sandbox_url: str) -> None:
        # The platform's Stripe app: its secret is what the gateway checks a webhook's signature with.
        app = OAuthApp(self.sandbox.client_id, self.sandbox.client_secret, base_url=sandbox_url)
        await set_provider_app(store, tenant.platform_id, self.name, app)
        # A key connection made as a user makes it, so the gateway learns the account its webhooks name.
        key = self.sandbox.account().identity.secret_key
        given = {"provider": self.name, "externalUserId": "bench", "credentials": {"apiKey": key}}
        async with gateway(store, kit, secret_key) as api:
            data(await api.graphql(CREATE_CONNECTION, tenant.api_key, input={**given, "baseUrl": sandbox_url}))

    def record_ids(self) -> list[str]:
        return [customer["id"] for customer in self.sandbox.account().collections["customers"].live()]

    def change(self, remote_id: str, value: str) -> None:
        self.sandbox.account().update_customer(remote_id, {"name": value})

    def send_webhooks_to(self, url: str) -> None:
        # A Connect endpoint of the platform, signed with the secret the platform's app holds (see `connect`).
        self.sandbox.send_events_to(url, self.sandbox.client_secret)
        self.endpoint = next(iter(self.sandbox.webhooks.endpoints))

    def stop_webhooks(self) -> None:
        if self.endpoint is not None:
            self.sandbox.webhooks.remove(self.endpoint)


PROVIDERS: dict[str, type[HubSpot] | type[Stripe]] = {"hubspot": HubSpot, "stripe": Stripe}


class Subscriber:
    def __init__(self, field: str) -> None:
        self.field = field
        self.arrived: dict[tuple[str, str], float] = {}

    async def run(self, url: str, api_key: str, query: str, ready: asyncio.Event) -> None:
        async for result in subscription_results(url, api_key, query, {}, ready):
            change = result["changes"]
            value = (change.get("node") or {}).get(self.field) or ""
            self.arrived.setdefault((change["remoteId"], value), time.perf_counter())


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


async def run_freshness(
    provider: str = "hubspot", webhook_samples: int = WEBHOOK_SAMPLES, poll_samples: int = POLL_SAMPLES
) -> dict[str, Any]:
    secret = generate_secret_key()
    source: Provider = PROVIDERS[provider]()
    records = source.record_ids()
    async with fresh_postgres("xkit_bench_freshness") as database_url:
        engine = create_engine(database_url)
        await upgrade(engine)
        store = Store(engine, Vault(parse_secret_key(secret)))
        with source.serve() as sandbox_url:
            tenant = await new_tenant(store)
            kit = HttpKit(egress=sandbox_egress())
            await source.connect(store, kit, secret, tenant, sandbox_url)
            await Worker(store, kit).drain()
            await kit.aclose()
            await _set_interval(store, 3600, now=False)  # webhooks only, first
            port = free_port()
            server = ["-m", "tests.benchmarks.query_server", "--database-url", database_url, "--secret-key", secret]
            with subprocess_running([*server, "--port", str(port), "--worker"], port):
                source.send_webhooks_to(f"http://127.0.0.1:{port}/webhooks/{source.name}")
                subscriber, ready = Subscriber(source.field), asyncio.Event()
                listening = asyncio.create_task(
                    subscriber.run(f"ws://127.0.0.1:{port}/graphql", tenant.api_key, source.query, ready)
                )
                await asyncio.wait_for(ready.wait(), 30)
                await asyncio.sleep(0.5)

                webhook: list[float] = []
                for i in range(webhook_samples):
                    key = (records[i], f"webhook {i}")
                    started = time.perf_counter()
                    source.change(*key)
                    await _wait_for(subscriber, [key], 30)
                    webhook.append((subscriber.arrived[key] - started) * 1000)
                    await asyncio.sleep(random.uniform(0.05, 0.3))

                source.stop_webhooks()
                await _set_interval(store, POLL_INTERVAL, now=True)
                await asyncio.sleep(POLL_INTERVAL + 2)  # the first runs after the switch are done
                started_at: dict[tuple[str, str], float] = {}
                for i in range(poll_samples):
                    key = (records[webhook_samples + i], f"polling {i}")
                    started_at[key] = time.perf_counter()
                    source.change(*key)
                    await asyncio.sleep(random.uniform(0.2, 1.5))
                await _wait_for(subscriber, list(started_at), POLL_INTERVAL * 6)
                polling = [(subscriber.arrived[k] - t) * 1000 for k, t in started_at.items()]
                listening.cancel()
        await engine.dispose()
    return {
        "provider": provider,
        "webhook": _summary(webhook),
        "polling": {**_summary(polling), "interval_s": POLL_INTERVAL},
    }
