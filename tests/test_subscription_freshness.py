"""Subscriptions never serve stale data: every event, and every operation on a WebSocket, reads related
objects and connections afresh; what one execution remembers is bounded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import event, select

from connectors.kit.credentials import Credentials
from connectors.kit.records import RemoteRecord
from resolvers.loaders import MAX_BATCH_KEYS, BoundedCache, Loaders
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.store import Store, utcnow
from sync.storage.tables import records
from sync.tenancy.connections import NewConnection, create_connection, set_status
from sync.tenancy.platforms import create_api_key
from tests.support import SyncedHubSpot, data, latest_change_cursor, new_tenant, synced_fixture

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]

CONTACT_CHANGES = """subscription($after: String) {
  changes(after: $after, objects: [CONTACT]) {
    cursor remoteId
    connection { status statusReason }
    node { ... on Contact { jobTitle company { remoteId name } } }
  }
}"""

CONTACTS_WITH_COMPANIES = """{ contacts(first: 100) { edges { node { remoteId company { remoteId name } } } } }"""
UPDATE_CONTACT = """mutation($c: ID!, $r: String!, $title: String!) {
  updateContact(connectionId: $c, remoteId: $r, input: {jobTitle: $title}) { contact { jobTitle } }
}"""
RENAME_COMPANY = """mutation($c: ID!, $r: String!, $name: String!) {
  updateCompany(connectionId: $c, remoteId: $r, input: {name: $name}) { company { name } }
}"""
CONNECTION_STATUS = """query($id: ID!) { connection(id: $id) { status statusReason } }"""


class Fresh(SyncedHubSpot):
    def transport(self, protocol: str, key: str | None = None) -> WebsocketsTransport:
        url = self.api.url.replace("http://", "ws://") + "/graphql"
        payload = {"Authorization": f"Bearer {key or self.tenant.api_key}"}
        return WebsocketsTransport(url=url, init_payload=payload, subprotocols=[protocol], ack_timeout=5)

    async def contact_with_company(self) -> tuple[str, str, str]:
        """A contact whose company is cached: (contact remote id, company remote id, company name)."""
        page = data(await self.api.graphql(CONTACTS_WITH_COMPANIES, self.tenant.api_key))["contacts"]["edges"]
        contact = next(edge["node"] for edge in page if edge["node"]["company"] is not None)
        return contact["remoteId"], contact["company"]["remoteId"], contact["company"]["name"]

    async def retitle(self, contact: str, title: str) -> None:
        data(await self.api.graphql(UPDATE_CONTACT, self.tenant.api_key, c=self.connection, r=contact, title=title))

    async def rename_company(self, company: str, name: str) -> None:
        data(await self.api.graphql(RENAME_COMPANY, self.tenant.api_key, c=self.connection, r=company, name=name))

    async def retitle_as_the_provider_announces(self, contact: str, title: str) -> None:
        """A change that reaches the cache without the gateway calling the provider (as a provider's
        webhook does), so it is logged even while the connection needs to be re-authorized."""
        async with self.store.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(records).where(records.c.connection_id == self.connection_id, records.c.remote_id == contact)
                )
            ).one()
            target = StreamTarget(self.tenant.platform_id, self.connection_id, row.end_user_id, row.stream, row.model)
            changed = RemoteRecord(
                contact, orjson.loads(row.raw), {**row.common, "job_title": title}, updated_at=utcnow()
            )
            await upsert_records(conn, target, [changed], utcnow())
        self.store.changes_appended.notify()


fresh = synced_fixture(Fresh)


async def next_change(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    result = await asyncio.wait_for(anext(events), 10)
    change: dict[str, Any] = result["changes"]
    return change


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_each_event_shows_the_related_company_and_connection_as_they_are_now(fresh: Fresh, protocol: str) -> None:
    contact, company, old_name = await fresh.contact_with_company()
    after = await latest_change_cursor(fresh.store)
    async with Client(transport=fresh.transport(protocol)) as session:
        events = session.subscribe(GraphQLRequest(CONTACT_CHANGES, variable_values={"after": after}))
        await fresh.retitle(contact, "first")
        first = await next_change(events)
        assert first["node"] == {"jobTitle": "first", "company": {"remoteId": company, "name": old_name}}
        assert first["connection"] == {"status": "active", "statusReason": None}

        # Between the two events: the company is renamed at the provider (and in the cache), and the
        # connection loses its authorization.
        await fresh.rename_company(company, "Renamed Holdings")
        await set_status(fresh.store, fresh.connection_id, "needs_reauth", "the refresh token was revoked")
        await fresh.retitle_as_the_provider_announces(contact, "second")
        second = await next_change(events)
        await events.aclose()

    assert second["remoteId"] == contact
    assert second["node"] == {"jobTitle": "second", "company": {"remoteId": company, "name": "Renamed Holdings"}}
    assert second["connection"] == {"status": "needs_reauth", "statusReason": "the refresh token was revoked"}


async def test_each_query_on_one_websocket_reads_the_connection_afresh(fresh: Fresh) -> None:
    """graphql-transport-ws carries queries too (legacy graphql-ws only subscriptions)."""
    query = GraphQLRequest(CONNECTION_STATUS, variable_values={"id": fresh.connection})
    async with Client(transport=fresh.transport(PROTOCOLS[0])) as session:
        before = await session.execute(query)
        await set_status(fresh.store, fresh.connection_id, "disabled", "paused by the platform")
        after = await session.execute(query)
    assert before["connection"] == {"status": "active", "statusReason": None}
    assert after["connection"] == {"status": "disabled", "statusReason": "paused by the platform"}


@contextmanager
def statements_about(store: Store, table: str) -> Iterator[list[str]]:
    """The SQL statements that read `table` while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if f"FROM {table}" in statement:
            seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)


