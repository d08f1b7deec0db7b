"""Writes follow the connection's field mappings, through GraphQL against the HubSpot, Salesforce and Stripe
sandboxes over HTTP (both databases): `customFields` in a create or update writes the provider field each key is
mapped to (HubSpot's `properties.tier`, Salesforce's `customer_tier__c`, Stripe's `metadata.plan`), through the
mapping's transforms reversed; a built-in member a mapping overrides writes its mapped source; the record is read
back with the new value and logged once. Every refusal names the field and sends the provider nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.errors import BadInput
from connectors.kit.field_mappings import CustomFieldType
from connectors.kit.http import HttpKit
from connectors.kit.mapped_writes import written_value
from connectors.kit.sandbox import RequestStats, serve_in_thread
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from connectors.stripe.sandbox import SandboxSize, StripeSandbox, create_app
from resolvers.ids import parse_connection_id, to_global_id
from sync.storage.store import Store
from sync.storage.tables import changes
from tests.support import (
    Gateway,
    Tenant,
    connect_hubspot,
    connect_salesforce,
    data,
    gateway,
    make_streams_due,
    new_tenant,
    run_everything_due,
)

DEFINE = """mutation($model: ModelName!, $key: String!, $type: CustomFieldType!) {
    defineCustomField(input: {model: $model, key: $key, type: $type}) { key } }"""
MAP = """mutation($c: ID!, $model: ModelName!, $field: String!, $source: String!, $transforms: [FieldTransformInput!]) {
    setFieldMapping(connectionId: $c, model: $model, field: $field, source: $source, transforms: $transforms) {
        source } }"""
UPDATE_CONTACT = """mutation($c: ID!, $remoteId: String!, $input: ContactInput) {
    updateContact(connectionId: $c, remoteId: $remoteId, input: $input) {
        contact { remoteId phone customFields tier: customField(key: "tier") } } }"""
CREATE_CONTACT = """mutation($c: ID!, $input: ContactInput!) {
    createContact(connectionId: $c, input: $input) { contact { remoteId email customFields } } }"""
UPDATE_CUSTOMER = """mutation($c: ID!, $remoteId: String!, $input: CustomerInput) {
    updateCustomer(connectionId: $c, remoteId: $remoteId, input: $input) { customer { metadata customFields } } }"""
CREATE_CUSTOMER = """mutation($c: ID!, $input: CustomerInput!) {
    createCustomer(connectionId: $c, input: $input) { customer { remoteId customFields } } }"""
MAP_DEFAULT = """mutation($provider: String!, $model: ModelName!, $source: String!) {
    setFieldMapping(provider: $provider, model: $model, field: "plan", source: $source) { origin } }"""
UPDATE_SUBSCRIPTION = """mutation($c: ID!, $remoteId: String!, $input: BillingSubscriptionInput) {
    updateBillingSubscription(connectionId: $c, remoteId: $remoteId, input: $input) { billingSubscription { id } } }"""
CREATE_CONNECTION = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }"""
READS = ("/batch/read", "/search", "/query", "/oauth", "/token")


def writes_sent(stats: RequestStats) -> int:
    """Requests that change something at the provider (reads, searches and token requests left out)."""
    return sum(
        count
        for route, count in stats.snapshot()["requests"].items()
        if route.split(" ", 1)[0] in ("POST", "PATCH", "PUT", "DELETE") and not any(r in route for r in READS)
    )


async def changed_fields(store: Store, connection_id: uuid.UUID, remote_id: str, after: int) -> list[list[str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(changes.c.changed_fields)
            .where(changes.c.connection_id == connection_id, changes.c.remote_id == remote_id, changes.c.seq > after)
            .order_by(changes.c.seq)
        )
        return [list(row.changed_fields) for row in rows]


async def last_seq(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(changes.c.seq).order_by(changes.c.seq.desc()).limit(1))).scalar() or 0)


