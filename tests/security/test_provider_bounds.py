"""A hostile or slow provider only hurts its own connection (issue 10, finding 5; the scheduler half of 6).

Each test serves a small HubSpot-shaped provider over real HTTP that misbehaves in one way on the contacts
list (or its token endpoint), syncs a connection to it, and checks the refusal in the stream's lastError.
"""

from __future__ import annotations

import asyncio
import functools
import time
import tracemalloc
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from connectors import get_connector
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp, TokenCallLimits
from connectors.kit.records import TRUNCATED_MARKER
from resolvers.ids import to_global_id
from sync.storage.store import Store
from sync.storage.tables import records, stream_states, sync_runs
from sync.tenancy.connections import DEFAULT_SYNC_INTERVAL, NewConnection, create_connection
from sync.tenancy.platforms import set_provider_app
from sync.worker.runner import RunLimits
from sync.worker.scheduler import Fairness, Worker
from tests.support import (
    Tenant,
    connect_hubspot,
    error_codes,
    gateway,
    make_streams_due,
    new_tenant,
    serve,
    stream_errors,
)

Handler = Callable[[Request], Awaitable[Response]]
HUBSPOT_STREAMS = ("contacts", "companies", "deals", "notes", "tasks", "owners")


def contact(remote_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "id": remote_id,
        "properties": {"email": f"{remote_id}@example.com", **properties},
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-02T00:00:00Z",
    }


def page(results: list[dict[str, Any]], after: str | None = None) -> JSONResponse:
    return JSONResponse({"results": results, **({"paging": {"next": {"after": after}}} if after else {})})


class HostileProvider:
    """HubSpot's API shape, every stream empty but the contacts list, which answers with `contacts`."""

    def __init__(self, contacts: Handler, token: Handler | None = None, *, every_stream: bool = False) -> None:
        self.contacts = contacts
        self.token = token
        # Every stream's list answers as the contacts list does.
        self.every_stream = every_stream
        self.contacts_requests = 0
        self.open_answers = 0
        self.most_open_answers = 0

    def app(self) -> Starlette:
        async def empty(request: Request) -> Response:
            return page([])

        async def listing(request: Request) -> Response:
            return await (contacts(request) if self.every_stream else empty(request))

        async def contacts(request: Request) -> Response:
            self.contacts_requests += 1
            return await self.contacts(request)

        async def token(request: Request) -> Response:
            assert self.token is not None
            return await self.token(request)

        return Starlette(
            routes=[
                Route("/crm/v3/objects/contacts", contacts, methods=["GET", "POST"]),
                Route("/crm/v3/properties/{object_type}", empty),
                Route("/crm/v3/pipelines/{object_type}", empty),
                Route("/crm/v3/objects/{object_type}", listing),
                Route("/crm/v3/owners", listing),
                Route("/oauth/2026-03/token", token, methods=["POST"]),
            ]
        )

    def trickle(self, every: float) -> StreamingResponse:
        """An answer that never ends: a byte every `every` seconds, counted while it is being sent."""

        async def bytes_slowly() -> AsyncIterator[bytes]:
            self.open_answers += 1
            self.most_open_answers = max(self.most_open_answers, self.open_answers)
            try:
                yield b'{"results": ['
                while True:
                    await asyncio.sleep(every)
                    yield b" "
            finally:
                self.open_answers -= 1

        return StreamingResponse(bytes_slowly(), media_type="application/json")


