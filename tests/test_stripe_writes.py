"""Stripe writes through GraphQL, against the Stripe sandbox over HTTP: customers created once however often a
create is retried with one idempotencyKey, metadata and bracket-encoded rawFields, subscriptions cancelled at
period end or now (a change arriving once in the change feed), invoices drafted with lines, finalized and
voided, and Stripe's refusals named by field."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from connectors.kit.declaration import Draft, StreamContext
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from connectors.stripe import STRIPE
from connectors.stripe.sandbox import SandboxSize, StripeSandbox, create_app
from connectors.stripe.sandbox.account import Account
from resolvers.ids import parse_connection_id, to_global_id
from sync.storage.store import Store
from sync.storage.tables import changes, records
from sync.tenancy.connections import connection_access, get_connection_row
from tests.support import (
    Gateway,
    Tenant,
    data,
    error_codes,
    gateway,
    make_streams_due,
    new_tenant,
    run_everything_due,
)

CREATE_CONNECTION = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }"""
CREATE_CUSTOMER = """
mutation($connectionId: ID!, $input: CustomerInput!, $rawFields: JSON, $key: String) {
  createCustomer(connectionId: $connectionId, input: $input, rawFields: $rawFields, idempotencyKey: $key) {
    customer { id remoteId email name metadata raw } replayed
  }
}"""
UPDATE_CUSTOMER = """
mutation($id: ID!, $input: CustomerInput, $rawFields: JSON) {
  updateCustomer(id: $id, input: $input, rawFields: $rawFields) { customer { name metadata raw } }
}"""
DELETE_CUSTOMER = """mutation($id: ID!) { deleteCustomer(id: $id) { customer { deletedAt } } }"""
UPDATE_SUBSCRIPTION = """
mutation($connectionId: ID!, $remoteId: String!, $input: BillingSubscriptionInput) {
  updateBillingSubscription(connectionId: $connectionId, remoteId: $remoteId, input: $input) {
    billingSubscription { status cancelAtPeriodEnd metadata }
  }
}"""
DELETE_SUBSCRIPTION = """
mutation($connectionId: ID!, $remoteId: String!) {
  deleteBillingSubscription(connectionId: $connectionId, remoteId: $remoteId) {
    billingSubscription { status remoteStatus canceledAt deletedAt }
  }
}"""
CREATE_INVOICE = """
mutation($connectionId: ID!, $input: InvoiceInput!, $key: String) {
  createInvoice(connectionId: $connectionId, input: $input, idempotencyKey: $key) {
    invoice {
      id remoteId status currency total { amount currency }
      lines { description quantity amount { amount currency } }
    }
  }
}"""
UPDATE_INVOICE = """
mutation($id: ID!, $input: InvoiceInput) {
  updateInvoice(id: $id, input: $input) { invoice { status remoteStatus } }
}"""
DELETE_INVOICE = """mutation($id: ID!) { deleteInvoice(id: $id) { invoice { deletedAt } } }"""


@pytest.fixture
def stripe() -> Iterator[StripeSandbox]:
    with StripeSandbox(seed=9, size=SandboxSize(customers=12, invoices=12, subscriptions=6, payment_intents=4)) as box:
        box.faults.rate_limit_enabled = False
        yield box


@dataclass
class Writing:
    store: Store
    kit: HttpKit
    api: Gateway
    tenant: Tenant
    sandbox: StripeSandbox
    connection: str

    @property
    def account(self) -> Account:
        return self.sandbox.account()

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.api.graphql(query, self.tenant.api_key, **variables)

    async def again(self) -> None:
        await make_streams_due(self.store, parse_connection_id(self.connection))
        await run_everything_due(self.store, self.kit)

    def customers(self) -> list[dict[str, Any]]:
        return list(self.account.collections["customers"].live())

    async def context(self, stream: str) -> StreamContext:
        row = await get_connection_row(self.store, parse_connection_id(self.connection))
        return StreamContext(self.kit.session(await connection_access(self.store, row)), STRIPE.stream(stream))

    async def change_count(self, remote_id: str) -> int:
        async with self.store.reader.connect() as conn:
            found = await conn.execute(select(changes.c.seq).where(changes.c.remote_id == remote_id))
            return len(found.all())


@pytest_asyncio.fixture
async def writing(store: Store, kit: HttpKit, secret_key: str, stripe: StripeSandbox) -> AsyncIterator[Writing]:
    with serve_in_thread(create_app(stripe)) as url:
        async with gateway(store, kit, secret_key) as api:
            tenant = await new_tenant(store)
            given = {
                "provider": "stripe",
                "externalUserId": "alice",
                "credentials": {"apiKey": stripe.account().identity.secret_key},
                "baseUrl": url,
            }
            created = data(await api.graphql(CREATE_CONNECTION, tenant.api_key, input=given))
            await run_everything_due(store, kit)
            yield Writing(store, kit, api, tenant, stripe, created["createConnection"]["id"])