@dataclass
class Mapped:
    store: Store
    kit: HttpKit
    api: Gateway
    tenant: Tenant
    connection_id: uuid.UUID

    @property
    def gid(self) -> str:
        return to_global_id("Connection", self.connection_id)

    async def ask(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.api.graphql(query, self.tenant.api_key, **variables)

    async def define(self, key: str, type: str, model: str = "CONTACT") -> None:
        data(await self.ask(DEFINE, model=model, key=key, type=type))

    async def map(self, field: str, source: str, model: str = "CONTACT", **transform: Any) -> None:
        transforms = [transform] if transform else None
        data(await self.ask(MAP, c=self.gid, model=model, field=field, source=source, transforms=transforms))

    async def sync_again(self) -> None:
        await make_streams_due(self.store, self.connection_id)
        await run_everything_due(self.store, self.kit)


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    """The one BAD_USER_INPUT a refused write answers: its message and extensions."""
    errors = body.get("errors") or []
    assert len(errors) == 1, body
    extensions = errors[0]["extensions"]
    assert extensions["code"] == "BAD_USER_INPUT", errors
    return {"message": errors[0]["message"], **extensions}


# ---- HubSpot ---------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def hubspot_mapped(
    store: Store, kit: HttpKit, secret_key: str, hubspot: HubSpotSandbox, hubspot_url: str
) -> AsyncIterator[Mapped]:
    """A synced HubSpot connection with `tier` mapped to its custom property, `level` to loyalty_tier through a
    value table, `signed_up` to HubSpot's read-only createdate, `region` defined and left unmapped, and
    Contact.phone overridden by the mobile number."""
    hubspot.faults.rate_limit_enabled = False
    async with gateway(store, kit, secret_key) as api:
        tenant = await new_tenant(store)
        mapped = Mapped(store, kit, api, tenant, await connect_hubspot(store, tenant, hubspot, hubspot_url))
        for key, kind in (("tier", "STRING"), ("level", "STRING"), ("signed_up", "DATETIME"), ("region", "STRING")):
            await mapped.define(key, kind)
        await mapped.map("tier", "properties.tier")
        table = {"gold": "top", "platinum": "top", "silver": "middle", "bronze": "entry"}
        await mapped.map("level", "properties.loyalty_tier", kind="MAP_VALUES", table=table)
        await mapped.map("signed_up", "properties.createdate")
        await mapped.map("phone", "properties.mobilephone")
        await run_everything_due(store, kit)
        yield mapped


def hubspot_contact(hubspot: HubSpotSandbox, remote_id: str) -> dict[str, Any]:
    return dict(hubspot.get("contacts", remote_id)["properties"])


async def test_an_update_writes_the_mapped_hubspot_property_reads_it_back_and_logs_it_once(
    hubspot_mapped: Mapped, hubspot: HubSpotSandbox
) -> None:
    remote_id = min(hubspot.all_ids("contacts"), key=int)
    before = hubspot_contact(hubspot, remote_id)
    after, sent = await last_seq(hubspot_mapped.store), writes_sent(hubspot.stats)
    body = await hubspot_mapped.ask(
        UPDATE_CONTACT, c=hubspot_mapped.gid, remoteId=remote_id, input={"customFields": {"tier": "silver"}}
    )
    written = data(body)["updateContact"]["contact"]
    assert writes_sent(hubspot.stats) == sent + 1  # one PATCH of the contact's properties
    assert hubspot_contact(hubspot, remote_id)["tier"] == "silver"
    # Only the mapped property changed at HubSpot; the record as read back shows it.
    assert {k: v for k, v in hubspot_contact(hubspot, remote_id).items() if k not in ("tier", "lastmodifieddate")} == {
        k: v for k, v in before.items() if k not in ("tier", "lastmodifieddate")
    }
    assert written["tier"] == "silver" and written["customFields"]["tier"] == "silver"
    logged = await changed_fields(hubspot_mapped.store, hubspot_mapped.connection_id, remote_id, after)
    assert len(logged) == 1 and "customFields.tier" in logged[0], logged
    # The sync's later copy of the same record is the one already stored: nothing more is logged.
    await hubspot_mapped.sync_again()
    assert await changed_fields(hubspot_mapped.store, hubspot_mapped.connection_id, remote_id, after) == logged

    # Clearing it writes HubSpot's empty value and reads back as null.
    body = await hubspot_mapped.ask(
        UPDATE_CONTACT, c=hubspot_mapped.gid, remoteId=remote_id, input={"customFields": {"tier": None}}
    )
    assert data(body)["updateContact"]["contact"]["tier"] is None
    assert hubspot_contact(hubspot, remote_id).get("tier") in (None, "")


