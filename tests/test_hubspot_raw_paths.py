"""A HubSpot record stores the same `raw`, byte for byte, whichever path read it.

Five paths read HubSpot records: the list API (backfill; on a wide account, ids and associations listed,
properties through batch read), search (incremental), batch read with the v4 associations read (the
webhook refetch and the read-back after a writeback). If any of them shaped a record differently, the
record would count as changed whenever another path read it last: a false change event, and a different
`raw` depending on which path ran last. Each path here is driven the way production drives it, and what it
stores is compared with what a list backfill of the same account stores.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
from sqlalchemy import select, update

from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.hubspot.sandbox.crm import ASSOCIATION_PAGE_SIZE
from connectors.hubspot.webhooks import signature_v3
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from resolvers.ids import to_global_id
from sync.cache import changes as change_log
from sync.storage.store import Store
from sync.storage.tables import changes, records, stream_states, sync_runs
from tests.support import (
    Gateway,
    Tenant,
    connect_hubspot,
    data,
    gateway,
    make_streams_due,
    new_tenant,
    run_everything_due,
    stream_errors,
)

COMPARED = ("contacts", "deals")
BATCH_READ = "POST /crm/v3/objects/{objectType}/batch/read"
V4_ASSOCIATIONS_READ = "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"
NARROW = SandboxSize(contacts=100, companies=12, deals=20, owners=3, notes=5, tasks=5)
WIDE = SandboxSize(contacts=100, companies=12, deals=20, owners=3, notes=5, tasks=5, contact_properties=600)

# (stream, remote id) -> (stored raw, content hash)
Stored = dict[tuple[str, str], tuple[str, str]]


@pytest.fixture(params=[NARROW, WIDE], ids=["narrow", "wide"])
def account(request: pytest.FixtureRequest) -> Iterator[tuple[HubSpotSandbox, str, SandboxSize]]:
    sandbox = HubSpotSandbox(seed=19, size=request.param)
    sandbox.faults.rate_limit_enabled = False
    with serve_in_thread(create_app(sandbox)) as url:
        yield sandbox, url, request.param


async def stored(store: Store, connection_id: uuid.UUID) -> Stored:
    """The cached records as stored: `raw` is kept as canonical JSON text, so equal text is equal bytes."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(records.c.stream, records.c.remote_id, records.c.raw, records.c.content_hash).where(
                records.c.connection_id == connection_id, records.c.stream.in_(COMPARED), records.c.deleted.is_(False)
            )
        )
        return {(row.stream, row.remote_id): (row.raw, row.content_hash) for row in rows}


def differences(got: Stored, expected: Stored) -> dict[tuple[str, str], list[str]]:
    """Per record that differs, where: the top-level members (and property names) whose values differ."""
    found: dict[tuple[str, str], list[str]] = {}
    for key in got.keys() | expected.keys():
        if key not in got or key not in expected:
            found[key] = ["missing" if key not in got else "unexpected"]
        elif got[key] != expected[key]:
            mine, theirs = orjson.loads(got[key][0]), orjson.loads(expected[key][0])
            where = [
                f"properties.{name}" for name in _differing(mine.pop("properties", {}), theirs.pop("properties", {}))
            ]
            found[key] = where + _differing(mine, theirs) or ["the same raw, another hash: the mapping differs"]
    return found


def _differing(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    return sorted(name for name in mine.keys() | theirs.keys() if mine.get(name) != theirs.get(name))


async def logged_since(store: Store, connection_id: uuid.UUID, seq: int) -> list[tuple[str, str, str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(changes.c.op, changes.c.stream, changes.c.remote_id)
            .where(changes.c.connection_id == connection_id, changes.c.seq > seq)
            .order_by(changes.c.seq)
        )
        return [(row.op, row.stream, row.remote_id) for row in rows]


async def log_position(store: Store) -> int:
    async with store.engine.connect() as conn:
        return await change_log.latest(conn)


async def search_everything_again(store: Store, kit: HttpKit, connection_id: uuid.UUID) -> dict[str, int]:
    """One incremental run whose search window covers every record; returns how many each stream read."""
    async with store.engine.begin() as conn:
        await conn.execute(
            update(stream_states)
            .where(stream_states.c.connection_id == connection_id, stream_states.c.stream.in_(COMPARED))
            .values(phase="incremental", cursor={"since": "2000-01-01T00:00:00.000Z", "after": 0})
        )
    await make_streams_due(store, connection_id)
    await run_everything_due(store, kit)
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(sync_runs.c.stream, sync_runs.c.records)
            .where(
                sync_runs.c.connection_id == connection_id,
                sync_runs.c.stream.in_(COMPARED),
                sync_runs.c.phase == "incremental",
            )
            .order_by(sync_runs.c.id)
        )
        return {row.stream: row.records for row in rows}  # the latest run of each stream


async def deliver_webhook(api: Gateway, sandbox: HubSpotSandbox, events: list[dict[str, Any]]) -> httpx2.Response:
    """A delivery as HubSpot sends one: a JSON array of events, signed (v3) with the app's secret."""
    url = f"{api.url}/webhooks/hubspot"
    now = int(time.time() * 1000)
    base = {"portalId": sandbox.hub_id, "appId": 1, "subscriptionId": 1, "attemptNumber": 0, "occurredAt": now}
    body = orjson.dumps([{**base, "eventId": i, **event} for i, event in enumerate(events)])
    stamp = str(now)
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": signature_v3(sandbox.client_secret, "POST", url, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
    }
    return await api.client.post(url, content=body, headers=headers)


