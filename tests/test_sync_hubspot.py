"""HubSpot specifics beyond the conformance suite: associations, custom properties, the search cap."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import httpx2
import orjson
import pytest
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors import get_connector
from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.hubspot.sandbox.gate import MAX_REQUEST_TARGET_BYTES
from connectors.hubspot.sandbox.schema import resolve_object_type
from connectors.hubspot.search import MAX_ASSOCIATION_ROUNDS, SEARCH_SETTLE, read_associations
from connectors.kit.convert import parse_datetime
from connectors.kit.declaration import StreamContext
from connectors.kit.errors import PageBudgetSpent, PaginationStopped
from connectors.kit.http import HttpKit
from connectors.kit.page_budget import PageBudget
from connectors.kit.sandbox import serve_in_thread
from sync.storage.store import Store
from sync.storage.tables import connections, records, stream_states, sync_runs
from sync.tenancy.connections import connection_access
from tests.support import (
    cached_ids,
    cached_records,
    connect_hubspot,
    make_streams_due,
    new_tenant,
    run_everything_due,
    stream_errors,
)

STREAMS = ("contacts", "companies", "deals", "notes", "tasks", "tickets", "owners")


@pytest.fixture
def unlimited(hubspot: HubSpotSandbox) -> HubSpotSandbox:
    hubspot.faults.rate_limit_enabled = False
    return hubspot


@pytest.fixture
async def connection_id(store: Store, unlimited: HubSpotSandbox, hubspot_url: str) -> uuid.UUID:
    """A new tenant's HubSpot connection, not synced yet."""
    return await connect_hubspot(store, await new_tenant(store), unlimited, hubspot_url)


async def test_custom_properties_and_associations_land_in_the_cache(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, connection_id: uuid.UUID
) -> None:
    await run_everything_due(store, kit)

    contact_rows = await cached_records(store, connection_id, "contacts")
    raws = [orjson.loads(row.raw) for row in contact_rows]
    assert all("favorite_color" in raw["properties"] for raw in raws)
    with_company = [row.common for row in contact_rows if row.common["company"]]
    assert len(with_company) > len(contact_rows) / 2
    companies = await cached_ids(store, connection_id, "companies")
    assert all(common["company"] in companies for common in with_company)


async def test_a_failing_stream_never_stops_the_others(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, connection_id: uuid.UUID
) -> None:
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


# ---- realistic width: every property, in bounded URLs ---------------------------------------------

WIDE = SandboxSize(contacts=120, companies=10, deals=10, owners=3, notes=10, tasks=10, contact_properties=600)


def wide_sandbox() -> HubSpotSandbox:
    sandbox = HubSpotSandbox(seed=11, size=WIDE)
    sandbox.faults.rate_limit_enabled = False
    return sandbox


def test_the_sandbox_refuses_a_long_url_as_hubspot_does() -> None:
    sandbox = wide_sandbox()
    contacts = resolve_object_type("contacts")
    assert contacts is not None
    names = sandbox.crm.all_property_names(contacts)
    assert len(names) == 600
    headers = {"Authorization": f"Bearer {sandbox.mint_tokens()['access_token']}"}
    with serve_in_thread(create_app(sandbox)) as url, httpx2.Client(base_url=url, headers=headers) as client:
        listed = client.get("/crm/v3/properties/contacts").json()["results"]
        assert len(listed) == 600 and len({p["groupName"] for p in listed}) > 10
        # Every property, repeated as the official SDK sends them: over the limit.
        every = [("properties", name) for name in names]
        refused = client.get("/crm/v3/objects/contacts", params=every)
        assert len(refused.request.url.raw_path) > MAX_REQUEST_TARGET_BYTES
        assert refused.status_code == 414
        assert refused.headers["content-type"].startswith("text/html")
        assert b"<title>414 Request-URI Too Large</title>" in refused.content
        # Within the limit both spellings of a property list give the same answer.
        some = names[:40]
        repeated = client.get("/crm/v3/objects/contacts", params=[("properties", n) for n in some])
        joined = client.get("/crm/v3/objects/contacts", params={"properties": ",".join(some)})
        assert repeated.status_code == joined.status_code == 200
        assert repeated.json() == joined.json()
        assert set(joined.json()["results"][0]["properties"]) >= set(some)
    assert sandbox.stats.responses_by_status[414] == 1