@functools.cache
def gzip_bomb(inflated_mib: int) -> bytes:
    """`inflated_mib` MiB of spaces, gzipped to about a thousandth of that."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * 2**20
    return b"".join(compressor.compress(chunk) for _ in range(inflated_mib)) + compressor.flush()


async def hostile_connection(
    store: Store, sandbox: HubSpotSandbox, url: str, tenant: Tenant | None = None, *, user: str = "user-1"
) -> uuid.UUID:
    return await connect_hubspot(store, tenant or await new_tenant(store), sandbox, url, external_user_id=user)


async def contacts_error(store: Store, connection_id: uuid.UUID) -> str | None:
    errors = await stream_errors(store, connection_id)
    assert all(errors[stream] is None for stream in HUBSPOT_STREAMS if stream != "contacts"), errors
    return errors["contacts"]


async def contacts_delay(store: Store, connection_id: uuid.UUID) -> timedelta:
    """How long after its failed run the contacts stream is due again."""
    async with store.engine.connect() as conn:
        state = (
            await conn.execute(
                select(stream_states.c.next_run_at, stream_states.c.last_error_at).where(
                    stream_states.c.connection_id == connection_id, stream_states.c.stream == "contacts"
                )
            )
        ).one()
    return state.next_run_at - state.last_error_at


async def stored_contacts(store: Store, connection_id: uuid.UUID) -> dict[str, Any]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(records.c.remote_id, records.c.raw, records.c.common).where(
                records.c.connection_id == connection_id, records.c.stream == "contacts"
            )
        )
        return {row.remote_id: row for row in rows}


async def test_a_provider_trickling_its_answer_hits_the_deadline_and_only_its_stream_fails(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox
) -> None:
    kit.request_deadline = 0.5

    async def contacts(request: Request) -> Response:
        return provider.trickle(every=0.05)

    provider = HostileProvider(contacts)
    async with serve(provider.app()) as url:
        connection_id = await hostile_connection(store, hubspot, url)
        started = time.monotonic()
        await Worker(store, kit).drain()
        took = time.monotonic() - started

    error = await contacts_error(store, connection_id)
    assert error is not None and "no complete answer within 0.5 s" in error
    assert provider.contacts_requests == 1  # a deadline hit is not retried
    assert took < 10


async def test_a_gzip_bomb_is_refused_at_the_size_limit_before_it_is_inflated(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox
) -> None:
    kit.max_response_bytes = 2**20
    bomb = gzip_bomb(inflated_mib=256)
    assert len(bomb) < 2**20  # the compressed answer itself is within the limit

    async def contacts(request: Request) -> Response:
        return Response(bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    provider = HostileProvider(contacts)
    async with serve(provider.app()) as url:
        connection_id = await hostile_connection(store, hubspot, url)
        tracemalloc.start()
        try:
            await Worker(store, kit).drain()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    error = await contacts_error(store, connection_id)
    assert error is not None and f"larger than the limit of {2**20} bytes" in error
    assert provider.contacts_requests == 1
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB: the bomb was inflated"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_page_over_the_response_limit_is_refused_and_none_of_it_stored(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, declared: bool
) -> None:
    kit.max_response_bytes = 2**20
    body = orjson.dumps({"results": [contact(str(i), note="x" * 4000) for i in range(600)]})
    assert len(body) > 2 * 2**20

    async def contacts(request: Request) -> Response:
        if declared:
            return Response(body, media_type="application/json")

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        return StreamingResponse(chunks(), media_type="application/json")

    provider = HostileProvider(contacts)
    async with serve(provider.app()) as url:
        connection_id = await hostile_connection(store, hubspot, url)
        await Worker(store, kit).drain()

    error = await contacts_error(store, connection_id)
    assert error is not None and "larger than the limit" in error
    assert await stored_contacts(store, connection_id) == {}


async def test_a_record_over_the_size_limit_is_stored_truncated_with_a_marker(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox
) -> None:
    limit = 64 * 1024
    huge = contact("huge", firstname="F" * 200_000, notes="n" * 4_000_000)

    async def contacts(request: Request) -> Response:
        return page([contact("small", firstname="Ada"), huge])

    provider = HostileProvider(contacts)
    kit.max_record_bytes = limit
    async with serve(provider.app()) as url:
        connection_id = await hostile_connection(store, hubspot, url)
        await Worker(store, kit).drain()

    assert await contacts_error(store, connection_id) is None
    stored = await stored_contacts(store, connection_id)
    assert orjson.loads(stored["small"].raw)["properties"]["firstname"] == "Ada"
    assert len(stored["huge"].raw) + len(orjson.dumps(stored["huge"].common)) <= limit
    marker = orjson.loads(stored["huge"].raw)[TRUNCATED_MARKER]
    assert marker["remoteId"] == "huge" and marker["limitBytes"] == limit
    assert marker["originalBytes"] > 4_000_000
    # The record still appears with its common fields, long strings cut short.
    assert stored["huge"].common["email"] == "huge@example.com"
    first_name = stored["huge"].common["first_name"]
    assert first_name.startswith("FFF") and len(first_name) < 2000
    async with store.engine.connect() as conn:
        run = (
            await conn.execute(
                select(sync_runs.c.status, sync_runs.c.error).where(
                    sync_runs.c.connection_id == connection_id, sync_runs.c.stream == "contacts"
                )
            )
        ).one()
    assert run.status == "succeeded"
    assert run.error is not None and "1 records over the size limit stored truncated" in run.error
    assert "huge" in run.error


async def test_endless_pagination_stops_at_the_page_limit_and_the_next_run_resumes(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox
) -> None:
    asked_after: list[str | None] = []

    async def contacts(request: Request) -> Response:
        after = request.query_params.get("after")
        asked_after.append(after)
        number = int(after or 0)
        return page([contact(f"c{number}")], after=str(number + 1))

    provider = HostileProvider(contacts)
    worker = Worker(store, kit, run_limits=RunLimits(max_pages=5))
    async with serve(provider.app()) as url:
        connection_id = await hostile_connection(store, hubspot, url)
        await worker.drain()
        error = await contacts_error(store, connection_id)
        assert error is not None and "stopped after 5 pages" in error
        # What was read before the limit is stored, with the cursor after it.
        assert set(await stored_contacts(store, connection_id)) == {f"c{n}" for n in range(5)}
        assert asked_after == [None, "1", "2", "3", "4"]
        # Not a failure to back off from: it goes on after the usual interval, not four of them.
        assert await contacts_delay(store, connection_id) <= DEFAULT_SYNC_INTERVAL

        await make_streams_due(store, connection_id)
        await worker.drain()
    assert asked_after[5] == "5"  # the next run resumes where the last one stopped
    assert set(await stored_contacts(store, connection_id)) == {f"c{n}" for n in range(10)}


async def test_a_cursor_handed_back_twice_stops_the_run(store: Store, kit: HttpKit, hubspot: HubSpotSandbox) -> None:
    following = {None: "a", "a": "b", "b": "a"}

    async def contacts(request: Request) -> Response:
        after = request.query_params.get("after")
        return page([contact(f"at-{after}")], after=following[after])

    provider = HostileProvider(contacts)
    async with serve(provider.app()) as url:
        connection_id = await hostile_connection(store, hubspot, url)
        await Worker(store, kit).drain()

    error = await contacts_error(store, connection_id)
    assert error is not None and "cursor already followed in this run" in error
    assert await contacts_delay(store, connection_id) > DEFAULT_SYNC_INTERVAL  # backs off
    assert provider.contacts_requests == 3  # "a" was not asked for twice
    assert set(await stored_contacts(store, connection_id)) == {"at-None", "at-a", "at-b"}


@pytest.mark.parametrize("hostility", ["trickle", "bomb"])
async def test_a_token_endpoint_that_trickles_or_bombs_is_refused(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hostility: str
) -> None:
    kit.token_limits = TokenCallLimits(timeout=10, deadline=0.5, max_response_bytes=64 * 1024)
    provider: HostileProvider
    bomb = gzip_bomb(64)  # made before serving: the server shares the test's event loop

    async def token(request: Request) -> Response:
        if hostility == "trickle":
            return provider.trickle(every=0.05)
        return Response(bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def contacts(request: Request) -> Response:
        return page([contact("never")])

    provider = HostileProvider(contacts, token)
    async with serve(provider.app()) as url:
        tenant = await new_tenant(store)
        await set_provider_app(store, tenant.platform_id, "hubspot", OAuthApp(hubspot.client_id, hubspot.client_secret))
        expiring = Credentials.from_token_response({"access_token": "a", "refresh_token": "r", "expires_in": 1})
        connection_id = await create_connection(
            store, NewConnection(tenant.platform_id, "hubspot", "user-2", expiring, base_url=url)
        )
        await Worker(store, kit).drain()

    errors = await stream_errors(store, connection_id)
    expected = "no complete answer within 0.5 s" if hostility == "trickle" else "larger than the limit"
    assert all(error is not None and expected in error for error in errors.values()), errors
    assert provider.contacts_requests == 0


PASSTHROUGH = "mutation($input: PassthroughInput!) { passthrough(input: $input) { status body } }"


async def test_passthrough_to_a_trickling_or_oversized_answer_is_a_typed_error(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, secret_key: str
) -> None:
    kit.request_deadline = 0.5
    kit.max_response_bytes = 2**20
    bomb = gzip_bomb(64)

    async def contacts(request: Request) -> Response:
        if request.method == "POST":  # a create the provider may be acting on while it trickles
            return provider.trickle(every=0.05)
        return Response(bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    provider = HostileProvider(contacts)
    async with serve(provider.app()) as url, gateway(store, kit, secret_key) as api:
        tenant = await new_tenant(store)
        connection = to_global_id("Connection", await hostile_connection(store, hubspot, url, tenant))
        path = "/crm/v3/objects/contacts"
        created = await api.graphql(
            PASSTHROUGH, tenant.api_key, input={"connectionId": connection, "method": "POST", "path": path, "body": {}}
        )
        listed = await api.graphql(
            PASSTHROUGH, tenant.api_key, input={"connectionId": connection, "method": "GET", "path": path}
        )

    assert error_codes(created) == ["PROVIDER_ERROR"]
    assert created["errors"][0]["extensions"]["outcomeUnknown"] is True
    assert "no complete answer within 0.5 s" in created["errors"][0]["message"]
    assert error_codes(listed) == ["PROVIDER_ERROR"]
    assert "larger than the limit" in listed["errors"][0]["message"]
    assert provider.contacts_requests == 2  # neither was sent twice


async def due_streams(store: Store, connection_id: uuid.UUID) -> None:
    await make_streams_due(store, connection_id)


async def leases_by_connection(store: Store, worker: Worker) -> dict[uuid.UUID, int]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(stream_states.c.connection_id).where(stream_states.c.lease_owner == worker.worker_id)
        )
        counted: dict[uuid.UUID, int] = {}
        for row in rows:
            counted[row.connection_id] = counted.get(row.connection_id, 0) + 1
        return counted


async def test_a_claim_shares_the_slots_between_connections_and_platforms(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox
) -> None:
    busy = await new_tenant(store, "busy")
    # The busy tenant's work has waited longest: without fairness it would take every slot.
    busy_connections = [await hostile_connection(store, hubspot, "http://127.0.0.1:9", busy, user=u) for u in "ab"]
    for connection_id in busy_connections:
        await due_streams(store, connection_id)
    other = await new_tenant(store, "other")
    other_connection = await hostile_connection(store, hubspot, "http://127.0.0.1:9", other)
    await due_streams(store, other_connection)

    worker = Worker(
        store, kit, concurrency=6, fairness=Fairness(max_running_per_connection=2, max_running_per_platform=3)
    )
    claimed = await worker.claim(6)

    by_connection = await leases_by_connection(store, worker)
    assert len(claimed) == sum(by_connection.values()) == 5
    assert by_connection[other_connection] == 2
    assert sum(by_connection[c] for c in busy_connections) == 3
    assert all(count <= 2 for count in by_connection.values())


async def test_a_claim_skips_a_stream_another_worker_is_claiming_instead_of_waiting(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time and no row locks to skip")
    connection_id = await hostile_connection(store, hubspot, "http://127.0.0.1:9")
    await due_streams(store, connection_id)
    async with store.engine.connect() as conn:
        locked_id = (
            (await conn.execute(select(stream_states.c.id).where(stream_states.c.connection_id == connection_id)))
            .scalars()
            .first()
        )

    # Asking for every stream, so the locked one is among those the claim reaches whatever their order.
    streams = len(get_connector("hubspot").stream_names)
    fair = Fairness(max_running_per_connection=streams, max_running_per_platform=streams)
    worker = Worker(store, kit, fairness=fair)
    async with store.engine.begin() as other_worker:
        await other_worker.execute(text("SELECT id FROM stream_states WHERE id = :id FOR UPDATE"), {"id": locked_id})
        claimed = await asyncio.wait_for(worker.claim(streams), timeout=5)
    assert len(claimed) == streams - 1
    assert locked_id not in {state.id for _, state in claimed}


async def test_another_tenant_syncs_while_three_connections_trickle(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    """The load-shaped test of finding 5 (benchmark: tests/benchmarks/hostile_provider.py). With the
    production deadline, a worker that let the attacker take every slot would keep the victim waiting for
    at least that long."""
    assert kit.request_deadline >= 60
    hubspot.faults.rate_limit_enabled = False

    async def trickle(request: Request) -> Response:
        return provider.trickle(every=0.2)

    provider = HostileProvider(trickle, every_stream=True)
    async with serve(provider.app()) as url:
        attacker = await new_tenant(store, "attacker")
        for user in ("a", "b", "c"):
            await hostile_connection(store, hubspot, url, attacker, user=user)
        victim = await new_tenant(store, "victim")
        victim_connection = await connect_hubspot(store, victim, hubspot, hubspot_url)

        worker = Worker(store, kit)  # the production defaults: 8 slots, 2 per connection, 4 per platform
        running = asyncio.create_task(worker.run_forever())
        started = time.monotonic()
        try:
            while not await all_synced(store, victim_connection):
                assert time.monotonic() - started < 30, "the other tenant's sync did not complete"
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
        finally:
            await worker.stop()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    assert provider.contacts_requests >= 1  # the attack ran
    assert provider.most_open_answers <= 4  # the attacker never held more than its platform's share
    assert took < 30


async def all_synced(store: Store, connection_id: uuid.UUID) -> bool:
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(stream_states.c.last_success_at, stream_states.c.last_error).where(
                    stream_states.c.connection_id == connection_id
                )
            )
        ).all()
    assert all(row.last_error is None for row in rows), [row.last_error for row in rows]
    return bool(rows) and all(row.last_success_at is not None for row in rows)
