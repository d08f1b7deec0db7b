"""Customers, invoices, payments and billing subscriptions, stored in the cache as a connector stores them and
read through the API with nothing written for them above connectors/: every filter (currency regardless of
case), exact Money at every depth (an invoice's lines, a subscription's items), relations one query per
level, Relay paging, node lookups and the change stream. Writes take Money and embedded inputs and refuse
an unknown or lower-case currency, an over-precise amount and metadata that breaks its limits, naming the
path to the value. Relation filters are read through an index on both databases."""

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
from connectors.kit.models import (
    BILLING_SUBSCRIPTION,
    COMMON_MODELS,
    CUSTOMER,
    INVOICE,
    PAYMENT,
    CommonModel,
    graphql_name,
)
from connectors.kit.records import RemoteRecord
from resolvers.context import Caller
from resolvers.ids import from_global_id, to_global_id
from resolvers.records import RecordQuery, StringMatch, _filter_shape, _page_statement
from schema import XkitSchema
from schema import schema as public_schema
from schema.objects import OBJECT_TYPES
from schema.query import ListQuery
from schema.scalars import SCALARS
from schema.writes import _mutations
from sync.cache.records import StreamTarget, upsert_records
from sync.storage.store import Store
from sync.storage.tables import connections, indexed_relations
from sync.tenancy.connections import NewConnection, create_connection
from tests.support import Gateway, Tenant, data, error_codes, gateway, new_tenant, statements_run

START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
PERIOD_END = datetime(2025, 7, 1, 0, 0, tzinfo=UTC)


def _money(amount: str, currency: str) -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def _valid(model: CommonModel, **common: Any) -> dict[str, Any]:
    values = {f.name: f.absent if f.absent is None else [] for f in model.fields}
    values |= {r.name: None for r in model.relations} | common
    model.validate(values)
    return values


