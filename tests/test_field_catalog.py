"""The mapping picker's discovery: `LinkedAccount.availableFields` read from each provider's own metadata over
HTTP (HubSpot properties, Salesforce describe, Zendesk ticket and user fields; Stripe's metadata keys from the
cache), kept in `available_fields` and refreshed by age, on request and by the sync; mappings checked against it
with the nearest valid choices."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox.schema import PropertyDef
from connectors.kit.credentials import Credentials
from connectors.kit.errors import BadInput
from connectors.kit.field_catalog import MAX_CATALOG_FIELDS, MAX_FIELD_OPTIONS, AvailableField, Catalog, bounded
from connectors.kit.field_mappings import CustomFieldType, Transform
from connectors.kit.http import HttpKit
from connectors.kit.sandbox import serve_in_thread
from connectors.salesforce.sandbox import SalesforceSandbox, SalesforceSize, serve_sandbox
from connectors.stripe.connector import STRIPE_VERSION
from connectors.stripe.sandbox import SandboxSize as StripeSize
from connectors.stripe.sandbox import StripeSandbox
from connectors.stripe.sandbox import create_app as create_stripe_app
from connectors.zendesk.sandbox import SandboxSize, ZendeskSandbox, base_url_for, create_app
from connectors.zendesk.sandbox.data import TICKET_FIELDS
from resolvers.ids import to_global_id
from sync.cache.field_catalog import CATALOG_TTL, REFRESH_AFTER_RUN, catalog
from sync.storage.store import Store, utcnow
from sync.storage.tables import available_fields
from sync.tenancy.connections import NewConnection, create_connection, get_connection_row
from tests.support import (
    Gateway,
    Tenant,
    connect_hubspot,
    connect_salesforce,
    data,
    error_codes,
    gateway,
    make_streams_due,
    new_tenant,
    run_everything_due,
)

FIELDS = """query($id: ID!, $model: ModelName!, $refresh: Boolean! = false) { connection(id: $id) {
    availableFields(model: $model, refresh: $refresh) { path label type fits options isCustom writable } } }"""
DEFINE = """mutation($input: DefineCustomFieldInput!) { defineCustomField(input: $input) { key } }"""
SET = """mutation($connectionId: ID!, $field: String!, $source: String!) {
    setFieldMapping(connectionId: $connectionId, model: CONTACT, field: $field, source: $source) { source } }"""
HUBSPOT_PROPERTIES = "GET /crm/v3/properties/{objectType}"


def gid(connection_id: uuid.UUID) -> str:
    return to_global_id("Connection", connection_id)


async def fields_of(
    api: Gateway, tenant: Tenant, connection_id: uuid.UUID, model: str = "CONTACT", *, refresh: bool = False
) -> dict[str, dict[str, Any]]:
    body = await api.graphql(FIELDS, tenant.api_key, id=gid(connection_id), model=model, refresh=refresh)
    return {f["path"]: f for f in data(body)["connection"]["availableFields"]}


async def age_catalog(store: Store, connection_id: uuid.UUID, by: timedelta) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(available_fields)
            .where(available_fields.c.connection_id == connection_id)
            .values(refreshed_at=utcnow() - by)
        )


async def stored_models(store: Store, connection_id: uuid.UUID) -> set[str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(available_fields.c.model).where(available_fields.c.connection_id == connection_id)
        )
        return {row.model for row in rows}


@pytest_asyncio.fixture
async def api(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Gateway]:
    async with gateway(store, kit, secret_key) as running:
        yield running


@pytest_asyncio.fixture
async def portal(store: Store, hubspot: HubSpotSandbox, hubspot_url: str) -> tuple[Tenant, uuid.UUID]:
    """A tenant with a HubSpot connection, not synced: the catalog is read on demand."""
    hubspot.faults.rate_limit_enabled = False
    tenant = await new_tenant(store)
    return tenant, await connect_hubspot(store, tenant, hubspot, hubspot_url)


async def test_hubspot_contacts_list_every_property_with_its_type_options_custom_flag_and_writability(
    api: Gateway, portal: tuple[Tenant, uuid.UUID]
) -> None:
    tenant, connection_id = portal
    fields = await fields_of(api, tenant, connection_id)
    tier = fields["properties.tier"]
    assert tier == {
        "path": "properties.tier",
        "label": "Tier",
        "type": "TEXT",
        "fits": ["STRING", "INT", "FLOAT", "BOOLEAN", "DATETIME", "MONEY", "STRING_LIST"],
        "options": ["gold", "silver", "bronze"],
        "isCustom": True,
        "writable": True,
    }
    # HubSpot's own properties: not custom; its read-only ones (the record id, the dates it keeps) not writable.
    assert fields["properties.email"]["isCustom"] is False and fields["properties.email"]["writable"] is True
    created = fields["properties.createdate"]
    assert (created["type"], created["writable"], created["isCustom"]) == ("DATETIME", False, False)
    assert fields["properties.nps_score"]["type"] == "NUMBER"
    assert "STRING_LIST" not in fields["properties.nps_score"]["fits"]
    # Owners are a changing list of ids, not a picklist.
    assert fields["properties.hubspot_owner_id"]["options"] == []


async def test_a_second_read_asks_the_provider_nothing_and_refresh_or_an_hour_reads_again(
    store: Store, api: Gateway, hubspot: HubSpotSandbox, portal: tuple[Tenant, uuid.UUID]
) -> None:
    tenant, connection_id = portal
    first = await fields_of(api, tenant, connection_id)
    asked = hubspot.stats.requests[HUBSPOT_PROPERTIES]
    assert asked == 1
    assert await fields_of(api, tenant, connection_id) == first
    assert hubspot.stats.requests[HUBSPOT_PROPERTIES] == asked

    # The account adds a property: the stored catalog does not know it until it is refreshed.
    hubspot.crm.properties["contacts"]["churn_risk"] = PropertyDef(
        "churn_risk", "Churn risk", "number", "number", "contactinformation", hubspot_defined=False
    )
    assert "properties.churn_risk" not in await fields_of(api, tenant, connection_id)
    assert "properties.churn_risk" in await fields_of(api, tenant, connection_id, refresh=True)
    assert hubspot.stats.requests[HUBSPOT_PROPERTIES] == asked + 1

    del hubspot.crm.properties["contacts"]["churn_risk"]
    await age_catalog(store, connection_id, CATALOG_TTL - timedelta(minutes=1))
    assert "properties.churn_risk" in await fields_of(api, tenant, connection_id)
    await age_catalog(store, connection_id, CATALOG_TTL + timedelta(minutes=1))
    assert "properties.churn_risk" not in await fields_of(api, tenant, connection_id)
    assert hubspot.stats.requests[HUBSPOT_PROPERTIES] == asked + 2


async def test_a_sync_run_keeps_the_catalogs_of_its_models_fresh_at_most_every_few_minutes(
    store: Store, kit: HttpKit, api: Gateway, hubspot: HubSpotSandbox, portal: tuple[Tenant, uuid.UUID]
) -> None:
    tenant, connection_id = portal
    await run_everything_due(store, kit)
    # Every model with a catalog, read by the run of its stream (owners have none).
    assert await stored_models(store, connection_id) == {"Contact", "Company", "Deal", "Note", "Task", "Ticket"}
    asked = hubspot.stats.requests[HUBSPOT_PROPERTIES]
    assert "properties.tier" in await fields_of(api, tenant, connection_id)
    assert hubspot.stats.requests[HUBSPOT_PROPERTIES] == asked  # the picker reads what the sync kept

    hubspot.crm.properties["contacts"]["churn_risk"] = PropertyDef(
        "churn_risk", "Churn risk", "number", "number", "contactinformation", hubspot_defined=False
    )
    # A run soon after the last read leaves the catalog as it is ...
    await make_streams_due(store, connection_id)
    await run_everything_due(store, kit)
    assert "properties.churn_risk" not in await fields_of(api, tenant, connection_id)
    # ... and one after REFRESH_AFTER_RUN reads it again.
    await age_catalog(store, connection_id, REFRESH_AFTER_RUN + timedelta(seconds=1))
    await make_streams_due(store, connection_id)
    await run_everything_due(store, kit)
    before = hubspot.stats.requests[HUBSPOT_PROPERTIES]
    assert fields_of_churn(await fields_of(api, tenant, connection_id)) == ("NUMBER", True)
    assert hubspot.stats.requests[HUBSPOT_PROPERTIES] == before


def fields_of_churn(fields: dict[str, dict[str, Any]]) -> tuple[str, bool]:
    churn = fields["properties.churn_risk"]
    return churn["type"], churn["isCustom"]


async def test_a_mapping_is_checked_against_the_catalog_naming_the_nearest_fields(
    api: Gateway, portal: tuple[Tenant, uuid.UUID]
) -> None:
    tenant, connection_id = portal
    data(await api.graphql(DEFINE, tenant.api_key, input={"model": "CONTACT", "key": "tier", "type": "STRING"}))
    set_ok = await api.graphql(
        SET, tenant.api_key, connectionId=gid(connection_id), field="tier", source="properties.tier"
    )
    assert data(set_ok)["setFieldMapping"]["source"] == "properties.tier"

    typo = await api.graphql(
        SET, tenant.api_key, connectionId=gid(connection_id), field="tier", source="properties.teir"
    )
    assert error_codes(typo) == ["BAD_USER_INPUT"]
    assert typo["errors"][0]["extensions"]["nearest"][0] == "properties.tier"
    assert "properties.tier" in typo["errors"][0]["message"]


async def test_catalog_source_refuses_an_incompatible_type_naming_fields_that_fit(
    store: Store, kit: HttpKit, portal: tuple[Tenant, uuid.UUID]
) -> None:
    _, connection_id = portal
    row = await get_connection_row(store, connection_id)
    contacts = await catalog(store, kit, row, "Contact")
    source = contacts.source("properties.tier", (), CustomFieldType.STRING, field_name="tier")
    assert (source.provider_kind, source.writable) == ("text", True)
    with pytest.raises(BadInput) as refused:
        contacts.source("properties.nps_score", (), CustomFieldType.STRING_LIST, field_name="tags")
    nearest = refused.value.extensions["nearest"]
    assert nearest and all(contacts.find(path).kind in ("text", "list") for path in nearest)  # type: ignore[union-attr]
    assert "fields that fit" in refused.value.message
    # A transform that makes it fit is accepted; a read-only field is kept read-only.
    split = Transform("split", separator=";")
    assert contacts.source("properties.tier", (split,), CustomFieldType.STRING_LIST, field_name="tags")
    assert contacts.source("properties.createdate", (), CustomFieldType.DATETIME, field_name="c").writable is False


async def test_another_platforms_connection_is_not_found(
    store: Store, api: Gateway, portal: tuple[Tenant, uuid.UUID]
) -> None:
    _, connection_id = portal
    other = await new_tenant(store, "other")
    body = await api.graphql(FIELDS, other.api_key, id=gid(connection_id), model="CONTACT")
    assert error_codes(body) == ["NOT_FOUND"]
    assert await stored_models(store, connection_id) == set()  # nothing was read for the other platform


@pytest.fixture
def refusing_provider() -> Iterator[str]:
    """A HubSpot stand-in that refuses its contact properties, as a token without the schema scopes is, and
    answers something that is no property list for companies."""

    async def forbidden(request: Request) -> JSONResponse:
        body = {
            "status": "error",
            "message": "This app hasn't been granted all required scopes",
            "category": "MISSING_SCOPES",
        }
        return JSONResponse(body, status_code=403)

    async def garbled(request: Request) -> JSONResponse:
        return JSONResponse(["not", "a", "field", "list"])

    app = Starlette(
        routes=[Route("/crm/v3/properties/companies", garbled), Route("/crm/v3/properties/{objectType}", forbidden)]
    )
    with serve_in_thread(app) as url:
        yield url


async def test_a_provider_refusing_its_metadata_gives_no_fields_and_a_mapping_refusal_that_says_why(
    store: Store, api: Gateway, kit: HttpKit, refusing_provider: str
) -> None:
    tenant = await new_tenant(store)
    connection_id = await create_connection(
        store,
        NewConnection(
            tenant.platform_id, "hubspot", "user-1", Credentials(access_token="t"), base_url=refusing_provider
        ),
    )
    assert await fields_of(api, tenant, connection_id) == {}
    found = await catalog(store, kit, await get_connection_row(store, connection_id), "Contact")
    assert found.fields == () and found.unavailable is not None and "required scopes" in found.unavailable
    data(await api.graphql(DEFINE, tenant.api_key, input={"model": "CONTACT", "key": "tier", "type": "STRING"}))
    body = await api.graphql(
        SET, tenant.api_key, connectionId=gid(connection_id), field="tier", source="properties.tier"
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "cannot be checked" in body["errors"][0]["message"]
    assert await stored_models(store, connection_id) == set()  # nothing kept: the next read asks again
    # An answer in a shape the catalog cannot read is a refusal too, never a crash.
    companies = await catalog(store, kit, await get_connection_row(store, connection_id), "Company")
    assert companies.fields == () and "could not be read" in (companies.unavailable or "")


async def test_a_model_the_provider_lists_no_fields_for_is_empty(
    store: Store, kit: HttpKit, api: Gateway, portal: tuple[Tenant, uuid.UUID]
) -> None:
    tenant, connection_id = portal
    assert await fields_of(api, tenant, connection_id, "USER") == {}  # HubSpot owners have no properties
    found = await catalog(store, kit, await get_connection_row(store, connection_id), "User")
    with pytest.raises(BadInput, match="does not list the fields of its User records"):
        found.source("email", (), CustomFieldType.STRING, field_name="x")


async def test_salesforce_contacts_list_describe_fields_with_picklists_and_writability(
    store: Store, api: Gateway
) -> None:
    sandbox = SalesforceSandbox(
        seed=4, size=SalesforceSize(contacts=10, leads=2, accounts=2, opportunities=2, users=2, tasks=2, notes=2)
    )
    with serve_sandbox(sandbox) as (login_url, _):
        tenant = await new_tenant(store)
        connection_id = await connect_salesforce(store, tenant, sandbox, login_url)
        fields = await fields_of(api, tenant, connection_id)
    tier = fields["customer_tier__c"]
    assert (tier["type"], tier["options"], tier["isCustom"], tier["writable"]) == (
        "TEXT",
        ["gold", "silver", "bronze"],
        True,
        True,
    )
    assert (fields["Id"]["writable"], fields["Id"]["isCustom"]) == (False, False)
    assert fields["NPS_Score__c"]["type"] == "NUMBER"
    assert fields["HasOptedOutOfEmail"]["type"] == "BOOLEAN"
    assert fields["Birthdate"]["type"] == "DATETIME"
    assert (fields["Email"]["type"], fields["Email"]["writable"]) == ("TEXT", True)


@pytest.fixture
def zendesk() -> Iterator[ZendeskSandbox]:
    with ZendeskSandbox(seed=11, size=SandboxSize(tickets=5, users=5, agents=2, organizations=2)) as sandbox:
        yield sandbox


async def test_zendesk_lists_user_fields_by_key_and_the_tickets_built_in_fields(
    store: Store, api: Gateway, zendesk: ZendeskSandbox
) -> None:
    with serve_in_thread(create_app(zendesk)) as url:
        subdomain = zendesk.default_subdomain
        email, token = zendesk.api_token(subdomain)
        tenant = await new_tenant(store)
        connection_id = await create_connection(
            store,
            NewConnection(
                tenant.platform_id,
                "zendesk",
                "alice",
                Credentials(api_key=token, extra={"email": email, "subdomain": subdomain}),
                base_url=base_url_for(url, subdomain),
            ),
        )
        people = await fields_of(api, tenant, connection_id)
        tickets = await fields_of(api, tenant, connection_id, "TICKET")
    plan = people["user_fields.plan"]
    assert plan["isCustom"] and plan["writable"] and plan["type"] == "TEXT" and plan["options"]
    assert people["user_fields.customer_since"]["type"] == "DATETIME"
    assert (people["email"]["isCustom"], people["email"]["writable"]) == (False, False)
    # Ticket custom fields are a list of {id, value} a path cannot index: only the built-in fields are offered.
    assert {"subject", "status", "type", "priority", "group_id", "assignee_id"} <= set(tickets)
    assert not any(str(f.id) in path for f in TICKET_FIELDS for path in tickets)
    assert all(not f["writable"] and not f["isCustom"] for f in tickets.values())


def test_a_catalog_is_bounded_whatever_the_provider_answers() -> None:
    huge = [
        AvailableField(f"properties.p{i}", f"P{i}", "text", options=tuple(str(o) for o in range(800)))
        for i in range(MAX_CATALOG_FIELDS + 1000)
    ]
    kept = bounded([AvailableField("properties.bad path", "x", "text"), huge[0], *huge])
    assert len(kept) == MAX_CATALOG_FIELDS
    assert kept[0].path == "properties.p0"  # the unaddressable path and the repeat are left out
    assert all(len(f.options) == MAX_FIELD_OPTIONS for f in kept)
    # What the bound leaves out is refused like any unknown path.
    with pytest.raises(BadInput):
        Catalog(tuple(kept)).source(f"properties.p{MAX_CATALOG_FIELDS}", (), CustomFieldType.STRING, field_name="x")


@pytest.fixture
def stripe() -> Iterator[StripeSandbox]:
    with StripeSandbox(seed=13, size=StripeSize(customers=30, invoices=5, subscriptions=3, payment_intents=3)) as box:
        box.faults.rate_limit_enabled = False
        yield box


async def test_stripe_offers_the_metadata_keys_seen_on_cached_objects_and_learns_new_ones_from_the_sync(
    store: Store, kit: HttpKit, api: Gateway, stripe: StripeSandbox
) -> None:
    with serve_in_thread(create_stripe_app(stripe)) as url:
        tenant = await new_tenant(store)
        credentials = Credentials(
            api_key=stripe.account().identity.secret_key, extra={"stripe_version": STRIPE_VERSION}
        )
        connection_id = await create_connection(
            store, NewConnection(tenant.platform_id, "stripe", "bob", credentials, base_url=url)
        )
        await run_everything_due(store, kit)
        customers = await fields_of(api, tenant, connection_id, "CUSTOMER")
        assert customers == {
            "metadata.segment": {
                "path": "metadata.segment",
                "label": "Metadata: segment",
                "type": "TEXT",
                "fits": ["STRING", "INT", "FLOAT", "BOOLEAN", "DATETIME", "MONEY", "STRING_LIST"],
                "options": [],
                "isCustom": True,
                "writable": True,
            }
        }
        # Stripe is asked nothing for it: the keys come from the cache, however often the picker refreshes.
        before = sum(stripe.stats.requests.values())
        await fields_of(api, tenant, connection_id, "CUSTOMER", refresh=True)
        assert sum(stripe.stats.requests.values()) == before

        stripe.account().create_customer({"email": "new@example.com", "metadata": {"plan": "pro"}})
        await age_catalog(store, connection_id, REFRESH_AFTER_RUN + timedelta(seconds=1))
        await make_streams_due(store, connection_id)
        await run_everything_due(store, kit)
    assert set(await fields_of(api, tenant, connection_id, "CUSTOMER")) == {"metadata.segment", "metadata.plan"}
