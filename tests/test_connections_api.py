"""Tenancy, authentication, connection mutations, the OAuth connect flow and secrets at rest."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import pytest_asyncio
from sqlalchemy import func, select, text

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.http import HttpKit
from resolvers.ids import to_global_id
from sync.storage.store import Store
from sync.storage.tables import connections, end_users, records, stream_states
from sync.worker.scheduler import Fairness, Worker
from tests.support import Gateway, connect_hubspot, data, error_codes, gateway, imported_hubspot_tokens, new_tenant

CONNECTIONS = "{ connections(first: 100) { edges { node { id provider endUser { externalId } } } } }"
CREATE = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) {
    id provider status baseUrl endUser { externalId } streams { stream phase } } }"""


@pytest_asyncio.fixture
async def api(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Gateway]:
    async with gateway(store, kit, secret_key) as running:
        yield running


async def count(store: Store, table: object) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_no_key_or_a_wrong_key_is_unauthenticated(store: Store, api: Gateway) -> None:
    for key in (None, "xk_not-a-real-key"):
        body = await api.graphql(CONNECTIONS, key)
        assert body["_status"] == 401
        assert error_codes(body) == ["UNAUTHENTICATED"]
    response = await api.client.post(
        f"{api.url}/graphql", json={"query": CONNECTIONS}, headers={"Authorization": "Basic abc"}
    )
    assert response.status_code == 401


async def test_graphiql_opens_in_a_browser(api: Gateway) -> None:
    response = await api.client.get(f"{api.url}/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_platforms_never_see_each_other(
    store: Store, kit: HttpKit, api: Gateway, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    hubspot.faults.rate_limit_enabled = False
    alice, bob = await new_tenant(store, "alice"), await new_tenant(store, "bob")
    alice_conn = await connect_hubspot(store, alice, hubspot, hubspot_url, external_user_id="shared-id")
    bob_conn = await connect_hubspot(store, bob, hubspot, hubspot_url, external_user_id="shared-id")
    await Worker(store, kit).drain()
    bob_gid = to_global_id("Connection", bob_conn)

    listed = data(await api.graphql(CONNECTIONS, alice.api_key))["connections"]["edges"]
    assert [e["node"]["id"] for e in listed] == [to_global_id("Connection", alice_conn)]

    contacts = data(
        await api.graphql("{ contacts(first: 100) { edges { node { id connection { id } } } } }", alice.api_key)
    )
    assert {e["node"]["connection"]["id"] for e in contacts["contacts"]["edges"]} == {
        to_global_id("Connection", alice_conn)
    }

    bob_contact = data(await api.graphql("{ contacts(first: 1) { edges { node { id } } } }", bob.api_key))
    bob_contact_id = bob_contact["contacts"]["edges"][0]["node"]["id"]
    assert data(await api.graphql("query($id: ID!) { node(id: $id) { id } }", alice.api_key, id=bob_contact_id)) == {
        "node": None
    }
    assert data(await api.graphql("query($id: ID!) { node(id: $id) { id } }", alice.api_key, id=bob_gid)) == {
        "node": None
    }

    attempts = [
        ("query($id: ID!) { connection(id: $id) { id } }", {"id": bob_gid}),
        (
            'query($id: ID!) { records(connectionId: $id, stream: "contacts", first: 5) { edges { cursor } } }',
            {"id": bob_gid},
        ),
        ("query($id: ID!) { contacts(first: 5, filter: {connectionId: $id}) { edges { cursor } } }", {"id": bob_gid}),
        ("mutation($id: ID!) { syncNow(connectionId: $id) { id } }", {"id": bob_gid}),
        ("mutation($id: ID!) { deleteConnection(id: $id) { id } }", {"id": bob_gid}),
    ]
    for query, variables in attempts:
        assert error_codes(await api.graphql(query, alice.api_key, **variables)) == ["NOT_FOUND"], query

    # Bob's connection and data are untouched by Alice's attempts.
    bob_view = data(await api.graphql(CONNECTIONS, bob.api_key))["connections"]["edges"]
    assert [e["node"]["id"] for e in bob_view] == [bob_gid]
    async with store.engine.connect() as conn:
        bob_records = (
            await conn.execute(select(func.count()).select_from(records).where(records.c.connection_id == bob_conn))
        ).scalar_one()
    assert (
        bob_records
        == sum(len(hubspot.all_ids(s)) for s in ("contacts", "companies", "deals", "notes", "tasks", "tickets")) + 6
    )


async def test_create_connection_imports_tokens_and_schedules_a_backfill(
    store: Store, api: Gateway, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    body = await api.graphql(
        CREATE, tenant.api_key, input=imported_hubspot_tokens(hubspot, hubspot_url, "customer-42", provider="HubSpot")
    )
    created = data(body)["createConnection"]
    assert created["provider"] == "hubspot"
    assert created["status"] == "active"
    assert created["endUser"] == {"externalId": "customer-42"}
    assert {s["stream"] for s in created["streams"]} == {
        "contacts",
        "companies",
        "deals",
        "notes",
        "tasks",
        "tickets",
        "owners",
    }
    assert {s["phase"] for s in created["streams"]} == {"backfill"}

    # A second connection for the same end user and provider is allowed.
    again = await api.graphql(
        CREATE,
        tenant.api_key,
        input={"provider": "hubspot", "externalUserId": "customer-42", "credentials": {"accessToken": "t2"}},
    )
    assert data(again)["createConnection"]["endUser"] == {"externalId": "customer-42"}
    assert await count(store, end_users) == 1
    assert await count(store, connections) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"provider": "myspace"}, "provider"),
        ({"credentials": {"refreshToken": "only-refresh"}}, "credentials.accessToken"),
        ({"baseUrl": "ftp://example.org"}, "baseUrl"),
        ({"externalUserId": ""}, "externalUserId"),
        ({"syncIntervalSeconds": 1}, "syncIntervalSeconds"),
        ({"credentials": {"accessToken": "a", "expiresAt": "2030-01-01T00:00:00"}}, "credentials.expiresAt"),
    ],
    ids=["unknown-provider", "no-access-token", "bad-base-url", "empty-user", "too-frequent", "naive-expiry"],
)
async def test_bad_connection_input_is_refused_and_changes_nothing(
    store: Store, api: Gateway, change: dict[str, object], field: str
) -> None:
    tenant = await new_tenant(store)
    good = {"provider": "hubspot", "externalUserId": "u", "credentials": {"accessToken": "tok"}}
    body = await api.graphql(CREATE, tenant.api_key, input={**good, **change})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert await count(store, connections) == 0
    assert await count(store, end_users) == 0


