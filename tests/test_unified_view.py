"""One end user with a HubSpot and a Salesforce connection sees both through one API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.credentials import Credentials
from connectors.kit.http import HttpKit
from connectors.kit.oauth import OAuthApp
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from sync.storage.store import Store
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.platforms import set_provider_app
from tests.support import Gateway, Tenant, connect_hubspot, data, gateway, new_tenant, run_everything_due

QUERY = """query($filter: ContactFilter, $after: String) { contacts(first: 100, filter: $filter, after: $after) {
    edges { node { isLead connection { provider } company { name } } } pageInfo { hasNextPage endCursor } } }"""


async def all_contacts(api: Gateway, key: str, **where: str) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = data(await api.graphql(QUERY, key, filter=where, after=after))["contacts"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


@pytest_asyncio.fixture
async def both(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> AsyncIterator[tuple[Gateway, Tenant]]:
    hubspot.faults.rate_limit_enabled = False
    salesforce = SalesforceSandbox(
        seed=3, size=SalesforceSize(contacts=40, leads=20, accounts=10, opportunities=15, users=3, tasks=5, notes=5)
    )
    tenant = await new_tenant(store)
    await connect_hubspot(store, tenant, hubspot, hubspot_url, external_user_id="customer-7")
    with serve_sandbox(salesforce) as (login_url, _instance_url):
        authorize = f"{login_url}/services/oauth2/authorize"
        app = OAuthApp(salesforce.client_id, salesforce.client_secret, authorize_url=authorize)
        await set_provider_app(store, tenant.platform_id, "salesforce", app)
        await create_connection(
            store,
            NewConnection(
                platform_id=tenant.platform_id,
                provider="salesforce",
                external_user_id="customer-7",
                credentials=Credentials.from_token_response(salesforce.mint_tokens()),
            ),
        )
        await run_everything_due(store, kit)
    async with gateway(store, kit, secret_key) as api:
        yield api, tenant


async def test_contacts_of_both_providers_in_one_list(both: tuple[Gateway, Tenant]) -> None:
    api, tenant = both
    everyone = data(await api.graphql(QUERY, tenant.api_key, filter={"externalUserId": "customer-7"}))
    providers = {e["node"]["connection"]["provider"] for e in everyone["contacts"]["edges"]}
    assert providers == {"hubspot", "salesforce"}
    leads = [e["node"] for e in everyone["contacts"]["edges"] if e["node"]["isLead"]]
    assert leads and all(lead["connection"]["provider"] == "salesforce" for lead in leads)
    assert any(
        e["node"]["company"]
        for e in everyone["contacts"]["edges"]
        if e["node"]["connection"]["provider"] == "salesforce"
    )

    only_salesforce = data(await api.graphql(QUERY, tenant.api_key, filter={"provider": "salesforce"}))
    assert {e["node"]["connection"]["provider"] for e in only_salesforce["contacts"]["edges"]} == {"salesforce"}


async def test_companies_and_deals_of_both_providers(both: tuple[Gateway, Tenant]) -> None:
    api, tenant = both
    query = """{ companies(first: 100) { edges { node { name connection { provider } } } }
                 deals(first: 100) { edges { node {
                     name amount { amount currency } company { name } connection { provider }
                 } } } }"""
    result = data(await api.graphql(query, tenant.api_key))
    assert {e["node"]["connection"]["provider"] for e in result["companies"]["edges"]} == {"hubspot", "salesforce"}
    assert {e["node"]["connection"]["provider"] for e in result["deals"]["edges"]} == {"hubspot", "salesforce"}
    # One Money shape from both; this Salesforce org has one currency, which its opportunities are in.
    amounts = {(e["node"]["connection"]["provider"], e["node"]["amount"]["currency"]) for e in result["deals"]["edges"]}
    assert {currency for provider, currency in amounts if provider == "salesforce"} == {"USD"}
    assert {currency for provider, currency in amounts if provider == "hubspot"} > {"USD"}