async def test_a_retried_create_with_one_idempotency_key_makes_one_stripe_customer(writing: Writing) -> None:
    before = len(writing.customers())
    given = {"email": "ada@engines.example", "name": "Ada Lovelace", "metadata": {"crm_id": "ENG-1"}}
    answers = [
        data(await writing.graphql(CREATE_CUSTOMER, connectionId=writing.connection, input=given, key="signup-ada"))
        for _ in range(2)
    ]
    made = {answer["createCustomer"]["customer"]["remoteId"] for answer in answers}
    assert len(made) == 1
    assert [answer["createCustomer"]["replayed"] for answer in answers] == [False, True]
    assert len(writing.customers()) == before + 1
    [remote_id] = made
    created = await writing.change_count(remote_id)
    await writing.again()  # customer.created: the customer as we stored it already
    assert await writing.change_count(remote_id) == created == 1


async def test_a_create_sent_twice_under_one_key_is_answered_once_by_stripe(writing: Writing) -> None:
    """What a retry after a lost answer does: the writer sends the same request again, under the same key."""
    before = len(writing.customers())
    ctx = await writing.context("customers")
    writer = STRIPE.stream("customers").writer
    assert writer is not None
    draft = Draft({"email": "grace@navy.example", "name": "Grace Hopper"}, idempotency_key="k" * 64)
    first, second = await writer.create(ctx, draft), await writer.create(ctx, draft)
    assert first == second
    assert len(writing.customers()) == before + 1
    other = await writer.create(ctx, replace(draft, idempotency_key="j" * 64))
    assert other != first


async def test_metadata_and_bracketed_raw_fields_are_written(writing: Writing) -> None:
    created = data(
        await writing.graphql(
            CREATE_CUSTOMER,
            connectionId=writing.connection,
            input={"email": "kay@example.com", "metadata": {"tier": "gold"}},
            rawFields={"tax_exempt": "exempt"},
        )
    )["createCustomer"]["customer"]
    remote = writing.account.collections["customers"].objects[created["remoteId"]]
    assert remote["metadata"] == {"tier": "gold"}
    assert remote["tax_exempt"] == "exempt"
    updated = data(
        await writing.graphql(
            UPDATE_CUSTOMER, id=created["id"], input={"name": "Kay"}, rawFields={"metadata": {"region": "eu"}}
        )
    )["updateCustomer"]["customer"]
    assert updated["name"] == "Kay"
    assert updated["metadata"] == {"tier": "gold", "region": "eu"}


async def test_a_deleted_customer_is_gone_in_stripe_and_in_the_cache(writing: Writing) -> None:
    customer = writing.customers()[0]
    answer = data(await writing.graphql(DELETE_CUSTOMER, id=await _global_id(writing, "Customer", customer["id"])))
    assert answer["deleteCustomer"]["customer"]["deletedAt"] is not None
    assert customer["id"] in writing.account.collections["customers"].deleted


async def test_a_subscription_cancels_at_period_end_then_now_each_change_arriving_once(writing: Writing) -> None:
    active = next(s for s in writing.account.collections["subscriptions"].live() if s["status"] == "active")
    changed = data(
        await writing.graphql(
            UPDATE_SUBSCRIPTION,
            connectionId=writing.connection,
            remoteId=active["id"],
            input={"cancelAtPeriodEnd": True, "metadata": {"reason": "budget"}},
        )
    )["updateBillingSubscription"]["billingSubscription"]
    assert changed["cancelAtPeriodEnd"] is True and changed["metadata"]["reason"] == "budget"
    after_update = await writing.change_count(active["id"])
    await writing.again()  # the events of our own write change nothing
    assert await writing.change_count(active["id"]) == after_update
    cancelled = data(
        await writing.graphql(DELETE_SUBSCRIPTION, connectionId=writing.connection, remoteId=active["id"])
    )["deleteBillingSubscription"]["billingSubscription"]
    assert (cancelled["status"], cancelled["remoteStatus"], cancelled["deletedAt"]) == ("CANCELED", "canceled", None)
    assert cancelled["canceledAt"] is not None
    after_cancel = await writing.change_count(active["id"])
    assert after_cancel == after_update + 1
    await writing.again()  # customer.subscription.deleted: the cancellation we stored already
    assert await writing.change_count(active["id"]) == after_cancel


async def test_a_subscription_refuses_other_fields_by_name(writing: Writing) -> None:
    active = next(iter(writing.account.collections["subscriptions"].live()))
    answer = await writing.graphql(
        UPDATE_SUBSCRIPTION, connectionId=writing.connection, remoteId=active["id"], input={"trialEnd": None}
    )
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert answer["errors"][0]["extensions"]["field"] == "trialEnd"


