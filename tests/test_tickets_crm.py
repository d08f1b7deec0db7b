"""HubSpot tickets and Salesforce cases as the common Ticket (and Salesforce case comments as TicketComment):
one query over an end user lists the tickets of every provider they connected, related records resolved."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx2
import orjson
import pytest
import pytest_asyncio

from connectors import sandbox_entries
from connectors.hubspot.pipelines import ticket_status
from connectors.hubspot.sandbox import HubSpotSandbox, SandboxSize, create_app
from connectors.hubspot.sandbox.crm import CrmChange
from connectors.hubspot.sandbox.driver import HubSpotDriver
from connectors.hubspot.sandbox.webhooks import WebhookConfig, build_event
from connectors.hubspot.webhooks import HubSpotEvents
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from connectors.salesforce.sandbox.driver import SalesforceDriver
from sync.storage.store import Store
from tests.support import (
    Connected,
    Gateway,
    Tenant,
    connect_sandbox,
    data,
    error_codes,
    gateway,
    make_streams_due,
    new_tenant,
    run_everything_due,
)

END_USER = "acme-support"
TICKETS = """
query($filter: TicketFilter) {
  tickets(first: 100, filter: $filter) {
    edges { node {
      remoteId status remoteStatus priority remotePriority tags subject channel solvedAt
      connection { provider }
      requester { remoteId email }
      assignee { remoteId email }
      company { remoteId name }
      comments { remoteId body isPublic authorUser { remoteId } ticket { remoteId } }
    } }
  }
}
"""


@dataclass
class Support:
    """One end user with a HubSpot portal and a Salesforce org connected, both backfilled."""

    api: Gateway
    tenant: Tenant
    hubspot: HubSpotDriver
    salesforce: SalesforceDriver
    connections: dict[str, Connected]
    store: Store
    kit: HttpKit

    async def sync_again(self) -> None:
        for connected in self.connections.values():
            await make_streams_due(self.store, connected.connection_id)
        await run_everything_due(self.store, self.kit)

    async def tickets(self, **filter: Any) -> list[dict[str, Any]]:
        body = await self.api.graphql(TICKETS, self.tenant.api_key, filter={"externalUserId": END_USER, **filter})
        return [edge["node"] for edge in data(body)["tickets"]["edges"]]

    async def update_ticket(self, provider: str, remote_id: str, input: dict[str, Any]) -> dict[str, Any]:
        return await self.connections[provider].graphql(
            """mutation($connectionId: ID!, $remoteId: String!, $input: TicketInput) {
                 updateTicket(connectionId: $connectionId, remoteId: $remoteId, input: $input) {
                   ticket { remoteId status remoteStatus priority remotePriority solvedAt }
                 }
               }""",
            connectionId=self.connections[provider].connection,
            remoteId=remote_id,
            input=input,
        )


@pytest_asyncio.fixture
async def support(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Support]:
    entries = sandbox_entries()
    drivers = {name: entries[name].writeback() for name in ("hubspot", "salesforce")}  # type: ignore[misc]
    with ExitStack() as stack:
        tenant = await new_tenant(store)
        ids = {}
        for name, driver in drivers.items():
            endpoints = stack.enter_context(driver.serve())
            ids[name] = await connect_sandbox(store, tenant, driver, endpoints, external_user_id=END_USER)
        await run_everything_due(store, kit)
        async with gateway(store, kit, secret_key) as api:
            connections = {name: Connected(api, tenant, connection_id) for name, connection_id in ids.items()}
            hubspot, salesforce = drivers["hubspot"], drivers["salesforce"]
            assert isinstance(hubspot, HubSpotDriver) and isinstance(salesforce, SalesforceDriver)
            yield Support(api, tenant, hubspot, salesforce, connections, store, kit)


# ---- one list across providers ---------------------------------------------------------------------


async def test_one_query_lists_an_end_users_tickets_from_hubspot_and_salesforce(support: Support) -> None:
    tickets = await support.tickets()
    by_provider: dict[str, dict[str, dict[str, Any]]] = {}
    for ticket in tickets:
        by_provider.setdefault(ticket["connection"]["provider"], {})[ticket["remoteId"]] = ticket
    assert set(by_provider["hubspot"]) == support.hubspot.sandbox.all_ids("tickets")
    assert set(by_provider["salesforce"]) == support.salesforce.sandbox.all_ids("Case")

    hubspot = support.hubspot.sandbox
    live_contacts, live_companies = hubspot.all_ids("contacts"), hubspot.all_ids("companies")
    owners = {owner.id: owner.email for owner in hubspot.crm.owners}
    for remote_id, ticket in by_provider["hubspot"].items():
        properties = hubspot.get("tickets", remote_id)["properties"]
        assert ticket["remoteStatus"] == properties["hs_pipeline_stage"]
        remote_priority = properties["hs_ticket_priority"]
        assert ticket["remotePriority"] == remote_priority
        assert ticket["priority"] == ("NORMAL" if remote_priority == "MEDIUM" else remote_priority)
        # HubSpot tickets have no tags, and their conversations are engagements, not comments.
        assert ticket["tags"] == [] and ticket["comments"] == []
        assert (ticket["assignee"] or {}).get("email") == owners.get(properties.get("hubspot_owner_id") or "")
        contacts = _associated(hubspot, remote_id, "contacts") & live_contacts
        companies = _associated(hubspot, remote_id, "companies") & live_companies
        assert (ticket["requester"] or {}).get("remoteId") == (min(contacts) if contacts else None)
        assert (ticket["company"] or {}).get("remoteId") == (min(companies) if companies else None)
    resolved = [t for t in by_provider["hubspot"].values() if t["requester"] and t["company"] and t["assignee"]]
    assert resolved, "no HubSpot ticket came back with its requester, company and assignee"

    org = support.salesforce.sandbox
    comments_seen = 0
    for remote_id, ticket in by_provider["salesforce"].items():
        case = org.get("Case", remote_id)
        assert ticket["remoteStatus"] == case["Status"] and ticket["remotePriority"] == case["Priority"]
        assert (
            ticket["status"]
            == {"New": "NEW", "Working": "OPEN", "Escalated": "OPEN", "Closed": "CLOSED"}[case["Status"]]
        )
        assert ticket["priority"] == {"Low": "LOW", "Medium": "NORMAL", "High": "HIGH"}[case["Priority"]]
        assert ticket["tags"] == []
        if case["ContactId"] in org.all_ids("Contact"):
            assert ticket["requester"]["remoteId"] == case["ContactId"]
        if case["AccountId"] in org.all_ids("Account"):
            assert ticket["company"]["remoteId"] == case["AccountId"]
        assert ticket["assignee"]["remoteId"] == case["OwnerId"]
        for comment in ticket["comments"]:
            stored = org.get("CaseComment", comment["remoteId"])
            assert comment["ticket"]["remoteId"] == remote_id == stored["ParentId"]
            assert comment["isPublic"] == stored["IsPublished"] and comment["body"] == stored["CommentBody"]
            assert comment["authorUser"]["remoteId"] == stored["CreatedById"]
            comments_seen += 1
    assert comments_seen == len(
        [c for c in org.all_ids("CaseComment") if org.get("CaseComment", c)["ParentId"] in by_provider["salesforce"]]
    )
    assert comments_seen > 0


async def test_the_common_filters_reach_every_providers_tickets(support: Support) -> None:
    closed = await support.tickets(status="CLOSED")
    assert {t["status"] for t in closed} == {"CLOSED"}
    everything = await support.tickets()
    assert len(closed) == len([t for t in everything if t["status"] == "CLOSED"])
    on_hubspot = await support.tickets(provider="hubspot")
    assert on_hubspot and {t["connection"]["provider"] for t in on_hubspot} == {"hubspot"}


def _associated(hubspot: HubSpotSandbox, ticket: str, kind: str) -> set[str]:
    return {str(to_id) for to_id in hubspot.crm.graph.targets("tickets", int(ticket), kind)}


async def test_changes_at_either_provider_reach_the_tickets_on_the_next_sync(support: Support) -> None:
    hubspot, org = support.hubspot.sandbox, support.salesforce.sandbox
    hubspot_ticket, hubspot_gone = sorted(hubspot.all_ids("tickets"), key=int)[:2]
    hubspot.update("tickets", hubspot_ticket, {"hs_pipeline_stage": "2", "hs_ticket_priority": "URGENT"})
    hubspot.archive("tickets", hubspot_gone)
    case, case_gone = sorted(org.all_ids("Case"))[:2]
    org.update("Case", case, {"Status": "Escalated", "Priority": "Low"})
    org.delete("Case", case_gone)
    comment = org.create("CaseComment", {"ParentId": case, "CommentBody": "Escalated to engineering."})

    await support.sync_again()
    tickets = {t["remoteId"]: t for t in await support.tickets()}
    assert hubspot_gone not in tickets and case_gone not in tickets
    assert (tickets[hubspot_ticket]["status"], tickets[hubspot_ticket]["priority"]) == ("PENDING", "URGENT")
    assert (tickets[case]["status"], tickets[case]["remoteStatus"], tickets[case]["priority"]) == (
        "OPEN",
        "Escalated",
        "LOW",
    )
    assert comment in [c["remoteId"] for c in tickets[case]["comments"]]


# ---- statuses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "state", "first", "expected"),
    [
        ("New", "OPEN", True, "NEW"),
        ("Waiting on contact", "OPEN", False, "PENDING"),
        ("Waiting on us", "OPEN", False, "OPEN"),
        ("Parked: on hold", "OPEN", False, "ON_HOLD"),
        ("Closed", "CLOSED", False, "CLOSED"),
        ("Resolved", "CLOSED", False, "CLOSED"),
        # A pipeline of one closed stage: closed wins over first.
        ("Done", "CLOSED", True, "CLOSED"),
        ("Triage", None, False, "OPEN"),
    ],
    ids=["first", "waiting-on-contact", "waiting-on-us", "on-hold", "closed", "resolved", "only-stage", "no-state"],
)
def test_a_hubspot_ticket_stage_stands_for_a_status(label: str, state: str | None, first: bool, expected: str) -> None:
    assert ticket_status(label, state, first_stage=first) == expected


async def test_hubspot_statuses_come_from_the_portals_ticket_pipelines(support: Support) -> None:
    expected = {"1": "NEW", "2": "PENDING", "3": "OPEN", "4": "CLOSED"}
    expected |= {"190000101": "NEW", "190000102": "OPEN", "190000103": "CLOSED"}
    tickets = await support.tickets(provider="hubspot")
    assert {t["remoteStatus"]: t["status"] for t in tickets} == {
        stage: status for stage, status in expected.items() if stage in {t["remoteStatus"] for t in tickets}
    }


# ---- writes ------------------------------------------------------------------------------------------


async def test_a_hubspot_status_is_written_as_the_one_stage_that_has_it(support: Support) -> None:
    remote_id = min(support.hubspot.sandbox.all_ids("tickets"), key=int)
    body = await support.update_ticket("hubspot", remote_id, {"status": "PENDING", "priority": "NORMAL"})
    ticket = data(body)["updateTicket"]["ticket"]
    assert (ticket["status"], ticket["remoteStatus"]) == ("PENDING", "2")
    assert (ticket["priority"], ticket["remotePriority"]) == ("NORMAL", "MEDIUM")
    assert support.hubspot.sandbox.get("tickets", remote_id)["properties"]["hs_pipeline_stage"] == "2"


async def test_a_hubspot_status_several_stages_have_is_refused_and_nothing_changes(support: Support) -> None:
    remote_id = min(support.hubspot.sandbox.all_ids("tickets"), key=int)
    before = support.hubspot.sandbox.get("tickets", remote_id)
    body = await support.update_ticket("hubspot", remote_id, {"status": "CLOSED", "subject": "Changed"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    error = body["errors"][0]
    assert error["extensions"]["field"] == "status"
    assert "4" in error["message"] and "190000103" in error["message"] and "remoteStatus" in error["message"]
    assert support.hubspot.sandbox.get("tickets", remote_id) == before


async def test_closing_a_hubspot_ticket_stamps_when_it_was_solved(support: Support) -> None:
    remote_id = min(support.hubspot.sandbox.all_ids("tickets"), key=int)
    closed = data(await support.update_ticket("hubspot", remote_id, {"remoteStatus": "4"}))["updateTicket"]["ticket"]
    assert closed["status"] == "CLOSED" and closed["solvedAt"] is not None
    reopened = data(await support.update_ticket("hubspot", remote_id, {"remoteStatus": "3"}))["updateTicket"]
    assert reopened["ticket"]["status"] == "OPEN" and reopened["ticket"]["solvedAt"] is None


async def test_a_status_a_salesforce_case_cannot_hold_is_refused_naming_the_allowed_ones(support: Support) -> None:
    remote_id = min(support.salesforce.sandbox.all_ids("Case"))
    before = support.salesforce.sandbox.get("Case", remote_id)
    body = await support.update_ticket("salesforce", remote_id, {"status": "ON_HOLD"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    error = body["errors"][0]
    assert error["extensions"]["field"] == "status"
    assert "NEW, OPEN, CLOSED" in error["message"] and "remoteStatus" in error["message"]
    urgent = await support.update_ticket("salesforce", remote_id, {"priority": "URGENT"})
    assert error_codes(urgent) == ["BAD_USER_INPUT"] and "LOW, NORMAL, HIGH" in urgent["errors"][0]["message"]
    assert support.salesforce.sandbox.get("Case", remote_id) == before


async def test_closing_a_salesforce_case_stamps_when_it_was_solved(support: Support) -> None:
    open_case = next(
        remote_id
        for remote_id in sorted(support.salesforce.sandbox.all_ids("Case"))
        if support.salesforce.sandbox.get("Case", remote_id)["Status"] != "Closed"
    )
    closed = data(await support.update_ticket("salesforce", open_case, {"status": "CLOSED"}))["updateTicket"]
    assert closed["ticket"]["remoteStatus"] == "Closed" and closed["ticket"]["solvedAt"] is not None
    assert support.salesforce.sandbox.get("Case", open_case)["IsClosed"] is True
    # The org's own value, where the enum has none of its own.
    escalated = await support.update_ticket("salesforce", open_case, {"remoteStatus": "Escalated"})
    ticket = data(escalated)["updateTicket"]["ticket"]
    assert (ticket["status"], ticket["remoteStatus"], ticket["solvedAt"]) == ("OPEN", "Escalated", None)


# ---- HubSpot's sandbox and webhooks ------------------------------------------------------------------


@pytest.fixture
def portal() -> Iterator[tuple[HubSpotSandbox, httpx2.Client]]:
    sandbox = HubSpotSandbox(seed=3, size=SandboxSize(contacts=20, companies=5, deals=5, notes=5, tasks=5, tickets=8))
    sandbox.faults.rate_limit_enabled = False
    token = sandbox.mint_tokens()["access_token"]
    with serve_in_thread(create_app(sandbox)) as url, httpx2.Client(base_url=url) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        yield sandbox, api


def test_the_hubspot_sandbox_serves_ticket_pipelines_with_their_ticket_states(
    portal: tuple[HubSpotSandbox, httpx2.Client],
) -> None:
    _, api = portal
    pipelines = api.get("/crm/v3/pipelines/tickets").json()["results"]
    support = next(p for p in pipelines if p["id"] == "0")
    assert support["label"] == "Support Pipeline"
    assert [(s["id"], s["label"], s["metadata"]) for s in support["stages"]] == [
        ("1", "New", {"ticketState": "OPEN"}),
        ("2", "Waiting on contact", {"ticketState": "OPEN"}),
        ("3", "Waiting on us", {"ticketState": "OPEN"}),
        ("4", "Closed", {"ticketState": "CLOSED"}),
    ]
    assert api.get("/crm/v3/pipelines/tickets/0/stages/4").json()["metadata"] == {"ticketState": "CLOSED"}


def test_the_hubspot_sandbox_creates_tickets_as_hubspot_does(portal: tuple[HubSpotSandbox, httpx2.Client]) -> None:
    sandbox, api = portal
    contact = min(sandbox.all_ids("contacts"), key=int)
    missing = api.post("/crm/v3/objects/tickets", json={"properties": {"content": "No subject, no stage"}})
    assert missing.status_code == 400 and missing.json()["category"] == "VALIDATION_ERROR"
    assert set(missing.json()["context"]["properties"]) == {"subject", "hs_pipeline_stage"}
    bad_priority = api.post(
        "/crm/v3/objects/tickets",
        json={"properties": {"subject": "x", "hs_pipeline_stage": "1", "hs_ticket_priority": "NORMAL"}},
    )
    assert bad_priority.status_code == 400 and "LOW, MEDIUM, HIGH, URGENT" in bad_priority.text
    created = api.post(
        "/crm/v3/objects/tickets",
        json={
            "properties": {"subject": "Escalated one", "hs_pipeline_stage": "190000103"},
            "associations": [
                {"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}]}
            ],
        },
    )
    assert created.status_code == 201, created.text
    properties = created.json()["properties"]
    # The pipeline follows the stage, and a closed stage stamps closed_date.
    assert properties["hs_pipeline"] == "81234567" and properties["closed_date"]
    read = api.get(f"/crm/v3/objects/tickets/{created.json()['id']}", params={"associations": "contacts"}).json()
    assert [link["id"] for link in read["associations"]["contacts"]["results"]] == [contact]
    back = api.get(f"/crm/v3/objects/contacts/{contact}", params={"associations": "tickets"}).json()
    assert created.json()["id"] in [link["id"] for link in back["associations"]["tickets"]["results"]]


def test_ticket_webhook_events_send_the_connector_to_the_tickets_stream() -> None:
    config = WebhookConfig("http://127.0.0.1:9/hook", client_secret="s", app_id=1, portal_id=62515)
    change = CrmChange(
        "propertyChange", "tickets", 1500000001, 1, "API", property_name="hs_pipeline_stage", property_value="4"
    )
    event = build_event(change, 7, config)
    assert event is not None and event["subscriptionType"] == "ticket.propertyChange"
    delivery = HubSpotEvents().parse(orjson.dumps([event]))
    assert [(e.stream, e.remote_id, e.deleted) for e in delivery.events] == [("tickets", "1500000001", False)]
    gone = build_event(CrmChange("deletion", "tickets", 1500000001, 2, "API"), 8, config)
    assert [(e.stream, e.deleted) for e in HubSpotEvents().parse(orjson.dumps([gone])).events] == [("tickets", True)]
