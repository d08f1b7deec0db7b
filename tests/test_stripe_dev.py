"""What `xkit dev` gives a developer on Stripe, end to end: the demo end user connected with a test key (as
`gateway/dev.py` does it), the customers, invoices with their lines and subscriptions queryable with exact
Money; a subscription cancelled at Stripe reaching a `changes` subscriber once, by webhook, and not again
when the Events API is polled after; a `createCustomer` retried under one idempotencyKey making one customer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from gql import Client
from gql.graphql_request import GraphQLRequest

from connectors import sandbox_entries
from connectors.kit.http import HttpKit
from connectors.kit.models import Money
from connectors.stripe.sandbox.driver import StripeDriver
from gateway.dev import DemoConnection, ensure_demo
from resolvers.ids import parse_connection_id
from sync.storage.store import Store
from tests.support import Gateway, data, gateway, graphql_ws, latest_change_cursor, make_streams_due, run_everything_due

API_KEY = "xk_dev_stripe_done_when_0123456789abcdef"
DEMO_SIZE = 40
CUSTOMERS = """query($after: String) {
  customers(first: 100, after: $after) {
    edges { node { remoteId email currency balance { amount currency } connection { provider } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
INVOICES = """query($after: String) {
  invoices(first: 100, after: $after) {
    edges { node {
      remoteId status remoteStatus currency
      total { amount currency } amountDue { amount currency }
      lines { description quantity amount { amount currency } priceRemoteId }
      customer { remoteId }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
SUBSCRIPTIONS = """query($after: String) {
  billingSubscriptions(first: 100, after: $after) {
    edges { node {
      remoteId status remoteStatus cancelAtPeriodEnd
      items { priceRemoteId quantity unitAmount { amount currency } interval }
      customer { remoteId }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CHANGES = """subscription($after: String) {
  changes(after: $after, objects: [BILLING_SUBSCRIPTION]) {
    op remoteId
    node { ... on BillingSubscription { status remoteStatus canceledAt } }
  }
}"""
CREATE_CUSTOMER = """mutation($c: ID!, $input: CustomerInput!, $key: String) {
  createCustomer(connectionId: $c, input: $input, idempotencyKey: $key) { customer { remoteId } replayed }
}"""
CONNECTION = """{ connections(first: 10) { edges { node { id provider } } } }"""


@dataclass
class Dev:
    api: Gateway
    store: Store
    kit: HttpKit
    driver: StripeDriver
    connection: str

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return data(await self.api.graphql(query, API_KEY, **variables))

    async def every(self, query: str, name: str) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        after = None
        while True:
            page = (await self.graphql(query, after=after))[name]
            nodes += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return nodes
            after = page["pageInfo"]["endCursor"]


@pytest_asyncio.fixture
async def dev(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Dev]:
    driver = sandbox_entries()["stripe"].dev(DEMO_SIZE)
    assert isinstance(driver, StripeDriver)
    with driver.serve() as endpoints:
        records = sum(len(driver.expected_ids(stream)) for stream in ("customers", "invoices", "subscriptions"))
        demo = DemoConnection("stripe", endpoints.app, driver.dev_credentials(), endpoints.base_url, records)
        await ensure_demo(store, API_KEY, [demo], redirect_uri_limit=10)
        await run_everything_due(store, kit)
        async with gateway(store, kit, secret_key) as api:
            driver.push_changes_to(api.url)
            edges = data(await api.graphql(CONNECTION, API_KEY))["connections"]["edges"]
            connection = next(edge["node"]["id"] for edge in edges if edge["node"]["provider"] == "stripe")
            yield Dev(api, store, kit, driver, connection)


def _money(minor: int, currency: str) -> dict[str, str]:
    return Money.from_minor(minor, currency).to_common()


async def test_the_demo_end_users_billing_is_queryable_with_exact_money(dev: Dev) -> None:
    account = dev.driver.account
    customers = {c["remoteId"]: c for c in await dev.every(CUSTOMERS, "customers")}
    assert set(customers) == dev.driver.expected_ids("customers")
    for stripe_customer in account.collections["customers"].live():
        shown = customers[stripe_customer["id"]]
        assert shown["connection"]["provider"] == "stripe" and shown["email"] == stripe_customer["email"]
        if stripe_customer.get("currency"):
            assert shown["balance"] == _money(stripe_customer["balance"], stripe_customer["currency"])

    invoices = {i["remoteId"]: i for i in await dev.every(INVOICES, "invoices")}
    assert set(invoices) == dev.driver.expected_ids("invoices")
    currencies = set()
    for stripe_invoice in account.collections["invoices"].live():
        shown = invoices[stripe_invoice["id"]]
        currency = stripe_invoice["currency"]
        currencies.add(currency.upper())
        assert shown["currency"] == currency.upper() and shown["remoteStatus"] == stripe_invoice["status"]
        assert shown["status"] == stripe_invoice["status"].upper()
        assert shown["total"] == _money(stripe_invoice["total"], currency)
        assert shown["amountDue"] == _money(stripe_invoice["amount_due"], currency)
        assert shown["customer"]["remoteId"] == stripe_invoice["customer"]
        lines = stripe_invoice["lines"]["data"]
        assert [line["amount"] for line in shown["lines"]] == [_money(line["amount"], currency) for line in lines]
    # The demo holds zero-decimal money too: a JPY total reads without decimals, exactly.
    assert "JPY" in currencies
    yen = next(i for i in invoices.values() if i["currency"] == "JPY" and i["total"]["amount"] != "0")
    assert "." not in yen["total"]["amount"]

    subscriptions = {s["remoteId"]: s for s in await dev.every(SUBSCRIPTIONS, "billingSubscriptions")}
    assert set(subscriptions) == dev.driver.expected_ids("subscriptions")
    for stripe_subscription in account.collections["subscriptions"].live():
        shown = subscriptions[stripe_subscription["id"]]
        items = stripe_subscription["items"]["data"]
        assert [item["unitAmount"] for item in shown["items"]] == [
            _money(item["price"]["unit_amount"], item["price"]["currency"]) for item in items
        ]


async def test_a_subscription_cancelled_at_stripe_reaches_a_subscriber_once(dev: Dev) -> None:
    account = dev.driver.account
    active = next(s for s in account.collections["subscriptions"].live() if s["status"] == "active")
    after = await latest_change_cursor(dev.store)
    transport = graphql_ws(dev.api.url, API_KEY)
    got: list[dict[str, Any]] = []
    async with Client(transport=transport) as session:
        first = asyncio.Event()

        async def listen() -> None:
            async for result in session.subscribe(GraphQLRequest(CHANGES, variable_values={"after": after})):
                got.append(result["changes"])
                first.set()

        listening = asyncio.create_task(listen())
        account.cancel_subscription(active["id"])  # in the Stripe dashboard, say: a signed webhook follows
        await asyncio.wait_for(first.wait(), 15)
        # The Events API then lists the same cancellation: polling it must not deliver it again.
        await make_streams_due(dev.store, parse_connection_id(dev.connection))
        await run_everything_due(dev.store, dev.kit)
        await asyncio.sleep(1.0)
        listening.cancel()
    mine = [change for change in got if change["remoteId"] == active["id"]]
    assert len(mine) == 1, mine
    assert mine[0]["op"] == "UPDATED"
    assert (mine[0]["node"]["status"], mine[0]["node"]["remoteStatus"]) == ("CANCELED", "canceled")
    assert mine[0]["node"]["canceledAt"] is not None


async def test_a_retried_create_customer_makes_one_stripe_customer(dev: Dev) -> None:
    before = len(list(dev.driver.account.collections["customers"].live()))
    given = {"email": "grace@navy.example", "name": "Grace Hopper", "metadata": {"plan": "pro"}}
    first = (await dev.graphql(CREATE_CUSTOMER, c=dev.connection, input=given, key="signup-grace"))["createCustomer"]
    again = (await dev.graphql(CREATE_CUSTOMER, c=dev.connection, input=given, key="signup-grace"))["createCustomer"]
    assert again == {**first, "replayed": True} and first["replayed"] is False
    created = [c for c in dev.driver.account.collections["customers"].live() if c["email"] == "grace@navy.example"]
    assert [c["id"] for c in created] == [first["customer"]["remoteId"]]
    assert len(list(dev.driver.account.collections["customers"].live())) == before + 1