async def test_a_value_table_is_written_back_to_the_one_provider_value_that_maps_to_it(
    hubspot_mapped: Mapped, hubspot: HubSpotSandbox
) -> None:
    remote_id = min(hubspot.all_ids("contacts"), key=int)
    body = await hubspot_mapped.ask(
        UPDATE_CONTACT, c=hubspot_mapped.gid, remoteId=remote_id, input={"customFields": {"level": "middle"}}
    )
    assert data(body)["updateContact"]["contact"]["customFields"]["level"] == "middle"
    assert hubspot_contact(hubspot, remote_id)["loyalty_tier"] == "silver"


async def test_a_create_writes_custom_fields_with_the_record(hubspot_mapped: Mapped, hubspot: HubSpotSandbox) -> None:
    given = {"email": "grace@navy.example", "firstName": "Grace", "customFields": {"tier": "gold", "level": "entry"}}
    created = data(await hubspot_mapped.ask(CREATE_CONTACT, c=hubspot_mapped.gid, input=given))["createContact"]
    properties = hubspot_contact(hubspot, created["contact"]["remoteId"])
    assert (properties["tier"], properties["loyalty_tier"], properties["email"]) == (
        "gold",
        "bronze",
        "grace@navy.example",
    )
    custom = created["contact"]["customFields"]
    assert (custom["tier"], custom["level"], custom["region"]) == ("gold", "entry", None)


async def test_an_overridden_builtin_member_writes_its_mapped_source_not_the_default(
    hubspot_mapped: Mapped, hubspot: HubSpotSandbox
) -> None:
    remote_id = min(hubspot.all_ids("contacts"), key=int)
    default_phone = hubspot_contact(hubspot, remote_id).get("phone")
    body = await hubspot_mapped.ask(
        UPDATE_CONTACT, c=hubspot_mapped.gid, remoteId=remote_id, input={"phone": "+44 7700 900999"}
    )
    assert data(body)["updateContact"]["contact"]["phone"] == "+44 7700 900999"
    properties = hubspot_contact(hubspot, remote_id)
    assert properties["mobilephone"] == "+44 7700 900999"
    assert properties.get("phone") == default_phone  # HubSpot's own phone property is left alone


@pytest.mark.parametrize(
    ("custom", "field", "says"),
    [
        ({"nickname": "Ada"}, "customFields.nickname", "no custom field 'nickname' is defined on Contact"),
        ({"region": "EMEA"}, "customFields.region", "not mapped to a provider field on this connection"),
        ({"tier": 5}, "customFields.tier", "customFields.tier is STRING, not int 5"),
        ({"signed_up": "2026-01-01T00:00:00Z"}, "customFields.signed_up", "properties.createdate"),
        ({"level": "top"}, "customFields.level", "several do: gold, platinum"),
        ({"level": "unheard-of"}, "customFields.level", "no provider value maps to it"),
        ({"tier": "gold", "level": "x" * 1001}, "customFields.level", "at most 1000 characters"),
    ],
)
async def test_refused_custom_fields_name_the_field_and_send_hubspot_nothing(
    hubspot_mapped: Mapped, hubspot: HubSpotSandbox, custom: dict[str, Any], field: str, says: str
) -> None:
    remote_id = min(hubspot.all_ids("contacts"), key=int)
    before = hubspot_contact(hubspot, remote_id)
    sent, after = writes_sent(hubspot.stats), await last_seq(hubspot_mapped.store)
    for operation, arguments in (
        (UPDATE_CONTACT, {"remoteId": remote_id, "input": {"customFields": custom}}),
        (CREATE_CONTACT, {"input": {"email": "refused@example.org", "customFields": custom}}),
    ):
        refused = refusal(await hubspot_mapped.ask(operation, c=hubspot_mapped.gid, **arguments))
        assert refused["field"] == field and says in refused["message"], refused
    assert writes_sent(hubspot.stats) == sent
    assert hubspot_contact(hubspot, remote_id) == before
    assert await last_seq(hubspot_mapped.store) == after