CUSTOMERS = {
    "cus_1": _valid(
        CUSTOMER,
        email="ada@example.com",
        name="Ada Lovelace",
        currency="USD",
        balance=_money("-5.00", "USD"),
        delinquent=False,
        metadata={"plan": "pro"},
    ),
    "cus_2": _valid(CUSTOMER, email="kenji@example.jp", name="Kenji", currency="JPY", delinquent=True),
    "cus_3": _valid(CUSTOMER, email="fahad@example.kw", name="Fahad", currency="KWD", delinquent=False),
}
SUBSCRIPTIONS = {
    "sub_1": _valid(
        BILLING_SUBSCRIPTION,
        status="ACTIVE",
        remote_status="active",
        currency="USD",
        cancel_at_period_end=True,
        current_period_end=PERIOD_END,
        items=[
            {
                "price_remote_id": "price_1",
                "product_remote_id": "prod_1",
                "quantity": 2,
                "unit_amount": _money("9.99", "USD"),
                "interval": "month",
            }
        ],
        customer="cus_1",
    ),
    "sub_2": _valid(
        BILLING_SUBSCRIPTION,
        status="PAST_DUE",
        remote_status="past_due",
        currency="JPY",
        cancel_at_period_end=False,
        items=[{"price_remote_id": "price_2", "quantity": 1, "unit_amount": _money("1050", "JPY")}],
        customer="cus_2",
    ),
}
INVOICES = {
    "in_1": _valid(
        INVOICE,
        number="INV-0001",
        status="PAID",
        remote_status="paid",
        currency="USD",
        total=_money("19.98", "USD"),
        amount_paid=_money("19.98", "USD"),
        lines=[
            {"description": "Pro plan", "quantity": 1, "amount": _money("0.10", "USD"), "price_remote_id": "price_1"},
            {"description": "Seats", "quantity": 3, "amount": _money("0.20", "USD"), "product_remote_id": "prod_1"},
        ],
        customer="cus_1",
        subscription="sub_1",
    ),
    "in_2": _valid(
        INVOICE,
        number="INV-0002",
        status="OPEN",
        remote_status="open",
        currency="USD",
        # A 19-digit amount survives exactly (no float, no 64-bit integer on the way).
        total=_money("1234567890123456789.01", "USD"),
        customer="cus_1",
        subscription="sub_1",
    ),
    "in_3": _valid(
        INVOICE,
        number="INV-0003",
        status="OPEN",
        remote_status="open",
        currency="JPY",
        total=_money("1050", "JPY"),
        lines=[{"description": "Plan", "quantity": 1, "amount": _money("1050", "JPY")}],
        customer="cus_2",
        subscription="sub_2",
    ),
    "in_4": _valid(
        INVOICE,
        number="INV-0004",
        status="DRAFT",
        remote_status="draft",
        currency="KWD",
        total=_money("1.050", "KWD"),
        customer="cus_3",
    ),
    # A provider word the enum lacks: null status, the word kept.
    "in_5": _valid(INVOICE, number="INV-0005", status=None, remote_status="deleted_draft", customer="cus_2"),
}
PAYMENTS = {
    "pi_1": _valid(
        PAYMENT,
        amount=_money("19.98", "USD"),
        amount_received=_money("19.98", "USD"),
        currency="USD",
        status="SUCCEEDED",
        remote_status="succeeded",
        method="card",
        customer="cus_1",
        invoice="in_1",
    ),
    "pi_2": _valid(
        PAYMENT,
        amount=_money("1050", "JPY"),
        currency="JPY",
        status="REQUIRES_ACTION",
        remote_status="requires_action",
        method="card",
        customer="cus_2",
        invoice="in_3",
    ),
    "pi_3": _valid(
        PAYMENT,
        amount=_money("1.050", "KWD"),
        currency="KWD",
        status="FAILED",
        remote_status="requires_payment_method",
        method="sepa_debit",
        failure_message="Your card was declined.",
        customer="cus_3",
    ),
}
STREAMS = {
    "customers": ("Customer", CUSTOMERS),
    "subscriptions": ("BillingSubscription", SUBSCRIPTIONS),
    "invoices": ("Invoice", INVOICES),
    "payment_intents": ("Payment", PAYMENTS),
}


@dataclass
class Billing:
    api: Gateway
    tenant: Tenant
    store: Store
    connection: uuid.UUID  # end user "alice": the records above
    other: uuid.UUID  # end user "bob": an invoice with the same remote ids as the first's

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


@pytest_asyncio.fixture
async def billing(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Billing]:
    tenant = await new_tenant(store)
    first = await create_connection(
        store, NewConnection(tenant.platform_id, "hubspot", "alice", Credentials(access_token="x"))
    )
    other = await create_connection(
        store, NewConnection(tenant.platform_id, "salesforce", "bob", Credentials(access_token="y"))
    )
    for stream, (model, rows) in STREAMS.items():
        await _store(store, first, stream, model, rows)
    # Stored in lower case, as a connector that forgot to upper-case Stripe's "usd" would: still found.
    elsewhere = {**_valid(INVOICE, number="X-1", status="OPEN", customer="cus_1"), "currency": "usd"}
    await _store(store, other, "invoices", "Invoice", {"in_1": elsewhere})
    async with gateway(store, kit, secret_key) as api:
        yield Billing(api, tenant, store, first, other)


async def _ids(billing: Billing, list_name: str, filter_type: str, **filter: Any) -> set[str]:
    query = f"""query($filter: {filter_type}) {{ {list_name}(first: 100, filter: $filter) {{
      edges {{ node {{ remoteId connection {{ provider }} }} }} }} }}"""
    edges = data(await billing.q(query, filter=filter))[list_name]["edges"]
    return {e["node"]["remoteId"] + ("" if e["node"]["connection"]["provider"] == "hubspot" else "@bob") for e in edges}


