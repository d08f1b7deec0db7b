"""The GraphQL read API over real HTTP, on both databases."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.hubspot.sandbox.schema import COMPANY_CURRENCY
from resolvers.ids import to_global_id
from tests.support import SyncedHubSpot, data, error_codes, statements_run, synced_fixture

world = synced_fixture(SyncedHubSpot)


CONTACTS_PAGE = """
query Page($first: Int!, $after: String, $filter: ContactFilter, $order: RecordOrder! = UPDATED_AT_DESC) {
  contacts(first: $first, after: $after, filter: $filter, orderBy: $order) {
    edges { cursor node { id remoteId email firstName lastName updatedAt raw company { remoteId name } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_paging_through_contacts_returns_each_exactly_once(world: SyncedHubSpot) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = data(await world.graphql(CONTACTS_PAGE, first=100, after=after))["contacts"]
        seen += [edge["node"]["remoteId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == world.sandbox.size.contacts
    assert set(seen) == world.sandbox.all_ids("contacts")


@pytest.mark.parametrize("order", ["UPDATED_AT_DESC", "UPDATED_AT_ASC"])
async def test_pages_follow_the_requested_order(world: SyncedHubSpot, order: str) -> None:
    first = data(await world.graphql(CONTACTS_PAGE, first=7, order=order))["contacts"]
    rest = data(await world.graphql(CONTACTS_PAGE, first=7, after=first["pageInfo"]["endCursor"], order=order))[
        "contacts"
    ]
    stamps = [e["node"]["updatedAt"] for e in first["edges"] + rest["edges"]]
    assert stamps == sorted(stamps, reverse=order == "UPDATED_AT_DESC")
    assert first["pageInfo"]["hasNextPage"] is True


async def test_page_size_boundaries(world: SyncedHubSpot) -> None:
    assert len(data(await world.graphql(CONTACTS_PAGE, first=100))["contacts"]["edges"]) == 100
    assert len(data(await world.graphql(CONTACTS_PAGE, first=1))["contacts"]["edges"]) == 1
    for bad in (101, -5):
        body = await world.graphql(CONTACTS_PAGE, first=bad)
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert "first" in body["errors"][0]["message"]


async def test_last_page_reports_no_next_page(world: SyncedHubSpot) -> None:
    total = world.sandbox.size.contacts
    page = data(await world.graphql(CONTACTS_PAGE, first=100, filter=None))["contacts"]
    after = page["pageInfo"]["endCursor"]
    page = data(await world.graphql(CONTACTS_PAGE, first=100, after=after))["contacts"]
    after = page["pageInfo"]["endCursor"]
    last = data(await world.graphql(CONTACTS_PAGE, first=100, after=after))["contacts"]
    assert len(last["edges"]) == total - 200
    assert last["pageInfo"]["hasNextPage"] is False


async def test_forged_and_foreign_cursors_are_refused(world: SyncedHubSpot) -> None:
    page = data(await world.graphql(CONTACTS_PAGE, first=2))["contacts"]
    cursor = page["pageInfo"]["endCursor"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    for bad in (tampered, "bm90LWEtY3Vyc29y", "%%%"):
        body = await world.graphql(CONTACTS_PAGE, first=2, after=bad)
        assert error_codes(body) == ["BAD_USER_INPUT"], bad
    # A contacts cursor means nothing to another list or another order.
    body = await world.graphql(CONTACTS_PAGE, first=2, after=cursor, order="UPDATED_AT_ASC")
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_filters_by_email_name_and_time(world: SyncedHubSpot) -> None:
    sample = data(await world.graphql(CONTACTS_PAGE, first=1))["contacts"]["edges"][0]["node"]
    exact = data(await world.graphql(CONTACTS_PAGE, first=10, filter={"email": {"eq": sample["email"]}}))["contacts"]
    assert [e["node"]["remoteId"] for e in exact["edges"]] == [sample["remoteId"]]

    fragment = sample["lastName"][1:4].upper()
    found = data(await world.graphql(CONTACTS_PAGE, first=100, filter={"lastName": {"contains": fragment}}))["contacts"]
    assert sample["remoteId"] in {e["node"]["remoteId"] for e in found["edges"]}
    assert all(fragment.lower() in e["node"]["lastName"].lower() for e in found["edges"])

    newer = data(await world.graphql(CONTACTS_PAGE, first=100, filter={"updatedAfter": sample["updatedAt"]}))[
        "contacts"
    ]
    assert newer["edges"] == []  # sample is the most recently updated contact

    wildcard = data(await world.graphql(CONTACTS_PAGE, first=5, filter={"email": {"contains": "%"}}))["contacts"]
    assert wildcard["edges"] == []


async def test_filters_by_connection_end_user_and_provider(world: SyncedHubSpot) -> None:
    gid = world.connection
    by_connection = data(await world.graphql(CONTACTS_PAGE, first=3, filter={"connectionId": gid}))["contacts"]
    assert len(by_connection["edges"]) == 3
    by_user = data(await world.graphql(CONTACTS_PAGE, first=3, filter={"externalUserId": "user-1"}))["contacts"]
    assert len(by_user["edges"]) == 3
    nobody = data(await world.graphql(CONTACTS_PAGE, first=3, filter={"externalUserId": "someone-else"}))["contacts"]
    assert nobody["edges"] == []
    other = data(await world.graphql(CONTACTS_PAGE, first=3, filter={"provider": "salesforce"}))["contacts"]
    assert other["edges"] == []


async def test_related_objects_and_raw(world: SyncedHubSpot) -> None:
    query = """{ deals(first: 20) { edges { node {
        name amount { amount currency } raw company { name domain } contacts { email company { name } } owner { email }
    } } } }"""
    deals = [e["node"] for e in data(await world.graphql(query))["deals"]["edges"]]
    assert any(deal["contacts"] for deal in deals)
    assert any(deal["company"] for deal in deals)
    assert all(deal["owner"] is None or "@" in deal["owner"]["email"] for deal in deals)
    assert all(deal["raw"]["properties"]["dealname"] == deal["name"] for deal in deals)
    for deal in deals:
        # Exactly what HubSpot sent, in the deal's currency or, when it names none, the account's.
        properties = deal["raw"]["properties"]
        assert deal["amount"]["currency"] == (properties.get("deal_currency_code") or COMPANY_CURRENCY)
        assert Decimal(deal["amount"]["amount"]) == Decimal(properties["amount"])
    assert {deal["amount"]["currency"] for deal in deals} > {COMPANY_CURRENCY}


async def test_node_lookup_by_global_id(world: SyncedHubSpot) -> None:
    sample = data(await world.graphql(CONTACTS_PAGE, first=1))["contacts"]["edges"][0]["node"]
    query = "query($id: ID!) { node(id: $id) { id ... on Contact { email } ... on LinkedAccount { provider } } }"
    assert data(await world.graphql(query, id=sample["id"]))["node"] == {"id": sample["id"], "email": sample["email"]}
    assert data(await world.graphql(query, id=world.connection))["node"]["provider"] == "hubspot"
    assert data(await world.graphql(query, id=to_global_id("Contact", 987654321)))["node"] is None
    assert error_codes(await world.graphql(query, id="garbage!")) == ["BAD_USER_INPUT"]


async def test_records_lists_any_stream(world: SyncedHubSpot) -> None:
    query = """query($c: ID!, $s: String!) { records(connectionId: $c, stream: $s, first: 100) {
        edges { node { remoteId stream raw } } pageInfo { hasNextPage } } }"""
    owners = data(await world.graphql(query, c=world.connection, s="owners"))["records"]
    assert len(owners["edges"]) == world.sandbox.size.owners
    assert all(edge["node"]["raw"]["email"] for edge in owners["edges"])


async def test_connection_shows_sync_state_and_runs(world: SyncedHubSpot) -> None:
    query = """query($id: ID!) { connection(id: $id) {
        provider status endUser { externalId }
        streams { stream phase lastSuccessfulSyncAt recordCount lastError }
        syncRuns(first: 50) { stream status pages records error startedAt finishedAt }
    } }"""
    connection = data(await world.graphql(query, id=world.connection))["connection"]
    assert connection["status"] == "active"
    assert connection["endUser"]["externalId"] == "user-1"
    streams = {s["stream"]: s for s in connection["streams"]}
    assert streams["contacts"]["recordCount"] == world.sandbox.size.contacts
    assert all(
        s["phase"] == "incremental" and s["lastSuccessfulSyncAt"] and not s["lastError"] for s in streams.values()
    )
    runs = connection["syncRuns"]
    assert {r["stream"] for r in runs} == set(streams)
    assert all(r["status"] == "succeeded" and r["finishedAt"] for r in runs)


async def test_related_objects_cost_a_constant_number_of_queries(world: SyncedHubSpot) -> None:
    query = """query($n: Int!) { contacts(first: $n) { edges { node {
        email connection { provider } company { name owner { email } } owner { email }
    } } } }"""
    data(await world.graphql(query, n=2))  # warm the key cache
    with statements_run(world.api.runtime.store) as statements:
        small = data(await world.graphql(query, n=2))
        small_count = len(statements)
        statements.clear()
        large = data(await world.graphql(query, n=100))
        large_count = len(statements)
    assert len(large["contacts"]["edges"]) == 100
    assert sum(1 for e in large["contacts"]["edges"] if e["node"]["company"]) > 50
    assert len(small["contacts"]["edges"]) == 2
    # One query for the page, one for connections, one per level of related objects: never one per row.
    assert small_count <= 4, statements
    assert large_count <= 4, statements


async def test_malformed_graphql_gets_a_typed_error(world: SyncedHubSpot) -> None:
    body = await world.graphql("{ contacts(first: 1) { edges { node { email }")
    assert error_codes(body) == ["GRAPHQL_PARSE_FAILED"]
    body = await world.graphql("{ contacts(first: 1) { edges { node { nonsense } } } }")
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_notes_and_tasks_resolve_their_parents(world: SyncedHubSpot) -> None:
    query = """{ notes(first: 50) { edges { node { body timestamp contacts { email } companies { name } } } }
                 tasks(first: 50) { edges { node { subject status dueAt contacts { email } deals { name } } } } }"""
    result = data(await world.graphql(query))
    notes = [e["node"] for e in result["notes"]["edges"]]
    tasks = [e["node"] for e in result["tasks"]["edges"]]
    assert notes and tasks
    assert any(note["contacts"] for note in notes)
    assert any(task["contacts"] for task in tasks)
    assert all(note["timestamp"] for note in notes)
