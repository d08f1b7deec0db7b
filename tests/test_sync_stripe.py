"""Syncing Stripe through its Events API, against the sandbox over HTTP: a backfill that spans runs misses
nothing created or changed meanwhile (lists are newest first), an object's events in one poll store it once,
a quiet stream's cursor never ages into a false expiry, and an event id Stripe no longer knows re-lists."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import pytest_asyncio
from sqlalchemy import select, update

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from connectors.stripe.connector import STRIPE_VERSION
from connectors.stripe.events import QUIET_AFTER, StripeEvents
from connectors.stripe.sandbox import SandboxSize, StripeSandbox, create_app
from connectors.stripe.sandbox.account import Account
from sync.storage.store import Store
from sync.storage.tables import changes, stream_states
from sync.tenancy.connections import NewConnection, create_connection
from sync.worker.runner import RunLimits
from sync.worker.scheduler import Worker
from tests.support import cached_ids, cached_records, make_streams_due, new_tenant, stream_errors


@pytest.fixture
def stripe() -> Iterator[StripeSandbox]:
    # 250 customers: three pages of 100, so a backfill of one page a run spans three runs.
    with StripeSandbox(
        seed=13, size=SandboxSize(customers=250, invoices=20, subscriptions=5, payment_intents=5)
    ) as box:
        box.faults.rate_limit_enabled = False
        yield box


@dataclass
class Syncing:
    store: Store
    kit: HttpKit
    sandbox: StripeSandbox
    connection_id: uuid.UUID

    @property
    def account(self) -> Account:
        return self.sandbox.account()

    async def run(self, *, max_pages: int = 10_000) -> None:
        await Worker(self.store, self.kit, concurrency=8, run_limits=RunLimits(max_pages=max_pages)).drain()

    async def again(self, *, max_pages: int = 10_000) -> None:
        await make_streams_due(self.store, self.connection_id)
        await self.run(max_pages=max_pages)

    async def cursor(self, stream: str) -> dict[str, Any]:
        async with self.store.reader.connect() as conn:
            found = (
                await conn.execute(
                    select(stream_states.c.cursor).where(
                        stream_states.c.connection_id == self.connection_id, stream_states.c.stream == stream
                    )
                )
            ).scalar_one()
        return found if isinstance(found, dict) else orjson.loads(found)

    async def set_cursor(self, stream: str, cursor: dict[str, Any]) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(
                update(stream_states)
                .where(stream_states.c.connection_id == self.connection_id, stream_states.c.stream == stream)
                .values(cursor=cursor)
            )

    async def change_count(self, remote_id: str) -> int:
        async with self.store.reader.connect() as conn:
            return len((await conn.execute(select(changes.c.seq).where(changes.c.remote_id == remote_id))).all())


@pytest_asyncio.fixture
async def syncing(store: Store, kit: HttpKit, stripe: StripeSandbox) -> AsyncIterator[Syncing]:
    with serve_in_thread(create_app(stripe)) as url:
        tenant = await new_tenant(store)
        credentials = Credentials(
            api_key=stripe.account().identity.secret_key, extra={"stripe_version": STRIPE_VERSION}
        )
        connection_id = await create_connection(
            store,
            NewConnection(
                platform_id=tenant.platform_id,
                provider="stripe",
                external_user_id="bob",
                credentials=credentials,
                base_url=url,
            ),
        )
        yield Syncing(store, kit, stripe, connection_id)


async def test_a_backfill_over_several_runs_misses_nothing_created_or_changed_meanwhile(syncing: Syncing) -> None:
    await syncing.run(max_pages=1)  # the first page of every stream: the newest 100 customers
    assert len(await cached_ids(syncing.store, syncing.connection_id, "customers")) == 100
    account = syncing.account
    made_during = account.create_customer({"email": "during@example.com"})
    # The newest seeded customer: on the first page, which the backfill has read already.
    listed_first = list(account.collections["customers"].live())[-2]["id"]
    account.update_customer(listed_first, {"name": "Changed While Listing"})
    for _ in range(3):
        await syncing.again(max_pages=1)
    await syncing.again()  # the first poll of events since the backfill started
    live = {c["id"] for c in account.collections["customers"].live()}
    assert await cached_ids(syncing.store, syncing.connection_id, "customers") == live
    assert made_during["id"] in live
    [row] = [
        r
        for r in await cached_records(syncing.store, syncing.connection_id, "customers")
        if r.remote_id == listed_first
    ]
    assert row.common["name"] == "Changed While Listing"
    assert not any((await stream_errors(syncing.store, syncing.connection_id)).values())


async def test_many_events_of_one_object_in_a_poll_store_its_latest_state_once(syncing: Syncing) -> None:
    await syncing.run()
    await syncing.again()
    customer = list(syncing.account.collections["customers"].live())[5]["id"]
    before = await syncing.change_count(customer)
    for n in range(5):
        syncing.account.update_customer(customer, {"name": f"Name {n}"})
    await syncing.again()
    [row] = [
        r for r in await cached_records(syncing.store, syncing.connection_id, "customers") if r.remote_id == customer
    ]
    assert row.common["name"] == "Name 4"
    assert await syncing.change_count(customer) == before + 1


async def test_a_quiet_streams_cursor_moves_forward_before_it_could_expire(syncing: Syncing) -> None:
    await syncing.run()
    await syncing.again()
    syncing.sandbox.age(int(QUIET_AFTER.total_seconds()) + 3600)
    await syncing.again()
    cursor = await syncing.cursor("products")
    assert "after" not in cursor
    assert datetime.fromtimestamp(cursor["since"], tz=UTC) > datetime.now(UTC) - timedelta(minutes=30)


async def test_an_event_stripe_no_longer_has_relists_the_stream(syncing: Syncing) -> None:
    await syncing.run()
    await syncing.again()
    await syncing.set_cursor(
        "customers", {"after": "evt_1NoSuchEventAnywhere000", "at": int(datetime.now(UTC).timestamp())}
    )
    renamed = list(syncing.account.collections["customers"].live())[7]["id"]
    syncing.account.update_customer(renamed, {"name": "Found By Relisting"})
    await syncing.again()
    [row] = [
        r for r in await cached_records(syncing.store, syncing.connection_id, "customers") if r.remote_id == renamed
    ]
    assert row.common["name"] == "Found By Relisting"
    assert "relist" not in await syncing.cursor("customers")
    assert (await stream_errors(syncing.store, syncing.connection_id))["customers"] is None


def test_a_stream_filters_events_by_at_most_twenty_types() -> None:
    with pytest.raises(ValueError, match="1 to 20"):
        StripeEvents(tuple(f"customer.t{n}" for n in range(21)), relist=None, refetch=None)  # type: ignore[arg-type]
