"""The change log and the subscriptions that follow it."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import select, update
from websockets.exceptions import ConnectionClosed

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.records import RemoteRecord
from resolvers import changes as resolve_changes
from resolvers.context import Caller
from resolvers.ids import to_global_id
from sync.cache import changes
from sync.cache import feed as feed_module
from sync.cache.changes import ChangeFilter
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.store import Store, utcnow
from sync.storage.tables import changes as change_table
from sync.storage.tables import connections, records, stream_states
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.platforms import create_api_key
from tests.benchmarks.common import free_port, subprocess_running
from tests.support import (
    SyncedHubSpot,
    data,
    latest_change_cursor,
    make_streams_due,
    new_tenant,
    run_everything_due,
    synced_fixture,
)

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]

CHANGES = """subscription($after: String, $objects: [ObjectType!], $connectionIds: [ID!]) {
  changes(after: $after, objects: $objects, connectionIds: $connectionIds) {
    cursor op object remoteId changedFields occurredAt
    connection { id provider }
    node { remoteId deletedAt ... on Contact { email jobTitle } }
  }
}"""

UPDATE_CONTACT = """mutation($c: ID!, $r: String!, $title: String!) {
  updateContact(connectionId: $c, remoteId: $r, input: {jobTitle: $title}) { contact { remoteId jobTitle } }
}"""


class Setup(SyncedHubSpot):
    @property
    def ws_url(self) -> str:
        return self.api.url.replace("http://", "ws://") + "/graphql"

    def transport(self, protocol: str, key: str | None = "own") -> WebsocketsTransport:
        payload = {"Authorization": f"Bearer {self.tenant.api_key if key == 'own' else key}"} if key else {}
        return WebsocketsTransport(url=self.ws_url, init_payload=payload, subprotocols=[protocol], ack_timeout=5)

    async def retitle(self, remote_id: str, title: str) -> None:
        body = await self.api.graphql(UPDATE_CONTACT, self.tenant.api_key, c=self.connection, r=remote_id, title=title)
        data(body)

    def contacts(self, n: int) -> list[str]:
        return sorted(self.sandbox.all_ids("contacts"), key=int)[:n]


setup = synced_fixture(Setup)


async def collect(session: Any, request: GraphQLRequest, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    async def run() -> None:
        async for result in session.subscribe(request):
            got.append(result["changes"])
            if len(got) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return got


# ---- the log ---------------------------------------------------------------------------------------


async def test_the_backfill_logs_one_creation_per_record(setup: Setup) -> None:
    async with setup.store.engine.connect() as conn:
        logged = (await conn.execute(select(change_table.c.op, change_table.c.record_id))).all()
        cached = set((await conn.execute(select(records.c.id))).scalars())
    assert {op for op, _ in logged} == {"CREATED"}
    assert sorted(record_id for _, record_id in logged) == sorted(cached)


async def test_only_real_changes_are_logged(setup: Setup, kit: HttpKit) -> None:
    async with setup.store.engine.connect() as conn:
        before = await changes.latest(conn)
    contact = setup.contacts(1)[0]
    setup.sandbox.update("contacts", contact, {"jobtitle": "Changed upstream"})
    await make_streams_due(setup.store, setup.connection_id)
    await run_everything_due(setup.store, kit)
    await make_streams_due(setup.store, setup.connection_id)
    await run_everything_due(setup.store, kit)  # the overlap window reads it again: no second change
    async with setup.store.engine.connect() as conn:
        logged = await changes.read(conn, setup.tenant.platform_id, before, 100, ChangeFilter())
    assert [(row.op, row.remote_id, row.changed_fields) for row in logged] == [("UPDATED", contact, ["job_title"])]

    setup.sandbox.archive("contacts", contact)
    await make_streams_due(setup.store, setup.connection_id)
    async with setup.store.engine.begin() as conn:  # the deletion scan runs at most once a minute
        await conn.execute(update(stream_states).values(deletions_checked_at=None))
    await run_everything_due(setup.store, kit)
    async with setup.store.engine.connect() as conn:
        logged = await changes.read(conn, setup.tenant.platform_id, logged[-1].seq, 100, ChangeFilter())
    assert [(row.op, row.remote_id) for row in logged] == [("DELETED", contact)]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_concurrent_writers_leave_no_gap_for_a_reader(store: Store) -> None:
    """Writers commit out of order (random pauses after appending); a reader polling `seq > N` the whole
    time must still see every change exactly once, in order."""
    tenant = await new_tenant(store)
    connection_id = await create_connection(
        store, NewConnection(tenant.platform_id, "hubspot", "u", Credentials(access_token="x"))
    )
    async with store.engine.connect() as conn:
        end_user = (
            await conn.execute(select(connections.c.end_user_id).where(connections.c.id == connection_id))
        ).scalar_one()
    target = StreamTarget(tenant.platform_id, connection_id, end_user, "contacts", "Contact")
    writers, per_writer = 6, 25
    done = asyncio.Event()

    async def write(writer: int) -> None:
        for i in range(per_writer):
            async with store.engine.begin() as conn:
                record = RemoteRecord(f"{writer}-{i}", {"n": i}, {"first_name": str(i)})
                await upsert_records(conn, target, [record], utcnow())
                await asyncio.sleep(random.uniform(0, 0.01))  # the commit comes late, after others' appends

    seen: list[int] = []

    async def read() -> None:
        position = 0
        while True:
            finished = done.is_set()
            async with store.reader.connect() as conn:
                rows = await changes.read(conn, tenant.platform_id, position, 1000, ChangeFilter())
            for row in rows:
                seen.append(row.seq)
                position = row.seq
            if finished and not rows:
                return
            await asyncio.sleep(0.001)

    reader = asyncio.create_task(read())
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    await reader
    async with store.engine.connect() as conn:
        everything = list((await conn.execute(select(change_table.c.seq).order_by(change_table.c.seq))).scalars())
    assert len(everything) == writers * per_writer
    assert seen == everything  # nothing skipped, nothing twice, in order


# ---- subscriptions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscriber_receives_live_changes(setup: Setup, protocol: str) -> None:
    contact = setup.contacts(1)[0]
    async with Client(transport=setup.transport(protocol)) as session:
        request = GraphQLRequest(CHANGES, variable_values={"objects": ["CONTACT"]})
        listening = asyncio.create_task(collect(session, request, 1))
        await asyncio.sleep(0.3)  # subscribed
        await setup.retitle(contact, "Live")
        (change,) = await listening
    assert change["op"] == "UPDATED" and change["object"] == "Contact" and change["remoteId"] == contact
    assert change["changedFields"] == ["jobTitle"]
    assert change["node"]["jobTitle"] == "Live"
    assert change["connection"] == {"id": setup.connection, "provider": "hubspot"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_resuming_from_a_cursor_replays_then_continues_without_gap_or_repeat(setup: Setup, protocol: str) -> None:
    first, second, third, fourth = setup.contacts(4)
    async with setup.store.engine.connect() as conn:
        start = await changes.latest(conn)
    await setup.retitle(first, "one")
    await setup.retitle(second, "two")
    cursor = to_global_id("Change", start)
    async with Client(transport=setup.transport(protocol)) as session:
        request = GraphQLRequest(CHANGES, variable_values={"after": cursor, "objects": ["CONTACT"]})
        seen = await collect(session, request, 2)
    assert [c["remoteId"] for c in seen] == [first, second]

    # Offline for a while: changes pile up; the client resumes from its last cursor.
    await setup.retitle(third, "three")
    async with Client(transport=setup.transport(protocol)) as session:
        request = GraphQLRequest(CHANGES, variable_values={"after": seen[-1]["cursor"], "objects": ["CONTACT"]})
        listening = asyncio.create_task(collect(session, request, 2))
        await asyncio.sleep(0.3)
        await setup.retitle(fourth, "four")  # live, right after the replay
        resumed = await listening
    assert [c["remoteId"] for c in resumed] == [third, fourth]
    assert [c["node"]["jobTitle"] for c in resumed] == ["three", "four"]


async def test_filters_by_connection_and_object(setup: Setup) -> None:
    protocol = PROTOCOLS[0]
    async with setup.store.engine.connect() as conn:
        start = await changes.latest(conn)
    contact = setup.contacts(1)[0]
    await setup.retitle(contact, "filtered")
    cursor = to_global_id("Change", start)
    async with Client(transport=setup.transport(protocol)) as session:
        other = to_global_id("Connection", uuid.uuid4())
        request = GraphQLRequest(CHANGES, variable_values={"after": cursor, "connectionIds": [other]})
        with pytest.raises(TimeoutError):
            await collect(session, request, 1, timeout=1.0)
    async with Client(transport=setup.transport(protocol)) as session:
        request = GraphQLRequest(CHANGES, variable_values={"after": cursor, "objects": ["DEAL"]})
        with pytest.raises(TimeoutError):
            await collect(session, request, 1, timeout=1.0)
    by_user = """subscription($after: String, $users: [String!]) {
      changes(after: $after, externalUserIds: $users) { remoteId }
    }"""
    async with Client(transport=setup.transport(protocol)) as session:
        request = GraphQLRequest(by_user, variable_values={"after": cursor, "users": ["someone-else"]})
        with pytest.raises(TimeoutError):
            await collect(session, request, 1, timeout=1.0)
    async with Client(transport=setup.transport(protocol)) as session:
        request = GraphQLRequest(by_user, variable_values={"after": cursor, "users": ["user-1"]})
        assert [c["remoteId"] for c in await collect(session, request, 1)] == [contact]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("key", [None, "xk_not_a_key"])
async def test_a_websocket_without_a_valid_key_is_refused(setup: Setup, protocol: str, key: str | None) -> None:
    with pytest.raises(TransportError) as refused:
        async with Client(transport=setup.transport(protocol, key)) as session:
            await collect(session, GraphQLRequest(CHANGES), 1, timeout=3.0)
    if protocol == WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL:
        assert _close_code(refused.value) == 4403  # graphql-transport-ws: Forbidden
    else:
        assert "UNAUTHENTICATED" in str(refused.value)  # graphql-ws: connection_error with our reason


def _close_code(error: BaseException | None) -> int | None:
    while error is not None:
        if isinstance(error, ConnectionClosed) and error.rcvd is not None:
            return int(error.rcvd.code)
        error = error.__cause__ or error.__context__
    return None


async def test_another_platform_sees_none_of_these_changes(setup: Setup) -> None:
    other = await new_tenant(setup.store, "other")
    async with setup.store.engine.connect() as conn:
        start = await changes.latest(conn)
    await setup.retitle(setup.contacts(1)[0], "private")
    transport = setup.transport(PROTOCOLS[0], other.api_key)
    async with Client(transport=transport) as session:
        request = GraphQLRequest(CHANGES, variable_values={"after": to_global_id("Change", start)})
        with pytest.raises(TimeoutError):
            await collect(session, request, 1, timeout=1.0)


async def test_a_cursor_older_than_retention_says_to_read_again(setup: Setup) -> None:
    async with setup.store.engine.connect() as conn:
        old = await changes.latest(conn)
    await setup.retitle(setup.contacts(1)[0], "pruned soon")
    assert await changes.prune(setup.store, retention=timedelta(seconds=-1)) > 0
    async with Client(transport=setup.transport(PROTOCOLS[0])) as session:
        request = GraphQLRequest(CHANGES, variable_values={"after": to_global_id("Change", old - 1)})
        with pytest.raises(TransportQueryError) as expired:
            await collect(session, request, 1, timeout=3.0)
    assert expired.value.errors and expired.value.errors[0]["extensions"]["code"] == "CURSOR_EXPIRED"


async def test_sync_progress_streams_runs_as_they_start_and_finish(setup: Setup, kit: HttpKit) -> None:
    query = """subscription($c: ID!) { syncProgress(connectionId: $c) { stream status pages records } }"""
    async with Client(transport=setup.transport(PROTOCOLS[0])) as session:
        request = GraphQLRequest(query, variable_values={"c": setup.connection})
        updates: list[dict[str, Any]] = []

        async def watch() -> None:
            async for result in session.subscribe(request):
                updates.append(result["syncProgress"])
                finished = {u["stream"] for u in updates if u["status"] != "running"}
                if "contacts" in finished:
                    return

        watching = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        await make_streams_due(setup.store, setup.connection_id)
        await run_everything_due(setup.store, kit)
        await asyncio.wait_for(watching, 10)
    contacts = [u for u in updates if u["stream"] == "contacts"]
    assert contacts[-1]["status"] == "succeeded"


async def test_a_bad_after_is_a_clear_error(setup: Setup) -> None:
    async with Client(transport=setup.transport(PROTOCOLS[0])) as session:
        with pytest.raises(TransportQueryError) as bad:
            await collect(session, GraphQLRequest(CHANGES, variable_values={"after": "nonsense"}), 1, timeout=3.0)
    assert bad.value.errors and bad.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_write_through_one_process_reaches_a_subscriber_on_another(
    setup: Setup, database_url: str, secret_key: str
) -> None:
    """Two gateway processes share one PostgreSQL: LISTEN/NOTIFY carries the wake-up between them."""
    ports = [free_port(), free_port()]
    command = ["-m", "tests.benchmarks.query_server", "--database-url", database_url, "--secret-key", secret_key]
    servers = [[*command, "--port", str(port)] for port in ports]
    contact = setup.contacts(1)[0]
    with subprocess_running(servers[0], ports[0]), subprocess_running(servers[1], ports[1]):
        transport = WebsocketsTransport(
            url=f"ws://127.0.0.1:{ports[1]}/graphql",
            init_payload={"Authorization": f"Bearer {setup.tenant.api_key}"},
            subprotocols=[PROTOCOLS[0]],
        )
        async with Client(transport=transport) as session:
            # From the current cursor: the change arrives however late the subscription settles in.
            after = await latest_change_cursor(setup.store)
            listening = asyncio.create_task(
                collect(session, GraphQLRequest(CHANGES, variable_values={"objects": ["CONTACT"], "after": after}), 1)
            )
            async with httpx2.AsyncClient(timeout=30) as client:
                answer = await client.post(
                    f"http://127.0.0.1:{ports[0]}/graphql",
                    json={
                        "query": UPDATE_CONTACT,
                        "variables": {"c": setup.connection, "r": contact, "title": "Across processes"},
                    },
                    headers={"Authorization": f"Bearer {setup.tenant.api_key}"},
                )
            assert not answer.json().get("errors"), answer.text
            (change,) = await listening
    assert change["remoteId"] == contact and change["node"]["jobTitle"] == "Across processes"


async def test_a_subscriber_too_slow_for_the_feed_still_gets_everything_in_order(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "QUEUE_LIMIT", 3)
    caller = Caller(setup.api.runtime.services, setup.tenant.platform_id)
    start = await resolve_changes.start_position(caller, None)
    stream = resolve_changes.follow(caller, start, ChangeFilter(models=("Contact",)))
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.2)  # joined the feed, waiting
    contacts = setup.contacts(12)
    for i, contact in enumerate(contacts):  # twelve changes while the subscriber reads none
        await setup.retitle(contact, f"slow {i}")
    received = [await asyncio.wait_for(first, 5)]
    while len(received) < len(contacts):
        received.append(await asyncio.wait_for(stream.__anext__(), 5))
    await stream.aclose()
    assert [e.remote_id for e in received] == contacts
    assert [e.seq for e in received] == sorted({e.seq for e in received})


async def test_subscribers_of_one_change_each_get_their_own_selection_variables_and_key(setup: Setup) -> None:
    """Live subscribers share the execution of a change only when operation, variables and key all match."""
    second_key = (await create_api_key(setup.store, setup.tenant.platform_id, "second")).key
    optional_node = """subscription($withNode: Boolean!) {
      changes(objects: [CONTACT]) { remoteId node @include(if: $withNode) { remoteId } }
    }"""
    with_credentials = """subscription {
      changes(objects: [CONTACT]) { remoteId connection { credentials { accessToken } } }
    }"""
    full = GraphQLRequest(CHANGES, variable_values={"objects": ["CONTACT"]})
    contact = setup.contacts(1)[0]
    async with (
        Client(transport=setup.transport(PROTOCOLS[0])) as own,
        Client(transport=setup.transport(PROTOCOLS[0], second_key)) as other,
    ):
        listening = [
            asyncio.create_task(collect(own, full, 1)),
            asyncio.create_task(collect(own, full, 1)),
            asyncio.create_task(collect(own, GraphQLRequest(optional_node, variable_values={"withNode": True}), 1)),
            asyncio.create_task(collect(own, GraphQLRequest(optional_node, variable_values={"withNode": False}), 1)),
            asyncio.create_task(collect(own, GraphQLRequest(with_credentials), 1)),
            asyncio.create_task(collect(other, GraphQLRequest(with_credentials), 1)),
        ]
        await asyncio.sleep(0.5)  # all subscribed
        await setup.retitle(contact, "Shared")
        (a,), (b,), (with_node,), (without_node,), (own_read,), (other_read,) = await asyncio.gather(*listening)
    assert a == b and a["node"]["jobTitle"] == "Shared"
    assert with_node == {"remoteId": contact, "node": {"remoteId": contact}}
    assert without_node == {"remoteId": contact}
    assert (
        own_read["connection"]["credentials"]["accessToken"] == other_read["connection"]["credentials"]["accessToken"]
    )
    # Each key read the credentials itself, so each read is recorded under its own key.
    reads = """query($c: ID!) { connection(id: $c) { credentialReads { apiKeyName } } }"""
    recorded = data(await setup.api.graphql(reads, setup.tenant.api_key, c=setup.connection))
    names = [r["apiKeyName"] for r in recorded["connection"]["credentialReads"]]
    assert sorted(names) == ["default", "second"]


async def test_the_feed_offers_a_change_to_exactly_the_listeners_whose_filters_match(setup: Setup) -> None:
    """Listeners are filed by connection, end user or platform; whichever way, each gets what it asked for."""
    feed = setup.api.runtime.services.feed
    other = await new_tenant(setup.store, "other")
    platform, connection = setup.tenant.platform_id, setup.connection_id
    wanted = {
        "its connection": (platform, ChangeFilter(connection_ids=(connection, uuid.uuid4()))),
        "its end user": (platform, ChangeFilter(external_user_ids=("user-1",))),
        "its platform": (platform, ChangeFilter(models=("Contact",))),
    }
    unwanted = {
        "another connection": (platform, ChangeFilter(connection_ids=(uuid.uuid4(),))),
        "another end user": (platform, ChangeFilter(external_user_ids=("someone-else",))),
        "its connection, other objects": (platform, ChangeFilter(connection_ids=(connection,), models=("Deal",))),
        "its connection id, other platform": (other.platform_id, ChangeFilter(connection_ids=(connection,))),
        "another platform": (other.platform_id, ChangeFilter()),
        "no connection at all": (platform, ChangeFilter(connection_ids=())),
    }
    listeners = {name: await feed.join(p, where) for name, (p, where) in {**wanted, **unwanted}.items()}
    contact = setup.contacts(1)[0]
    await setup.retitle(contact, "Filed")
    for name in wanted:
        item = await asyncio.wait_for(listeners[name].queue.get(), 5)
        assert item.change.remote_id == contact, name
    await asyncio.sleep(0.3)  # the feed has offered the change to everyone it was going to
    assert {name for name in unwanted if not listeners[name].queue.empty()} == set()
    for listener in listeners.values():
        feed.leave(listener)
        feed.leave(listener)  # leaving twice is harmless
    assert feed.listening == 0 and feed.listeners == {}


async def test_a_writeback_is_logged_like_any_other_change(setup: Setup) -> None:
    async with setup.store.engine.connect() as conn:
        start = await changes.latest(conn)
    create = """mutation($c: ID!) { createContact(connectionId: $c, input: {firstName: "Log", lastName: "Me",
                email: "log.me@example.org"}) { contact { remoteId } } }"""
    remote_id = data(await setup.api.graphql(create, setup.tenant.api_key, c=setup.connection))["createContact"][
        "contact"
    ]["remoteId"]
    await setup.retitle(remote_id, "Logged")
    async with setup.store.engine.connect() as conn:
        logged = await changes.read(conn, setup.tenant.platform_id, start, 10, ChangeFilter())
        common = (await conn.execute(select(records.c.common).where(records.c.remote_id == remote_id))).scalar_one()
    assert [(c.op, c.remote_id) for c in logged] == [("CREATED", remote_id), ("UPDATED", remote_id)]
    created_fields = changes.changed_fields(None, {**common, "job_title": None})
    assert logged[0].changed_fields == created_fields
    assert {"email", "first_name", "last_name"} <= set(created_fields)
    assert logged[1].changed_fields == ["job_title"]