async def test_a_wide_account_backfills_every_property_without_a_long_url(store: Store, kit: HttpKit) -> None:
    sandbox = wide_sandbox()
    with serve_in_thread(create_app(sandbox)) as url:
        tenant = await new_tenant(store)
        connection_id = await connect_hubspot(store, tenant, sandbox, url)
        await run_everything_due(store, kit)

    assert await stream_errors(store, connection_id) == dict.fromkeys(STREAMS)
    assert 414 not in sandbox.stats.responses_by_status
    # Contacts are too wide for one URL: ids and associations listed, properties read in batches of 100.
    batch_reads = sandbox.stats.requests["POST /crm/v3/objects/{objectType}/batch/read"]
    assert batch_reads == -(-WIDE.contacts // 100)
    cached = {row.remote_id: orjson.loads(row.raw) for row in await cached_records(store, connection_id, "contacts")}
    # Byte for byte what the list API answers when asked for every property in one (unbounded) URL.
    contacts = resolve_object_type("contacts")
    companies = resolve_object_type("companies")
    assert contacts is not None and companies is not None
    listed, _ = sandbox.crm.list_page(
        contacts,
        0,
        WIDE.contacts,
        archived=False,
        properties=sandbox.crm.all_property_names(contacts),
        associations=[companies],
    )
    assert len(cached) == len(listed) == WIDE.contacts
    for raw in listed:
        assert len(raw["properties"]) == 600
        assert canonical(cached[raw["id"]]) == canonical(raw), raw["id"]
    assert sum(1 for raw in listed if raw.get("associations")) > WIDE.contacts / 2


async def test_a_narrow_account_reads_each_page_in_one_request(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, connection_id: uuid.UUID
) -> None:
    await run_everything_due(store, kit)
    assert await cached_ids(store, connection_id, "contacts") == unlimited.all_ids("contacts")
    assert unlimited.stats.requests["POST /crm/v3/objects/{objectType}/batch/read"] == 0


def canonical(raw: dict[str, object]) -> bytes:
    return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)


# ---- search lag --------------------------------------------------------------------------------------


def test_search_shows_a_write_only_after_the_lag(unlimited: HubSpotSandbox, hubspot_url: str) -> None:
    contacts = resolve_object_type("contacts")
    assert contacts is not None
    existing = sorted(unlimited.all_ids("contacts"))[0]
    before = unlimited.get("contacts", existing)["properties"]["lastname"]
    unlimited.faults.search_lag_ms = 60_000
    created = unlimited.create("contacts", {"email": "lagging@example.org", "firstname": "Lag"})["id"]
    unlimited.update("contacts", existing, {"lastname": "Renamed"})
    headers = {"Authorization": f"Bearer {unlimited.mint_tokens()['access_token']}"}
    query = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": [created, existing]}]}
        ],
        "properties": ["lastname"],
    }
    with httpx2.Client(base_url=hubspot_url, headers=headers) as client:
        found = client.post("/crm/v3/objects/contacts/search", json=query).json()["results"]
        # Search still has the version it indexed before; list, get and batch read are current.
        assert [(r["id"], r["properties"]["lastname"]) for r in found] == [(existing, before)]
        assert client.get(f"/crm/v3/objects/contacts/{created}").status_code == 200
        current = client.get(f"/crm/v3/objects/contacts/{existing}", params={"properties": "lastname"}).json()
        assert current["properties"]["lastname"] == "Renamed"
        unlimited.faults.search_lag_ms = 0  # as if the lag had passed
        found = client.post("/crm/v3/objects/contacts/search", json=query).json()["results"]
        assert sorted((r["id"], r["properties"]["lastname"]) for r in found) == sorted(
            [(existing, "Renamed"), (created, None)]
        )


async def contacts_cursor(store: Store, connection_id: object) -> datetime:
    async with store.engine.connect() as conn:
        cursor = (
            await conn.execute(
                select(stream_states.c.cursor).where(
                    stream_states.c.connection_id == connection_id, stream_states.c.stream == "contacts"
                )
            )
        ).scalar_one()
    since = parse_datetime(cursor["since"])
    assert since is not None
    return since