async def test_an_invoice_is_drafted_with_lines_finalized_and_voided(writing: Writing) -> None:
    customer = next(c for c in writing.customers() if c["currency"] == "jpy")
    given = {
        "customerRemoteId": customer["id"],
        "currency": "JPY",
        "lines": [
            {"description": "Engine parts", "quantity": 2, "amount": {"amount": "3000", "currency": "JPY"}},
            {"description": "Assembly", "amount": {"amount": "1500", "currency": "JPY"}},
        ],
    }
    invoice = data(await writing.graphql(CREATE_INVOICE, connectionId=writing.connection, input=given, key="inv-1"))[
        "createInvoice"
    ]["invoice"]
    assert invoice["status"] == "DRAFT" and invoice["total"] == {"amount": "4500", "currency": "JPY"}
    assert [line["amount"]["amount"] for line in invoice["lines"]] == ["3000", "1500"]
    opened = data(await writing.graphql(UPDATE_INVOICE, id=invoice["id"], input={"status": "OPEN"}))
    assert opened["updateInvoice"]["invoice"]["status"] == "OPEN"
    voided = data(await writing.graphql(UPDATE_INVOICE, id=invoice["id"], input={"status": "VOID"}))
    assert voided["updateInvoice"]["invoice"]["status"] == "VOID"


async def test_a_line_in_another_currency_is_refused_before_any_request(writing: Writing) -> None:
    customer = writing.customers()[0]
    before = writing.sandbox.stats.snapshot()
    given = {
        "customerRemoteId": customer["id"],
        "currency": "USD",
        "lines": [{"description": "Parts", "amount": {"amount": "10.00", "currency": "EUR"}}],
    }
    answer = await writing.graphql(CREATE_INVOICE, connectionId=writing.connection, input=given)
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert answer["errors"][0]["extensions"]["field"] == "lines.0.amount"
    assert writing.sandbox.stats.snapshot()["requests"] == before["requests"]


async def test_status_moves_stripe_has_no_action_for_are_refused(writing: Writing) -> None:
    draft = next(i for i in writing.account.collections["invoices"].live() if i["status"] == "draft")
    answer = await writing.graphql(
        UPDATE_INVOICE, id=await _global_id(writing, "Invoice", draft["id"]), input={"status": "PAID"}
    )
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert "finalize" not in answer["errors"][0]["message"] or "draft -> OPEN" in answer["errors"][0]["message"]
    assert answer["errors"][0]["extensions"]["field"] == "status"


async def test_a_draft_is_finalized_voided_and_an_open_invoice_is_not_deleted(writing: Writing) -> None:
    draft = next(i for i in writing.account.collections["invoices"].live() if i["status"] == "draft")
    invoice_id = await _global_id(writing, "Invoice", draft["id"])
    opened = data(await writing.graphql(UPDATE_INVOICE, id=invoice_id, input={"status": "OPEN"}))
    assert opened["updateInvoice"]["invoice"]["status"] == "OPEN"
    refused = await writing.graphql(DELETE_INVOICE, id=invoice_id)
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert "void" in refused["errors"][0]["message"]
    voided = data(await writing.graphql(UPDATE_INVOICE, id=invoice_id, input={"status": "VOID"}))
    assert voided["updateInvoice"]["invoice"]["remoteStatus"] == "void"


async def test_a_stripe_parameter_error_names_the_raw_field(writing: Writing) -> None:
    answer = await writing.graphql(
        CREATE_CUSTOMER,
        connectionId=writing.connection,
        input={"email": "x@example.com"},
        rawFields={"favourite_colour": "teal"},
    )
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    [error] = answer["errors"]
    assert error["extensions"]["field"] == "rawFields.favourite_colour"
    assert "favourite_colour" in error["message"]


async def test_a_stripe_error_on_a_mapped_field_names_the_input_field(writing: Writing) -> None:
    answer = await writing.graphql(
        UPDATE_SUBSCRIPTION,
        connectionId=writing.connection,
        remoteId="sub_doesnotexist",
        input={"metadata": {"a": "b"}},
    )
    assert error_codes(answer) == ["NOT_FOUND"]


async def _global_id(writing: Writing, model: str, remote_id: str) -> str:
    async with writing.store.reader.connect() as conn:
        local = (
            await conn.execute(
                select(records.c.id).where(records.c.remote_id == remote_id, records.c.model == model).limit(1)
            )
        ).scalar_one()
    return to_global_id(model, local)


@pytest.mark.parametrize(
    ("amount", "currency"), [("10.001", "USD"), ("10.5", "JPY")], ids=["three-decimals-usd", "decimals-in-yen"]
)
async def test_an_amount_more_precise_than_its_currency_is_refused(
    writing: Writing, amount: str, currency: str
) -> None:
    customer = writing.customers()[0]
    given = {
        "customerRemoteId": customer["id"],
        "currency": currency,
        "lines": [{"description": "Parts", "amount": {"amount": amount, "currency": currency}}],
    }
    before = writing.sandbox.stats.snapshot()["requests"]
    answer = await writing.graphql(CREATE_INVOICE, connectionId=writing.connection, input=given)
    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert "decimals" in answer["errors"][0]["message"]
    assert writing.sandbox.stats.snapshot()["requests"] == before
