"""The smaller lists are Relay connections too (a linked account's runs and credential audit, webhook
destinations and their delivery log): both directions, the same records in mirror order, ties broken by
id; the plain lists they replace still answer, marked deprecated; runs and destinations are Nodes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from resolvers.ids import to_global_id
from sync.storage.store import Store
from sync.storage.tables import credential_reads, sync_runs, webhook_deliveries
from sync.tenancy.connections import NewConnection, create_connection
from sync.webhooks import outbound
from sync.webhooks.outbound import NewDestination
from tests.support import Gateway, Tenant, data, error_codes, gateway, new_tenant

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Lists:
    api: Gateway
    tenant: Tenant
    account: str  # the linked account's global id
    destination: str  # the webhook destination with deliveries
    run_ids: list[int]

    async def q(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.api.graphql(query, self.tenant.api_key, **variables)


async def _seed(store: Store, tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID, list[int]]:
    connection_id = await create_connection(
        store, NewConnection(tenant.platform_id, "hubspot", "user-1", Credentials(access_token="x"))
    )
    destinations = [
        await outbound.create_destination(
            store, NewDestination(tenant.platform_id, f"https://hooks.example.com/{n}", "s" * 20, cursor=0)
        )
        for n in range(5)
    ]
    # Pairs of rows share a time, so paging must break ties by id.
    async with store.engine.begin() as conn:
        run_ids = []
        for n in range(11):
            result = await conn.execute(
                sync_runs.insert().values(
                    platform_id=tenant.platform_id,
                    connection_id=connection_id,
                    stream="contacts",
                    phase="backfill",
                    status="succeeded",
                    started_at=START + timedelta(minutes=n // 2),
                    pages=n,
                    records=0,
                    changed=0,
                )
            )
            run_ids.append(result.inserted_primary_key[0])
        await conn.execute(
            credential_reads.insert(),
            [
                {
                    "platform_id": tenant.platform_id,
                    "connection_id": connection_id,
                    "read_at": START + timedelta(n // 3),
                }
                for n in range(9)
            ],
        )
        await conn.execute(
            webhook_deliveries.insert(),
            [
                {
                    "destination_id": destinations[0].id,
                    "platform_id": tenant.platform_id,
                    "change_seq": n + 1,
                    "record_key": f"r{n}",
                    "event_id": f"event-{n}",
                    "status": "delivered" if n % 3 else "failed",
                    "attempts": 1,
                    "created_at": START,
                }
                for n in range(12)
            ],
        )
    return connection_id, destinations[0].id, run_ids


@pytest_asyncio.fixture
async def lists(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Lists]:
    tenant = await new_tenant(store)
    connection_id, destination_id, run_ids = await _seed(store, tenant)
    async with gateway(store, kit, secret_key) as api:
        yield Lists(
            api,
            tenant,
            to_global_id("Connection", connection_id),
            to_global_id("WebhookDestination", destination_id),
            run_ids,
        )


PAGE = "edges { cursor node { KEY } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
ARGS = "first: $first, after: $after, last: $last, before: $before"
VARS = "$first: Int, $after: String, $last: Int, $before: String"

RUNS = f"""query($id: ID!, {VARS}) {{
  connection(id: $id) {{ runs({ARGS}) {{ {PAGE.replace("KEY", "id pages")} }} }} }}"""
READS = f"""query($id: ID!, {VARS}) {{
  connection(id: $id) {{ credentialAudit({ARGS}) {{ {PAGE.replace("KEY", "readAt")} }} }} }}"""
WEBHOOKS = f"""query({VARS}) {{ webhooks({ARGS}) {{ {PAGE.replace("KEY", "id url")} }} }}"""
DELIVERIES = f"""query($id: ID!, $status: String, {VARS}) {{
  node(id: $id) {{ ... on WebhookDestination {{ deliveryLog({ARGS}, status: $status) {{
    {PAGE.replace("KEY", "eventId status")} }} }} }} }}"""


def _runs(body: dict[str, Any]) -> dict[str, Any]:
    return data(body)["connection"]["runs"]  # type: ignore[no-any-return]


def _reads(body: dict[str, Any]) -> dict[str, Any]:
    return data(body)["connection"]["credentialAudit"]  # type: ignore[no-any-return]


def _webhooks(body: dict[str, Any]) -> dict[str, Any]:
    return data(body)["webhooks"]  # type: ignore[no-any-return]


def _deliveries(body: dict[str, Any]) -> dict[str, Any]:
    return data(body)["node"]["deliveryLog"]  # type: ignore[no-any-return]


Pick = Callable[[dict[str, Any]], dict[str, Any]]


async def _read_all(lists: Lists, query: str, pick: Pick, *, backward: bool, size: int, **given: Any) -> list[str]:
    """Every edge's cursor, page after page, in list order whichever way the pages were read."""
    cursors: list[str] = []
    cursor = None
    while True:
        if backward:
            page = pick(await lists.q(query, last=size, before=cursor, **given))
            cursors = [edge["cursor"] for edge in page["edges"]] + cursors
            more, cursor = page["pageInfo"]["hasPreviousPage"], page["pageInfo"]["startCursor"]
            assert page["pageInfo"]["hasNextPage"] is (cursors[len(page["edges"]) :] != [])
        else:
            page = pick(await lists.q(query, first=size, after=cursor, **given))
            assert page["pageInfo"]["hasPreviousPage"] is (cursors != [])
            cursors += [edge["cursor"] for edge in page["edges"]]
            more, cursor = page["pageInfo"]["hasNextPage"], page["pageInfo"]["endCursor"]
        if not more:
            return cursors