async def contact_changes(store: Store, connection_id: object) -> int:
    async with store.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.coalesce(func.sum(sync_runs.c.changed), 0)).where(
                        sync_runs.c.connection_id == connection_id,
                        sync_runs.c.stream == "contacts",
                        sync_runs.c.phase == "incremental",
                    )
                )
            ).scalar_one()
        )


async def test_a_write_search_has_not_indexed_yet_is_synced_by_a_later_run(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, connection_id: uuid.UUID
) -> None:
    await run_everything_due(store, kit)
    cursors = [await contacts_cursor(store, connection_id)]
    unlimited.faults.search_lag_ms = 60_000
    created = unlimited.create("contacts", {"email": "late@example.org", "firstname": "Late"})["id"]
    existing = sorted(unlimited.all_ids("contacts") - {created})[0]
    unlimited.update("contacts", existing, {"lastname": "Renamed"})

    await make_streams_due(store, connection_id)
    await run_everything_due(store, kit)
    assert created not in await cached_ids(store, connection_id, "contacts")  # search has not indexed it
    cursors.append(await contacts_cursor(store, connection_id))
    assert await contact_changes(store, connection_id) == 0

    unlimited.faults.search_lag_ms = 0  # the lag passes
    for _ in range(3):
        await make_streams_due(store, connection_id)
        await run_everything_due(store, kit)
        cursors.append(await contacts_cursor(store, connection_id))

    assert created in await cached_ids(store, connection_id, "contacts")
    async with store.engine.connect() as conn:
        raw = (
            await conn.execute(
                select(records.c.raw).where(records.c.connection_id == connection_id, records.c.remote_id == existing)
            )
        ).scalar_one()
    assert orjson.loads(raw)["properties"]["lastname"] == "Renamed"
    # One created, one updated; the runs that re-read them found nothing new.
    assert await contact_changes(store, connection_id) == 2
    assert cursors == sorted(cursors)  # never back


async def test_idle_runs_keep_the_search_window_at_the_settle_time(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, connection_id: uuid.UUID
) -> None:
    await run_everything_due(store, kit)
    previous = await contacts_cursor(store, connection_id)
    for _ in range(3):
        started = datetime.now(UTC)
        await make_streams_due(store, connection_id)
        await run_everything_due(store, kit)
        since = await contacts_cursor(store, connection_id)
        # The window is the settle time, not a little longer after each idle run.
        assert previous <= since and since >= started - SEARCH_SETTLE - timedelta(milliseconds=1)
        previous = since
    assert await contact_changes(store, connection_id) == 0


@pytest.mark.parametrize("budget", [None, 5], ids=["lookup-without-budget", "sync-run-budget"])
async def test_association_pages_handed_out_for_ever_are_not_followed_for_ever(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, connection_id: uuid.UUID, budget: int | None
) -> None:
    """A v4 association read that names a fresh `after` on every answer stops at the run's page budget,
    or, in a lookup outside a run (webhook refetch, writeback read-back), at MAX_ASSOCIATION_ROUNDS."""
    rounds = 0

    async def endless(request: Request) -> Response:
        nonlocal rounds
        rounds += 1
        inputs = orjson.loads(await request.body())["inputs"]
        return JSONResponse(
            {
                "status": "COMPLETE",
                "results": [
                    {
                        "from": {"id": item["id"]},
                        "to": [{"toObjectId": rounds, "associationTypes": [{"category": "HUBSPOT_DEFINED"}]}],
                        "paging": {"next": {"after": f"page-{rounds}"}},
                    }
                    for item in inputs
                ],
            }
        )

    app = Starlette(routes=[Route("/crm/v4/associations/contacts/companies/batch/read", endless, methods=["POST"])])
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(connections).where(connections.c.id == connection_id))).one()
    access = await connection_access(store, row)
    stream = get_connector("hubspot").stream("contacts")
    with serve_in_thread(app) as url:
        hostile = kit.session(dataclasses.replace(access, base_url=url, key=f"{access.key}-endless"))
        ctx = StreamContext(hostile, stream, {"properties": ["email"]}, PageBudget(budget))
        with pytest.raises(PageBudgetSpent if budget else PaginationStopped):
            await read_associations(ctx, "contacts", ["1"])
    assert rounds == (budget or MAX_ASSOCIATION_ROUNDS)
