"""Subscriptions over HTTP: Server-Sent Events (the graphql-sse protocol, both modes, with its npm client)
and Apollo Client's multipart subscriptions, with the same key, limits and resume as over WebSocket."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from connectors.kit.credentials import Credentials
from connectors.kit.errors import NotFound
from connectors.kit.http import HttpKit
from gateway.sse import RESERVATION_SECONDS, STREAM_PATH, Reservations
from resolvers.keys import key_global_id
from resolvers.limits import OverBudget
from sync.storage.store import Store
from sync.tenancy import documents
from sync.tenancy.connections import NewConnection, create_connection, set_status
from sync.tenancy.documents import DocumentNotTrusted
from tests.js_clients import run_node
from tests.security.test_graphql_limits import until
from tests.security.test_keys import REVOKE, append_change, key_id_of, second_key
from tests.support import Gateway, Tenant, data, gateway, latest_change_cursor, new_tenant

CHANGES = "subscription($after: String) { changes(after: $after) { cursor op remoteId node { remoteId } } }"
MODES = {"distinct": False, "single": True}


@pytest.fixture
async def tenant(store: Store) -> Tenant:
    return await new_tenant(store)


@pytest.fixture
async def connection_id(store: Store, tenant: Tenant) -> uuid.UUID:
    new = NewConnection(tenant.platform_id, "hubspot", "user-1", Credentials(access_token="provider-token"))
    return await create_connection(store, new)


async def apollo_multipart(api: Gateway, key: str, query: str, **options: Any) -> Any:
    """What Apollo Client's HttpLink saw subscribing over multipart HTTP: {results, completed, error}."""
    config = {"url": f"{api.url}/graphql", "key": key, "query": query, **options}
    return await run_node("apollo-multipart-subscribe.mjs", json.dumps(config))


async def graphql_sse(api: Gateway, key: str | None, query: str, *, single: bool = False, **options: Any) -> Any:
    """What the graphql-sse npm client saw: {results, completed, error}. Single-connection mode lives on its
    own path: /graphql answers PUT and DELETE with 405."""
    url = f"{api.url}{STREAM_PATH}" if single else f"{api.url}/graphql"
    config = {"url": url, "key": key, "singleConnection": single, "query": query, **options}
    return await run_node("graphql-sse-subscribe.mjs", json.dumps(config))


def slots_held(api: Gateway, key_id: uuid.UUID) -> int:
    return api.runtime.services.subscription_slots.held(key_id)


def remote_ids(results: list[dict[str, Any]]) -> list[str]:
    return [result["data"]["changes"]["remoteId"] for result in results]


# ---- resume ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_the_client_resumes_from_its_last_cursor_without_gap_or_repeat(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID, mode: str
) -> None:
    key_id = await key_id_of(store, tenant.api_key)
    start = await latest_change_cursor(store)
    await append_change(store, tenant, connection_id, "one")
    await append_change(store, tenant, connection_id, "two")
    async with gateway(store, kit, secret_key) as api:
        first = await graphql_sse(api, tenant.api_key, CHANGES, single=MODES[mode], variables={"after": start}, take=2)
        assert first["error"] is None
        assert remote_ids(first["results"]) == ["one", "two"]
        # The client left: its subscription (and slot) ends at once, not at the next event.
        await until(lambda: slots_held(api, key_id) == 0)

        await append_change(store, tenant, connection_id, "three")  # while nobody listens
        last_cursor = first["results"][-1]["data"]["changes"]["cursor"]
        resumed = asyncio.create_task(
            graphql_sse(api, tenant.api_key, CHANGES, single=MODES[mode], variables={"after": last_cursor}, take=2)
        )
        await until(lambda: slots_held(api, key_id) == 1)
        await append_change(store, tenant, connection_id, "four")  # live, after the replay
        second = await resumed
    assert second["error"] is None
    assert remote_ids(second["results"]) == ["three", "four"]
    assert all(result["data"]["changes"]["op"] == "CREATED" for result in first["results"] + second["results"])