async def test_a_mapped_field_and_a_built_in_one_writing_one_property_differently_are_refused(
    hubspot_mapped: Mapped, hubspot: HubSpotSandbox
) -> None:
    await hubspot_mapped.define("work_email", "STRING")
    await hubspot_mapped.map("work_email", "properties.email")
    remote_id = min(hubspot.all_ids("contacts"), key=int)
    before, sent = hubspot_contact(hubspot, remote_id), writes_sent(hubspot.stats)
    given = {"email": "a@example.org", "customFields": {"work_email": "b@example.org"}}
    refused = refusal(await hubspot_mapped.ask(UPDATE_CONTACT, c=hubspot_mapped.gid, remoteId=remote_id, input=given))
    assert refused["field"] == "properties.email" and "written both" in refused["message"]
    assert writes_sent(hubspot.stats) == sent and hubspot_contact(hubspot, remote_id) == before
    # The same value both ways is one write.
    same = {"email": "c@example.org", "customFields": {"work_email": "c@example.org"}}
    written = data(await hubspot_mapped.ask(UPDATE_CONTACT, c=hubspot_mapped.gid, remoteId=remote_id, input=same))
    assert written["updateContact"]["contact"]["customFields"]["work_email"] == "c@example.org"
    assert hubspot_contact(hubspot, remote_id)["email"] == "c@example.org"


async def test_refusals_list_what_is_defined_or_mapped_and_the_read_only_provider_field(
    hubspot_mapped: Mapped, hubspot: HubSpotSandbox
) -> None:
    remote_id = min(hubspot.all_ids("contacts"), key=int)

    async def refused(custom: Any) -> dict[str, Any]:
        body = await hubspot_mapped.ask(
            UPDATE_CONTACT, c=hubspot_mapped.gid, remoteId=remote_id, input={"customFields": custom}
        )
        return refusal(body)

    assert (await refused({"nickname": "Ada"}))["defined"] == ["level", "region", "signed_up", "tier"]
    assert sorted((await refused({"region": "EMEA"}))["mapped"]) == ["level", "signed_up", "tier"]
    assert (await refused({"signed_up": "2026-01-01T00:00:00Z"}))["providerField"] == "properties.createdate"
    assert (await refused(["tier", "gold"]))["field"] == "customFields"


# ---- Salesforce -----------------------------------------------------------------------------------


@pytest.fixture
def salesforce() -> Iterator[tuple[SalesforceSandbox, str]]:
    sandbox = SalesforceSandbox(
        seed=4, size=SalesforceSize(contacts=12, leads=2, accounts=2, opportunities=2, users=2, tasks=2, notes=2)
    )
    with serve_sandbox(sandbox) as (login_url, _):
        yield sandbox, login_url