async def test_subscribers_sharing_an_audience_share_one_fresh_execution_per_event(fresh: Fresh) -> None:
    """Three subscribers with one key and one operation cost one read of the connection per event, a
    subscriber with another key its own; and each event reads it again, so each shows the status of its time."""
    other_key = (await create_api_key(fresh.store, fresh.tenant.platform_id, "other")).key
    contact, _, _ = await fresh.contact_with_company()
    after = await latest_change_cursor(fresh.store)
    request = GraphQLRequest(CONTACT_CHANGES, variable_values={"after": after})
    protocol = PROTOCOLS[0]
    async with (
        Client(transport=fresh.transport(protocol)) as own,
        Client(transport=fresh.transport(protocol, other_key)) as other,
    ):
        streams = [own.subscribe(request), own.subscribe(request), own.subscribe(request), other.subscribe(request)]
        await fresh.retitle(contact, "warm-up")  # every subscription is live once it has delivered this
        assert {(await next_change(s))["node"]["jobTitle"] for s in streams} == {"warm-up"}

        with statements_about(fresh.store, "connections") as reads:
            await set_status(fresh.store, fresh.connection_id, "needs_reauth", "first reason")
            await fresh.retitle_as_the_provider_announces(contact, "one")
            ones = [await next_change(s) for s in streams]
            reads_for_one = len(reads)
            await set_status(fresh.store, fresh.connection_id, "needs_reauth", "second reason")
            await fresh.retitle_as_the_provider_announces(contact, "two")
            twos = [await next_change(s) for s in streams]
            reads_for_two = len(reads) - reads_for_one
        for stream in streams:
            await stream.aclose()

    assert {c["connection"]["statusReason"] for c in ones} == {"first reason"}
    assert {c["connection"]["statusReason"] for c in twos} == {"second reason"}
    # set_status itself reads no connection; the reads are the two audiences' executions of the event.
    assert (reads_for_one, reads_for_two) == (2, 2)


async def test_a_replay_reads_related_objects_once_per_batch_of_the_log(fresh: Fresh) -> None:
    """Changes a replay reads from the log together share their executions' loaders: thirty replayed
    changes read their connection once, and show it as it was when the batch was read."""
    contact, _, _ = await fresh.contact_with_company()
    after = await latest_change_cursor(fresh.store)
    for number in range(30):
        await fresh.retitle_as_the_provider_announces(contact, f"title {number}")
    await set_status(fresh.store, fresh.connection_id, "needs_reauth", "before the replay")
    request = GraphQLRequest(CONTACT_CHANGES, variable_values={"after": after})
    async with Client(transport=fresh.transport(PROTOCOLS[0])) as session:
        with statements_about(fresh.store, "connections") as reads:
            events = session.subscribe(request)
            replayed = [await next_change(events) for _ in range(30)]
            await events.aclose()
    assert len({change["cursor"] for change in replayed}) == 30
    assert {change["node"]["jobTitle"] for change in replayed} == {"title 29"}  # the record as it is now
    assert {change["connection"]["statusReason"] for change in replayed} == {"before the replay"}
    assert len(reads) == 1


async def test_loaders_remember_a_bounded_number_of_keys_and_fetch_in_bounded_batches(store: Store) -> None:
    tenant = await new_tenant(store)
    unknown = [uuid.uuid4() for _ in range(2 * MAX_BATCH_KEYS + 500)]
    loaders = Loaders(store, tenant.platform_id, cached_keys=100)
    with statements_about(store, "connections") as reads:
        found = await loaders.connection.load_many(unknown)
    assert found == [None] * len(unknown)
    assert len(reads) == 3  # 2,500 keys asked for at once: three statements of at most 1,000 keys
    remembered = loaders.connection.cache_map
    assert isinstance(remembered, BoundedCache) and len(remembered) == 100


async def test_a_key_the_loader_forgot_is_read_again(store: Store) -> None:
    tenant = await new_tenant(store)
    new = NewConnection(tenant.platform_id, "hubspot", "user-1", Credentials(access_token="token"))
    connection_id = await create_connection(store, new)
    loaders = Loaders(store, tenant.platform_id, cached_keys=2)
    first = await loaders.connection.load(connection_id)
    assert first is not None and first.status_reason is None
    await set_status(store, connection_id, "needs_reauth", "changed")
    remembered = await loaders.connection.load(connection_id)
    assert remembered is not None and remembered.status_reason is None  # one execution sees one state
    await loaders.connection.load_many([uuid.uuid4(), uuid.uuid4()])  # pushes it out of a two-key memory
    again = await loaders.connection.load(connection_id)
    assert again is not None and again.status_reason == "changed"
