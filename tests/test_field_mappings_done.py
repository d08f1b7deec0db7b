"""Issue 16's done-when, the way `xkit dev` sets things up (`gateway.dev.ensure_demo` and the sandbox drivers' dev
sizes): the demo end user's HubSpot and Salesforce connections, backfilled; `tier` defined on Contact and mapped to
HubSpot's custom property and Salesforce's `customer_tier__c`; after the re-derive (no provider request), the
customFields filter returns exactly the gold contacts of both, a `changes` subscriber (graphql-ws) has received
the re-derived values, and `updateContact(customFields: {tier: "silver"})` changes the right field at each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from gql import Client
from gql.graphql_request import GraphQLRequest

from connectors import sandbox_entries
from connectors.hubspot.sandbox.driver import HubSpotDriver
from connectors.kit.http import HttpKit
from connectors.salesforce.sandbox.driver import SalesforceDriver
from gateway.dev import DemoConnection, ensure_demo
from sync.storage.store import Store
from sync.worker.rederive import rederive_due
from tests.support import Gateway, data, gateway, graphql_ws, latest_change_cursor, run_everything_due

API_KEY = "xk_dev_field_mappings_done_when_0123456789"
DEMO_CONTACTS = 40
CONNECTIONS = """{ connections(first: 10) { edges { node { id provider } } } }"""
DEFINE = """mutation { defineCustomField(input: {model: CONTACT, key: "tier", type: STRING, label: "Tier"}) { key } }"""
MAP = """mutation($c: ID!, $source: String!) {
    setFieldMapping(connectionId: $c, model: CONTACT, field: "tier", source: $source) { source origin } }"""
GOLD = """query($after: String) {
  contacts(first: 100, after: $after, filter: {customFields: [{key: "tier", eq: "gold"}]}) {
    edges { node { remoteId customFields connection { provider } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CHANGES = """subscription($after: String) {
  changes(after: $after, objects: [CONTACT]) {
    op remoteId changedFields connection { provider }
    node { ... on Contact { customFields } }
  }
}"""
UPDATE = """mutation($c: ID!, $remoteId: String!) {
  updateContact(connectionId: $c, remoteId: $remoteId, input: {customFields: {tier: "silver"}}) {
    contact { customFields }
  }
}"""


@dataclass
class Dev:
    api: Gateway
    store: Store
    hubspot: HubSpotDriver
    salesforce: SalesforceDriver
    connections: dict[str, str]  # provider -> connection id

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return data(await self.api.graphql(query, API_KEY, **variables))

    def tiers(self) -> dict[tuple[str, str], str]:
        """Every live contact's tier at its provider, by (provider, remote id); contacts without one left out."""
        hubspot = self.hubspot.sandbox
        found = {
            ("hubspot", remote_id): hubspot.get("contacts", remote_id)["properties"].get("tier")
            for remote_id in hubspot.all_ids("contacts")
        }
        org = self.salesforce.sandbox
        found |= {
            ("salesforce", remote_id): org.get("Contact", remote_id).get("customer_tier__c")
            for remote_id in org.all_ids("Contact")
        }
        return {key: tier for key, tier in found.items() if tier}

    async def gold(self) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        after = None
        while True:
            page = (await self.graphql(GOLD, after=after))["contacts"]
            for edge in page["edges"]:
                assert edge["node"]["customFields"]["tier"] == "gold"
                found.add((edge["node"]["connection"]["provider"], edge["node"]["remoteId"]))
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]


@pytest_asyncio.fixture
async def dev(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Dev]:
    entries = sandbox_entries()
    hubspot, salesforce = entries["hubspot"].dev(DEMO_CONTACTS), entries["salesforce"].dev(DEMO_CONTACTS)
    assert isinstance(hubspot, HubSpotDriver) and isinstance(salesforce, SalesforceDriver)
    hubspot.sandbox.faults.rate_limit_enabled = False
    with ExitStack() as stack:
        demos = []
        for driver in (hubspot, salesforce):
            endpoints = stack.enter_context(driver.serve())
            demos.append(
                DemoConnection(driver.provider, endpoints.app, driver.dev_credentials(), endpoints.base_url, 0)
            )
        await ensure_demo(store, API_KEY, demos, redirect_uri_limit=10)
        await run_everything_due(store, kit)
        async with gateway(store, kit, secret_key) as api:
            edges = data(await api.graphql(CONNECTIONS, API_KEY))["connections"]["edges"]
            connections = {edge["node"]["provider"]: edge["node"]["id"] for edge in edges}
            yield Dev(api, store, hubspot, salesforce, connections)


async def test_tier_mapped_on_both_demo_connections_filters_streams_and_writes_back(dev: Dev) -> None:
    tiers = dev.tiers()
    gold = {key for key, tier in tiers.items() if tier == "gold"}
    assert {provider for provider, _ in gold} == {"hubspot", "salesforce"}  # the dev sandboxes seed gold in both

    after = await latest_change_cursor(dev.store)
    transport = graphql_ws(dev.api.url, API_KEY)
    received: list[dict[str, Any]] = []
    async with Client(transport=transport) as session:
        all_arrived = asyncio.Event()

        async def listen() -> None:
            async for result in session.subscribe(GraphQLRequest(CHANGES, variable_values={"after": after})):
                change = result["changes"]
                received.append(change)
                named = {(c["connection"]["provider"], c["remoteId"]) for c in received if tiered(c)}
                if named >= set(tiers):
                    all_arrived.set()

        listening = asyncio.create_task(listen())
        await dev.graphql(DEFINE)
        mapped = [
            (await dev.graphql(MAP, c=dev.connections["hubspot"], source="properties.tier"))["setFieldMapping"],
            (await dev.graphql(MAP, c=dev.connections["salesforce"], source="customer_tier__c"))["setFieldMapping"],
        ]
        assert [m["origin"] for m in mapped] == ["CONNECTION", "CONNECTION"]
        asked = sandbox_requests(dev)
        await rederive_due(dev.store)  # what `xkit dev`'s worker does when a mapping changes
        assert sandbox_requests(dev) == asked  # re-derived from the cache: neither provider was asked anything
        await asyncio.wait_for(all_arrived.wait(), 15)
        await asyncio.sleep(0.5)  # anything more would arrive now
        listening.cancel()

    # The re-derived values reached the subscriber, each contact once, naming customFields.tier.
    derived = [c for c in received if tiered(c)]
    by_contact = {(c["connection"]["provider"], c["remoteId"]): c for c in derived}
    assert len(by_contact) == len(derived)
    assert {key: c["node"]["customFields"]["tier"] for key, c in by_contact.items() if key in tiers} == tiers
    assert all(c["op"] == "UPDATED" for c in derived)

    # The filter returns exactly the gold contacts of both providers.
    assert await dev.gold() == gold

    # updateContact(customFields: {tier: "silver"}) writes HubSpot's property and Salesforce's __c field.
    hubspot_id = min(remote_id for provider, remote_id in gold if provider == "hubspot")
    salesforce_id = min(remote_id for provider, remote_id in gold if provider == "salesforce")
    for provider, remote_id in (("hubspot", hubspot_id), ("salesforce", salesforce_id)):
        written = (await dev.graphql(UPDATE, c=dev.connections[provider], remoteId=remote_id))["updateContact"]
        assert written["contact"]["customFields"]["tier"] == "silver"
    assert dev.hubspot.sandbox.get("contacts", hubspot_id)["properties"]["tier"] == "silver"
    assert dev.salesforce.sandbox.get("Contact", salesforce_id)["customer_tier__c"] == "silver"
    assert await dev.gold() == gold - {("hubspot", hubspot_id), ("salesforce", salesforce_id)}


def tiered(change: dict[str, Any]) -> bool:
    return "customFields.tier" in change["changedFields"]


def sandbox_requests(dev: Dev) -> int:
    return sum(sum(driver.sandbox.stats.snapshot()["requests"].values()) for driver in (dev.hubspot, dev.salesforce))