async def test_every_payments_filter_selects_exactly_the_matching_records(billing: Billing) -> None:
    cases: list[tuple[str, str, dict[str, Any], set[str]]] = [
        ("customers", "CustomerFilter", {}, set(CUSTOMERS)),
        ("customers", "CustomerFilter", {"email": {"eq": "ada@example.com"}}, {"cus_1"}),
        ("customers", "CustomerFilter", {"email": {"contains": "EXAMPLE.JP"}}, {"cus_2"}),
        ("customers", "CustomerFilter", {"name": {"contains": "ken"}}, {"cus_2"}),
        ("customers", "CustomerFilter", {"delinquent": True}, {"cus_2"}),
        ("customers", "CustomerFilter", {"delinquent": False}, {"cus_1", "cus_3"}),
        ("customers", "CustomerFilter", {"currency": {"eq": "kwd"}}, {"cus_3"}),
        ("invoices", "InvoiceFilter", {"status": "OPEN"}, {"in_2", "in_3", "in_1@bob"}),
        ("invoices", "InvoiceFilter", {"status": "DRAFT"}, {"in_4"}),
        ("invoices", "InvoiceFilter", {"remoteStatus": {"eq": "deleted_draft"}}, {"in_5"}),
        ("invoices", "InvoiceFilter", {"customerRemoteId": "cus_1"}, {"in_1", "in_2", "in_1@bob"}),
        ("invoices", "InvoiceFilter", {"customerRemoteId": "cus_2", "status": "OPEN"}, {"in_3"}),
        ("invoices", "InvoiceFilter", {"subscriptionRemoteId": "sub_1"}, {"in_1", "in_2"}),
        ("invoices", "InvoiceFilter", {"number": {"eq": "INV-0004"}}, {"in_4"}),
        # Currencies match regardless of case, on either side: a record stored "usd" is found by "USD".
        ("invoices", "InvoiceFilter", {"currency": {"eq": "USD"}}, {"in_1", "in_2", "in_1@bob"}),
        ("invoices", "InvoiceFilter", {"currency": {"eq": "usd"}}, {"in_1", "in_2", "in_1@bob"}),
        ("invoices", "InvoiceFilter", {"currency": {"eq": "Jpy"}}, {"in_3"}),
        ("invoices", "InvoiceFilter", {"updatedAfter": (START + timedelta(minutes=3)).isoformat()}, {"in_5"}),
        ("invoices", "InvoiceFilter", {"externalUserId": "bob"}, {"in_1@bob"}),
        ("payments", "PaymentFilter", {"status": "SUCCEEDED"}, {"pi_1"}),
        ("payments", "PaymentFilter", {"invoiceRemoteId": "in_3"}, {"pi_2"}),
        ("payments", "PaymentFilter", {"customerRemoteId": "cus_3"}, {"pi_3"}),
        ("payments", "PaymentFilter", {"method": {"eq": "card"}, "currency": {"eq": "jpy"}}, {"pi_2"}),
        ("payments", "PaymentFilter", {"remoteStatus": {"contains": "payment_method"}}, {"pi_3"}),
        ("billingSubscriptions", "BillingSubscriptionFilter", {"cancelAtPeriodEnd": True}, {"sub_1"}),
        ("billingSubscriptions", "BillingSubscriptionFilter", {"status": "PAST_DUE"}, {"sub_2"}),
        ("billingSubscriptions", "BillingSubscriptionFilter", {"customerRemoteId": "cus_1"}, {"sub_1"}),
        ("billingSubscriptions", "BillingSubscriptionFilter", {"currency": {"eq": "usd"}}, {"sub_1"}),
    ]
    for list_name, filter_type, filter, expected in cases:
        assert await _ids(billing, list_name, filter_type, **filter) == expected, (list_name, filter)


