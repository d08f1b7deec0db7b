"""Issue 10, finding 3 and parts of 2 and 8: one authenticated caller cannot freeze the others. Each test
replays a finding over real HTTP (or WebSocket) and asserts the refusal, its code and that nothing ran."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import orjson
import pytest
import websockets
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import func, insert, select
from websockets.exceptions import ConnectionClosed

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.http import HttpKit
from gateway.settings import Settings
from resolvers.ids import to_global_id
from sync.storage.store import Store, utcnow
from sync.storage.tables import api_keys, credential_reads, sync_runs
from tests.support import Gateway, connect_hubspot, data, gateway, new_tenant, synced_hubspot

DEFAULTS = Settings()
CONTACT_IDS = "query($n: Int!) { contacts(first: $n) { edges { node { id } } } }"
# contacts(first: 100) { edges { node { id } } }: 1 + 100 x (edges 1 + node 1 + id 1).
PAGE_OF_IDS_COST = 301


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait for a state this process can see (a subscription holding its slot, a poll started)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def extensions(body: dict[str, Any]) -> dict[str, Any]:
    errors = body.get("errors")
    assert errors and len(errors) == 1, body
    assert body.get("data") is None, body
    found: dict[str, Any] = errors[0]["extensions"]
    return found


def operations(count: int) -> str:
    return " ".join(f"query q{i} {{ __typename }}" for i in range(count))


async def run_operation(api: Gateway, document: str, key: str, operation_name: str | None) -> dict[str, Any]:
    """A document of several operations runs the one its request names (GraphQL's GetOperation refuses it
    otherwise, before any limit is measured)."""
    response = await api.client.post(
        f"{api.url}/graphql",
        json={"query": document, "operationName": operation_name},
        headers={"Authorization": f"Bearer {key}"},
    )
    body: dict[str, Any] = response.json()
    return body


def aliases(field: str, count: int) -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"


@pytest.fixture
async def synced(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> AsyncIterator[tuple[Gateway, str]]:
    async with synced_hubspot(store, kit, hubspot, hubspot_url, secret_key) as (api, tenant, _):
        yield api, tenant.api_key


async def test_the_reference_documents_are_refused_with_the_limit_they_break(
    synced: tuple[Gateway, str], hubspot: HubSpotSandbox
) -> None:
    api, key = synced
    calls = sum(hubspot.stats.requests.values())
    page = "contacts(first: 100) { edges { node { id email } } }"
    heavy_page = "contacts(first: 100) { edges { node { id email firstName lastName company { name } } } }"
    # (document, HTTP status, extensions): the findings at their size, and just past each default limit.
    findings = [
        (aliases(page, 1_000), 200, {"code": "QUERY_TOO_COMPLEX", "limit": "tokens", "max": 15_000}),
        (aliases(page, 101), 200, {"code": "QUERY_TOO_COMPLEX", "limit": "aliases", "max": 100}),
        (aliases("__typename", 100_000), 413, {"code": "PAYLOAD_TOO_LARGE"}),
        (operations(20_000), 200, {"code": "QUERY_TOO_COMPLEX", "limit": "tokens", "max": 15_000}),
        (operations(21), 200, {"code": "QUERY_TOO_COMPLEX", "limit": "operations", "max": 20}),
        (
            aliases(heavy_page, 100),
            200,
            {"code": "QUERY_TOO_COMPLEX", "limit": "cost", "max": DEFAULTS.graphql_max_cost},
        ),
    ]
    for document, status, expected in findings:
        named = "q0" if document.startswith("query q0 ") else None
        response = await api.client.post(
            f"{api.url}/graphql",
            json={"query": document, "operationName": named},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == status
        assert extensions(response.json()) == expected
    assert sum(hubspot.stats.requests.values()) == calls


async def test_each_document_limit_passes_at_the_edge_and_refuses_one_past_it(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    limits = {
        "graphql_max_tokens": 40,
        "graphql_max_aliases": 5,
        "graphql_max_depth": 4,
        "graphql_max_operations": 2,
        "graphql_max_cost": PAGE_OF_IDS_COST,
    }
    async with gateway(store, kit, secret_key, **limits) as api:
        cases = [
            # (limit, document at the limit, document one past it)
            ("aliases", aliases("__typename", 5), aliases("__typename", 6)),
            ("depth", "{ contacts(first: 1) { edges { node { id } } } }", None),
            (
                "cost",
                "{ contacts(first: 100) { edges { node { id } } } }",
                "{ contacts(first: 100) { edges { node { id remoteId } } } }",
            ),
            ("tokens", "{ " + "__typename " * 38 + "}", "{ " + "__typename " * 39 + "}"),
        ]
        for limit, within, beyond in cases:
            body = await api.graphql(within, tenant.api_key)
            assert not body.get("errors"), (limit, body)
            if beyond is not None:
                assert extensions(await api.graphql(beyond, tenant.api_key))["limit"] == limit
        # Deeper than the parser can follow: still the depth limit, never an internal error.
        abyss = "{ " + "contacts(first: 1) { edges { node { " * 2_000 + "id" + " } } }" * 2_000 + " }"
        found = extensions(await api.graphql(abyss, tenant.api_key))
        assert found["code"] == "QUERY_TOO_COMPLEX" and found["limit"] in {"depth", "tokens"}
        two = "query a { __typename } query b { __typename }"
        assert not (await run_operation(api, two, tenant.api_key, "a")).get("errors")
        three = "query a { __typename } query b { __typename } query c { __typename }"
        assert extensions(await run_operation(api, three, tenant.api_key, "a"))["limit"] == "operations"
        deeper = "{ contacts(first: 1) { edges { node { company { id } } } } }"
        assert extensions(await api.graphql(deeper, tenant.api_key))["limit"] == "depth"
        # Depth through fragments counts as if they were written out.
        spread = "{ contacts(first: 1) { edges { ...E } } } fragment E on ContactEdge { node { company { id } } }"
        assert extensions(await api.graphql(spread, tenant.api_key))["limit"] == "depth"
        # A variable page size counts at the largest page.
        over = await api.graphql(
            "query($n: Int!) { contacts(first: $n) { edges { node { id remoteId } } } }", tenant.api_key, n=1
        )
        assert extensions(over) == {"code": "QUERY_TOO_COMPLEX", "limit": "cost", "max": PAGE_OF_IDS_COST}


async def test_long_strings_and_lists_are_refused_as_literals_and_as_variables(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    filtered = (
        "query($text: String!) { contacts(first: 1, filter: {email: {contains: $text}}) { edges { node { id } } } }"
    )
    destination = """mutation($users: [String!]) { createWebhookDestination(input: {
        url: "https://hooks.example.com/x", externalUserIds: $users}) { destination { id } } }"""
    async with gateway(store, kit, secret_key, graphql_max_string_length=100, graphql_max_list_length=3) as api:
        assert data(await api.graphql(filtered, tenant.api_key, text="x" * 100)) == {"contacts": {"edges": []}}
        refused = extensions(await api.graphql(filtered, tenant.api_key, text="x" * 101))
        assert refused == {"code": "INPUT_TOO_LARGE", "limit": "stringLength", "max": 100}
        long_text = "x" * 101
        literal = (
            f'{{ contacts(first: 1, filter: {{email: {{contains: "{long_text}"}}}}) {{ edges {{ node {{ id }} }} }} }}'
        )
        assert extensions(await api.graphql(literal, tenant.api_key))["limit"] == "stringLength"
        users = ["a", "b", "c", "d"]
        refused = extensions(await api.graphql(destination, tenant.api_key, users=users))
        assert refused == {"code": "INPUT_TOO_LARGE", "limit": "listLength", "max": 3}
        literal_list = destination.replace("($users: [String!])", "").replace("$users", '["a", "b", "c", "d"]')
        assert extensions(await api.graphql(literal_list, tenant.api_key))["limit"] == "listLength"
        assert data(await api.graphql("{ webhookDestinations { id } }", tenant.api_key)) == {"webhookDestinations": []}


async def test_a_nul_character_in_any_string_input_is_bad_user_input(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    filtered = (
        "query($text: String!) { contacts(first: 1, filter: {email: {contains: $text}}) { edges { node { id } } } }"
    )
    async with gateway(store, kit, secret_key) as api:
        for body in (
            await api.graphql(filtered, tenant.api_key, text="a\x00b"),
            await api.graphql(
                '{ contacts(first: 1, filter: {email: {contains: "a\\u0000b"}}) { edges { node { id } } } }',
                tenant.api_key,
            ),
            await api.graphql(
                """mutation($u: String!) { createConnection(input: {provider: "hubspot", externalUserId: $u,
                    credentials: {accessToken: "t"}}) { id } }""",
                tenant.api_key,
                u="user\x00",
            ),
        ):
            assert extensions(body)["code"] == "BAD_USER_INPUT", body
        assert data(await api.graphql(filtered, tenant.api_key, text="ab")) == {"contacts": {"edges": []}}
        assert data(await api.graphql("{ connections(first: 10) { edges { node { id } } } }", tenant.api_key)) == {
            "connections": {"edges": []}
        }


async def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    headers = {"Authorization": f"Bearer {tenant.api_key}", "Content-Type": "application/json"}
    async with gateway(store, kit, secret_key, graphql_max_request_bytes=4096) as api:
        declared = await api.client.post(f"{api.url}/graphql", content=b" " * 5000, headers=headers)
        assert declared.status_code == 413
        assert extensions(declared.json())["code"] == "PAYLOAD_TOO_LARGE"
        sent = 0

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams in
            nonlocal sent
            for _ in range(1000):
                sent += 1024
                yield b" " * 1024

        streamed = await api.client.post(f"{api.url}/graphql", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        long_get = await api.client.get(
            f"{api.url}/graphql", params={"query": "{ __typename }" + " " * 5000}, headers=headers
        )
        assert long_get.status_code == 414
        assert extensions(long_get.json())["code"] == "PAYLOAD_TOO_LARGE"
        assert data(await api.graphql("{ __typename }", tenant.api_key)) == {"__typename": "Query"}


async def test_a_key_over_its_request_rate_gets_429_with_retry_after_and_others_do_not(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    hammering, other = await new_tenant(store, "hammering"), await new_tenant(store, "other")
    async with gateway(store, kit, secret_key, graphql_request_burst=3, graphql_requests_per_second=0.01) as api:
        for _ in range(3):
            assert data(await api.graphql("{ __typename }", hammering.api_key))
        response = await api.client.post(
            f"{api.url}/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {hammering.api_key}"},
        )
        assert response.status_code == 429
        retry_after = int(response.headers["Retry-After"])
        assert 1 <= retry_after <= 100
        found = extensions(response.json())
        assert found == {"code": "RATE_LIMITED", "limit": "requests", "max": 3, "retryAfterSeconds": retry_after}
        assert data(await api.graphql("{ __typename }", other.api_key))
        # Over a WebSocket each operation is one request.
        socket_user = await new_tenant(store, "socket")
        transport = WebsocketsTransport(
            url=api.url.replace("http", "ws") + "/graphql",
            init_payload={"Authorization": f"Bearer {socket_user.api_key}"},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            ack_timeout=5,
        )
        async with Client(transport=transport) as session:
            for _ in range(3):
                assert await session.execute(GraphQLRequest("{ __typename }")) == {"__typename": "Query"}
            with pytest.raises(TransportQueryError) as refused:
                await session.execute(GraphQLRequest("{ __typename }"))
        assert refused.value.errors is not None
        assert refused.value.errors[0]["extensions"]["limit"] == "requests"


async def test_a_key_over_its_cost_budget_gets_429_with_retry_after_and_others_do_not(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    hammering, other = await new_tenant(store, "hammering"), await new_tenant(store, "other")
    page = "{ contacts(first: 100) { edges { node { id } } } }"
    async with gateway(
        store, kit, secret_key, graphql_cost_budget=3 * PAGE_OF_IDS_COST, graphql_cost_window_seconds=600
    ) as api:
        for _ in range(3):
            assert data(await api.graphql(page, hammering.api_key))
        response = await api.client.post(
            f"{api.url}/graphql", json={"query": page}, headers={"Authorization": f"Bearer {hammering.api_key}"}
        )
        found = extensions(response.json())
        assert found["code"] == "RATE_LIMITED" and found["limit"] == "costBudget"
        assert found["retryAfterSeconds"] >= 1
        assert response.status_code == 429
        assert response.headers["Retry-After"] == str(found["retryAfterSeconds"])
        assert data(await api.graphql(page, other.api_key))


async def test_aliases_of_credentials_are_one_read_on_record_per_request(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, hubspot, hubspot_url)
    gid = to_global_id("Connection", connection_id)
    # As many aliases as the limit allows (the finding had 500; past 100 the document is refused outright).
    reads = " ".join(f"c{i}: credentials {{ accessToken }}" for i in range(90))
    many = "query($id: ID!) { connection(id: $id) { " + reads + " } }"
    async with gateway(store, kit, secret_key) as api:
        answer = data(await api.graphql(many, tenant.api_key, id=gid))["connection"]
        assert len({credentials["accessToken"] for credentials in answer.values()}) == 1
        data(await api.graphql(many, tenant.api_key, id=gid))
    async with store.engine.connect() as conn:
        recorded = await conn.scalar(
            select(func.count()).select_from(credential_reads).where(credential_reads.c.connection_id == connection_id)
        )
    assert recorded == 2  # one per request


async def test_subscriptions_per_key_are_capped_and_sync_progress_shares_one_poll(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, hubspot, hubspot_url)
    gid = to_global_id("Connection", connection_id)
    progress = GraphQLRequest(
        "subscription($id: ID!) { syncProgress(connectionId: $id) { status pages } }", variable_values={"id": gid}
    )
    async with store.engine.connect() as conn:
        key_id = await conn.scalar(select(api_keys.c.id).where(api_keys.c.platform_id == tenant.platform_id))
    async with gateway(store, kit, secret_key, graphql_max_subscriptions_per_key=2) as api:
        services = api.runtime.services

        def transport() -> WebsocketsTransport:
            return WebsocketsTransport(
                url=api.url.replace("http", "ws") + "/graphql",
                init_payload={"Authorization": f"Bearer {tenant.api_key}"},
                subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
                ack_timeout=5,
            )

        async with Client(transport=transport()) as first, Client(transport=transport()) as second:
            received: list[list[dict[str, Any]]] = [[], []]

            async def follow(session: Any, into: list[dict[str, Any]]) -> None:
                async for event in session.subscribe(progress):
                    into.append(event["syncProgress"])

            watchers = [
                asyncio.create_task(follow(first, received[0])),
                asyncio.create_task(follow(second, received[1])),
            ]
            await until(lambda: services.subscription_slots.held(key_id) == 2)
            await until(lambda: services.runs.watching(tenant.platform_id, connection_id) == 2)
            assert len(services.runs) == 1  # two subscribers, one poll
            with pytest.raises(TransportQueryError) as refused:
                async for _ in second.subscribe(progress):
                    pass
            assert refused.value.errors is not None
            assert refused.value.errors[0]["extensions"]["code"] == "RATE_LIMITED"
            assert refused.value.errors[0]["extensions"]["limit"] == "subscriptions"
            async with store.engine.begin() as conn:
                await conn.execute(
                    insert(sync_runs).values(
                        platform_id=tenant.platform_id,
                        connection_id=connection_id,
                        stream="contacts",
                        phase="backfill",
                        status="running",
                        started_at=utcnow(),
                    )
                )
            await until(lambda: bool(received[0] and received[1]))
            assert received[0] == received[1] == [{"status": "running", "pages": 0}]
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        await until(lambda: not services.subscription_slots.held(key_id) and not len(services.runs))
        # Over WebSocket the document limits hold too: graphql-transport-ws closes with 4400 and the reason.
        ws_url = api.url.replace("http", "ws") + "/graphql"
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {tenant.api_key}"}}
            await socket.send(orjson.dumps(init).decode())
            assert orjson.loads(await socket.recv())["type"] == "connection_ack"
            subscribe = {"id": "1", "type": "subscribe", "payload": {"query": aliases("__typename", 20_000)}}
            await socket.send(orjson.dumps(subscribe).decode())
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400
        assert "tokens" in closed.value.rcvd.reason


async def test_an_attacker_at_the_limits_leaves_another_tenants_query_quick(
    synced: tuple[Gateway, str], store: Store
) -> None:
    api, victim_key = synced
    attacker = await new_tenant(store, "attacker")
    # The most expensive document the default limits allow: pages of contacts, aliased up to the cost cap.
    page = "contacts(first: 100) { edges { node { id email firstName company { name } } } }"
    heaviest = aliases(page, DEFAULTS.graphql_max_cost // 701)  # 1 + 100 x (edges 1 + node 1 + 3 fields + company 2)
    assert not (await api.graphql(heaviest, attacker.api_key)).get("errors")
    stop = asyncio.Event()
    attacks = 0

    async def attack() -> None:
        nonlocal attacks
        headers = {"Authorization": f"Bearer {attacker.api_key}"}
        async with httpx2.AsyncClient(timeout=60) as client:
            while not stop.is_set():
                await client.post(f"{api.url}/graphql", json={"query": heaviest}, headers=headers)
                attacks += 1

    attackers = [asyncio.create_task(attack()) for _ in range(4)]
    try:
        await until(lambda: attacks >= 4, seconds=60)
        started = time.monotonic()
        answer = await api.graphql(CONTACT_IDS, victim_key, n=10)
        waited = time.monotonic() - started
    finally:
        stop.set()
        await asyncio.gather(*attackers)
    assert len(data(answer)["contacts"]["edges"]) == 10
    assert waited < 10.0