@pytest.mark.parametrize(
    ("query", "pick", "count", "given"),
    [
        (RUNS, _runs, 11, "account"),
        (READS, _reads, 9, "account"),
        (WEBHOOKS, _webhooks, 5, None),
        (DELIVERIES, _deliveries, 12, "destination"),
    ],
    ids=["runs", "credentialAudit", "webhooks", "deliveryLog"],
)
async def test_each_list_pages_both_ways_through_the_same_records(
    lists: Lists, query: str, pick: Pick, count: int, given: str | None
) -> None:
    variables = {"id": getattr(lists, given)} if given else {}
    forward = await _read_all(lists, query, pick, backward=False, size=2, **variables)
    backward = await _read_all(lists, query, pick, backward=True, size=3, **variables)
    assert len(forward) == len(set(forward)) == count
    assert backward == forward
    empty = pick(await lists.q(query, first=0, **variables))
    assert empty["edges"] == [] and empty["pageInfo"]["hasNextPage"] is True
    body = await lists.q(query, first=1, last=1, **variables)
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_orders_newest_first_and_oldest_first(lists: Lists) -> None:
    runs = _runs(await lists.q(RUNS, id=lists.account, first=20))
    assert [edge["node"]["pages"] for edge in runs["edges"]] == list(range(10, -1, -1))
    webhooks = _webhooks(await lists.q(WEBHOOKS, first=20))
    assert [edge["node"]["url"][-1] for edge in webhooks["edges"]] == list("01234")
    failed = _deliveries(await lists.q(DELIVERIES, id=lists.destination, first=20, status="failed"))
    assert [edge["node"]["eventId"] for edge in failed["edges"]] == ["event-9", "event-6", "event-3", "event-0"]
    body = await lists.q(DELIVERIES, id=lists.destination, first=20, status="lost")
    assert error_codes(body) == ["BAD_USER_INPUT"]


DEPRECATED = """query($id: ID!) {
  connection(id: $id) { syncRuns(first: 3) { id } credentialReads(first: 3) { readAt } }
  webhookDestinations { id deliveries(first: 3) { eventId } }
}"""

DEPRECATIONS = """{
  __schema { types { name fields(includeDeprecated: true) { name isDeprecated deprecationReason } } }
}"""


async def test_the_plain_lists_still_answer_and_are_marked_deprecated(lists: Lists) -> None:
    found = data(await lists.q(DEPRECATED, id=lists.account))
    assert len(found["connection"]["syncRuns"]) == len(found["connection"]["credentialReads"]) == 3
    assert len(found["webhookDestinations"]) == 5
    types = data(await lists.q(DEPRECATIONS))["__schema"]["types"]
    deprecated = {
        (t["name"], f["name"]): f["deprecationReason"] for t in types for f in t["fields"] or [] if f["isDeprecated"]
    }
    assert deprecated == {
        ("LinkedAccount", "syncRuns"): "Use runs, a connection that pages both ways.",
        ("LinkedAccount", "credentialReads"): "Use credentialAudit, a connection that pages both ways.",
        ("WebhookDestination", "deliveries"): "Use deliveryLog, a connection that pages both ways.",
        ("Query", "webhookDestinations"): "Use webhooks, a connection that pages both ways.",
    }


NODE = (
    """query($id: ID!) { node(id: $id) { __typename id ... on SyncRun { pages } ... on WebhookDestination { url } } }"""
)


async def test_runs_and_destinations_are_nodes_of_their_platform_only(lists: Lists, store: Store) -> None:
    run = to_global_id("SyncRun", lists.run_ids[3])
    assert data(await lists.q(NODE, id=run))["node"] == {"__typename": "SyncRun", "id": run, "pages": 3}
    destination = data(await lists.q(NODE, id=lists.destination))["node"]
    assert destination == {"__typename": "WebhookDestination", "id": lists.destination, "url": destination["url"]}
    intruder = await new_tenant(store, "intruder")
    for global_id in (run, lists.destination, lists.account):
        assert data(await lists.api.graphql(NODE, intruder.api_key, id=global_id)) == {"node": None}
    body = await lists.api.graphql(RUNS, intruder.api_key, id=lists.account, first=5)
    assert error_codes(body) == ["NOT_FOUND"]
