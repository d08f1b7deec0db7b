"""Outbound webhooks: signed, at least once, in order per record, retried, given up on, queryable, replayable.

The tests drive `sync.webhooks.outbound.Outbound` step by step against a real receiver over HTTP (no sleeping
worker), with the timings shrunk; one test checks that the worker loop runs it, woken by an append.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest_asyncio
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.records import RemoteRecord
from resolvers.changes import decode_cursor, encode_cursor
from resolvers.ids import to_global_id
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.store import Store, utcnow
from sync.storage.tables import changes as change_table
from sync.storage.tables import connections, stream_states, webhook_deliveries
from sync.tenancy.connections import NewConnection, create_connection
from sync.webhooks import outbound
from sync.webhooks.outbound import Outbound, Tunables
from sync.worker.scheduler import Worker
from tests.support import (
    Gateway,
    Tenant,
    data,
    error_codes,
    free_port,
    gateway,
    new_tenant,
    sandbox_egress,
    serve,
)

FAST = Tunables(backoff_base=0.01, backoff_cap=0.05, give_up_after=timedelta(hours=1), timeout=2.0, lease=5.0)

CREATE = """mutation($input: CreateWebhookDestinationInput!) {
  createWebhookDestination(input: $input) {
    secret
    destination { id url objects connectionIds externalUserIds enabled cursor createdAt }
  }
}"""

DESTINATIONS = """query($first: Int, $status: String) {
  webhookDestinations {
    id url objects connectionIds externalUserIds
    deliveries(first: $first, status: $status) {
      eventId cursor status attempts lastStatusCode lastError nextAttemptAt deliveredAt createdAt
    }
  }
}"""

REPLAY = """mutation($id: ID!, $after: String!) { replayWebhookDestination(id: $id, after: $after) { id cursor } }"""
DELETE = """mutation($id: ID!) { deleteWebhookDestination(id: $id) { id } }"""


# ---- the recipe README gives receivers, taken from README itself ------------------------------------------


def _readme_recipe() -> Callable[..., bool]:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Webhooks to your API", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README's snippet
    verify: Callable[..., bool] = namespace["verify"]
    return verify


verify = _readme_recipe()


# ---- a receiver ----------------------------------------------------------------------------------------


@dataclass
class Received:
    headers: Headers
    body: bytes
    event: dict[str, Any]
    status: int
    query: str = ""  # tells destinations on the same receiver apart


@dataclass
class Receiver:
    """Records every request; `respond(event) -> status` decides the answer."""

    requests: list[Received] = field(default_factory=list)
    respond: Callable[[dict[str, Any]], int] = lambda event: 200

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            event = orjson.loads(body)
            status = self.respond(event)
            self.requests.append(Received(request.headers, body, event, status, request.url.query))
            return Response(b"nope" if status >= 300 else b"", status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def delivered(self) -> list[dict[str, Any]]:
        return [r.event for r in self.requests if 200 <= r.status < 300]

    def per_record(self) -> dict[str, list[int]]:
        """Each record's events, by change sequence number, in the order they arrived (every attempt)."""
        order: dict[str, list[int]] = {}
        for r in self.requests:
            order.setdefault(r.event["remoteId"], []).append(decode_cursor(r.event["cursor"]))
        return order


def serve_on(app: Any, port: int) -> contextlib.AbstractAsyncContextManager[str]:
    """The receiver on a port of our choosing: it can go down and come back there."""
    return serve(app, port=port, lifespan="off")


# ---- setup ---------------------------------------------------------------------------------------------


@dataclass
class Account:
    tenant: Tenant
    connection_id: uuid.UUID
    end_user_id: uuid.UUID

    @property
    def connection(self) -> str:
        return to_global_id("Connection", self.connection_id)

    def target(self, stream: str = "contacts", model: str | None = "Contact") -> StreamTarget:
        return StreamTarget(self.tenant.platform_id, self.connection_id, self.end_user_id, stream, model)