async def test_salesforce_writes_the_mapped_custom_field_on_update_and_create_and_refuses_a_wrong_type(
    store: Store, kit: HttpKit, secret_key: str, salesforce: tuple[SalesforceSandbox, str]
) -> None:
    sandbox, login_url = salesforce
    async with gateway(store, kit, secret_key) as api:
        tenant = await new_tenant(store)
        mapped = Mapped(store, kit, api, tenant, await connect_salesforce(store, tenant, sandbox, login_url))
        await mapped.define("tier", "STRING")
        await mapped.map("tier", "customer_tier__c")
        await run_everything_due(store, kit)
        remote_id = min(sandbox.all_ids("Contact"))

        sent = writes_sent(sandbox.stats)
        body = await mapped.ask(
            UPDATE_CONTACT, c=mapped.gid, remoteId=remote_id, input={"customFields": {"tier": "silver"}}
        )
        assert writes_sent(sandbox.stats) == sent + 1
        assert data(body)["updateContact"]["contact"]["tier"] == "silver"
        assert sandbox.get("Contact", remote_id)["customer_tier__c"] == "silver"

        given = {"lastName": "Hopper", "email": "grace@navy.example", "customFields": {"tier": "gold"}}
        created = data(await mapped.ask(CREATE_CONTACT, c=mapped.gid, input=given))["createContact"]["contact"]
        assert sandbox.get("Contact", created["remoteId"])["customer_tier__c"] == "gold"
        assert created["customFields"] == {"tier": "gold"}

        sent, before = writes_sent(sandbox.stats), sandbox.get("Contact", remote_id)
        wrong = await mapped.ask(
            UPDATE_CONTACT, c=mapped.gid, remoteId=remote_id, input={"customFields": {"tier": True}}
        )
        assert refusal(wrong)["field"] == "customFields.tier"
        assert writes_sent(sandbox.stats) == sent and sandbox.get("Contact", remote_id) == before


# ---- Stripe ---------------------------------------------------------------------------------------


@pytest.fixture
def stripe() -> Iterator[StripeSandbox]:
    with StripeSandbox(seed=9, size=SandboxSize(customers=6, invoices=2, subscriptions=2, payment_intents=2)) as box:
        box.faults.rate_limit_enabled = False
        # The catalog is the metadata keys seen on cached customers: one customer carries a plan.
        box.account().create_customer({"email": "first@plan.example", "metadata": {"plan": "basic"}})
        yield box


def stripe_customer(stripe: StripeSandbox, remote_id: str) -> dict[str, Any]:
    return next(c for c in stripe.account().collections["customers"].live() if c["id"] == remote_id)


async def test_stripe_writes_a_mapped_metadata_key(
    store: Store, kit: HttpKit, secret_key: str, stripe: StripeSandbox
) -> None:
    with serve_in_thread(create_app(stripe)) as url:
        async with gateway(store, kit, secret_key) as api:
            tenant = await new_tenant(store)
            given = {
                "provider": "stripe",
                "externalUserId": "alice",
                "credentials": {"apiKey": stripe.account().identity.secret_key},
                "baseUrl": url,
            }
            connection = data(await api.graphql(CREATE_CONNECTION, tenant.api_key, input=given))["createConnection"]
            await run_everything_due(store, kit)
            mapped = Mapped(store, kit, api, tenant, parse_connection_id(connection["id"]))
            await mapped.define("plan", "STRING", model="CUSTOMER")
            await mapped.map("plan", "metadata.plan", model="CUSTOMER")
            customer = next(c for c in stripe.account().collections["customers"].live() if "plan" not in c["metadata"])
            segment = customer["metadata"].get("segment")

            body = await mapped.ask(
                UPDATE_CUSTOMER, c=mapped.gid, remoteId=customer["id"], input={"customFields": {"plan": "pro"}}
            )
            shown = data(body)["updateCustomer"]["customer"]
            assert shown["customFields"] == {"plan": "pro"}
            metadata = stripe_customer(stripe, customer["id"])["metadata"]
            assert metadata["plan"] == "pro" and metadata.get("segment") == segment  # other keys kept

            made = data(
                await mapped.ask(
                    CREATE_CUSTOMER, c=mapped.gid, input={"email": "b@plan.example", "customFields": {"plan": "team"}}
                )
            )["createCustomer"]["customer"]
            assert stripe_customer(stripe, made["remoteId"])["metadata"]["plan"] == "team"
            assert made["customFields"] == {"plan": "team"}

            # Stripe's subscription writer sends only what it knows: a mapped field there is refused, not dropped.
            await mapped.define("plan", "STRING", model="BILLING_SUBSCRIPTION")
            data(await mapped.ask(MAP_DEFAULT, provider="stripe", model="BILLING_SUBSCRIPTION", source="metadata.plan"))
            subscription = next(iter(stripe.account().collections["subscriptions"].live()))
            sent = writes_sent(stripe.stats)
            body = await mapped.ask(
                UPDATE_SUBSCRIPTION, c=mapped.gid, remoteId=subscription["id"], input={"customFields": {"plan": "pro"}}
            )
            refused = refusal(body)
            assert refused["field"] == "customFields" and "take no mapped fields" in refused["message"]
            assert writes_sent(stripe.stats) == sent