async def test_delete_connection_removes_it_and_its_records(
    store: Store, kit: HttpKit, api: Gateway, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    hubspot.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, hubspot, hubspot_url)
    await Worker(store, kit).drain()
    gid = to_global_id("Connection", connection_id)
    body = await api.graphql("mutation($id: ID!) { deleteConnection(id: $id) { id } }", tenant.api_key, id=gid)
    assert data(body) == {"deleteConnection": {"id": gid}}
    assert await count(store, records) == 0
    assert await count(store, stream_states) == 0
    again = await api.graphql("mutation($id: ID!) { deleteConnection(id: $id) { id } }", tenant.api_key, id=gid)
    assert error_codes(again) == ["NOT_FOUND"]


async def test_sync_now_makes_every_stream_due(
    store: Store, kit: HttpKit, api: Gateway, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    hubspot.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    connection_id = await connect_hubspot(store, tenant, hubspot, hubspot_url)
    # Room for all six streams of the connection at once (by default a worker runs two per connection).
    worker = Worker(store, kit, fairness=Fairness(max_running_per_connection=6, max_running_per_platform=6))
    await worker.drain()
    assert await worker.run_due() == 0  # nothing due until the interval passes
    gid = to_global_id("Connection", connection_id)
    data(await api.graphql("mutation($id: ID!) { syncNow(connectionId: $id) { id } }", tenant.api_key, id=gid))
    assert await worker.run_due() == 6
    await worker.drain()


async def test_oauth_connect_flow_creates_the_connection(
    store: Store, api: Gateway, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    tenant = await new_tenant(store)
    app_input = {
        "provider": "hubspot",
        "clientId": hubspot.client_id,
        "clientSecret": hubspot.client_secret,
        "authorizeUrl": f"{hubspot_url}/oauth/authorize",
        "baseUrl": hubspot_url,
    }
    data(
        await api.graphql(
            "mutation($i: ProviderAppInput!) { setProviderApp(input: $i) { clientId } }", tenant.api_key, i=app_input
        )
    )
    data(await api.graphql('mutation { addRedirectUri(uri: "https://app.example.com/done") }', tenant.api_key))
    link = data(
        await api.graphql(
            """mutation { connectUrl(provider: "hubspot", externalUserId: "browser-user",
                redirectUri: "https://app.example.com/done") { url state } }""",
            tenant.api_key,
        )
    )["connectUrl"]
    assert link["url"] == f"{api.url}/oauth/start?state={link['state']}"

    async with httpx2.AsyncClient(follow_redirects=False) as browser:
        # The gateway's start page binds the link to this browser, then sends it to the provider.
        start = await browser.get(link["url"])
        assert start.status_code == 303
        authorize_url = start.headers["location"]
        query = parse_qs(urlsplit(authorize_url).query)
        assert query["state"] == [link["state"]]
        assert query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [f"{api.url}/oauth/callback"]
        page = await browser.get(authorize_url)
        assert page.status_code == 200
        fields = {m[0]: html.unescape(m[1]) for m in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)}
        fields["decision"] = "approve"
        approved = await browser.post(f"{hubspot_url}/oauth/authorize", data=fields)
        assert approved.status_code in (302, 303)
        back = await browser.get(approved.headers["location"])
        assert back.status_code == 303
        landing = urlsplit(back.headers["location"])
        assert landing.netloc == "app.example.com"
        connection_gid = parse_qs(landing.query)["connection_id"][0]
        # The state is single-use.
        replay = await browser.get(approved.headers["location"])
        assert replay.status_code == 400

    connection = data(
        await api.graphql(
            "query($id: ID!) { connection(id: $id) { provider endUser { externalId } } }",
            tenant.api_key,
            id=connection_gid,
        )
    )["connection"]
    assert connection == {"provider": "hubspot", "endUser": {"externalId": "browser-user"}}


async def test_connect_url_without_an_app_or_with_a_bad_redirect_is_refused(store: Store, api: Gateway) -> None:
    tenant = await new_tenant(store)
    query = 'mutation($r: String!) { connectUrl(provider: "hubspot", externalUserId: "u", redirectUri: $r) { url } }'
    data(await api.graphql('mutation { addRedirectUri(uri: "https://app.example.com/done") }', tenant.api_key))
    assert error_codes(await api.graphql(query, tenant.api_key, r="https://app.example.com/done")) == ["BAD_USER_INPUT"]
    assert error_codes(await api.graphql(query, tenant.api_key, r="javascript:alert(1)")) == ["BAD_USER_INPUT"]


async def test_credentials_are_encrypted_at_rest_and_never_logged(
    store: Store,
    kit: HttpKit,
    api: Gateway,
    hubspot: HubSpotSandbox,
    hubspot_url: str,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hubspot.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    imported = imported_hubspot_tokens(hubspot, hubspot_url, "u")
    data(await api.graphql(CREATE, tenant.api_key, input=imported))
    hubspot.expire_access_tokens()  # forces a refresh, so a new token is written too
    await Worker(store, kit).drain()
    tokens = imported["credentials"]
    secrets = [tokens["accessToken"], tokens["refreshToken"], tenant.api_key, hubspot.client_secret]

    if database_url.startswith("sqlite"):
        db_file = Path(database_url.split("///", 1)[1])
        dumped = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    else:
        async with store.engine.connect() as conn:
            tables = (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars()
            dumped = b""
            for table in list(tables):
                rows = await conn.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" t'))
                dumped += "".join(rows.scalars()).encode()
    assert dumped  # the scan saw the data
    for secret in secrets:
        assert secret.encode() not in dumped
    logged = caplog.text
    for secret in secrets:
        assert secret not in logged


async def test_connections_page_oldest_first(store: Store, api: Gateway) -> None:
    tenant = await new_tenant(store)
    for n in range(5):
        data(
            await api.graphql(
                CREATE,
                tenant.api_key,
                input={"provider": "hubspot", "externalUserId": f"user-{n}", "credentials": {"accessToken": "t"}},
            )
        )
    query = """query($after: String) { connections(first: 2, after: $after) {
        edges { node { endUser { externalId } } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    for _ in range(3):
        page = data(await api.graphql(query, tenant.api_key, after=after))["connections"]
        seen += [e["node"]["endUser"]["externalId"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"user-{n}" for n in range(5)]
    assert page["pageInfo"]["hasNextPage"] is False
    contacts_cursor = "query($a: String) { contacts(first: 1, after: $a) { edges { cursor } } }"
    assert error_codes(await api.graphql(contacts_cursor, tenant.api_key, a=after)) == ["BAD_USER_INPUT"]
