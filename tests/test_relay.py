"""Relay's cursor connections and object identification, over real HTTP on both databases: every list
pages forward and backward through the same records, pageInfo tells the truth, bad arguments get typed
errors, and `node`/`nodes` find every Node of the caller's platform and nothing of another's."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.http import HttpKit
from resolvers.ids import to_global_id
from sync.storage.store import Store
from sync.storage.tables import end_users, records
from tests.support import SyncedHubSpot, connect_hubspot, data, error_codes, new_tenant, synced

TIED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def world(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> AsyncIterator[SyncedHubSpot]:
    async with synced(SyncedHubSpot, store, kit, hubspot, hubspot_url, secret_key) as ready:
        # Forty contacts share one modification time, so pages must break ties by id to neither skip nor repeat.
        async with store.engine.begin() as conn:
            tied = (
                await conn.execute(
                    select(records.c.id).where(records.c.model == "Contact").order_by(records.c.id).limit(40)
                )
            ).scalars()
            await conn.execute(update(records).where(records.c.id.in_(list(tied))).values(remote_updated_at=TIED_AT))
        yield ready


CONTACTS = """
query Contacts($first: Int, $after: String, $last: Int, $before: String, $filter: ContactFilter,
               $order: RecordOrder! = UPDATED_AT_DESC) {
  contacts(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $order) {
    edges { cursor node { id email } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

RECORDS = """
query Records($c: ID!, $first: Int, $after: String, $last: Int, $before: String, $order: RecordOrder!) {
  records(connectionId: $c, stream: "owners", first: $first, after: $after, last: $last, before: $before,
          orderBy: $order) {
    edges { cursor node { id remoteId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

CONNECTIONS = """
query Accounts($first: Int, $after: String, $last: Int, $before: String) {
  connections(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id endUser { externalId } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def _the_page(body: dict[str, Any]) -> dict[str, Any]:
    [page] = data(body).values()
    return page  # type: ignore[no-any-return]


def _check_cursors(page: dict[str, Any]) -> None:
    edges, info = page["edges"], page["pageInfo"]
    assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
    assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)


async def _forward(world: SyncedHubSpot, query: str, size: int, **variables: Any) -> list[str]:
    """Every id of the list, first page to last, checking each page's pageInfo on the way."""
    ids: list[str] = []
    after = None
    while True:
        page = _the_page(await world.graphql(query, first=size, after=after, **variables))
        _check_cursors(page)
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        assert len(page["edges"]) == size
        after = page["pageInfo"]["endCursor"]


async def _backward(world: SyncedHubSpot, query: str, size: int, **variables: Any) -> list[str]:
    """Every id of the list, read from the last page back to the first, in the order they were read."""
    ids: list[str] = []
    before = None
    while True:
        page = _the_page(await world.graphql(query, last=size, before=before, **variables))
        _check_cursors(page)
        assert page["pageInfo"]["hasNextPage"] is (before is not None)
        ids += [edge["node"]["id"] for edge in reversed(page["edges"])]
        if not page["pageInfo"]["hasPreviousPage"]:
            return ids
        assert len(page["edges"]) == size
        before = page["pageInfo"]["startCursor"]


@pytest.mark.parametrize("order", ["UPDATED_AT_DESC", "UPDATED_AT_ASC"])
@pytest.mark.parametrize("filter", [None, {"email": {"contains": "e"}}], ids=["unfiltered", "filtered"])
async def test_backward_paging_reads_the_forward_list_in_mirror_order(
    world: SyncedHubSpot, order: str, filter: dict[str, Any] | None
) -> None:
    forward = await _forward(world, CONTACTS, 17, order=order, filter=filter)
    backward = await _backward(world, CONTACTS, 13, order=order, filter=filter)
    assert len(forward) == len(set(forward)) > 40
    assert backward == list(reversed(forward))
    everything = _the_page(await world.graphql(CONTACTS, first=100, order=order, filter=filter))
    assert forward[:100] == [edge["node"]["id"] for edge in everything["edges"]]


@pytest.mark.parametrize("order", ["UPDATED_AT_DESC", "UPDATED_AT_ASC"])
async def test_raw_records_page_both_ways(world: SyncedHubSpot, order: str) -> None:
    forward = await _forward(world, RECORDS, 2, c=world.connection, order=order)
    backward = await _backward(world, RECORDS, 3, c=world.connection, order=order)
    assert len(forward) == len(set(forward)) > 3
    assert backward == list(reversed(forward))


async def test_linked_accounts_page_both_ways(world: SyncedHubSpot, hubspot: HubSpotSandbox, hubspot_url: str) -> None:
    for n in range(2, 8):
        await connect_hubspot(world.store, world.tenant, hubspot, hubspot_url, external_user_id=f"user-{n}")
    forward = await _forward(world, CONNECTIONS, 3)
    backward = await _backward(world, CONNECTIONS, 2)
    assert len(forward) == len(set(forward)) == 7
    assert backward == list(reversed(forward))
    page = _the_page(await world.graphql(CONNECTIONS, first=7))
    assert [edge["node"]["endUser"]["externalId"] for edge in page["edges"]] == [f"user-{n}" for n in range(1, 8)]


async def test_a_window_between_two_cursors(world: SyncedHubSpot) -> None:
    whole = _the_page(await world.graphql(CONTACTS, first=30))["edges"]
    after, before = whole[4]["cursor"], whole[15]["cursor"]
    inside = [edge["node"]["id"] for edge in whole[5:15]]
    for arguments in ({"first": 20}, {"last": 20}):
        page = _the_page(await world.graphql(CONTACTS, after=after, before=before, **arguments))
        assert [edge["node"]["id"] for edge in page["edges"]] == inside
        assert page["pageInfo"]["hasPreviousPage"] is True
        assert page["pageInfo"]["hasNextPage"] is True
    head = _the_page(await world.graphql(CONTACTS, first=3, after=after, before=before))
    assert [edge["node"]["id"] for edge in head["edges"]] == inside[:3]
    tail = _the_page(await world.graphql(CONTACTS, last=3, after=after, before=before))
    assert [edge["node"]["id"] for edge in tail["edges"]] == inside[-3:]


async def test_first_and_last_zero_give_an_empty_page_with_true_page_info(world: SyncedHubSpot) -> None:
    empty = _the_page(await world.graphql(CONTACTS, first=0))
    assert empty == {
        "edges": [],
        "pageInfo": {"hasNextPage": True, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
    }
    cursor = _the_page(await world.graphql(CONTACTS, first=2))["pageInfo"]["endCursor"]
    after = _the_page(await world.graphql(CONTACTS, first=0, after=cursor))
    assert after["edges"] == [] and after["pageInfo"]["hasNextPage"] is True
    assert after["pageInfo"]["hasPreviousPage"] is True
    backward = _the_page(await world.graphql(CONTACTS, last=0))
    assert backward["edges"] == [] and backward["pageInfo"]["hasPreviousPage"] is True
    assert backward["pageInfo"]["hasNextPage"] is False
    nothing = _the_page(await world.graphql(CONTACTS, first=0, filter={"email": {"eq": "nobody@nowhere.invalid"}}))
    assert nothing["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_the_default_page_and_the_largest(world: SyncedHubSpot) -> None:
    assert len(_the_page(await world.graphql(CONTACTS))["edges"]) == 50
    assert len(_the_page(await world.graphql(CONTACTS, last=100))["edges"]) == 100


async def test_bad_paging_arguments_get_typed_errors(world: SyncedHubSpot) -> None:
    page = _the_page(await world.graphql(CONTACTS, first=3))
    cursor = page["pageInfo"]["endCursor"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    accounts_cursor = _the_page(await world.graphql(CONNECTIONS, first=1))["pageInfo"]["endCursor"]
    refused: list[tuple[dict[str, Any], str]] = [
        ({"first": 3, "last": 3}, "last"),
        ({"first": 101}, "first"),
        ({"first": -1}, "first"),
        ({"last": 101}, "last"),
        ({"last": -1}, "last"),
        ({"first": 3, "after": tampered}, "after"),
        ({"last": 3, "before": tampered}, "before"),
        ({"last": 3, "before": "%%%"}, "before"),
        ({"last": 3, "before": cursor, "order": "UPDATED_AT_ASC"}, "before"),
        ({"first": 3, "after": accounts_cursor}, "after"),
    ]
    for variables, field in refused:
        body = await world.graphql(CONTACTS, **variables)
        assert error_codes(body) == ["BAD_USER_INPUT"], variables
        assert body["errors"][0]["extensions"]["field"] == field, variables
        assert field in body["errors"][0]["message"], variables
    body = await world.graphql(CONNECTIONS, last=2, before=cursor)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "before"


NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on RemoteObject { remoteId }
    ... on LinkedAccount { provider }
    ... on EndUser { externalId }
  }
}"""

NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"

ONE_OF_EACH = """
query($c: ID!) {
  contacts(first: 1) { edges { node { id } } }
  companies(first: 1) { edges { node { id } } }
  deals(first: 1) { edges { node { id } } }
  users(first: 1) { edges { node { id } } }
  notes(first: 1) { edges { node { id } } }
  tasks(first: 1) { edges { node { id } } }
  records(connectionId: $c, stream: "owners", first: 1) { edges { node { id } } }
  connection(id: $c) { id endUser { id } }
}"""


async def _one_id_of_each_node_type(world: SyncedHubSpot) -> dict[str, str]:
    found = data(await world.graphql(ONE_OF_EACH, c=world.connection))
    connection = found.pop("connection")
    ids = {
        "LinkedAccount": connection["id"],
        "EndUser": connection["endUser"]["id"],
        "Record": found.pop("records")["edges"][0]["node"]["id"],
    }
    by_list = {"contacts": "Contact", "companies": "Company", "deals": "Deal", "users": "User"}
    by_list |= {"notes": "Note", "tasks": "Task"}
    for name, page in found.items():
        ids[by_list[name]] = page["edges"][0]["node"]["id"]
    return ids


async def test_node_finds_every_node_type(world: SyncedHubSpot) -> None:
    ids = await _one_id_of_each_node_type(world)
    assert set(ids) == {"LinkedAccount", "EndUser", "Record", "Contact", "Company", "Deal", "User", "Note", "Task"}
    for type_name, global_id in ids.items():
        node = data(await world.graphql(NODE, id=global_id))["node"]
        assert (node["__typename"], node["id"]) == (type_name, global_id)
    user = data(await world.graphql(NODE, id=ids["EndUser"]))["node"]
    assert user["externalId"] == "user-1"
    listed = data(await world.graphql(NODES, ids=list(ids.values())))["nodes"]
    assert [(n["__typename"], n["id"]) for n in listed] == list(ids.items())


async def test_node_ids_of_nothing_or_of_the_wrong_type_find_null(world: SyncedHubSpot) -> None:
    ids = await _one_id_of_each_node_type(world)
    strangers = [
        to_global_id("Connection", uuid.uuid4()),
        to_global_id("EndUser", uuid.uuid4()),
        to_global_id("Contact", 987654321),
        to_global_id("Nothing", 1),
        to_global_id("EndUser", "not-a-uuid"),
    ]
    # A company's id asked as a contact is not a contact.
    company_number = _local_id(ids["Company"])
    strangers.append(to_global_id("Contact", company_number))
    listed = data(await world.graphql(NODES, ids=[ids["Contact"], *strangers]))["nodes"]
    assert listed[0]["id"] == ids["Contact"]
    assert listed[1:] == [None] * len(strangers)
    for stranger in strangers:
        assert data(await world.graphql(NODE, id=stranger)) == {"node": None}


def _local_id(global_id: str) -> str:
    return base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode().partition(":")[2]


async def test_another_platforms_nodes_are_null(world: SyncedHubSpot, store: Store) -> None:
    ids = await _one_id_of_each_node_type(world)
    intruder = await new_tenant(store, "intruder")
    for global_id in ids.values():
        body = await world.api.graphql(NODE, intruder.api_key, id=global_id)
        assert data(body) == {"node": None}, global_id
    body = await world.api.graphql(NODES, intruder.api_key, ids=list(ids.values()))
    assert data(body) == {"nodes": [None] * len(ids)}
    # The intruder's own end user is found: the scoping is by platform, not a refusal of the type.
    async with store.engine.begin() as conn:
        own = uuid.uuid4()
        await conn.execute(
            end_users.insert().values(
                id=own, platform_id=intruder.platform_id, external_id="mine", created_at=datetime.now(tz=UTC)
            )
        )
    body = await world.api.graphql(NODE, intruder.api_key, id=to_global_id("EndUser", own))
    assert data(body)["node"] == {"__typename": "EndUser", "id": to_global_id("EndUser", own), "externalId": "mine"}


async def test_nodes_limits_and_malformed_ids(world: SyncedHubSpot) -> None:
    too_many = [to_global_id("Contact", n) for n in range(101)]
    body = await world.graphql(NODES, ids=too_many)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "100" in body["errors"][0]["message"]
    body = await world.graphql(NODES, ids=[world.connection, "%%%"])
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert data(await world.graphql(NODES, ids=[])) == {"nodes": []}