async def test_an_unknown_status_in_a_filter_is_refused_naming_the_allowed_values(billing: Billing) -> None:
    literal = await billing.q("{ invoices(filter: {status: PAYED}) { edges { cursor } } }")
    variable = await billing.q(
        "query($f: BillingSubscriptionFilter) { billingSubscriptions(filter: $f) { edges { cursor } } }",
        f={"status": "active"},
    )
    assert error_codes(literal) == error_codes(variable) == ["BAD_USER_INPUT"]
    (refusal,) = literal["errors"]
    assert refusal["extensions"]["field"] == "filter.status"
    assert refusal["extensions"]["allowedValues"] == ["DRAFT", "OPEN", "PAID", "UNCOLLECTIBLE", "VOID"]
    (refusal,) = variable["errors"]
    assert refusal["extensions"]["field"] == "$f.status"
    assert "PAST_DUE" in refusal["extensions"]["allowedValues"] and "ACTIVE" in refusal["message"]


RELATED = """{ invoices(first: 100, filter: {provider: "hubspot"}, orderBy: UPDATED_AT_ASC) { edges { node {
  remoteId number status remoteStatus currency total { amount currency } amountPaid { amount currency }
  lines { description quantity amount { amount currency } priceRemoteId productRemoteId }
  metadata
  customer { remoteId email balance { amount currency } metadata }
  subscription { remoteId status cancelAtPeriodEnd currentPeriodEnd
    items { priceRemoteId productRemoteId quantity interval unitAmount { amount currency } }
    customer { remoteId } }
} } }
payments(first: 100, filter: {provider: "hubspot"}) { edges { node {
  remoteId amount { amount currency } status method failureMessage
  customer { remoteId } invoice { remoteId number customer { email } }
} } } }"""


async def test_money_lines_items_and_relations_read_exactly_one_query_per_level(billing: Billing) -> None:
    data(await billing.q(RELATED))  # warm the key cache
    with statements_run(billing.api.runtime.store) as statements:
        found = data(await billing.q(RELATED))
    # The two pages, then at most one batched statement per level of relations (the second level's customers
    # are often loaded by the first already). Never one per row.
    assert len(statements) <= 4, statements
    invoices = {e["node"]["remoteId"]: e["node"] for e in found["invoices"]["edges"]}
    in_1 = invoices["in_1"]
    assert in_1["total"] == {"amount": "19.98", "currency": "USD"} and in_1["status"] == "PAID"
    assert in_1["lines"] == [
        {
            "description": "Pro plan",
            "quantity": 1,
            "amount": {"amount": "0.10", "currency": "USD"},
            "priceRemoteId": "price_1",
            "productRemoteId": None,
        },
        {
            "description": "Seats",
            "quantity": 3,
            "amount": {"amount": "0.20", "currency": "USD"},
            "priceRemoteId": None,
            "productRemoteId": "prod_1",
        },
    ]
    assert in_1["customer"] == {
        "remoteId": "cus_1",
        "email": "ada@example.com",
        "balance": {"amount": "-5.00", "currency": "USD"},
        "metadata": {"plan": "pro"},
    }
    assert in_1["subscription"] == {
        "remoteId": "sub_1",
        "status": "ACTIVE",
        "cancelAtPeriodEnd": True,
        "currentPeriodEnd": "2025-07-01T00:00:00+00:00",
        "items": [
            {
                "priceRemoteId": "price_1",
                "productRemoteId": "prod_1",
                "quantity": 2,
                "interval": "month",
                "unitAmount": {"amount": "9.99", "currency": "USD"},
            }
        ],
        "customer": {"remoteId": "cus_1"},
    }
    assert invoices["in_2"]["total"] == {"amount": "1234567890123456789.01", "currency": "USD"}
    assert invoices["in_2"]["lines"] == [] and invoices["in_2"]["metadata"] is None
    assert invoices["in_3"]["total"] == {"amount": "1050", "currency": "JPY"}
    assert invoices["in_3"]["subscription"]["items"][0]["unitAmount"] == {"amount": "1050", "currency": "JPY"}
    assert invoices["in_4"]["total"] == {"amount": "1.050", "currency": "KWD"} and invoices["in_4"]["lines"] == []
    assert invoices["in_5"]["status"] is None and invoices["in_5"]["remoteStatus"] == "deleted_draft"
    payments = {e["node"]["remoteId"]: e["node"] for e in found["payments"]["edges"]}
    assert payments["pi_1"]["invoice"] == {
        "remoteId": "in_1",
        "number": "INV-0001",
        "customer": {"email": "ada@example.com"},
    }
    assert payments["pi_2"]["amount"] == {"amount": "1050", "currency": "JPY"}
    assert payments["pi_3"]["invoice"] is None and payments["pi_3"]["status"] == "FAILED"
    assert payments["pi_3"]["failureMessage"] == "Your card was declined."