UPDATE_CONTACT = """mutation($c: ID!, $r: String!, $input: ContactInput!) {
  updateContact(connectionId: $c, remoteId: $r, input: $input) { contact { remoteId company { remoteId } } } }"""
UPDATE_DEAL = """mutation($c: ID!, $r: String!, $input: DealInput!) {
  updateDeal(connectionId: $c, remoteId: $r, input: $input) {
    deal { remoteId amount { amount currency } company { remoteId } contacts { remoteId } } } }"""


def linked(raw_json: str, target: str) -> list[str]:
    raw = orjson.loads(raw_json)
    return [item["id"] for item in raw.get("associations", {}).get(target, {}).get("results", [])]


async def test_every_read_path_stores_the_raw_the_list_api_stores(
    store: Store, kit: HttpKit, secret_key: str, account: tuple[HubSpotSandbox, str, SandboxSize]
) -> None:
    sandbox, url, size = account
    tenant: Tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, sandbox, url)

    # List (backfill). A wide account's contacts are too wide for one URL: their properties come by batch read.
    await run_everything_due(store, kit)
    assert set((await stream_errors(store, connection_id)).values()) == {None}
    assert sandbox.stats.requests[BATCH_READ] == (-(-size.contacts // 100) if size.contact_properties else 0)
    # No listed block was cut short (under 100 links of a type), so nothing more was read.
    assert sandbox.stats.requests[V4_ASSOCIATIONS_READ] == 0
    listed = await stored(store, connection_id)
    assert len(listed) == size.contacts + size.deals
    link_types = {
        item["type"]
        for raw, _ in listed.values()
        for links in orjson.loads(raw).get("associations", {}).values()
        for item in links["results"]
    }
    # Primary links come as two types, `..._to_company` and `..._to_company_unlabeled`: both are compared.
    assert {"contact_to_company", "contact_to_company_unlabeled", "deal_to_contact"} <= link_types, link_types
    start = await log_position(store)

    # Search (incremental), over every record.
    read = await search_everything_again(store, kit, connection_id)
    assert read == {"contacts": size.contacts, "deals": size.deals}
    assert differences(await stored(store, connection_id), listed) == {}
    assert await logged_since(store, connection_id, start) == []

    contact_ids = sorted({remote_id for stream, remote_id in listed if stream == "contacts"}, key=int)
    deal_ids = sorted({remote_id for stream, remote_id in listed if stream == "deals"}, key=int)
    company_ids = sorted(sandbox.all_ids("companies"), key=int)
    async with gateway(store, kit, secret_key) as api:
        # Webhook refetch of every record; one of them really changed (a new company link, made in HubSpot).
        touched = contact_ids[0]
        other_company = next(c for c in company_ids if c not in linked(listed["contacts", touched][0], "companies"))
        sandbox.associate("contacts", touched, "companies", other_company)
        events = [{"subscriptionType": "contact.propertyChange", "objectId": int(i)} for i in contact_ids]
        events += [{"subscriptionType": "deal.propertyChange", "objectId": int(i)} for i in deal_ids]
        answer = await deliver_webhook(api, sandbox, events)
        assert answer.status_code == 200, answer.text
        refetched = await stored(store, connection_id)
        assert differences(refetched, listed) == {("contacts", touched): ["associations"]}
        assert await logged_since(store, connection_id, start) == [("UPDATED", "contacts", touched)]

        # Writeback: a contact and a deal updated with their associations, then read back.
        before_writes = await log_position(store)
        connection = to_global_id("Connection", connection_id)
        contact = contact_ids[1]
        new_company = next(c for c in company_ids if c not in linked(listed["contacts", contact][0], "companies"))
        wrote = await api.graphql(
            UPDATE_CONTACT,
            tenant.api_key,
            c=connection,
            r=contact,
            input={"jobTitle": "Read back", "companyRemoteId": new_company},
        )
        assert data(wrote)["updateContact"]["contact"]["company"] == {"remoteId": new_company}
        deal = deal_ids[0]
        deal_company = next(c for c in company_ids if c not in linked(listed["deals", deal][0], "companies"))
        deal_contacts = contact_ids[-2:]
        wrote = await api.graphql(
            UPDATE_DEAL,
            tenant.api_key,
            c=connection,
            r=deal,
            input={
                "amount": {"amount": "777.25", "currency": "EUR"},
                "companyRemoteId": deal_company,
                "contactRemoteIds": deal_contacts,
            },
        )
        written_deal = data(wrote)["updateDeal"]["deal"]
        assert written_deal["company"] == {"remoteId": deal_company}
        assert written_deal["amount"] == {"amount": "777.25", "currency": "EUR"}
        assert sorted(c["remoteId"] for c in written_deal["contacts"]) == deal_contacts
        assert await logged_since(store, connection_id, before_writes) == [
            ("UPDATED", "contacts", contact),
            ("UPDATED", "deals", deal),
        ]
    after_writes = await stored(store, connection_id)

    # The incremental sync reads our own writes back through search: no change.
    settled = await log_position(store)
    await search_everything_again(store, kit, connection_id)
    assert differences(await stored(store, connection_id), after_writes) == {}
    assert await logged_since(store, connection_id, settled) == []

    # A second connection to the same account, backfilled through the list API alone, stores the same bytes
    # for every record: those the webhook refetched and those written back included.
    fresh = await connect_hubspot(store, tenant, sandbox, url, external_user_id="user-2")
    await run_everything_due(store, kit)
    assert differences(await stored(store, fresh), after_writes) == {}


@pytest.mark.parametrize("contact_properties", [0, 600], ids=["one-request-list", "ids-then-batch-read-list"])
async def test_a_record_with_more_associations_than_a_page_keeps_them_all_on_every_path(
    store: Store, kit: HttpKit, secret_key: str, contact_properties: int
) -> None:
    """The list API answers 100 associated records per type and a cursor for the rest, the v4 associations
    read (search, webhook refetch, writeback read-back) 500 a page: past either, every path stores them all,
    byte for byte alike. A deal and a contact are linked to every company; on a wide account the contacts'
    list is ids and associations, then properties by batch read."""
    companies = ASSOCIATION_PAGE_SIZE + 20
    size = SandboxSize(
        contacts=5, companies=companies, deals=3, owners=1, notes=1, tasks=1, contact_properties=contact_properties
    )
    sandbox = HubSpotSandbox(seed=23, size=size)
    sandbox.faults.rate_limit_enabled = False
    deal = min(sandbox.all_ids("deals"), key=int)
    contact = min(sandbox.all_ids("contacts"), key=int)
    for company in sandbox.all_ids("companies"):
        sandbox.associate("deals", deal, "companies", company)
        sandbox.associate("contacts", contact, "companies", company)
    with serve_in_thread(create_app(sandbox)) as url:
        tenant = await new_tenant(store)
        connection_id = await connect_hubspot(store, tenant, sandbox, url)
        await run_everything_due(store, kit)
        assert sandbox.stats.requests[BATCH_READ] == (1 if contact_properties else 0)
        # Only the two blocks the list cut short are read again: 520 links are two v4 pages each.
        assert sandbox.stats.requests[V4_ASSOCIATIONS_READ] == 4
        listed = await stored(store, connection_id)
        assert len(set(linked(listed["deals", deal][0], "companies"))) == companies
        assert len(set(linked(listed["contacts", contact][0], "companies"))) == companies
        assert all(
            "paging" not in block
            for raw, _ in listed.values()
            for block in orjson.loads(raw).get("associations", {}).values()
        )
        start = await log_position(store)

        await search_everything_again(store, kit, connection_id)
        assert differences(await stored(store, connection_id), listed) == {}
        async with gateway(store, kit, secret_key) as api:
            events = [
                {"subscriptionType": "deal.propertyChange", "objectId": int(deal)},
                {"subscriptionType": "contact.propertyChange", "objectId": int(contact)},
            ]
            answer = await deliver_webhook(api, sandbox, events)
            assert answer.status_code == 200, answer.text
        assert differences(await stored(store, connection_id), listed) == {}
        assert await logged_since(store, connection_id, start) == []
