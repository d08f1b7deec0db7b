"""Field mappings applied where records are read (`StreamContext.to_record`), stored with the cache, and
re-derived from the cached payloads when a connection's mappings change."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update

from connectors.hubspot.connector import HUBSPOT
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.declaration import StreamContext
from connectors.kit.field_mappings import (
    CustomFieldType,
    FieldOverlay,
    FieldSource,
    ModelOverlay,
    Transform,
)
from connectors.kit.http import HttpKit
from connectors.kit.records import RemoteRecord
from sync.cache.records import StaleOverlay, StreamTarget, upsert_records
from sync.storage.ids import to_global_id
from sync.storage.store import Store
from sync.storage.tables import changes, connections, record_custom_values, records, sync_runs
from sync.tenancy.field_mappings import MappingTarget, clear_mapping, define_field, load_overlay, set_mapping
from sync.worker import rederive
from sync.worker.rederive import rederive_connection, rederive_due
from sync.worker.scheduler import Worker
from tests.support import Tenant, cached_records, connect_hubspot, gateway, new_tenant, run_everything_due

CONTACTS = HUBSPOT.stream("contacts")
DEALS = HUBSPOT.stream("deals")


def contact(**properties: Any) -> dict[str, Any]:
    return {"id": "101", "properties": {"firstname": "Ada", "phone": "+1 555 0100", **properties}}


def overlay(model: str = "Contact", **kwargs: Any) -> FieldOverlay:
    return FieldOverlay({model: ModelOverlay(**kwargs)}, revision=3)


def context(stream: Any = CONTACTS, mappings: FieldOverlay | None = None, **labels: dict[str, str]) -> StreamContext:
    return StreamContext(session=None, stream=stream, labels=dict(labels), overlay=mappings)  # type: ignore[arg-type]


def test_without_an_overlay_a_record_maps_as_the_connector_declares() -> None:
    record = context().to_record(contact(tier="Gold"))
    assert record.common is not None and record.common["phone"] == "+1 555 0100"
    assert record.custom is None


def test_custom_values_are_derived_typed_and_undefined_mapped_keys_read_null() -> None:
    mappings = overlay(
        custom={
            "tier": (CustomFieldType.STRING, FieldSource("properties.tier", (Transform("lowercase"),))),
            "seats": (CustomFieldType.INT, FieldSource("properties.seats")),
            "tags": (CustomFieldType.STRING_LIST, FieldSource("properties.tags", (Transform("split", ";"),))),
        },
        defined=("tier", "seats", "tags", "renewal"),
    )
    record = context(mappings=mappings).to_record(contact(tier="Gold", seats="12", tags="a; b"))
    assert record.custom == {"tier": "gold", "seats": 12, "tags": ["a", "b"], "renewal": None}


def test_an_overridden_builtin_member_replaces_the_connectors_value() -> None:
    mappings = overlay(builtin={"phone": FieldSource("properties.mobilephone")})
    record = context(mappings=mappings).to_record(contact(mobilephone="+44 7700 900123"))
    assert record.common is not None and record.common["phone"] == "+44 7700 900123"
    assert record.common["first_name"] == "Ada"  # the rest as declared
    assert record.custom is None  # no custom field defined on Contact


def test_an_overlay_of_another_model_leaves_the_record_alone() -> None:
    record = context(mappings=overlay("Ticket", defined=("tier",))).to_record(contact())
    assert record.custom is None


def test_money_fields_take_the_accounts_currency_from_its_account_table() -> None:
    mappings = overlay(
        "Deal",
        custom={"budget": (CustomFieldType.MONEY, FieldSource("properties.budget"))},
        defined=("budget",),
    )
    raw = {"id": "7", "properties": {"dealname": "Big", "budget": "1200.5"}}
    record = context(DEALS, mappings, account={"currency": "EUR"}).to_record(raw)
    assert record.custom == {"budget": {"amount": "1200.5", "currency": "EUR"}}
    # Never a guessed currency: without the account's, the amount reads as null.
    assert context(DEALS, mappings).to_record(raw).custom == {"budget": None}


def test_tombstones_carry_no_derived_values() -> None:
    mappings = overlay(custom={"tier": (CustomFieldType.STRING, FieldSource("properties.tier"))}, defined=("tier",))
    record = context(mappings=mappings).to_record(contact(tier="Gold"), deleted=True)
    assert record.custom is None


# ---- stored with the cache, and re-derived without the provider ------------------------------------


async def define(store: Store, platform_id: uuid.UUID, key: str, type: CustomFieldType) -> None:
    await define_field(store, platform_id, "Contact", key, type, key.title(), "")


async def map_field(
    store: Store, target: MappingTarget, field: str, path: str, wanted: CustomFieldType, *steps: Transform
) -> None:
    await set_mapping(store, target, "Contact", field, FieldSource(path, steps), wanted)


@pytest.fixture
def unlimited(hubspot: HubSpotSandbox) -> HubSpotSandbox:
    hubspot.faults.rate_limit_enabled = False
    return hubspot


@pytest.fixture
async def mapped(store: Store, kit: HttpKit, unlimited: HubSpotSandbox, hubspot_url: str) -> Mapped:
    """A synced HubSpot connection whose contacts carry `tier` (from loyalty_tier, lowercased), `nps` (INT)
    and `phone` from the mobile number, which a few contacts were given in the sandbox first."""
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, unlimited, hubspot_url)
    mobiles = sorted(unlimited.all_ids("contacts"))[:3]
    for number, contact_id in enumerate(mobiles):
        unlimited.update("contacts", contact_id, {"mobilephone": f"+44 7700 90012{number}"})
    target = MappingTarget(tenant.platform_id, "hubspot", connection_id)
    await define(store, tenant.platform_id, "tier", CustomFieldType.STRING)
    await define(store, tenant.platform_id, "nps", CustomFieldType.INT)
    await map_field(store, target, "tier", "properties.loyalty_tier", CustomFieldType.STRING, Transform("lowercase"))
    await map_field(store, target, "nps", "properties.nps_score", CustomFieldType.INT)
    await map_field(store, target, "phone", "properties.mobilephone", CustomFieldType.STRING)
    await rederive_due(store)  # nothing cached yet: the pass finds no record and clears the mark
    await run_everything_due(store, kit)
    return Mapped(tenant, connection_id, target, mobiles)


@dataclass(frozen=True)
class Mapped:
    tenant: Tenant
    connection_id: uuid.UUID
    target: MappingTarget
    mobiles: list[str]


def properties(row: Any) -> dict[str, Any]:
    return dict(orjson.loads(row.raw)["properties"])


async def index_rows(store: Store, connection_id: uuid.UUID) -> set[tuple[str, str, str | None, float | None]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(
                records.c.remote_id,
                record_custom_values.c.key,
                record_custom_values.c.text_value,
                record_custom_values.c.number_value,
            )
            .join(records, records.c.id == record_custom_values.c.record_id)
            .where(records.c.connection_id == connection_id)
        )
        return {tuple(row) for row in rows}  # type: ignore[misc]


async def changes_after(store: Store, seq: int) -> list[Any]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(changes).where(changes.c.seq > seq).order_by(changes.c.seq))
        return list(rows)


async def last_seq(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.coalesce(func.max(changes.c.seq), 0)))).scalar_one())


def requests_made(sandbox: HubSpotSandbox) -> int:
    return sum(sandbox.stats.snapshot()["requests"].values())


async def test_a_sync_stores_custom_values_the_overridden_member_and_their_index(
    store: Store, unlimited: HubSpotSandbox, mapped: Mapped
) -> None:
    rows = await cached_records(store, mapped.connection_id, "contacts")
    assert len(rows) == len(unlimited.all_ids("contacts"))
    expected_index = set()
    for row in rows:
        props = properties(row)
        tier = props.get("loyalty_tier") or None
        nps = props.get("nps_score")
        assert row.custom == {"tier": tier and tier.lower(), "nps": int(float(nps)) if nps else None}
        assert row.common["phone"] == (props.get("mobilephone") or None)  # the mobile number, not `phone`
        if tier:
            expected_index.add((row.remote_id, "tier", tier.lower(), None))
        if nps:
            expected_index.add((row.remote_id, "nps", None, float(int(float(nps)))))
    assert {row.common["phone"] for row in rows if row.remote_id in mapped.mobiles} == {
        "+44 7700 900120",
        "+44 7700 900121",
        "+44 7700 900122",
    }
    assert any(row.custom["tier"] for row in rows) and any(row.custom["nps"] is not None for row in rows)
    assert await index_rows(store, mapped.connection_id) == expected_index


async def test_a_mapping_change_re_derives_the_cache_logging_exactly_what_changed_without_the_provider(
    store: Store, unlimited: HubSpotSandbox, mapped: Mapped
) -> None:
    before = {row.remote_id: row for row in await cached_records(store, mapped.connection_id, "contacts")}
    seq = await last_seq(store)
    requests = requests_made(unlimited)

    await map_field(store, mapped.target, "tier", "properties.favorite_color", CustomFieldType.STRING)
    changed = await rederive_due(store)

    assert requests_made(unlimited) == requests  # nothing asked of the provider
    expected = {
        remote_id: (properties(row).get("favorite_color") or None)
        for remote_id, row in before.items()
        if (properties(row).get("favorite_color") or None) != row.custom["tier"]
    }
    assert expected  # the sandbox's colours and tiers differ on many contacts
    logged = await changes_after(store, seq)
    assert sorted(change.remote_id for change in logged) == sorted(expected)
    assert {change.op for change in logged} == {"UPDATED"}
    assert all(change.changed_fields == ["customFields.tier"] for change in logged)
    assert changed == len(expected)
    after = {row.remote_id: row for row in await cached_records(store, mapped.connection_id, "contacts")}
    assert {rid: row.custom["tier"] for rid, row in after.items() if rid in expected} == expected
    assert all(after[rid].custom == before[rid].custom for rid in before if rid not in expected)
    tiers = {(rid, text) for rid, key, text, _ in await index_rows(store, mapped.connection_id) if key == "tier"}
    assert tiers == {(rid, row.custom["tier"]) for rid, row in after.items() if row.custom["tier"]}

    run = await rederive_run(store, mapped.connection_id)
    # Every cached record of the connection is looked at (companies, deals... too); only contacts changed.
    assert (run.status, run.records, run.changed) == ("succeeded", await cached_count(store, mapped), len(expected))
    assert not await is_due(store, mapped.connection_id)
    # Again at the same mappings: everything is as derived, so nothing is logged.
    await map_field(store, mapped.target, "tier", "properties.favorite_color", CustomFieldType.STRING)
    seq = await last_seq(store)
    assert await rederive_due(store) == 0
    assert await changes_after(store, seq) == []


async def test_clearing_an_override_restores_the_connectors_value(
    store: Store, unlimited: HubSpotSandbox, mapped: Mapped
) -> None:
    seq = await last_seq(store)
    await clear_mapping(store, mapped.target, "Contact", "phone")
    await rederive_due(store)
    rows = await cached_records(store, mapped.connection_id, "contacts")
    assert all(row.common["phone"] == (properties(row).get("phone") or None) for row in rows)
    phoned = {row.remote_id for row in rows if properties(row).get("phone") or properties(row).get("mobilephone")}
    logged = await changes_after(store, seq)
    assert {change.remote_id for change in logged} == phoned
    assert all(change.changed_fields == ["phone"] for change in logged)


async def test_a_crashed_re_derive_resumes_after_its_last_batch(
    store: Store, unlimited: HubSpotSandbox, mapped: Mapped, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = await cached_count(store, mapped)
    seq = await last_seq(store)
    await map_field(store, mapped.target, "tier", "properties.favorite_color", CustomFieldType.STRING)
    rewrite = rederive._Pass._rewrite
    batches = 0

    async def crash_on_the_third(self: Any, conn: Any, rows: list[Any]) -> int:
        nonlocal batches
        batches += 1
        if batches == 3:
            raise RuntimeError("worker killed")
        return await rewrite(self, conn, rows)

    monkeypatch.setattr(rederive._Pass, "_rewrite", crash_on_the_third)
    with pytest.raises(RuntimeError, match="worker killed"):
        await rederive_connection(store, mapped.connection_id, batch_size=40)
    assert await is_due(store, mapped.connection_id)
    async with store.engine.begin() as conn:  # as a killed worker leaves it: the run still running
        await conn.execute(
            update(sync_runs).where(sync_runs.c.stream == "field_mappings").values(status="running", error=None)
        )
    monkeypatch.setattr(rederive._Pass, "_rewrite", rewrite)
    seen: list[int] = []
    original_batch = rederive._Pass._batch

    async def counting(self: Any, run_id: int, after: Any) -> Any:
        seen.append(self.tally.records)
        return await original_batch(self, run_id, after)

    monkeypatch.setattr(rederive._Pass, "_batch", counting)
    await rederive_connection(store, mapped.connection_id, batch_size=40)

    assert seen[0] == 80  # it went on after the two batches that committed
    run = await rederive_run(store, mapped.connection_id)
    assert (run.status, run.records) == ("succeeded", total)
    logged = await changes_after(store, seq)
    assert len({change.remote_id for change in logged}) == len(logged) == run.changed  # each record once
    rows = await cached_records(store, mapped.connection_id, "contacts")
    assert all(row.custom["tier"] == (properties(row).get("favorite_color") or None) for row in rows)


async def test_a_mapping_change_during_a_pass_restarts_it_at_the_new_revision(
    store: Store, unlimited: HubSpotSandbox, mapped: Mapped, monkeypatch: pytest.MonkeyPatch
) -> None:
    await map_field(store, mapped.target, "tier", "properties.favorite_color", CustomFieldType.STRING)
    # The change itself is made between batches (a batch holds the connection's row).
    original_batch = rederive._Pass._batch
    calls = 0

    async def between_batches(self: Any, run_id: int, after: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            await map_field(store, mapped.target, "tier", "properties.nps_score", CustomFieldType.STRING)
        return await original_batch(self, run_id, after)

    monkeypatch.setattr(rederive._Pass, "_batch", between_batches)
    await rederive_connection(store, mapped.connection_id, batch_size=50)

    rows = await cached_records(store, mapped.connection_id, "contacts")
    assert all(row.custom["tier"] == (properties(row).get("nps_score") or None) for row in rows)
    async with store.engine.connect() as conn:
        runs = list(
            await conn.execute(
                select(sync_runs.c.status, sync_runs.c.phase)
                .where(sync_runs.c.stream == "field_mappings", sync_runs.c.connection_id == mapped.connection_id)
                .order_by(sync_runs.c.id)
            )
        )
    assert [status for status, _ in runs][-2:] == ["failed", "succeeded"]
    assert runs[-1].phase != runs[-2].phase  # the last one at the newer revision
    assert not await is_due(store, mapped.connection_id)


async def test_a_sync_page_derived_before_a_mapping_change_is_not_stored(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, mapped: Mapped
) -> None:
    connection = await connection_row(store, mapped.connection_id)
    target = StreamTarget.of(connection, CONTACTS, max_record_bytes=1 << 20)
    stale = dataclasses.replace(target, overlay_revision=connection.field_mapping_revision)
    await map_field(store, mapped.target, "tier", "properties.favorite_color", CustomFieldType.STRING)
    record = RemoteRecord("1", {"id": "1", "properties": {}}, common={}, custom={"tier": "stale"})
    async with store.engine.begin() as conn:
        with pytest.raises(StaleOverlay):
            await upsert_records(conn, stale, [record], datetime.now(UTC))


async def cached_count(store: Store, mapped: Mapped) -> int:
    async with store.engine.connect() as conn:
        query = select(func.count()).where(
            records.c.connection_id == mapped.connection_id, records.c.model.is_not(None)
        )
        return int((await conn.execute(query)).scalar_one())


async def rederive_run(store: Store, connection_id: uuid.UUID) -> Any:
    async with store.engine.connect() as conn:
        return (
            await conn.execute(
                select(sync_runs)
                .where(sync_runs.c.connection_id == connection_id, sync_runs.c.stream == "field_mappings")
                .order_by(sync_runs.c.id.desc())
                .limit(1)
            )
        ).first()


async def is_due(store: Store, connection_id: uuid.UUID) -> bool:
    return (await connection_row(store, connection_id)).field_mappings_due_at is not None


async def connection_row(store: Store, connection_id: uuid.UUID) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(connections).where(connections.c.id == connection_id))).first()


async def test_a_re_derived_record_read_again_unchanged_is_not_rewritten(
    store: Store, unlimited: HubSpotSandbox, mapped: Mapped
) -> None:
    await map_field(store, mapped.target, "tier", "properties.favorite_color", CustomFieldType.STRING)
    await rederive_due(store)
    connection = await connection_row(store, mapped.connection_id)
    ctx = context(mappings=await load_overlay(store, mapped.connection_id))
    again = [
        ctx.to_record(orjson.loads(row.raw)) for row in await cached_records(store, mapped.connection_id, "contacts")
    ]
    target = StreamTarget.of(connection, CONTACTS, max_record_bytes=1 << 20)
    seq = await last_seq(store)
    async with store.engine.begin() as conn:
        assert (await upsert_records(conn, target, again, datetime.now(UTC))).changed == 0
    assert await changes_after(store, seq) == []


async def test_the_worker_re_derives_a_connection_once_its_mappings_change(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, mapped: Mapped
) -> None:
    await map_field(store, mapped.target, "tier", "properties.favorite_color", CustomFieldType.STRING)
    assert await is_due(store, mapped.connection_id)
    worker = Worker(store, kit, poll_interval=0.05)
    running = asyncio.create_task(worker.run_forever())
    try:
        for _ in range(200):
            if not await is_due(store, mapped.connection_id):
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
        await running
    assert not await is_due(store, mapped.connection_id)
    run = await rederive_run(store, mapped.connection_id)
    assert run.status == "succeeded" and run.changed > 0
    rows = await cached_records(store, mapped.connection_id, "contacts")
    assert all(row.custom["tier"] == (properties(row).get("favorite_color") or None) for row in rows)


async def test_a_writebacks_read_back_is_mapped_with_the_connections_overlay(
    store: Store, kit: HttpKit, unlimited: HubSpotSandbox, mapped: Mapped, secret_key: str
) -> None:
    remote_id = mapped.mobiles[0]
    unlimited.update("contacts", remote_id, {"loyalty_tier": "platinum", "nps_score": "9"})
    async with gateway(store, kit, secret_key) as api:
        body = await api.graphql(
            """mutation($c: ID!, $r: String!) {
                 updateContact(connectionId: $c, remoteId: $r, input: {jobTitle: "Head of Engines"}) {
                   contact { phone customFields tier: customField(key: "tier") }
                 }
               }""",
            mapped.tenant.api_key,
            c=to_global_id("Connection", mapped.connection_id),
            r=remote_id,
        )
    assert not body.get("errors"), body["errors"]
    contact = body["data"]["updateContact"]["contact"]
    assert contact == {
        "phone": "+44 7700 900120",  # the mobile number the mapping reads, not `phone`
        "customFields": {"tier": "platinum", "nps": 9},
        "tier": "platinum",
    }