async def test_metadata_that_is_not_an_object_reads_as_null(billing: Billing) -> None:
    # A connector that stored the provider's text as it came: shown as null, never embedded as JSON text.
    odd = {**_valid(CUSTOMER, email="odd@example.com"), "metadata": '{"injected": true}'}
    await _store(billing.store, billing.other, "customers", "Customer", {"cus_odd": odd})
    query = '{ customers(filter: {email: {eq: "odd@example.com"}}) { edges { node { metadata raw } } } }'
    assert data(await billing.q(query))["customers"]["edges"] == [
        {"node": {"metadata": None, "raw": {"id": "cus_odd"}}}
    ]


@pytest.mark.parametrize("list_name", ["customers", "invoices", "payments", "billingSubscriptions"])
async def test_each_payments_list_pages_forward_and_backward(billing: Billing, list_name: str) -> None:
    page_query = f"""query($first: Int, $after: String, $last: Int, $before: String) {{
      {list_name}(first: $first, after: $after, last: $last, before: $before, filter: {{provider: "hubspot"}}) {{
        edges {{ node {{ remoteId }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"""
    stored = next(rows for model, rows in STREAMS.values() if OBJECT_TYPES[model].MODEL.list_name == _snake(list_name))
    newest_first = list(reversed(stored))
    forward: list[str] = []
    after = None
    while True:
        page = data(await billing.q(page_query, first=2, after=after))[list_name]
        forward += [e["node"]["remoteId"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    backward: list[str] = []
    before = None
    while True:
        page = data(await billing.q(page_query, last=2, before=before))[list_name]
        backward = [e["node"]["remoteId"] for e in page["edges"]] + backward
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert forward == backward == newest_first


async def test_node_finds_each_payments_model_by_its_global_id(billing: Billing) -> None:
    listed = data(
        await billing.q(
            """{ customers(first: 1, filter: {delinquent: true}) { edges { node { id } } }
            invoices(first: 1, filter: {status: DRAFT}) { edges { node { id } } }
            payments(first: 1, filter: {status: FAILED}) { edges { node { id } } }
            billingSubscriptions(first: 1, filter: {status: PAST_DUE}) { edges { node { id } } } }"""
        )
    )
    ids = [listed[name]["edges"][0]["node"]["id"] for name in listed]
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename
      ... on Customer { remoteId currency } ... on Invoice { remoteId total { amount currency } }
      ... on Payment { remoteId amount { amount } } ... on BillingSubscription { remoteId status } } }"""
    assert data(await billing.q(query, ids=ids))["nodes"] == [
        {"__typename": "Customer", "remoteId": "cus_2", "currency": "JPY"},
        {"__typename": "Invoice", "remoteId": "in_4", "total": {"amount": "1.050", "currency": "KWD"}},
        {"__typename": "Payment", "remoteId": "pi_3", "amount": {"amount": "1.050"}},
        {"__typename": "BillingSubscription", "remoteId": "sub_2", "status": "PAST_DUE"},
    ]
    # An invoice's record id named as a payment's finds nothing.
    as_payment = to_global_id("Payment", from_global_id(ids[1])[1])
    assert data(await billing.q("query($id: ID!) { node(id: $id) { id } }", id=as_payment))["node"] is None


async def test_payments_models_stream_their_changes_with_their_nodes(billing: Billing) -> None:
    caller = Caller(billing.api.runtime.services, billing.tenant.platform_id)
    query = """subscription($after: String) {
      changes(after: $after, objects: [CUSTOMER, INVOICE, PAYMENT, BILLING_SUBSCRIPTION]) {
        op object remoteId changedFields node { __typename
          ... on Invoice { total { amount currency } lines { amount { amount } } customer { remoteId } }
          ... on BillingSubscription { cancelAtPeriodEnd items { unitAmount { amount currency } } } } } }"""
    stream = await public_schema.subscribe(
        query, variable_values={"after": to_global_id("Change", 0)}, context_value=caller
    )
    seen = []
    expected = len(CUSTOMERS) + len(SUBSCRIPTIONS) + len(INVOICES) + len(PAYMENTS) + 1
    async for result in stream:  # type: ignore[union-attr]
        assert not result.errors, result.errors
        seen.append(result.data["changes"])  # type: ignore[index]
        if len(seen) == expected:
            break
    await stream.aclose()  # type: ignore[union-attr]
    assert {c["object"] for c in seen} == {"Customer", "Invoice", "Payment", "BillingSubscription"}
    assert all(c["op"] == "CREATED" for c in seen)
    in_1 = next(c for c in seen if c["remoteId"] == "in_1" and c["node"]["lines"])
    assert in_1["node"]["total"] == {"amount": "19.98", "currency": "USD"}
    assert [line["amount"]["amount"] for line in in_1["node"]["lines"]] == ["0.10", "0.20"]
    assert {"lines", "total", "customer"} <= set(in_1["changedFields"])
    sub_1 = next(c for c in seen if c["remoteId"] == "sub_1")
    assert sub_1["node"]["cancelAtPeriodEnd"] is True
    assert sub_1["node"]["items"] == [{"unitAmount": {"amount": "9.99", "currency": "USD"}}]


# --- writes: what the API refuses before any provider is asked --------------------------------------------


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _write_schema() -> XkitSchema:
    """Payments writes as every writable model gets them (whichever connector lands writes them)."""
    mutations = {k: v for name in ("Customer", "Invoice", "BillingSubscription") for k, v in _mutations(name).items()}
    mutation = strawberry.type(type("PaymentsWrites", (), mutations))
    return XkitSchema(query=ListQuery, mutation=mutation, types=list(OBJECT_TYPES.values()), scalar_overrides=SCALARS)


async def test_an_amount_written_as_a_number_in_the_document_is_refused_naming_it() -> None:
    document = (
        'mutation { createCustomer(connectionId: "x", input: {balance: {amount: 10.5, currency: "USD"}}) { replayed } }'
    )
    result = await _write_schema().execute(document)
    (error,) = result.errors or []
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "input.balance.amount"}
    assert error.message == 'input.balance.amount: a Decimal is written as text, e.g. "1234.50", not 10.5'


def test_write_inputs_take_money_lines_and_metadata() -> None:
    sdl = _write_schema().as_str()
    invoice_input = sdl[sdl.index("input InvoiceInput {") :].split("}", 1)[0]
    for line in (
        "status: InvoiceStatus",
        "currency: String",
        "total: MoneyInput",
        "lines: [InvoiceLineInput!]",
        "metadata: JSON",
        "customerRemoteId: String",
        "subscriptionRemoteId: String",
    ):
        assert line in invoice_input, line
    line_input = sdl[sdl.index("input InvoiceLineInput {") :].split("}", 1)[0]
    for line in ("description: String", "quantity: Int", "amount: MoneyInput", "priceRemoteId: String"):
        assert line in line_input, line
    item_input = sdl[sdl.index("input SubscriptionItemInput {") :].split("}", 1)[0]
    assert "unitAmount: MoneyInput" in item_input


CREATE_INVOICE = 'mutation($i: InvoiceInput!) { createInvoice(connectionId: "x", input: $i) { replayed } }'
CREATE_CUSTOMER = 'mutation($i: CustomerInput!) { createCustomer(connectionId: "x", input: $i) { replayed } }'


def _line(amount: str, currency: str = "JPY") -> dict[str, Any]:
    return {"description": "Plan", "quantity": 1, "amount": {"amount": amount, "currency": currency}}


@pytest.mark.parametrize(
    ("document", "given", "field", "words"),
    [
        (CREATE_INVOICE, {"lines": [_line("1050"), _line("10.5")]}, "lines[1].amount", "JPY has no decimals"),
        (CREATE_INVOICE, {"lines": [_line("1.0005", "KWD")]}, "lines[0].amount", "at most 3 decimals"),
        (CREATE_INVOICE, {"total": {"amount": "0.001", "currency": "USD"}}, "total", "at most 2 decimals"),
        (CREATE_INVOICE, {"lines": [_line("1", "jpy")]}, "lines[0].amount", "write 'JPY'"),
        (CREATE_INVOICE, {"total": {"amount": "1", "currency": "ABC"}}, "total", "not an ISO 4217"),
        (CREATE_INVOICE, {"currency": "usd"}, "currency", "write 'USD'"),
        (CREATE_INVOICE, {"currency": "dollars"}, "currency", "three letters"),
        (CREATE_CUSTOMER, {"metadata": ["plan", "pro"]}, "metadata", "must be a JSON object"),
        (CREATE_CUSTOMER, {"metadata": {"plan": 3}}, "metadata.plan", "must be text, got int"),
        (CREATE_CUSTOMER, {"metadata": {"plan": None}}, "metadata.plan", "must be text, got NoneType"),
        (CREATE_CUSTOMER, {"metadata": {"plan": {"tier": "pro"}}}, "metadata.plan", "must be text, got dict"),
        (CREATE_CUSTOMER, {"metadata": {f"k{n}": "v" for n in range(51)}}, "metadata", "at most 50"),
        (CREATE_CUSTOMER, {"metadata": {"k" * 41: "v"}}, "metadata", "longer than 40"),
        (CREATE_CUSTOMER, {"metadata": {"a[b]": "v"}}, "metadata", "must not hold [ or ]"),
        (CREATE_CUSTOMER, {"metadata": {"": "v"}}, "metadata", "must not be empty"),
        (CREATE_CUSTOMER, {"metadata": {"note": "x" * 501}}, "metadata.note", "longer than 500"),
        (CREATE_CUSTOMER, {"balance": {"amount": "1e999999999", "currency": "USD"}}, "$i.balance.amount", "40 digits"),
        (CREATE_CUSTOMER, {"balance": {"amount": 10.5, "currency": "USD"}}, "$i.balance.amount", "as text"),
        (CREATE_INVOICE, {"status": "FINALIZED"}, "$i.status", "DRAFT, OPEN, PAID, UNCOLLECTIBLE, VOID"),
    ],
    ids=[
        "jpy-line-decimals",
        "kwd-line-decimals",
        "usd-total-decimals",
        "lower-case-line-currency",
        "unknown-currency",
        "lower-case-currency-field",
        "not-a-currency-code",
        "metadata-not-an-object",
        "metadata-number-value",
        "metadata-null-value",
        "metadata-nested-value",
        "metadata-too-many-keys",
        "metadata-long-key",
        "metadata-bracket-key",
        "metadata-empty-key",
        "metadata-long-value",
        "huge-exponent",
        "float-in-a-variable",
        "unknown-status",
    ],
)
async def test_a_bad_money_currency_or_metadata_in_a_write_is_refused_naming_its_path(
    document: str, given: dict[str, Any], field: str, words: str
) -> None:
    result = await _write_schema().execute(document, variable_values={"i": given})
    assert result.data is None
    (error,) = result.errors or []
    assert error.extensions is not None
    assert (error.extensions["code"], error.extensions["field"]) == ("BAD_USER_INPUT", field), error.message
    assert words in error.message


async def test_a_write_at_the_limits_passes_the_checks() -> None:
    # Metadata at its limits and amounts as precise as their currencies pass to the writeback, which here
    # has no connection to find: what fails is the lookup, not the values.
    metadata = {f"{n:02}" + "k" * 38: "v" * 500 for n in range(50)}
    given = {
        "currency": "KWD",
        "lines": [_line("1.005", "KWD"), _line("10.00", "JPY"), _line("1234567890123456789.99", "USD")],
        "metadata": metadata,
    }
    result = await _write_schema().execute(CREATE_INVOICE, variable_values={"i": given})
    (error,) = result.errors or []
    assert error.extensions is not None and error.extensions.get("field") not in {"lines", "metadata", "currency"}
    assert "connectionId" in (error.extensions.get("field") or "connectionId"), error.message


def test_the_payments_models_are_common_models() -> None:
    for model in (CUSTOMER, INVOICE, PAYMENT, BILLING_SUBSCRIPTION):
        assert COMMON_MODELS[model.name] is model
    assert [m.list_name for m in (CUSTOMER, INVOICE, PAYMENT, BILLING_SUBSCRIPTION)] == [
        "customers",
        "invoices",
        "payments",
        "billing_subscriptions",
    ]


# --- relation filters read through an index ---------------------------------------------------------------


def test_every_payments_relation_filter_is_indexed() -> None:
    indexed = set(indexed_relations(COMMON_MODELS.values()))
    for model in (INVOICE, PAYMENT, BILLING_SUBSCRIPTION):
        assert {r.name for r in model.filterable_relations} <= indexed, model.name
    assert "company" not in indexed  # contacts and deals store it unfiltered: ingesting them pays for no index


async def _plan(store: Store, statement: Any, values: dict[str, Any]) -> str:
    """The database's plan for `statement` run with `values` (statistics fresh, as autovacuum keeps them)."""
    async with store.engine.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        postgres = conn.dialect.name == "postgresql"
        # The driver takes the values as the column types would bind them: SQLite keeps a UUID as hex text.
        bound = tuple(
            value.hex if isinstance(value, uuid.UUID) and not postgres else value
            for value in ({**compiled.params, **values}[name] for name in compiled.positiontup or ())
        )
        await conn.exec_driver_sql("ANALYZE records" if postgres else "ANALYZE")
        explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
        rows = (await conn.exec_driver_sql(f"{explain} {compiled.string}", bound)).all()
        return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("model", "relation"),
    [(INVOICE, "customer"), (INVOICE, "subscription"), (PAYMENT, "invoice"), (BILLING_SUBSCRIPTION, "customer")],
    ids=["invoice-customer", "invoice-subscription", "payment-invoice", "subscription-customer"],
)
async def test_a_relation_filter_reads_its_index_in_the_lists_order(
    billing: Billing, model: CommonModel, relation: str
) -> None:
    # Enough records that scanning every one of them would show, as on a real account.
    many = {f"bulk_{n}": _valid(model, **{relation: f"related_{n % 500}"}) for n in range(3000)}
    await _store(billing.store, billing.connection, "bulk", model.name, many)
    query = RecordQuery(model=model.name, fields={relation: StringMatch(eq="related_7")})
    dialect = billing.store.engine.dialect.name
    statement = _page_statement(_filter_shape(query, dialect), "desc", (False, False, False))
    values = {
        "platform_id": billing.tenant.platform_id,
        "model": model.name,
        f"{relation}_eq": "related_7",
        "page_limit": 51,
    }
    plan = await _plan(billing.store, statement, values)
    assert f"ix_records_model_{relation}" in plan, plan
    # Read in the list's order from the index: never sorted from all of the related record's rows.
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
    list_name = graphql_name(model.list_name)
    found = await _ids(
        billing, list_name, f"{model.name}Filter", **{graphql_name(f"{relation}_remote_id"): "related_7"}
    )
    assert found == {f"bulk_{n}" for n in range(7, 3000, 500)}
