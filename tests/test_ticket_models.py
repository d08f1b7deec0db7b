"""Tickets and their comments, stored in the cache as a connector stores them, read through the API with
nothing written for them above connectors/: every filter, every relation (a ticket's comments found from
the comment side) in one query per level, Relay paging both ways, node lookups, the change stream and
outbound webhooks, and writes refused when a status or priority is not one the enum has."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import strawberry
from sqlalchemy import select

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.models import COMMON_MODELS, TICKET, TICKET_COMMENT
from connectors.kit.records import RemoteRecord
from resolvers.changes import encode_cursor
from resolvers.context import Caller
from resolvers.ids import from_global_id, to_global_id
from resolvers.loaders import MAX_CHILDREN
from schema import XkitSchema
from schema import schema as public_schema
from schema.objects import OBJECT_TYPES
from schema.query import ListQuery
from schema.scalars import SCALARS
from schema.writes import _mutations
from sync.cache.records import StreamTarget, mark_deleted, upsert_records
from sync.storage.store import Store
from sync.storage.tables import connections
from sync.tenancy.connections import NewConnection, create_connection
from sync.webhooks.outbound import Outbound
from tests.support import (
    Gateway,
    Tenant,
    data,
    error_codes,
    gateway,
    new_tenant,
    sandbox_egress,
    serve,
    statements_run,
)
from tests.test_webhooks_out import FAST, Receiver, create_destination

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SOLVED = datetime(2025, 3, 2, 10, 0, tzinfo=UTC)


def _ticket(n: int, **common: Any) -> dict[str, Any]:
    values = {
        "subject": f"Ticket {n}",
        "description": f"Something is wrong ({n})",
        "status": "OPEN",
        "remote_status": "open",
        "priority": "NORMAL",
        "remote_priority": "normal",
        "ticket_type": "question",
        "channel": "email",
        "tags": [],
        "due_at": None,
        "solved_at": None,
        "requester": "c1",
        "assignee": "u1",
        "company": "co1",
        **common,
    }
    TICKET.validate(values)
    return values


def _comment(ticket: str, body: str, **common: Any) -> dict[str, Any]:
    values = {"body": body, "html_body": f"<p>{body}</p>", "is_public": True, "ticket": ticket, **common}
    values.setdefault("author_user", None)
    values.setdefault("author_contact", None)
    TICKET_COMMENT.validate(values)
    return values


# Tickets of the first connection (remote id -> common fields); each is changed a minute after the one before.
TICKETS = {
    "t1": _ticket(1, tags=["vip", "billing"], priority="URGENT", remote_priority="urgent"),
    "t2": _ticket(2, status="PENDING", remote_status="pending", requester="c2", tags=["billing"]),
    "t3": _ticket(3, status="SOLVED", remote_status="solved", assignee="u2", solved_at=SOLVED),
    "t4": _ticket(4, status="ON_HOLD", remote_status="hold", priority="LOW", remote_priority="low", tags=["vi"]),
    "t5": _ticket(5, status=None, remote_status="waiting on vendor", channel="web", ticket_type="incident"),
    "t6": _ticket(6, status="NEW", remote_status="new", assignee=None, company=None, tags=["50%_off", "VIP"]),
    "t7": _ticket(7, status="CLOSED", remote_status="closed", priority="HIGH", remote_priority="high"),
    "t8": _ticket(8, subject="Printer on fire", requester="c2", tags=["vip"]),
}
COMMENTS = {
    "m1": _comment("t1", "Hello, my invoice is wrong", author_contact="c1"),
    "m2": _comment("t1", "Looking into it", author_user="u1"),
    "m3": _comment("t1", "Escalated to billing", author_user="u2", is_public=False),
    "m4": _comment("t2", "Any news?", author_contact="c2"),
    "m5": _comment("t8", "It is still burning", author_contact="c2"),
}
PEOPLE = {
    "Contact": {"c1": {"email": "ada@example.com"}, "c2": {"email": "grace@example.com"}},
    "User": {"u1": {"email": "agent@example.com"}, "u2": {"email": "lead@example.com"}},
    "Company": {"co1": {"name": "Initech"}},
}


@dataclass
class Desk:
    api: Gateway
    tenant: Tenant
    store: Store
    connection: uuid.UUID  # HubSpot, end user "alice": the tickets above
    other: uuid.UUID  # Salesforce, end user "bob": one ticket with the same remote ids as the first's

    async def q(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.api.graphql(query, self.tenant.api_key, **variables)


async def _store(store: Store, connection_id: uuid.UUID, stream: str, model: str, rows: dict[str, Any]) -> None:
    async with store.engine.begin() as conn:
        connection = (await conn.execute(select(connections).where(connections.c.id == connection_id))).one()
        target = StreamTarget(connection.platform_id, connection.id, connection.end_user_id, stream, model)
        batch = [
            RemoteRecord(
                remote_id,
                raw={"id": remote_id},
                common=common,
                created_at=START + timedelta(minutes=n),
                updated_at=START + timedelta(minutes=n),
            )
            for n, (remote_id, common) in enumerate(rows.items())
        ]
        await upsert_records(conn, target, batch, START)


async def _seed(store: Store, tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID]:
    first = await create_connection(
        store, NewConnection(tenant.platform_id, "hubspot", "alice", Credentials(access_token="x"))
    )
    other = await create_connection(
        store, NewConnection(tenant.platform_id, "salesforce", "bob", Credentials(access_token="y"))
    )
    for model, rows in PEOPLE.items():
        await _store(store, first, model.lower() + "s", model, {k: {**v} for k, v in rows.items()})
    await _store(store, first, "tickets", "Ticket", TICKETS)
    await _store(store, first, "comments", "TicketComment", COMMENTS)
    # The same remote ids on another connection never mix with the first's.
    await _store(store, other, "cases", "Ticket", {"t1": _ticket(9, subject="Elsewhere", tags=["vip"])})
    await _store(store, other, "case_comments", "TicketComment", {"m9": _comment("t1", "Not yours")})
    return first, other


@pytest_asyncio.fixture
async def desk(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Desk]:
    tenant = await new_tenant(store)
    first, other = await _seed(store, tenant)
    async with gateway(store, kit, secret_key) as api:
        yield Desk(api, tenant, store, first, other)


TICKET_IDS = """query($filter: TicketFilter) { tickets(first: 100, filter: $filter) {
  edges { node { remoteId connection { provider } } } } }"""
COMMENT_IDS = """query($filter: TicketCommentFilter) { ticketComments(first: 100, filter: $filter) {
  edges { node { remoteId } } } }"""


async def _ticket_ids(desk: Desk, **filter: Any) -> set[str]:
    edges = data(await desk.q(TICKET_IDS, filter=filter))["tickets"]["edges"]
    return {e["node"]["remoteId"] + ("" if e["node"]["connection"]["provider"] == "hubspot" else "@sf") for e in edges}


async def test_every_ticket_filter_selects_exactly_the_matching_tickets(desk: Desk) -> None:
    first = to_global_id("Connection", desk.connection)
    everything = {*TICKETS, "t1@sf"}
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, everything),
        ({"status": "OPEN"}, {"t1", "t8", "t1@sf"}),
        ({"status": "ON_HOLD"}, {"t4"}),
        ({"priority": "URGENT"}, {"t1"}),
        ({"remoteStatus": {"contains": "vendor"}}, {"t5"}),
        ({"requesterRemoteId": "c2"}, {"t2", "t8"}),
        ({"assigneeRemoteId": "u2"}, {"t3"}),
        ({"companyRemoteId": "co1"}, everything - {"t6"}),
        # A tag is matched whole and exactly: not "vi", not "VIP"; LIKE's wildcards are plain characters.
        ({"tags": {"contains": "vip"}}, {"t1", "t8", "t1@sf"}),
        ({"tags": {"contains": "vi"}}, {"t4"}),
        ({"tags": {"contains": "VIP"}}, {"t6"}),
        ({"tags": {"contains": "50%_off"}}, {"t6"}),
        ({"tags": {"contains": "50%"}}, set()),
        ({"tags": {"contains": "billing"}, "priority": "NORMAL"}, {"t2"}),
        ({"tags": {}}, everything),
        ({"subject": {"contains": "printer"}}, {"t8"}),
        ({"channel": {"eq": "web"}, "ticketType": {"eq": "incident"}}, {"t5"}),
        ({"updatedAfter": (START + timedelta(minutes=5)).isoformat()}, {"t7", "t8"}),
        ({"connectionId": first}, set(TICKETS)),
        ({"externalUserId": "bob"}, {"t1@sf"}),
        ({"provider": "salesforce"}, {"t1@sf"}),
        ({"provider": "HubSpot", "tags": {"contains": "vip"}}, {"t1", "t8"}),
    ]
    for filter, expected in cases:
        assert await _ticket_ids(desk, **filter) == expected, filter


async def test_every_comment_filter_selects_exactly_the_matching_comments(desk: Desk) -> None:
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, {*COMMENTS, "m9"}),
        ({"ticketRemoteId": "t1"}, {"m1", "m2", "m3", "m9"}),
        ({"ticketRemoteId": "t1", "connectionId": to_global_id("Connection", desk.connection)}, {"m1", "m2", "m3"}),
        ({"isPublic": False}, {"m3"}),
        ({"isPublic": True, "ticketRemoteId": "t1", "provider": "hubspot"}, {"m1", "m2"}),
        ({"authorUserRemoteId": "u2"}, {"m3"}),
        ({"authorContactRemoteId": "c2"}, {"m4", "m5"}),
    ]
    for filter, expected in cases:
        edges = data(await desk.q(COMMENT_IDS, filter=filter))["ticketComments"]["edges"]
        assert {e["node"]["remoteId"] for e in edges} == expected, filter


async def test_an_unknown_status_in_a_filter_is_refused_naming_the_allowed_values(desk: Desk) -> None:
    literal = await desk.q("{ tickets(filter: {status: OPN}) { edges { cursor } } }")
    variable = await desk.q(TICKET_IDS, filter={"priority": "critical"})
    assert error_codes(literal) == error_codes(variable) == ["BAD_USER_INPUT"]
    (refusal,) = literal["errors"]
    assert refusal["extensions"]["field"] == "filter.status"
    assert refusal["extensions"]["allowedValues"] == ["NEW", "OPEN", "PENDING", "ON_HOLD", "SOLVED", "CLOSED"]
    assert "filter.status" in refusal["message"] and "ON_HOLD" in refusal["message"]
    (refusal,) = variable["errors"]
    assert refusal["extensions"]["field"] == "$filter.priority"
    assert refusal["extensions"]["allowedValues"] == ["LOW", "NORMAL", "HIGH", "URGENT"]


RELATED = """query($n: Int!) { tickets(first: $n, filter: {provider: "hubspot"}, orderBy: UPDATED_AT_ASC) {
  edges { node {
    remoteId subject status remoteStatus priority tags solvedAt
    requester { email } assignee { email } company { name }
    comments { remoteId body htmlBody isPublic createdAt
      authorUser { email } authorContact { email } ticket { remoteId requester { email } } }
  } } } }"""


async def test_relations_resolve_with_one_query_per_level(desk: Desk) -> None:
    data(await desk.q(RELATED, n=1))  # warm the key cache
    with statements_run(desk.api.runtime.store) as statements:
        one = data(await desk.q(RELATED, n=1))
        few = len(statements)
        statements.clear()
        every = data(await desk.q(RELATED, n=100))
        many = len(statements)
    # The page, then one statement per level: (requester, assignee, company, comments), (comment authors,
    # comment tickets), (those tickets' requesters). Never one per row.
    assert few == many <= 4, statements
    tickets = {e["node"]["remoteId"]: e["node"] for e in every["tickets"]["edges"]}
    assert len(one["tickets"]["edges"]) == 1 and set(tickets) == set(TICKETS)
    t1 = tickets["t1"]
    assert t1["requester"] == {"email": "ada@example.com"} and t1["assignee"] == {"email": "agent@example.com"}
    assert t1["company"] == {"name": "Initech"} and t1["tags"] == ["vip", "billing"]
    assert t1["priority"] == "URGENT" and t1["status"] == "OPEN" and t1["remoteStatus"] == "open"
    # Comments oldest first, of this connection only (the other connection's "t1" has its own).
    assert [c["remoteId"] for c in t1["comments"]] == ["m1", "m2", "m3"]
    m1, m2, m3 = t1["comments"]
    assert m1["authorContact"] == {"email": "ada@example.com"} and m1["authorUser"] is None
    assert m2["authorUser"] == {"email": "agent@example.com"} and m2["htmlBody"] == "<p>Looking into it</p>"
    assert m3["isPublic"] is False and m3["ticket"] == {"remoteId": "t1", "requester": {"email": "ada@example.com"}}
    assert m1["createdAt"] < m2["createdAt"] < m3["createdAt"]
    assert tickets["t3"]["solvedAt"] == "2025-03-02T10:00:00+00:00" and tickets["t3"]["comments"] == []
    assert tickets["t5"]["status"] is None and tickets["t5"]["remoteStatus"] == "waiting on vendor"
    assert tickets["t6"]["assignee"] is None and tickets["t6"]["company"] is None
    assert [c["remoteId"] for c in tickets["t8"]["comments"]] == ["m5"]


async def test_a_deleted_comment_leaves_its_ticket(desk: Desk) -> None:
    async with desk.store.engine.begin() as conn:
        connection = (await conn.execute(select(connections).where(connections.c.id == desk.connection))).one()
        target = StreamTarget(
            connection.platform_id, desk.connection, connection.end_user_id, "comments", "TicketComment"
        )
        await mark_deleted(conn, target, [RemoteRecord("m2", raw={}, deleted=True)], START)
    query = """{ tickets(filter: {provider: "hubspot", tags: {contains: "billing"}}) {
      edges { node { remoteId comments { remoteId } } } } }"""
    nodes = {e["node"]["remoteId"]: e["node"] for e in data(await desk.q(query))["tickets"]["edges"]}
    assert [c["remoteId"] for c in nodes["t1"]["comments"]] == ["m1", "m3"]


async def test_a_ticket_shows_its_oldest_comments_up_to_the_limit(desk: Desk) -> None:
    extra = {f"x{n:03}": _comment("t7", f"Note {n}", author_user="u1") for n in range(MAX_CHILDREN + 5)}
    await _store(desk.store, desk.connection, "comments", "TicketComment", extra)
    query = '{ tickets(filter: {status: CLOSED, provider: "hubspot"}) { edges { node { comments { remoteId } } } } }'
    (edge,) = data(await desk.q(query))["tickets"]["edges"]
    assert [c["remoteId"] for c in edge["node"]["comments"]] == sorted(extra)[:MAX_CHILDREN]
    # The list of comments has them all.
    every = data(await desk.q(COMMENT_IDS, filter={"ticketRemoteId": "t7"}))["ticketComments"]["edges"]
    assert len(every) == 100  # a full page, and more after it


PAGE = """query($first: Int, $after: String, $last: Int, $before: String) {
  tickets(first: $first, after: $after, last: $last, before: $before, filter: {provider: "hubspot"}) {
    edges { cursor node { remoteId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


async def test_tickets_page_forward_and_backward(desk: Desk) -> None:
    newest_first = [f"t{n}" for n in range(8, 0, -1)]
    forward: list[str] = []
    after = None
    while True:
        page = data(await desk.q(PAGE, first=3, after=after))["tickets"]
        forward += [e["node"]["remoteId"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    backward: list[str] = []
    before = None
    while True:
        page = data(await desk.q(PAGE, last=3, before=before))["tickets"]
        backward = [e["node"]["remoteId"] for e in page["edges"]] + backward
        assert page["pageInfo"]["hasNextPage"] is (before is not None)
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert forward == backward == newest_first


async def test_node_finds_tickets_and_comments_by_their_global_ids(desk: Desk) -> None:
    listed = data(
        await desk.q(
            '{ tickets(first: 1, filter: {tags: {contains: "VIP"}}) { edges { node { id } } } '
            "ticketComments(first: 1, filter: {isPublic: false}) { edges { node { id } } } }"
        )
    )
    ticket_id = listed["tickets"]["edges"][0]["node"]["id"]
    comment_id = listed["ticketComments"]["edges"][0]["node"]["id"]
    query = """query($ids: [ID!]!, $id: ID!) {
      node(id: $id) { __typename ... on Ticket { subject tags comments { remoteId } } }
      nodes(ids: $ids) { __typename id ... on TicketComment { body ticket { remoteId } } ... on Ticket { remoteId } }
    }"""
    found = data(await desk.q(query, id=ticket_id, ids=[comment_id, ticket_id]))
    assert found["node"] == {"__typename": "Ticket", "subject": "Ticket 6", "tags": ["50%_off", "VIP"], "comments": []}
    comment, ticket = found["nodes"]
    assert comment == {
        "__typename": "TicketComment",
        "id": comment_id,
        "body": "Escalated to billing",
        "ticket": {"remoteId": "t1"},
    }
    assert ticket == {"__typename": "Ticket", "id": ticket_id, "remoteId": "t6"}
    # A ticket's record id named as a comment's finds nothing.
    as_comment = to_global_id("TicketComment", from_global_id(ticket_id)[1])
    assert data(await desk.q("query($id: ID!) { node(id: $id) { id } }", id=as_comment))["node"] is None


async def test_tags_are_never_null(desk: Desk) -> None:
    # A ticket cached before it had tags (or mapped by a connector with none) shows an empty list.
    bare = {k: v for k, v in _ticket(10).items() if k != "tags"}
    await _store(desk.store, desk.other, "cases", "Ticket", {"t10": bare})
    query = '{ tickets(filter: {subject: {eq: "Ticket 10"}}) { edges { node { tags } } } }'
    assert data(await desk.q(query))["tickets"]["edges"] == [{"node": {"tags": []}}]


async def test_ticket_changes_stream_with_their_nodes(desk: Desk) -> None:
    caller = Caller(desk.api.runtime.services, desk.tenant.platform_id)
    query = """subscription($after: String) { changes(after: $after, objects: [TICKET, TICKET_COMMENT]) {
      op object remoteId changedFields node { __typename ... on Ticket { status tags }
        ... on TicketComment { isPublic ticket { subject } } } } }"""
    stream = await public_schema.subscribe(
        query, variable_values={"after": to_global_id("Change", 0)}, context_value=caller
    )
    seen = []
    async for result in stream:  # type: ignore[union-attr]
        assert not result.errors, result.errors
        seen.append(result.data["changes"])  # type: ignore[index]
        if len(seen) == len(TICKETS) + len(COMMENTS) + 2:
            break
    await stream.aclose()  # type: ignore[union-attr]
    assert {c["object"] for c in seen} == {"Ticket", "TicketComment"}
    assert all(c["op"] == "CREATED" for c in seen)
    t1 = next(c for c in seen if c["remoteId"] == "t1" and c["node"]["tags"] == ["vip", "billing"])
    assert t1["node"] == {"__typename": "Ticket", "status": "OPEN", "tags": ["vip", "billing"]}
    assert "tags" in t1["changedFields"] and "requester" in t1["changedFields"]
    m3 = next(c for c in seen if c["remoteId"] == "m3")
    assert m3["node"] == {"__typename": "TicketComment", "isPublic": False, "ticket": {"subject": "Ticket 1"}}


def _write_schema() -> XkitSchema:
    """Ticket writes as every writable model gets them (whichever connector lands first writes tickets)."""
    mutations = {**_mutations("Ticket"), **_mutations("TicketComment")}
    mutation = strawberry.type(type("TicketWrites", (), mutations))
    return XkitSchema(query=ListQuery, mutation=mutation, types=list(OBJECT_TYPES.values()), scalar_overrides=SCALARS)


def test_ticket_write_inputs_take_the_enums_tags_and_relations() -> None:
    schema = _write_schema()
    mutations = schema._schema.mutation_type.fields  # type: ignore[union-attr]
    assert {"createTicket", "updateTicket", "deleteTicket"} <= set(mutations)
    assert {"createTicketComment", "updateTicketComment", "deleteTicketComment"} <= set(mutations)
    assert str(mutations["createTicket"].args["input"].type) == "TicketInput!"
    assert str(mutations["createTicketComment"].args["input"].type) == "TicketCommentInput!"
    sdl = schema.as_str()
    ticket_input = sdl[sdl.index("input TicketInput {") :].split("}", 1)[0]
    for line in (
        "status: TicketStatus",
        "priority: TicketPriority",
        "tags: [String!]",
        "requesterRemoteId: String",
        "assigneeRemoteId: String",
        "companyRemoteId: String",
        "dueAt: DateTime",
    ):
        assert line in ticket_input, line
    assert "comments" not in ticket_input  # found from the comments' side, never written on a ticket
    comment_input = sdl[sdl.index("input TicketCommentInput {") :].split("}", 1)[0]
    for line in (
        "isPublic: Boolean",
        "ticketRemoteId: String",
        "authorUserRemoteId: String",
        "authorContactRemoteId: String",
    ):
        assert line in comment_input, line


@pytest.mark.parametrize(
    ("document", "variables", "field", "allowed"),
    [
        (
            'mutation { createTicket(connectionId: "x", input: {status: REOPENED}) { replayed } }',
            {},
            "input.status",
            ["NEW", "OPEN", "PENDING", "ON_HOLD", "SOLVED", "CLOSED"],
        ),
        (
            'mutation { updateTicket(id: "x", input: {subject: "s", priority: "HIGH"}) { replayed } }',
            {},
            "input.priority",
            ["LOW", "NORMAL", "HIGH", "URGENT"],
        ),
        (
            'mutation($i: TicketInput!) { createTicket(connectionId: "x", input: $i) { replayed } }',
            {"i": {"priority": "critical"}},
            "$i.priority",
            ["LOW", "NORMAL", "HIGH", "URGENT"],
        ),
        (
            'mutation($s: TicketStatus) { updateTicket(id: "x", input: {status: $s}) { replayed } }',
            {"s": "open"},
            "$s",
            ["NEW", "OPEN", "PENDING", "ON_HOLD", "SOLVED", "CLOSED"],
        ),
    ],
    ids=["literal-status", "string-for-priority", "variable-input", "variable-enum"],
)
def test_an_unknown_status_or_priority_in_a_write_is_refused(
    document: str, variables: dict[str, Any], field: str, allowed: list[str]
) -> None:
    result = _write_schema().execute_sync(document, variable_values=variables)
    assert result.data is None  # refused before anything ran
    (error,) = result.errors or []
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": field, "allowedValues": allowed}
    assert error.message.startswith(f"{field}: ") and ", ".join(allowed) in error.message


def test_ticket_models_are_common_models() -> None:
    assert COMMON_MODELS["Ticket"] is TICKET and COMMON_MODELS["TicketComment"] is TICKET_COMMENT
    assert TICKET.list_name == "tickets" and TICKET_COMMENT.list_name == "ticket_comments"


async def test_ticket_comment_changes_go_out_as_webhooks(desk: Desk) -> None:
    hooks = Receiver()
    async with serve(hooks.app(), lifespan="off") as url:
        await create_destination(
            desk.api, desk.tenant, f"{url}/hook", objects=["TICKET_COMMENT"], fromCursor=encode_cursor(0)
        )
        async with Outbound(desk.store, FAST, egress=sandbox_egress()) as out:
            await out.step()
    events = {e["remoteId"]: e for e in hooks.delivered()}
    assert set(events) == {*COMMENTS, "m9"}
    m3 = events["m3"]
    assert m3["object"] == "TicketComment" and m3["op"] == "CREATED"
    assert m3["data"] == {
        "body": "Escalated to billing",
        "htmlBody": "<p>Escalated to billing</p>",
        "isPublic": False,
        "ticketRemoteId": "t1",
        "authorUserRemoteId": "u2",
        "authorContactRemoteId": None,
    }
