"""HubSpot specifics beyond the conformance suite: associations, custom properties, the search cap."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select, update

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from sync.store import Store
from sync.tables import records, stream_states
from tests.support import cached_ids, connect_hubspot, new_tenant, run_everything_due, stream_errors

STREAMS = ("contacts", "companies", "deals", "notes", "tasks", "owners")


@pytest.fixture
def unlimited(hubspot: HubSpotSandbox) -> HubSpotSandbox:
    hubspot.faults.rate_limit_enabled = False
    return hubspot


async def test_custom_properties_and_associations_land_in_the_cache(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    await run_everything_due(store, kit)

    async with store.engine.connect() as conn:
        contact_rows = (
            await conn.execute(
                select(records.c.raw, records.c.common).where(
                    records.c.connection_id == connection_id, records.c.stream == "contacts"
                )
            )
        ).all()
    raws = [orjson.loads(row.raw) for row in contact_rows]
    assert all("favorite_color" in raw["properties"] for raw in raws)
    with_company = [row.common for row in contact_rows if row.common["company"]]
    assert len(with_company) > len(contact_rows) / 2
    companies = await cached_ids(store, connection_id, "companies")
    assert all(common["company"] in companies for common in with_company)


async def test_a_failing_stream_never_stops_the_others(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    # A cursor the provider refuses (400) breaks the contacts stream alone.
    async with store.engine.begin() as conn:
        await conn.execute(
            update(stream_states)
            .where(stream_states.c.connection_id == connection_id, stream_states.c.stream == "contacts")
            .values(cursor={"after": "not-a-cursor"})
        )

    await run_everything_due(store, kit)

    errors = await stream_errors(store, connection_id)
    assert errors.pop("contacts")
    assert errors == dict.fromkeys(STREAMS[1:])
    assert await cached_ids(store, connection_id, "deals") == unlimited.all_ids("deals")


async def test_incremental_sync_gets_past_the_10000_search_result_cap(store: Store, kit: HttpKit) -> None:
    sandbox = HubSpotSandbox(
        seed=3, size=SandboxSize(contacts=10_350, companies=5, deals=5, owners=2, notes=5, tasks=5)
    )
    sandbox.faults.rate_limit_enabled = False
    sandbox.faults.search_rate_per_s = 1000
    with serve_in_thread(create_app(sandbox)) as url:
        tenant = await new_tenant(store)
        connection_id = await connect_hubspot(store, tenant, sandbox, url)
        # Skip the backfill: every contact has changed since the cursor, so one search must page past 10,000.
        async with store.engine.begin() as conn:
            await conn.execute(
                update(stream_states)
                .where(stream_states.c.connection_id == connection_id)
                .values(phase="incremental", cursor={"since": "2020-01-01T00:00:00.000Z", "after": 0})
            )
        await run_everything_due(store, kit)

    assert (await stream_errors(store, connection_id))["contacts"] is None
    assert await cached_ids(store, connection_id, "contacts") == sandbox.all_ids("contacts")
    snapshot = sandbox.stats.snapshot()
    assert "400" not in snapshot["responses_by_status"]
    searches = sum(n for route, n in snapshot["requests"].items() if route.endswith("/search"))
    assert searches > 10_350 / 200  # the restart re-reads the records at the boundary instant