# ---- the key -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "xk_not_a_key"])
async def test_a_missing_or_wrong_key_is_refused_as_json_before_anything_streams(
    store: Store, kit: HttpKit, secret_key: str, key: str | None
) -> None:
    async with gateway(store, kit, secret_key) as api:
        refused = await graphql_sse(api, key, CHANGES)
        assert refused["results"] == [] and not refused["completed"]
        assert refused["error"]["status"] == 401
        assert refused["error"]["contentType"].startswith("application/json")
        assert refused["error"]["body"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        single = await graphql_sse(api, key, CHANGES, single=True)
        assert single["error"]["status"] == 401  # the reservation itself is refused


@pytest.mark.parametrize("mode", MODES)
async def test_revoking_the_key_ends_its_stream_and_others_keep_streaming(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID, mode: str
) -> None:
    control, control_id = await second_key(store, tenant, "control")
    revoked_id = await key_id_of(store, tenant.api_key)
    after = await latest_change_cursor(store)
    async with gateway(store, kit, secret_key) as api:
        doomed = asyncio.create_task(
            graphql_sse(api, tenant.api_key, CHANGES, single=MODES[mode], variables={"after": after})
        )
        kept = asyncio.create_task(graphql_sse(api, control, CHANGES, variables={"after": after}, take=2))
        await until(lambda: slots_held(api, revoked_id) == 1 and slots_held(api, control_id) == 1)
        await append_change(store, tenant, connection_id, "before")
        data(await api.graphql(REVOKE, control, id=key_global_id(revoked_id)))
        ended = await doomed
        await append_change(store, tenant, connection_id, "after")
        still = await kept
    *events, last_words = ended["results"]
    assert remote_ids(events) in (["before"], [])  # "before" may or may not have left before the revocation
    assert last_words == {"errors": [{"message": "the API key was revoked", "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert ended["completed"] and ended["error"] is None
    assert remote_ids(still["results"]) == ["before", "after"]
    assert slots_held(api, revoked_id) == 0


async def test_each_event_reads_the_connection_as_it_is_now(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID
) -> None:
    query = "subscription($after: String) { changes(after: $after) { remoteId connection { status statusReason } } }"
    after = await latest_change_cursor(store)
    async with gateway(store, kit, secret_key) as api:
        body = {"query": query, "variables": {"after": after}}
        headers = _sse_headers(tenant.api_key)
        async with api.client.stream("POST", f"{api.url}/graphql", json=body, headers=headers) as response:
            changes = _changes_of(response)
            await append_change(store, tenant, connection_id, "first")
            first = await anext(changes)
            await set_status(store, connection_id, "needs_reauth", "the refresh token was revoked")
            await append_change(store, tenant, connection_id, "second")
            second = await anext(changes)
    assert first == {"remoteId": "first", "connection": {"status": "active", "statusReason": None}}
    assert second == {
        "remoteId": "second",
        "connection": {"status": "needs_reauth", "statusReason": "the refresh token was revoked"},
    }


async def _changes_of(response: httpx2.Response) -> AsyncIterator[dict[str, Any]]:
    async for event, payload in _events(response):
        if event == "next":
            yield payload["data"]["changes"]


# ---- limits ----------------------------------------------------------------------------------------------


async def test_the_subscription_slots_of_a_key_hold_over_sse_and_free_when_the_client_leaves(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID
) -> None:
    key_id = await key_id_of(store, tenant.api_key)
    after = await latest_change_cursor(store)
    async with gateway(store, kit, secret_key, graphql_max_subscriptions_per_key=1) as api:
        holder = asyncio.create_task(graphql_sse(api, tenant.api_key, CHANGES, variables={"after": after}, take=1))
        await until(lambda: slots_held(api, key_id) == 1)
        refused = await graphql_sse(api, tenant.api_key, CHANGES)
        (result,) = refused["results"]
        assert result["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert result["errors"][0]["extensions"]["limit"] == "subscriptions"
        assert refused["completed"]

        await append_change(store, tenant, connection_id, "held")
        assert remote_ids((await holder)["results"]) == ["held"]
        await until(lambda: slots_held(api, key_id) == 0)  # freed when the client left
        again = asyncio.create_task(graphql_sse(api, tenant.api_key, CHANGES, variables={"after": after}, take=1))
        await until(lambda: slots_held(api, key_id) == 1)
        assert remote_ids((await again)["results"]) == ["held"]


async def test_the_request_rate_and_body_limits_refuse_as_json_before_anything_streams(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    limits = {"graphql_max_request_bytes": 300, "graphql_request_burst": 2, "graphql_requests_per_second": 0.01}
    async with gateway(store, kit, secret_key, **limits) as api:
        url, headers = f"{api.url}/graphql", _sse_headers(tenant.api_key)
        too_large = await api.client.post(url, json={"query": "{ apiKeys { id } }" + " " * 300}, headers=headers)
        assert too_large.status_code == 413
        assert too_large.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        assert (await api.client.post(url, json={"query": "{ apiKeys { id } }"}, headers=headers)).status_code == 200
        too_often = await api.client.post(url, json={"query": "{ apiKeys { id } }"}, headers=headers)
    assert too_often.status_code == 429 and too_often.headers["retry-after"]
    assert too_often.json()["errors"][0]["extensions"]["limit"] == "requests"


def test_a_reservation_no_stream_opens_is_forgotten_and_frees_its_place() -> None:
    now = [0.0]
    reservations = Reservations(per_key=1, clock=lambda: now[0])
    key_id = uuid.uuid4()
    token = reservations.reserve(key_id)
    with pytest.raises(OverBudget):
        reservations.reserve(key_id)
    assert reservations.find(token, key_id).key_id == key_id
    with pytest.raises(NotFound):
        reservations.find(token, uuid.uuid4())  # another key's token is unknown to it
    now[0] += RESERVATION_SECONDS
    with pytest.raises(NotFound):
        reservations.find(token, key_id)
    assert reservations.reserve(key_id) != token
    assert len(reservations) == 1


async def test_a_trusted_documents_platform_streams_only_its_registered_documents(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    assert await documents.set_trusted_only(store, tenant.platform_id, True)
    async with gateway(store, kit, secret_key) as api:
        refused = await graphql_sse(api, tenant.api_key, CHANGES)
    (result,) = refused["results"]
    assert result["errors"][0]["extensions"]["code"] == DocumentNotTrusted.code
    assert refused["completed"]


async def test_a_document_over_the_limits_is_refused_in_the_stream(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    four_deep = "{ connections(first: 1) { edges { node { id } } } }"
    async with gateway(store, kit, secret_key, graphql_max_depth=3) as api:
        refused = await graphql_sse(api, tenant.api_key, four_deep)
    (result,) = refused["results"]
    assert result["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert result["errors"][0]["extensions"]["limit"] == "depth"
    assert refused["completed"]


# ---- queries and mutations -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_query_over_sse_is_one_result_then_complete(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID, mode: str
) -> None:
    query = "{ connections(first: 5) { edges { node { provider } } } }"
    async with gateway(store, kit, secret_key) as api:
        answered = await graphql_sse(api, tenant.api_key, query, single=MODES[mode])
    assert answered["completed"] and answered["error"] is None
    assert answered["results"] == [{"data": {"connections": {"edges": [{"node": {"provider": "hubspot"}}]}}}]


async def test_a_document_that_does_not_say_which_operation_runs_none(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    two = 'query Keys { apiKeys { id } } mutation Revoke { revokeApiKey(id: "x") { id } }'
    async with gateway(store, kit, secret_key) as api:
        unsaid = await graphql_sse(api, tenant.api_key, two)
        unknown = await graphql_sse(api, tenant.api_key, two, operationName="Other")
        data(await api.graphql("{ apiKeys { id } }", tenant.api_key))
    for refused in (unsaid, unknown):
        (result,) = refused["results"]
        assert result["errors"][0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE" and "data" not in result
        assert refused["completed"]


async def test_a_mutation_is_refused_over_get_and_changes_nothing(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    key_id = await key_id_of(store, tenant.api_key)
    revoke = f'mutation {{ revokeApiKey(id: "{key_global_id(key_id)}") {{ id }} }}'
    async with gateway(store, kit, secret_key) as api:
        refused = await api.client.get(
            f"{api.url}/graphql", params={"query": revoke}, headers=_sse_headers(tenant.api_key)
        )
        assert refused.status_code == 405 and refused.headers["allow"] == "POST"
        assert refused.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
        data(await api.graphql("{ apiKeys { id } }", tenant.api_key))  # the key still works


async def test_a_mutation_over_sse_runs_once_and_completes(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    spare, spare_id = await second_key(store, tenant, "spare")
    revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { name } }"
    async with gateway(store, kit, secret_key) as api:
        ran = await graphql_sse(api, tenant.api_key, revoke, variables={"id": key_global_id(spare_id)})
        assert ran["completed"] and ran["results"] == [{"data": {"revokeApiKey": {"name": "spare"}}}]
        assert (await api.graphql("{ apiKeys { id } }", spare))["_status"] == 401


# ---- the wire ----------------------------------------------------------------------------------------------------


def _sse_headers(key: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Accept": "text/event-stream", **more}


async def _events(response: httpx2.Response) -> AsyncIterator[tuple[str, Any]]:
    """The events of a graphql-sse stream as (event, data), comments as (":", None)."""
    event: str | None = None
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield ":", None
        elif line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            payload = line.removeprefix("data:").strip()
            assert event is not None
            yield event, json.loads(payload) if payload else None
            event = None


async def test_an_idle_stream_sends_keep_alive_comments_and_is_never_cached(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID
) -> None:
    key_id = await key_id_of(store, tenant.api_key)
    async with gateway(store, kit, secret_key, event_stream_keep_alive_seconds=0.05) as api:
        body = {"query": CHANGES}
        async with api.client.stream(
            "POST", f"{api.url}/graphql", json=body, headers=_sse_headers(tenant.api_key)
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache, no-transform"
            events = _events(response)
            comments = 0
            async for event, _ in events:
                assert event == ":"  # nothing but keep-alives while nothing changes
                comments += 1
                if comments == 3:
                    break
            await until(lambda: slots_held(api, key_id) == 1)
            await append_change(store, tenant, connection_id, "awake")
            async for event, payload in events:
                if event != ":":
                    assert event == "next" and payload["data"]["changes"]["remoteId"] == "awake"
                    break


async def test_requests_that_are_not_graphql_are_refused_with_a_code(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    url = "/graphql"
    async with gateway(store, kit, secret_key) as api:
        client, headers = api.client, _sse_headers(tenant.api_key)
        cases = [
            (
                await client.post(
                    api.url + url, content=b"{nope", headers={**headers, "Content-Type": "application/json"}
                ),
                400,
                "BAD_REQUEST",
            ),
            (
                await client.post(api.url + url, content=b"{}", headers={**headers, "Content-Type": "text/plain"}),
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (await client.post(api.url + url, json={"query": 1}, headers=headers), 400, "BAD_REQUEST"),
            (
                await client.post(
                    api.url + url, json={"query": "{ apiKeys { id } }", "variables": [1]}, headers=headers
                ),
                400,
                "BAD_REQUEST",
            ),
            (
                await client.get(
                    api.url + url, params={"query": "{ apiKeys { id } }", "variables": "{"}, headers=headers
                ),
                400,
                "BAD_REQUEST",
            ),
        ]
        own = {"Authorization": f"Bearer {tenant.api_key}"}
        json_only = await client.post(api.url + STREAM_PATH, json={"query": "{ apiKeys { id } }"}, headers=own)
        cases.append((json_only, 406, "NOT_ACCEPTABLE"))
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["errors"][0]["extensions"]["code"] == code


async def test_single_connection_mode_keeps_each_stream_to_its_key_and_its_operations_to_their_ids(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID
) -> None:
    key_id = await key_id_of(store, tenant.api_key)
    other, _ = await second_key(store, tenant, "other")
    async with gateway(store, kit, secret_key, graphql_max_subscriptions_per_key=2) as api:
        client, url, own = api.client, f"{api.url}{STREAM_PATH}", {"Authorization": f"Bearer {tenant.api_key}"}
        assert (await client.put(f"{api.url}/graphql", headers=own)).status_code == 405  # not GraphQL over HTTP
        patched = await client.patch(url, headers=own)
        assert patched.status_code == 405 and patched.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
        reserved = await client.put(url, headers=own)
        assert reserved.status_code == 201 and reserved.headers["content-type"].startswith("text/plain")
        token = reserved.text
        with_token = {**own, "X-GraphQL-Event-Stream-Token": token}
        operation = {"query": CHANGES, "extensions": {"operationId": "op-1"}}

        not_open = await client.post(url, json=operation, headers=with_token)
        assert not_open.status_code == 404 and not_open.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        async with client.stream("GET", url, headers={**with_token, "Accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            events = _events(stream)
            assert await anext(events) == (":", None)  # open
            twice = await client.get(url, headers={**with_token, "Accept": "text/event-stream"})
            assert twice.status_code == 409 and twice.json()["errors"][0]["extensions"]["code"] == "CONFLICT"
            # Another key (of the same platform, even) does not reach this stream.
            theirs = {"Authorization": f"Bearer {other}", "X-GraphQL-Event-Stream-Token": token}
            assert (await client.post(url, json=operation, headers=theirs)).status_code == 404
            anonymous = {"query": CHANGES}
            no_id = await client.post(url, json=anonymous, headers=with_token)
            assert no_id.status_code == 400 and no_id.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

            assert (await client.post(url, json=operation, headers=with_token)).status_code == 202
            assert (await client.post(url, json=operation, headers=with_token)).status_code == 409
            await until(lambda: slots_held(api, key_id) == 1)
            await append_change(store, tenant, connection_id, "for op-1")
            assert await anext(events) == (
                "next",
                {
                    "id": "op-1",
                    "payload": {
                        "data": {
                            "changes": {
                                "cursor": await latest_change_cursor(store),
                                "op": "CREATED",
                                "remoteId": "for op-1",
                                "node": {"remoteId": "for op-1"},
                            }
                        }
                    },
                },
            )
            assert (await client.delete(url, headers=with_token)).status_code == 400  # which operation?
            assert (await client.delete(url, params={"operationId": "op-1"}, headers=with_token)).status_code == 200
            await until(lambda: slots_held(api, key_id) == 0)

            query = {"query": "{ apiKeys { name } }", "extensions": {"operationId": "op-2"}}
            assert (await client.post(url, json=query, headers=with_token)).status_code == 202
            assert [e async for e in _until_complete(events)] == [
                ("next", {"id": "op-2", "payload": {"data": {"apiKeys": [{"name": "default"}, {"name": "other"}]}}}),
                ("complete", {"id": "op-2"}),
            ]
            # The key holds as many streams as subscriptions: one open, one more reserved, then no more.
            assert (await client.put(url, headers=own)).status_code == 201
            refused = await client.put(url, headers=own)
            assert refused.status_code == 429
            assert refused.json()["errors"][0]["extensions"]["limit"] == "eventStreams"
        # A token opens one stream, once: forgotten as soon as the server sees the stream closed.
        for _ in range(1000):
            after = await client.get(url, headers={**with_token, "Accept": "text/event-stream"})
            if after.status_code != 409:
                break
            await asyncio.sleep(0.01)
        assert after.status_code == 404


async def _until_complete(events: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[tuple[str, Any]]:
    async for event in events:
        if event[0] != ":":
            yield event
        if event[0] == "complete":
            return


# ---- Apollo Client's multipart subscriptions -------------------------------------------------------------------


async def test_apollo_client_subscribes_over_multipart_http_and_resumes_from_its_last_cursor(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID
) -> None:
    key_id = await key_id_of(store, tenant.api_key)
    start = await latest_change_cursor(store)
    await append_change(store, tenant, connection_id, "one")
    async with gateway(store, kit, secret_key, event_stream_keep_alive_seconds=0.05) as api:
        first = await apollo_multipart(api, tenant.api_key, CHANGES, variables={"after": start}, take=1)
        assert first["error"] is None and remote_ids(first["results"]) == ["one"]
        await until(lambda: slots_held(api, key_id) == 0)
        await append_change(store, tenant, connection_id, "two")
        cursor = first["results"][0]["data"]["changes"]["cursor"]
        resumed = asyncio.create_task(
            apollo_multipart(api, tenant.api_key, CHANGES, variables={"after": cursor}, take=2)
        )
        await until(lambda: slots_held(api, key_id) == 1)
        await append_change(store, tenant, connection_id, "three")
        second = await resumed
    assert second["error"] is None and remote_ids(second["results"]) == ["two", "three"]


async def test_apollo_client_is_told_when_the_key_is_revoked(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    control, _ = await second_key(store, tenant, "control")
    key_id = await key_id_of(store, tenant.api_key)
    async with gateway(store, kit, secret_key) as api:
        doomed = asyncio.create_task(apollo_multipart(api, tenant.api_key, CHANGES))
        await until(lambda: slots_held(api, key_id) == 1)
        data(await api.graphql(REVOKE, control, id=key_global_id(key_id)))
        ended = await doomed
    assert ended["results"] == []
    assert ended["error"]["errors"] == [
        {"message": "the API key was revoked", "extensions": {"code": "UNAUTHENTICATED"}}
    ]