async def account(store: Store, tenant: Tenant, external_user_id: str = "user-1") -> Account:
    connection_id = await create_connection(
        store,
        NewConnection(tenant.platform_id, "hubspot", external_user_id, Credentials(access_token="x")),
    )
    async with store.engine.begin() as conn:
        # Nothing to sync here: the changes are written straight into the cache.
        await conn.execute(
            update(stream_states)
            .where(stream_states.c.connection_id == connection_id)
            .values(next_run_at=utcnow() + timedelta(days=1))
        )
        end_user_id = (
            await conn.execute(select(connections.c.end_user_id).where(connections.c.id == connection_id))
        ).scalar_one()
    return Account(tenant, connection_id, end_user_id)


async def write(store: Store, target: StreamTarget, remote_id: str, **common: Any) -> None:
    """One change: the record `remote_id` created, or updated to these values."""
    record = RemoteRecord(remote_id, {"id": remote_id, "properties": common}, common if target.model else None)
    async with store.engine.begin() as conn:
        await upsert_records(conn, target, [record], utcnow())


async def write_versions(store: Store, target: StreamTarget, remote_id: str, *first_names: str) -> None:
    """The record `remote_id` written once per first name: created, then updated."""
    for first_name in first_names:
        await write(store, target, remote_id, first_name=first_name)


async def create_destination(api: Gateway, tenant: Tenant, url: str, **given: Any) -> tuple[str, str]:
    body = await api.graphql(CREATE, tenant.api_key, input={"url": url, **given})
    created = data(body)["createWebhookDestination"]
    return created["destination"]["id"], created["secret"]


async def subscribed(store: Store, api: Gateway, url: str, **destination: Any) -> tuple[Tenant, Account, str]:
    """A tenant, an end user's account and a destination at `url`; the destination's id."""
    tenant = await new_tenant(store)
    acme = await account(store, tenant)
    destination_id, _ = await create_destination(api, tenant, url, **destination)
    return tenant, acme, destination_id


async def deliveries(api: Gateway, tenant: Tenant, status: str | None = None, first: int = 100) -> list[dict[str, Any]]:
    body = await api.graphql(DESTINATIONS, tenant.api_key, first=first, status=status)
    return [d for destination in data(body)["webhookDestinations"] for d in destination["deliveries"]]


