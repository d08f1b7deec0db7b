"""HubSpot specifics beyond the conformance suite: associations, custom properties, the search cap."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select, update

from connectors import get_connector
from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.http import HttpKit
from connectors.kit.page_budget import PageBudget
from connectors.kit.sandbox import serve_in_thread
from sync.connections import connection_access
from sync.runner import DiscoveryCache
from sync.store import Store
from sync.tables import connections, records, stream_states
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


@pytest.mark.parametrize("stream_name", ["contacts", "deals"])
async def test_a_record_has_the_same_raw_whichever_api_read_it(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, stream_name: str
) -> None:
    """The list API (backfill), the search API (incremental) and the batch read (webhook refetch and the
    read-back after a write) must store byte-identical `raw`, associations included (primary links come
    as two association types), or one record would count as changed by whichever path read it last."""
    hubspot.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, hubspot, hubspot_url)
    await run_everything_due(store, kit)
    async with store.engine.connect() as conn:
        listed = {
            row.remote_id: orjson.loads(row.raw)
            for row in await conn.execute(
                select(records.c.remote_id, records.c.raw).where(
                    records.c.connection_id == connection_id, records.c.stream == stream_name
                )
            )
        }
        row = (await conn.execute(select(connections).where(connections.c.id == connection_id))).one()
    with_links = [remote_id for remote_id, raw in listed.items() if raw.get("associations")]
    assert with_links, "the sandbox seeds associations"
    link_types = {
        item["type"]
        for raw in listed.values()
        for links in raw.get("associations", {}).values()
        for item in links["results"]
    }
    # Primary links come as two types, `..._to_company` and `..._to_company_unlabeled`.
    assert any(name.endswith("_unlabeled") for name in link_types), link_types

    stream = get_connector("hubspot").stream(stream_name)
    session = kit.session(await connection_access(store, row))
    ctx = await DiscoveryCache().context(session, stream, connection_id)
    ctx.page_budget = PageBudget(None)
    assert stream.lookup is not None and stream.incremental is not None
    looked_up = {record.remote_id: record.raw for record in await stream.lookup.fetch(ctx, with_links[:50])}
    searched = {}
    async for page in stream.incremental.pages(
        ctx, stream.incremental.initial_cursor(datetime(2000, 1, 1, tzinfo=UTC))
    ):
        searched.update({record.remote_id: record.raw for record in page.records})

    def canonical(raw: dict[str, object]) -> bytes:
        return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)

    for remote_id in with_links[:50]:
        assert canonical(looked_up[remote_id]) == canonical(listed[remote_id]), remote_id
        assert canonical(searched[remote_id]) == canonical(listed[remote_id]), remote_id