# ---- the values a write takes, type by type ------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "value", "written"),
    [
        (CustomFieldType.STRING, "gold", "gold"),
        (CustomFieldType.INT, 12, 12),
        (CustomFieldType.INT, 12.0, 12),
        (CustomFieldType.FLOAT, 1.5, 1.5),
        (CustomFieldType.FLOAT, 2, 2),
        (CustomFieldType.BOOLEAN, False, False),
        (CustomFieldType.DATETIME, "2026-03-01T09:30:00+01:00", "2026-03-01T08:30:00.000Z"),
        (CustomFieldType.MONEY, {"amount": "12.50", "currency": "EUR"}, "12.50"),
        (CustomFieldType.STRING_LIST, ["a", "b"], ["a", "b"]),
        (CustomFieldType.STRING, None, None),
    ],
)
def test_a_written_value_of_the_fields_type_is_put_as_the_provider_holds_it(
    wanted: CustomFieldType, value: Any, written: Any
) -> None:
    assert written_value(value, wanted, "customFields.x", "EUR") == written


@pytest.mark.parametrize(
    ("wanted", "value", "says"),
    [
        (CustomFieldType.STRING, 5, "is STRING"),
        (CustomFieldType.INT, "12", "is INT"),
        (CustomFieldType.INT, True, "is INT"),
        (CustomFieldType.INT, 1.5, "is INT"),
        (CustomFieldType.INT, 2**60, "between"),
        (CustomFieldType.FLOAT, "1.5", "is FLOAT"),
        (CustomFieldType.FLOAT, float("inf"), "is FLOAT"),
        (CustomFieldType.BOOLEAN, "true", "is BOOLEAN"),
        (CustomFieldType.DATETIME, "next tuesday", "ISO 8601"),
        (CustomFieldType.MONEY, "12.50", "is MONEY"),
        (CustomFieldType.MONEY, {"amount": "12.50", "currency": "USD"}, "holds amounts in EUR"),
        (CustomFieldType.MONEY, {"amount": "12.505", "currency": "EUR"}, "never rounds"),
        (CustomFieldType.MONEY, {"amount": "lots", "currency": "EUR"}, "not an amount"),
        (CustomFieldType.STRING_LIST, "a;b", "a list of text"),
        (CustomFieldType.STRING_LIST, ["a", 1], "a list of text"),
    ],
)
def test_a_written_value_of_another_type_is_refused_naming_the_field(
    wanted: CustomFieldType, value: Any, says: str
) -> None:
    with pytest.raises(BadInput, match=says) as refused:
        written_value(value, wanted, "customFields.x", "EUR")
    assert refused.value.extensions["field"] == "customFields.x"


def test_money_is_refused_when_the_connection_names_no_currency() -> None:
    with pytest.raises(BadInput, match="names no currency"):
        written_value({"amount": "1", "currency": "EUR"}, CustomFieldType.MONEY, "customFields.budget", None)