async def until(check: Callable[[], bool], out: Outbound, seconds: float = 8.0) -> None:
    """Step the outbound engine until `check` holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await out.step()
        await asyncio.sleep(0.01)


async def delivery_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(webhook_deliveries))).scalar_one())


async def seqs(store: Store) -> list[int]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(select(change_table.c.seq).order_by(change_table.c.seq))).scalars())


@pytest_asyncio.fixture
async def api(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Gateway]:
    async with gateway(store, kit, secret_key) as running:
        yield running


@dataclass
class Switchboard:
    """One receiver server for the module (a server takes a while to stop); each test gets its own Receiver."""

    url: str
    current: Receiver = field(default_factory=Receiver)


@pytest_asyncio.fixture(scope="module")
async def switchboard() -> AsyncIterator[Switchboard]:
    board = Switchboard("")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await board.current.app()(scope, receive, send)

    async with serve(app) as url:
        board.url = url
        yield board


@pytest_asyncio.fixture
async def receiver(switchboard: Switchboard) -> tuple[Receiver, str]:
    switchboard.current = Receiver()
    return switchboard.current, f"{switchboard.url}/hook"


# ---- tests ---------------------------------------------------------------------------------------------


async def test_each_change_is_posted_signed_with_the_returned_secret(
    store: Store, api: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    tenant = await new_tenant(store)
    acme = await account(store, tenant)
    await write(store, acme.target(), "before", first_name="Old")  # before the destination: not sent
    destination_id, secret = await create_destination(api, tenant, url)
    assert secret.startswith("whsec_") and len(secret) > 30
    await write(store, acme.target(), "c1", first_name="Ada", job_title="Engineer")
    await write(store, acme.target(), "c1", first_name="Ada", job_title="Countess")
    await write(store, acme.target("companies", "Company"), "co1", name="Engines Ltd")
    await write(store, acme.target("owners", None), "o1", email="owner@example.com")

    async with Outbound(store, FAST, egress=sandbox_egress()) as out:
        assert await out.step() == 4
        assert await out.step() == 0  # nothing twice

    # Other records go alongside; c1's update waits for its creation to be accepted.
    assert [r.event["remoteId"] for r in hooks.requests][-1] == "c1"
    events = sorted((r.event for r in hooks.requests), key=lambda e: decode_cursor(e["cursor"]))
    assert [(e["op"], e["object"], e["remoteId"]) for e in events] == [
        ("CREATED", "Contact", "c1"),
        ("UPDATED", "Contact", "c1"),
        ("CREATED", "Company", "co1"),
        ("CREATED", "owners", "o1"),
    ]
    logged = await seqs(store)
    for r in hooks.requests:
        assert r.headers["content-type"] == "application/json"
        assert verify(secret, r.headers, r.body)
        assert not verify("whsec_someone-else", r.headers, r.body)
        assert not verify(secret, r.headers, r.body + b" ")
        stale = int(time.time()) - 301
        resigned = {"X-Xkit-Timestamp": str(stale), "X-Xkit-Signature": outbound.sign(secret, stale, r.body)}
        assert not verify(secret, resigned, r.body)
        resigned = {**resigned, "X-Xkit-Timestamp": str(stale + 61)}  # 4 minutes old: fine
        resigned["X-Xkit-Signature"] = outbound.sign(secret, stale + 61, r.body)
        assert verify(secret, resigned, r.body)
        assert r.headers["x-xkit-event-id"] == r.event["id"]
        assert r.event["type"] == "record.changed"
        assert r.event["connectionId"] == acme.connection
        assert decode_cursor(r.event["cursor"]) in logged
        assert r.event["cursor"] == encode_cursor(decode_cursor(r.event["cursor"]))  # the API's own cursors
        datetime.fromisoformat(r.event["occurredAt"])
    created, updated, company, owner = events
    assert created["changedFields"] == ["firstName", "jobTitle"]
    assert updated["changedFields"] == ["jobTitle"]
    # The record as cached when sent: both events of c1 carry its latest state.
    assert updated["data"]["firstName"] == "Ada" and updated["data"]["jobTitle"] == "Countess"
    assert updated["raw"] == {"id": "c1", "properties": {"first_name": "Ada", "job_title": "Countess"}}
    assert company["data"]["name"] == "Engines Ltd"
    assert owner["data"] is None and owner["raw"]["properties"] == {"email": "owner@example.com"}
    assert len({e["id"] for e in events}) == 4

    listed = await deliveries(api, tenant)
    assert len(listed) == 4
    assert {d["status"] for d in listed} == {"delivered"}
    assert {d["eventId"] for d in listed} == {e["id"] for e in events}
    newest = listed[0]
    assert newest["cursor"] == owner["cursor"]  # newest first
    assert newest["attempts"] == 1 and newest["lastStatusCode"] == 200 and newest["lastError"] is None
    assert newest["deliveredAt"] is not None and newest["nextAttemptAt"] is None
    assert destination_id


async def test_a_receiver_that_fails_then_goes_down_then_recovers_gets_everything_in_order(
    store: Store, api: Gateway
) -> None:
    hooks = Receiver(respond=lambda event: 500)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    tenant, acme, _ = await subscribed(store, api, url, secret="a-secret-of-sixteen+")
    await write_versions(store, acme.target(), "busy", *(f"v{version}" for version in range(4)))
    for n in range(5):
        await write(store, acme.target(), f"calm-{n}", first_name="x")

    async with Outbound(store, FAST, egress=sandbox_egress()) as out:
        async with serve_on(hooks.app(), port):
            await until(lambda: len(hooks.requests) >= 15, out)  # 500s: retried
        failing = await deliveries(api, tenant, status="pending")
        assert len(failing) == 9
        # The status only: the receiver's body is never kept.
        assert any(d["lastStatusCode"] == 500 and d["lastError"] == "HTTP 500" for d in failing)

        # Down: nobody listens on the port.
        attempts_before = sum(d["attempts"] for d in failing)
        for _ in range(5):
            await asyncio.sleep(0.06)
            await out.step()
        down = await deliveries(api, tenant, status="pending")
        assert len(down) == 9
        assert sum(d["attempts"] for d in down) > attempts_before
        unreachable = [d for d in down if "could not be reached" in (d["lastError"] or "")]
        assert unreachable, down
        assert all(d["lastStatusCode"] is None for d in unreachable)

        # Back, and well.
        hooks.respond = lambda event: 200
        async with serve_on(hooks.app(), port):
            await until(lambda: len(hooks.delivered()) == 9, out)
            await out.step()

    delivered = hooks.delivered()
    assert len({e["id"] for e in delivered}) == 9  # nothing lost, nothing doubled once accepted
    # One record's events never overtake each other: every attempt of a later change came after the
    # earlier change was accepted.
    busy = hooks.per_record()["busy"]
    assert busy == sorted(busy)
    assert [e["data"]["firstName"] for e in delivered if e["remoteId"] == "busy"] == ["v3"] * 4
    assert [e["op"] for e in delivered if e["remoteId"] == "busy"] == ["CREATED", "UPDATED", "UPDATED", "UPDATED"]
    # The event id is the same on every attempt of a change.
    ids_by_cursor: dict[str, set[str]] = {}
    for r in hooks.requests:
        ids_by_cursor.setdefault(r.event["cursor"], set()).add(r.headers["x-xkit-event-id"])
    assert all(len(ids) == 1 for ids in ids_by_cursor.values())
    assert len(ids_by_cursor) == 9
    assert {d["status"] for d in await deliveries(api, tenant)} == {"delivered"}


async def test_one_records_failures_hold_back_only_that_record(
    store: Store, api: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hooks.respond = lambda event: 503 if event["remoteId"] == "stuck" else 200
    tenant, acme, _ = await subscribed(store, api, url)
    await write_versions(store, acme.target(), "stuck", "1", "2")
    for n in range(20):
        await write(store, acme.target(), f"fine-{n}", first_name=str(n))

    async with Outbound(store, FAST, egress=sandbox_egress()) as out:
        await until(lambda: len(hooks.delivered()) == 20 and len(hooks.per_record()["stuck"]) >= 3, out)
        stuck = hooks.per_record()["stuck"]
        assert len(set(stuck)) == 1  # only its first change was tried, again and again; the second waits
        listed = {d["cursor"]: d for d in await deliveries(api, tenant)}
        first, second = (listed[encode_cursor(seq)] for seq in sorted(await seqs(store))[:2])
        assert first["status"] == "pending" and first["attempts"] >= 3 and first["lastStatusCode"] == 503
        assert second["status"] == "pending" and second["attempts"] == 0

        hooks.respond = lambda event: 200
        await until(lambda: len(hooks.delivered()) == 22, out)
    stuck = hooks.per_record()["stuck"]
    assert stuck == sorted(stuck) and len(set(stuck)) == 2


async def test_a_delivery_gives_up_after_the_maximum_age_and_stops_holding_its_record_back(
    store: Store, api: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    tenant, acme, _ = await subscribed(store, api, url)
    await write_versions(store, acme.target(), "doomed", "1", "2")
    hooks.respond = lambda event: 500 if event["op"] == "CREATED" else 200
    clock = [utcnow()]
    real = Tunables(backoff_base=60, backoff_cap=3600, give_up_after=timedelta(days=3), timeout=2, lease=5)
    async with Outbound(store, real, clock=lambda: clock[0], rng=lambda: 1.0, egress=sandbox_egress()) as out:
        steps = 0
        while not hooks.delivered():
            await out.step()
            clock[0] += timedelta(hours=6)
            steps += 1
            assert steps < 20
    created = [r for r in hooks.requests if r.event["op"] == "CREATED"]
    # 60 s, 120 s, ... 3,600 s apart, one attempt per 6 hours of the fake clock: 13 in 72 hours, then no more.
    assert len(created) == 13
    assert [r.event["op"] for r in hooks.requests[-1:]] == ["UPDATED"]
    failed = await deliveries(api, tenant, status="failed")
    assert len(failed) == 1
    assert failed[0]["attempts"] == 13 and failed[0]["lastStatusCode"] == 500 and failed[0]["nextAttemptAt"] is None
    assert [d["status"] for d in await deliveries(api, tenant, status="delivered")] == ["delivered"]
    assert await deliveries(api, tenant, status="pending") == []


async def test_backoff_doubles_with_full_jitter_under_a_cap() -> None:
    tunables = Tunables()
    assert [outbound.backoff(n, tunables, lambda: 1.0) for n in (1, 2, 3, 12, 30)] == [2, 4, 8, 3600, 3600]
    assert outbound.backoff(5, tunables, lambda: 0.25) == 8
    for _ in range(100):
        assert 0 <= outbound.backoff(4, tunables) <= 16


async def test_replay_from_a_cursor_sends_again_with_the_same_event_ids(
    store: Store, api: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    tenant, acme, destination_id = await subscribed(store, api, url)
    for n in range(5):
        await write(store, acme.target(), f"c{n}", first_name=str(n))
    async with Outbound(store, FAST, egress=sandbox_egress()) as out:
        await out.step()
        first_round = [r.event for r in hooks.requests]
        assert len(first_round) == 5
        replayed = await api.graphql(REPLAY, tenant.api_key, id=destination_id, after=first_round[1]["cursor"])
        assert data(replayed)["replayWebhookDestination"]["cursor"] == first_round[1]["cursor"]
        assert await out.step() == 3
    again = [r.event for r in hooks.requests[5:]]
    assert [(e["id"], e["cursor"]) for e in again] == [(e["id"], e["cursor"]) for e in first_round[2:]]
    assert len(await deliveries(api, tenant)) == 8  # the first round stays on record

    bad = await api.graphql(REPLAY, tenant.api_key, id=destination_id, after="bm90LWEtY3Vyc29y")
    assert error_codes(bad) == ["BAD_USER_INPUT"] and bad["errors"][0]["extensions"]["field"] == "after"
    future = await api.graphql(REPLAY, tenant.api_key, id=destination_id, after=encode_cursor(10**9))
    assert error_codes(future) == ["BAD_USER_INPUT"]


async def test_filters_and_from_cursor_pick_the_changes(
    store: Store, api: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    tenant = await new_tenant(store)
    alice = await account(store, tenant, "alice")
    bob = await account(store, tenant, "bob")
    await write(store, alice.target(), "early", first_name="e")
    [early] = await seqs(store)
    await write(store, bob.target(), "early-bob", first_name="e")
    await create_destination(api, tenant, f"{url}?only=contacts", objects=["CONTACT"])
    await create_destination(api, tenant, f"{url}?only=bob", connectionIds=[bob.connection])
    await create_destination(api, tenant, f"{url}?only=alice", externalUserIds=["alice"])
    await create_destination(api, tenant, f"{url}?only=since", fromCursor=encode_cursor(early))
    await write(store, alice.target(), "a-contact", first_name="a")
    await write(store, alice.target("companies", "Company"), "a-company", name="A")
    await write(store, bob.target(), "b-contact", first_name="b")
    await write(store, bob.target("deals", "Deal"), "b-deal", name="B")

    async with Outbound(store, FAST, egress=sandbox_egress()) as out:
        await out.step()
    listed = data(await api.graphql(DESTINATIONS, tenant.api_key))["webhookDestinations"]
    seen: dict[str, list[str]] = {}
    for destination in listed:
        event_ids = {d["eventId"] for d in destination["deliveries"]}
        seen[destination["url"].split("only=")[1]] = sorted(
            r.event["remoteId"] for r in hooks.requests if r.event["id"] in event_ids
        )
    assert seen == {
        "contacts": ["a-contact", "b-contact"],
        "bob": ["b-contact", "b-deal"],
        "alice": ["a-company", "a-contact"],
        "since": ["a-company", "a-contact", "b-contact", "b-deal", "early-bob"],
    }
    assert len(hooks.requests) == 11
    assert {d["url"].split("only=")[1]: d["objects"] for d in listed}["contacts"] == ["CONTACT"]
    assert {d["url"].split("only=")[1]: d["connectionIds"] for d in listed}["bob"] == [bob.connection]
    assert {d["url"].split("only=")[1]: d["externalUserIds"] for d in listed}["alice"] == ["alice"]


async def test_bad_input_is_refused_with_the_field(store: Store, api: Gateway) -> None:
    tenant = await new_tenant(store)
    unknown_connection = to_global_id("Connection", uuid.uuid4())
    for given, field_name in [
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "/hook"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://example.com/hook", "secret": "short"}, "secret"),
        ({"url": "https://example.com/hook", "objects": []}, "objects"),
        ({"url": "https://example.com/hook", "connectionIds": ["bm9wZQ"]}, "connectionIds"),
        ({"url": "https://example.com/hook", "connectionIds": [unknown_connection]}, "connectionIds"),
        ({"url": "https://example.com/hook", "fromCursor": "garbage!"}, "fromCursor"),
    ]:
        body = await api.graphql(CREATE, tenant.api_key, input=given)
        assert error_codes(body) == ["BAD_USER_INPUT"], given
        assert body["errors"][0]["extensions"]["field"] == field_name, given
    body = await api.graphql(CREATE, tenant.api_key, input={"url": "ssh://x"})
    assert "http(s)" in body["errors"][0]["message"]
    await create_destination(api, tenant, "https://example.com/hook")
    for variables in [{"status": "lost"}, {"first": 0}, {"first": 101}]:
        body = await api.graphql(DESTINATIONS, tenant.api_key, **variables)
        assert error_codes(body) == ["BAD_USER_INPUT"], variables
    body = await api.graphql(DELETE, tenant.api_key, id=to_global_id("Connection", uuid.uuid4()))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert await delivery_count(store) == 0


async def test_another_platform_sees_and_receives_nothing(
    store: Store, api: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    acme_tenant, other_tenant = await new_tenant(store, "acme"), await new_tenant(store, "other")
    acme = await account(store, acme_tenant)
    acme_destination, _ = await create_destination(api, acme_tenant, f"{url}?for=acme")
    await create_destination(api, other_tenant, f"{url}?for=other")
    await write(store, acme.target(), "c1", first_name="a")
    async with Outbound(store, FAST, egress=sandbox_egress()) as out:
        await out.step()
    assert [r.event["remoteId"] for r in hooks.requests] == ["c1"]
    assert len(await deliveries(api, acme_tenant)) == 1
    assert await deliveries(api, other_tenant) == []
    others = data(await api.graphql(DESTINATIONS, other_tenant.api_key))["webhookDestinations"]
    assert [d["url"] for d in others] == [f"{url}?for=other"]
    # Someone else's destination: not found, untouched.
    for mutation, variables in [
        (DELETE, {"id": acme_destination}),
        (REPLAY, {"id": acme_destination, "after": encode_cursor(0)}),
    ]:
        assert error_codes(await api.graphql(mutation, other_tenant.api_key, **variables)) == ["NOT_FOUND"]
    # Another platform's connection is not a filter one can set.
    body = await api.graphql(CREATE, other_tenant.api_key, input={"url": url, "connectionIds": [acme.connection]})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert len(data(await api.graphql(DESTINATIONS, acme_tenant.api_key))["webhookDestinations"]) == 1
    # The owner deletes it; its deliveries go with it.
    assert data(await api.graphql(DELETE, acme_tenant.api_key, id=acme_destination))
    assert data(await api.graphql(DESTINATIONS, acme_tenant.api_key))["webhookDestinations"] == []
    assert await delivery_count(store) == 0


async def test_two_workers_send_each_event_once(store: Store, api: Gateway, receiver: tuple[Receiver, str]) -> None:
    hooks, url = receiver
    tenant, acme, _ = await subscribed(store, api, url)
    await create_destination(api, tenant, f"{url}?second")
    for n in range(30):
        await write(store, acme.target(), f"c{n % 7}", first_name=str(n))
    async with (
        Outbound(store, FAST, egress=sandbox_egress()) as one,
        Outbound(store, FAST, egress=sandbox_egress()) as two,
    ):
        for _ in range(3):
            await asyncio.gather(one.enqueue(), two.enqueue(), one.enqueue())
        await asyncio.gather(one.deliver_due(), two.deliver_due())
        await asyncio.gather(one.step(), two.step())
    event_ids = [r.headers["x-xkit-event-id"] for r in hooks.requests]
    assert len(event_ids) == 60 and len(set(event_ids)) == 60
    # In order per record and destination (the two destinations progress independently).
    per_destination: dict[tuple[str, str], list[int]] = {}
    for r in hooks.requests:
        per_destination.setdefault((r.query, r.event["remoteId"]), []).append(decode_cursor(r.event["cursor"]))
    for order in per_destination.values():
        assert order == sorted(order)
    assert await delivery_count(store) == 60


async def test_an_expired_lease_is_taken_over_and_the_late_outcome_ignored(
    store: Store, api: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    tenant, acme, _ = await subscribed(store, api, url)
    await write(store, acme.target(), "c1", first_name="a")
    clock = [utcnow()]
    async with (
        Outbound(store, FAST, clock=lambda: clock[0], egress=sandbox_egress()) as slow,
        Outbound(store, FAST, clock=lambda: clock[0], egress=sandbox_egress()) as fast,
    ):
        await slow.enqueue()
        [stalled] = await slow.prepare(await slow.claim(16))
        assert await fast.claim(16) == []  # leased
        clock[0] += timedelta(seconds=FAST.lease + 1)  # the slow worker died, or hangs
        assert await fast.step() == 1
        await slow.settle(stalled, outbound.Result(False, 500, "late"))  # too late: not its claim any more
    [delivery] = await deliveries(api, tenant)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2 and delivery["lastError"] is None
    assert len(hooks.requests) == 1


async def test_the_worker_loop_delivers_when_a_change_is_appended(
    store: Store, kit: HttpKit, api: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    tenant = await new_tenant(store)
    acme = await account(store, tenant)
    await create_destination(api, tenant, "http://127.0.0.1:9/refused")  # a dead destination breaks nothing
    await create_destination(api, tenant, url)
    worker = Worker(store, kit, poll_interval=30, webhooks=FAST)
    loop = asyncio.create_task(worker.run_forever())
    try:
        await asyncio.sleep(0.3)  # its first poll is done; the next is 30 s away
        await write(store, acme.target(), "c1", first_name="a")
        store.changes_appended.notify()  # as the sync and writeback do after their commits
        deadline = time.monotonic() + 5
        while not hooks.requests:
            assert time.monotonic() < deadline, "the worker was not woken"
            await asyncio.sleep(0.02)
        await write(store, acme.target(), "c1", first_name="b")
        store.changes_appended.notify()
        while len(hooks.requests) < 2:
            assert time.monotonic() < deadline, "the worker stopped after a failing destination"
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
        await loop
    assert [r.event["op"] for r in hooks.requests] == ["CREATED", "UPDATED"]
