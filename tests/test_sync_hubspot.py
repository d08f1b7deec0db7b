"""The syncer against the HubSpot sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import func, select, update

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from sync.connections import NEEDS_REAUTH, unseal
from sync.scheduler import Worker
from sync.store import Store
from sync.tables import connections, records, stream_states, sync_runs
from tests.support import connect_hubspot, new_tenant

STREAMS = ("contacts", "companies", "deals", "notes", "tasks", "owners")


async def cached_ids(store: Store, connection_id: uuid.UUID, stream: str, *, deleted: bool = False) -> set[str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(records.c.remote_id).where(
                records.c.connection_id == connection_id, records.c.stream == stream, records.c.deleted.is_(deleted)
            )
        )
        return {row.remote_id for row in rows}


async def row_count(store: Store, connection_id: uuid.UUID) -> int:
    async with store.engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count()).select_from(records).where(records.c.connection_id == connection_id)
                )
            ).scalar_one()
        )


async def run_everything_due(store: Store, kit: HttpKit) -> None:
    await Worker(store, kit, concurrency=8).drain()


async def make_streams_due(store: Store, connection_id: uuid.UUID) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(stream_states)
            .where(stream_states.c.connection_id == connection_id)
            .values(next_run_at=datetime.now(UTC))
        )


async def stream_errors(store: Store, connection_id: uuid.UUID) -> dict[str, str | None]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(stream_states.c.stream, stream_states.c.last_error).where(
                stream_states.c.connection_id == connection_id
            )
        )
        return {row.stream: row.last_error for row in rows}


@pytest.fixture
def unlimited(hubspot: HubSpotSandbox) -> HubSpotSandbox:
    hubspot.faults.rate_limit_enabled = False
    return hubspot


async def test_backfill_equals_the_sandbox_record_set(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)

    await run_everything_due(store, kit)

    assert await stream_errors(store, connection_id) == dict.fromkeys(STREAMS)
    for stream in ("contacts", "companies", "deals", "notes", "tasks"):
        assert await cached_ids(store, connection_id, stream) == unlimited.all_ids(stream), stream
    assert len(await cached_ids(store, connection_id, "owners")) == unlimited.size.owners
    async with store.engine.connect() as conn:
        phases = {row.phase for row in await conn.execute(select(stream_states.c.phase))}
        runs = (await conn.execute(select(sync_runs).where(sync_runs.c.stream == "contacts"))).all()
    assert phases == {"incremental"}
    assert runs[0].status == "succeeded"
    assert runs[0].records == unlimited.size.contacts
    assert runs[0].pages == -(-unlimited.size.contacts // 100)


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


async def test_incremental_picks_up_creates_updates_and_archives(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    await run_everything_due(store, kit)
    before = await row_count(store, connection_id)

    created = unlimited.create("contacts", {"email": "new.person@example.org", "firstname": "New"})
    some_id = sorted(unlimited.all_ids("contacts") - {created["id"]})[0]
    unlimited.update("contacts", some_id, {"lastname": "Renamed"})
    gone_id = sorted(unlimited.all_ids("deals"))[0]
    unlimited.archive("deals", gone_id)

    await make_streams_due(store, connection_id)
    await run_everything_due(store, kit)

    assert created["id"] in await cached_ids(store, connection_id, "contacts")
    assert await cached_ids(store, connection_id, "deals", deleted=True) == {gone_id}
    assert await cached_ids(store, connection_id, "deals") == unlimited.all_ids("deals")
    async with store.engine.connect() as conn:
        common = (
            await conn.execute(
                select(records.c.common).where(records.c.connection_id == connection_id, records.c.remote_id == some_id)
            )
        ).scalar_one()
    assert common["last_name"] == "Renamed"
    assert await row_count(store, connection_id) == before + 1


async def test_unchanged_records_are_not_rewritten(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    await run_everything_due(store, kit)
    async with store.engine.connect() as conn:
        before = dict((await conn.execute(select(records.c.id, records.c.synced_at))).all())

    await make_streams_due(store, connection_id)
    await run_everything_due(store, kit)

    async with store.engine.connect() as conn:
        after = dict((await conn.execute(select(records.c.id, records.c.synced_at))).all())
    assert after == before


async def test_resume_after_kill_loses_nothing(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str, database_url: str, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    unlimited.faults.latency_ms = 20
    victim = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.kill_target", database_url, secret_key)
    try:
        deadline = time.monotonic() + 60
        while await row_count(store, connection_id) < 150:
            assert time.monotonic() < deadline and victim.returncode is None, "the worker never got going"
            await asyncio.sleep(0.01)
    finally:
        victim.send_signal(signal.SIGKILL)  # no cleanup, no rollback: a crash
        await victim.wait()
    partial = await row_count(store, connection_id)
    assert 0 < partial < sum(len(unlimited.all_ids(s)) for s in STREAMS[:-1])

    # The dead worker's leases run out; a new worker takes over from the saved cursors.
    async with store.engine.begin() as conn:
        await conn.execute(update(stream_states).values(lease_expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
    unlimited.faults.latency_ms = 0
    await run_everything_due(store, kit)

    for stream in ("contacts", "companies", "deals", "notes", "tasks"):
        assert await cached_ids(store, connection_id, stream) == unlimited.all_ids(stream), stream
    assert await row_count(store, connection_id) == sum(len(unlimited.all_ids(s)) for s in STREAMS[:-1]) + 6


async def test_one_refresh_serves_many_concurrent_requests(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    unlimited.expire_access_tokens()
    refreshes_before = unlimited.stats.token_refreshes

    await run_everything_due(store, kit)

    assert unlimited.stats.token_refreshes == refreshes_before + 1
    assert await stream_errors(store, connection_id) == dict.fromkeys(STREAMS)
    assert await cached_ids(store, connection_id, "contacts") == unlimited.all_ids("contacts")


async def test_revoked_refresh_token_marks_the_connection_for_reauth(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    async with store.engine.connect() as conn:
        blob = (
            await conn.execute(select(connections.c.credentials_encrypted).where(connections.c.id == connection_id))
        ).scalar_one()
    unlimited.revoke_refresh_token(unseal(store, connection_id, blob).refresh_token or "")
    unlimited.expire_access_tokens()

    await run_everything_due(store, kit)

    async with store.engine.connect() as conn:
        status, reason = (
            await conn.execute(
                select(connections.c.status, connections.c.status_reason).where(connections.c.id == connection_id)
            )
        ).one()
    assert status == NEEDS_REAUTH
    assert reason
    errors = await stream_errors(store, connection_id)
    assert all(errors.values())
    # A connection that needs a person to reconnect is not retried against the provider.
    requests_before = sum(unlimited.stats.snapshot()["requests"].values())
    await make_streams_due(store, connection_id)
    await run_everything_due(store, kit)
    assert sum(unlimited.stats.snapshot()["requests"].values()) == requests_before


@pytest.mark.parametrize("fault", ["rate_429", "rate_5xx"], ids=["429-storm", "5xx-storm"])
async def test_backfill_survives_fault_storms(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str, fault: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    setattr(unlimited.faults, fault, 0.3)

    await run_everything_due(store, kit)

    assert await stream_errors(store, connection_id) == dict.fromkeys(STREAMS)
    for stream in ("contacts", "deals", "notes"):
        assert await cached_ids(store, connection_id, stream) == unlimited.all_ids(stream)
    statuses = unlimited.stats.snapshot()["responses_by_status"]
    expected = {"429"} if fault == "rate_429" else {"500", "502", "503"}
    assert expected & set(statuses), statuses


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
