"""Subscriptions over HTTP: Server-Sent Events (the graphql-sse protocol, both modes, with its npm client)
and Apollo Client's multipart subscriptions, with the same key, limits and resume as over WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from resolvers.keys import key_global_id
from sync.storage.store import Store
from sync.tenancy.connections import NewConnection, create_connection
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


@contextlib.asynccontextmanager
async def served(store: Store, kit: HttpKit, secret_key: str, **settings: Any) -> AsyncIterator[Gateway]:
    async with gateway(store, kit, secret_key, **settings) as api:
        yield api


async def graphql_sse(api: Gateway, key: str | None, query: str, *, single: bool = False, **options: Any) -> Any:
    """What the graphql-sse npm client saw: {results, completed, error}."""
    config = {"url": f"{api.url}/graphql", "key": key, "singleConnection": single, "query": query, **options}
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
    async with served(store, kit, secret_key) as api:
        first = await graphql_sse(
            api, tenant.api_key, CHANGES, single=MODES[mode], variables={"after": start}, take=2
        )
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
    async with served(store, kit, secret_key) as api:
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
    async with served(store, kit, secret_key) as api:
        doomed = asyncio.create_task(graphql_sse(api, tenant.api_key, CHANGES, single=MODES[mode], variables={"after": after}))
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


# ---- limits ----------------------------------------------------------------------------------------------


async def test_the_subscription_slots_of_a_key_hold_over_sse_and_free_when_the_client_leaves(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant, connection_id: uuid.UUID
) -> None:
    key_id = await key_id_of(store, tenant.api_key)
    after = await latest_change_cursor(store)
    async with served(store, kit, secret_key, graphql_max_subscriptions_per_key=1) as api:
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


async def test_a_document_over_the_limits_is_refused_in_the_stream(
    store: Store, kit: HttpKit, secret_key: str, tenant: Tenant
) -> None:
    four_deep = "{ connections(first: 1) { edges { node { id } } } }"
    async with served(store, kit, secret_key, graphql_max_depth=3) as api:
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
    async with served(store, kit, secret_key) as api:
        answered = await graphql_sse(api, tenant.api_key, query, single=MODES[mode])
    assert answered["completed"] and answered["error"] is None
    assert answered["results"] == [{"data": {"connections": {"edges": [{"node": {"provider": "hubspot"}}]}}}]
