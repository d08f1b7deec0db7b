"""Custom field definitions and field mappings through the API: what each mutation changes, every refusal
changing nothing, the revision that tells a connection to re-derive, precedence, tenants, the cached overlay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
import pytest_asyncio
from sqlalchemy import func, select

import resolvers.field_mappings
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.credentials import Credentials
from connectors.kit.errors import BadInput, Unauthenticated
from connectors.kit.field_catalog import AvailableField, Catalog
from connectors.kit.field_mappings import CustomFieldType
from connectors.kit.http import HttpKit
from connectors.kit.models import CONTACT
from resolvers.context import Caller
from resolvers.ids import to_global_id
from sync.storage.store import Store
from sync.storage.tables import connections, custom_field_definitions, field_mappings, platforms
from sync.tenancy.connections import NewConnection, create_connection
from sync.tenancy.field_mappings import (
    MAX_FIELDS_PER_MODEL,
    OverlayCache,
    define_field,
    list_definitions,
    load_overlay,
)
from tests.support import Gateway, Tenant, connect_hubspot, data, error_codes, gateway, new_tenant

DEFINE = """mutation($input: DefineCustomFieldInput!) { defineCustomField(input: $input) {
    model key type label description } }"""
UPDATE = """mutation($model: ModelName!, $key: String!, $input: UpdateCustomFieldInput!, $force: Boolean) {
    updateCustomField(model: $model, key: $key, input: $input, force: $force) {
        definition { key type label description }
        clearedMappings { provider connectionId source transforms { kind separator } } } }"""
DELETE = """mutation($model: ModelName!, $key: String!) { deleteCustomField(model: $model, key: $key) { model key } }"""
DEFINITIONS = """query($model: ModelName) { customFieldDefinitions(model: $model) { model key type label } }"""
SET = """mutation($connectionId: ID, $provider: String, $model: ModelName!, $field: String!, $source: String!,
        $transforms: [FieldTransformInput!]) {
    setFieldMapping(connectionId: $connectionId, provider: $provider, model: $model, field: $field, source: $source,
                    transforms: $transforms) {
        model field isCustom source origin transforms { kind separator table default } } }"""
CLEAR = """mutation($connectionId: ID, $provider: String, $model: ModelName!, $field: String!) {
    clearFieldMapping(connectionId: $connectionId, provider: $provider, model: $model, field: $field) {
        field source origin } }"""
MAPPINGS = """query($id: ID!, $model: ModelName) { connection(id: $id) {
    fieldMappings(model: $model) { model field isCustom source origin transforms { kind } } } }"""

# What the HubSpot account of these tests holds on contacts, as discovery would read it.
HUBSPOT_CONTACT_FIELDS = Catalog(
    (
        AvailableField("properties.tier", "Tier", "text", options=("gold", "silver"), is_custom=True),
        AvailableField("properties.mobilephone", "Mobile phone", "text"),
        AvailableField("properties.score", "Score", "number"),
        AvailableField("properties.tags", "Tags", "text"),
        AvailableField("properties.hs_object_id", "Record id", "number", writable=False),
    )
)


@pytest.fixture(autouse=True)
def hubspot_catalog(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every connection's provider holds HUBSPOT_CONTACT_FIELDS; the models asked about are recorded."""
    asked: list[str] = []

    async def catalog(caller: Caller, connection_row: Any, model: str) -> Catalog:
        asked.append(model)
        return HUBSPOT_CONTACT_FIELDS

    monkeypatch.setattr(resolvers.field_mappings, "connection_catalog", catalog)
    return asked


@pytest_asyncio.fixture
async def api(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Gateway]:
    async with gateway(store, kit, secret_key) as running:
        yield running


async def connect(store: Store, tenant: Tenant, provider: str = "hubspot", user: str = "user-1") -> uuid.UUID:
    return await create_connection(
        store, NewConnection(tenant.platform_id, provider, user, Credentials(access_token="token"))
    )


def gid(connection_id: uuid.UUID) -> str:
    return to_global_id("Connection", connection_id)


async def revisions(store: Store) -> dict[uuid.UUID, int]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(connections.c.id, connections.c.field_mapping_revision))
        return {row.id: row.field_mapping_revision for row in rows}


async def snapshot(store: Store) -> tuple[Any, ...]:
    """Everything a refusal must leave as it was."""
    async with store.engine.connect() as conn:
        definitions = (await conn.execute(select(custom_field_definitions).order_by("key"))).all()
        mappings = (await conn.execute(select(field_mappings).order_by("field"))).all()
    return tuple(definitions), tuple(mappings), tuple(sorted((await revisions(store)).items()))


async def define(api: Gateway, tenant: Tenant, key: str = "tier", type: str = "STRING", **extra: Any) -> Any:
    body = await api.graphql(DEFINE, tenant.api_key, input={"model": "CONTACT", "key": key, "type": type, **extra})
    return data(body)["defineCustomField"]


async def set_mapping(api: Gateway, tenant: Tenant, **variables: Any) -> dict[str, Any]:
    variables.setdefault("model", "CONTACT")
    return await api.graphql(SET, tenant.api_key, **variables)


async def test_a_defined_field_is_listed_updated_and_deleted(store: Store, api: Gateway) -> None:
    acme = await new_tenant(store)
    connection = await connect(store, acme)
    defined = await define(api, acme, label="Tier", description="Customer tier")
    assert defined == {
        "model": "CONTACT",
        "key": "tier",
        "type": "STRING",
        "label": "Tier",
        "description": "Customer tier",
    }
    await define(api, acme, key="renewal_date", type="DATETIME")
    listed = data(await api.graphql(DEFINITIONS, acme.api_key, model="CONTACT"))["customFieldDefinitions"]
    assert [(d["key"], d["type"]) for d in listed] == [("renewal_date", "DATETIME"), ("tier", "STRING")]
    assert data(await api.graphql(DEFINITIONS, acme.api_key, model="COMPANY"))["customFieldDefinitions"] == []
    assert (await revisions(store))[connection] == 2

    updated = data(
        await api.graphql(UPDATE, acme.api_key, model="CONTACT", key="tier", input={"label": "Customer tier"})
    )["updateCustomField"]
    assert updated["definition"] == {
        "key": "tier",
        "type": "STRING",
        "label": "Customer tier",
        "description": "Customer tier",
    }
    assert (await revisions(store))[connection] == 2, "a new label changes no value"

    deleted = data(await api.graphql(DELETE, acme.api_key, model="CONTACT", key="tier"))["deleteCustomField"]
    assert deleted == {"model": "CONTACT", "key": "tier"}
    listed = data(await api.graphql(DEFINITIONS, acme.api_key))["customFieldDefinitions"]
    assert [d["key"] for d in listed] == ["renewal_date"]
    assert (await revisions(store))[connection] == 3


@pytest.mark.parametrize(
    ("definition", "code", "message"),
    [
        ({"key": "Tier"}, "BAD_USER_INPUT", "lowercase letters"),
        ({"key": "9lives"}, "BAD_USER_INPUT", "starting with a letter"),
        ({"key": "x" * 64}, "BAD_USER_INPUT", "1 to 63"),
        ({"key": "first_name"}, "BAD_USER_INPUT", "built-in field 'first_name'"),
        ({"key": "firstname"}, "BAD_USER_INPUT", "built-in field 'firstname'"),
        ({"key": "company"}, "BAD_USER_INPUT", "built-in field"),
        ({"key": "remote_id"}, "BAD_USER_INPUT", "built-in field"),
        ({"key": "custom_fields"}, "BAD_USER_INPUT", "built-in field"),
        ({"label": "x" * 256}, "BAD_USER_INPUT", "at most 255"),
        ({"description": "x" * 2001}, "BAD_USER_INPUT", "at most 2000"),
        ({"model": "SPACESHIP"}, "BAD_USER_INPUT", "SPACESHIP"),
        ({"type": "COLOR"}, "BAD_USER_INPUT", "COLOR"),
    ],
    ids=[
        "upper-case",
        "leading-digit",
        "too-long",
        "built-in",
        "built-in-camel",
        "relation",
        "object-member",
        "custom-fields",
        "label",
        "description",
        "unknown-model",
        "unknown-type",
    ],
)
async def test_a_bad_definition_is_refused_and_changes_nothing(
    store: Store, api: Gateway, definition: dict[str, str], code: str, message: str
) -> None:
    acme = await new_tenant(store)
    await connect(store, acme)
    before = await snapshot(store)
    body = await api.graphql(
        DEFINE, acme.api_key, input={"model": "CONTACT", "key": "tier", "type": "STRING"} | definition
    )
    assert error_codes(body) == [code]
    assert message in body["errors"][0]["message"]
    assert await snapshot(store) == before


async def test_a_key_is_defined_once_per_model_and_at_most_100_per_model(store: Store, api: Gateway) -> None:
    acme = await new_tenant(store)
    await define(api, acme)
    before = await snapshot(store)
    body = await api.graphql(DEFINE, acme.api_key, input={"model": "CONTACT", "key": "tier", "type": "INT"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "already has a custom field 'tier'" in body["errors"][0]["message"]
    assert await snapshot(store) == before

    same_key_elsewhere = await api.graphql(
        DEFINE, acme.api_key, input={"model": "COMPANY", "key": "tier", "type": "INT"}
    )
    assert data(same_key_elsewhere)["defineCustomField"]["model"] == "COMPANY"

    for index in range(MAX_FIELDS_PER_MODEL - 1):
        await define(api, acme, key=f"field_{index}")
    before = await snapshot(store)
    body = await api.graphql(DEFINE, acme.api_key, input={"model": "CONTACT", "key": "one_more", "type": "STRING"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "at most 100 custom fields per model" in body["errors"][0]["message"]
    assert await snapshot(store) == before


async def test_updating_or_deleting_an_unknown_field_is_not_found(store: Store, api: Gateway) -> None:
    acme = await new_tenant(store)
    update = await api.graphql(UPDATE, acme.api_key, model="CONTACT", key="tier", input={"label": "x"})
    delete = await api.graphql(DELETE, acme.api_key, model="CONTACT", key="tier")
    assert error_codes(update) == error_codes(delete) == ["NOT_FOUND"]


async def test_a_type_change_on_a_mapped_field_needs_force_which_clears_what_no_longer_fits(
    store: Store, api: Gateway
) -> None:
    acme = await new_tenant(store)
    connection = await connect(store, acme)
    await define(api, acme, key="tags", type="STRING_LIST")
    split = [{"kind": "SPLIT", "separator": ";"}]
    data(
        await set_mapping(
            api, acme, connectionId=gid(connection), field="tags", source="properties.tags", transforms=split
        )
    )
    data(await set_mapping(api, acme, provider="hubspot", field="tags", source="properties.tier"))

    before = await snapshot(store)
    refused = await api.graphql(UPDATE, acme.api_key, model="CONTACT", key="tags", input={"type": "INT"})
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert "force: true" in refused["errors"][0]["message"]
    assert refused["errors"][0]["extensions"]["mappings"] == 2
    assert await snapshot(store) == before

    forced = data(
        await api.graphql(UPDATE, acme.api_key, model="CONTACT", key="tags", input={"type": "INT"}, force=True)
    )["updateCustomField"]
    assert forced["definition"]["type"] == "INT"
    # The split gives a list, which no INT can hold; the plain provider default may still hold a number.
    assert forced["clearedMappings"] == [
        {
            "provider": "hubspot",
            "connectionId": gid(connection),
            "source": "properties.tags",
            "transforms": [{"kind": "SPLIT", "separator": ";"}],
        }
    ]
    left = data(await api.graphql(MAPPINGS, acme.api_key, id=gid(connection)))["connection"]["fieldMappings"]
    assert [(m["source"], m["origin"]) for m in left] == [("properties.tier", "PROVIDER_DEFAULT")]
    assert (await revisions(store))[connection] == before[2][0][1] + 1


async def test_deleting_a_field_removes_its_mappings(store: Store, api: Gateway) -> None:
    acme = await new_tenant(store)
    connection = await connect(store, acme)
    await define(api, acme)
    data(await set_mapping(api, acme, connectionId=gid(connection), field="tier", source="properties.tier"))
    data(await set_mapping(api, acme, provider="hubspot", field="tier", source="properties.tier"))
    data(await set_mapping(api, acme, provider="hubspot", field="phone", source="properties.mobilephone"))
    data(await api.graphql(DELETE, acme.api_key, model="CONTACT", key="tier"))
    left = data(await api.graphql(MAPPINGS, acme.api_key, id=gid(connection)))["connection"]["fieldMappings"]
    assert [m["field"] for m in left] == ["phone"]


async def test_a_connection_override_beats_the_provider_default_and_falls_back_when_cleared(
    store: Store, api: Gateway
) -> None:
    acme = await new_tenant(store)
    first, second = await connect(store, acme, user="one"), await connect(store, acme, user="two")
    await define(api, acme)
    default = data(await set_mapping(api, acme, provider="HubSpot", field="tier", source="properties.tier"))
    assert default["setFieldMapping"] == {
        "model": "CONTACT",
        "field": "tier",
        "isCustom": True,
        "source": "properties.tier",
        "origin": "PROVIDER_DEFAULT",
        "transforms": [],
    }
    table = {"gold": "GOLD", "silver": "SILVER"}
    override = data(
        await set_mapping(
            api,
            acme,
            connectionId=gid(first),
            field="tier",
            source="properties.tier",
            transforms=[{"kind": "LOWERCASE"}, {"kind": "MAP_VALUES", "table": table, "default": "OTHER"}],
        )
    )["setFieldMapping"]
    assert override["origin"] == "CONNECTION"
    assert override["transforms"] == [
        {"kind": "LOWERCASE", "separator": None, "table": None, "default": None},
        {"kind": "MAP_VALUES", "separator": None, "table": table, "default": "OTHER"},
    ]
    data(await set_mapping(api, acme, connectionId=gid(second), field="phone", source="properties.mobilephone"))

    def shown(body: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [(m["field"], m["source"], m["origin"]) for m in data(body)["connection"]["fieldMappings"]]

    assert shown(await api.graphql(MAPPINGS, acme.api_key, id=gid(first))) == [
        ("tier", "properties.tier", "CONNECTION")
    ]
    assert shown(await api.graphql(MAPPINGS, acme.api_key, id=gid(second), model="CONTACT")) == [
        ("phone", "properties.mobilephone", "CONNECTION"),
        ("tier", "properties.tier", "PROVIDER_DEFAULT"),
    ]
    assert shown(await api.graphql(MAPPINGS, acme.api_key, id=gid(second), model="COMPANY")) == []

    cleared = data(await api.graphql(CLEAR, acme.api_key, connectionId=gid(first), model="CONTACT", field="tier"))
    assert cleared["clearFieldMapping"] == {"field": "tier", "source": "properties.tier", "origin": "CONNECTION"}
    first_mappings = data(await api.graphql(MAPPINGS, acme.api_key, id=gid(first)))["connection"]["fieldMappings"]
    assert [(m["origin"], m["transforms"]) for m in first_mappings] == [("PROVIDER_DEFAULT", [])]

    again = await api.graphql(CLEAR, acme.api_key, connectionId=gid(first), model="CONTACT", field="tier")
    assert error_codes(again) == ["NOT_FOUND"]


async def test_built_in_fields_are_named_in_camel_case_and_stored_in_snake_case(store: Store, api: Gateway) -> None:
    acme = await new_tenant(store)
    connection = await connect(store, acme)
    mapped = data(
        await set_mapping(api, acme, connectionId=gid(connection), field="jobTitle", source="properties.tier")
    )["setFieldMapping"]
    assert (mapped["field"], mapped["isCustom"]) == ("jobTitle", False)
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(field_mappings.c.field))).scalar_one() == "job_title"
    cleared = await api.graphql(CLEAR, acme.api_key, connectionId=gid(connection), model="CONTACT", field="jobTitle")
    assert data(cleared)["clearFieldMapping"]["field"] == "jobTitle"


async def test_mappings_change_the_revision_of_the_connections_they_reach(store: Store, api: Gateway) -> None:
    acme, other = await new_tenant(store, "acme"), await new_tenant(store, "other")
    hubspot_one, hubspot_two = await connect(store, acme, user="one"), await connect(store, acme, user="two")
    zendesk = await create_connection(
        store, NewConnection(acme.platform_id, "zendesk", "z", Credentials(api_key="k", extra={"email": "a@b.c"}))
    )
    others = await connect(store, other)
    await define(api, acme)
    start = await revisions(store)
    assert start == {hubspot_one: 1, hubspot_two: 1, zendesk: 1, others: 0}

    data(await set_mapping(api, acme, provider="hubspot", field="tier", source="properties.tier"))
    after_default = await revisions(store)
    assert after_default == {hubspot_one: 2, hubspot_two: 2, zendesk: 1, others: 0}

    data(await set_mapping(api, acme, connectionId=gid(hubspot_one), field="tier", source="properties.tier"))
    assert await revisions(store) == {hubspot_one: 3, hubspot_two: 2, zendesk: 1, others: 0}

    async with store.engine.connect() as conn:
        due = dict((await conn.execute(select(connections.c.id, connections.c.field_mappings_due_at))).all())
    assert due[others] is None and all(due[c] is not None for c in (hubspot_one, hubspot_two, zendesk))


OWN = "own connection"  # stands for the tenant's own connection's id in the cases below

BAD_MAPPINGS: dict[str, tuple[dict[str, Any], str]] = {
    "both-targets": (
        {"field": "tier", "source": "properties.tier", "provider": "hubspot", "connectionId": OWN},
        "either connectionId or provider",
    ),
    "no-target": ({"field": "tier", "source": "properties.tier"}, "either connectionId or provider"),
    "unknown-provider": ({"field": "tier", "source": "properties.tier", "provider": "myspace"}, "unknown provider"),
    "not-a-connection-id": ({"field": "tier", "source": "properties.tier", "connectionId": "bm90LWFuLWlk"}, ""),
    "undefined-key": (
        {"field": "rank", "source": "properties.tier", "connectionId": OWN},
        "no custom field or built-in field 'rank'",
    ),
    "relation": ({"field": "company", "source": "properties.tier", "connectionId": OWN}, "a mapping can override"),
    "unknown-path": (
        {"field": "tier", "source": "properties.teir", "connectionId": OWN},
        "nearest: properties.tier",
    ),
    "bad-path": (
        {"field": "tier", "source": "properties..tier", "provider": "hubspot"},
        "dotted provider field names",
    ),
    "transform-takes": (
        {
            "field": "isLead",
            "source": "properties.score",
            "connectionId": OWN,
            "transforms": [{"kind": "SPLIT", "separator": ","}],
        },
        "split takes text",
    ),
    "no-separator": (
        {"field": "tier", "source": "properties.tier", "connectionId": OWN, "transforms": [{"kind": "SPLIT"}]},
        "Contact.tier: transforms[0]: split needs a separator",
    ),
    "table-not-object": (
        {
            "field": "tier",
            "source": "properties.tier",
            "connectionId": OWN,
            "transforms": [{"kind": "MAP_VALUES", "table": [1]}],
        },
        "Contact.tier: transforms[0].table must be a JSON object",
    ),
    "table-value-not-plain": (
        {
            "field": "tier",
            "source": "properties.tier",
            "connectionId": OWN,
            "transforms": [{"kind": "MAP_VALUES", "table": {"a": {"b": 1}}}],
        },
        "map_values table values are text, numbers or booleans",
    ),
    "extra-separator": (
        {
            "field": "tier",
            "source": "properties.tier",
            "connectionId": OWN,
            "transforms": [{"kind": "LOWERCASE", "separator": ","}],
        },
        "lowercase takes no separator",
    ),
    "too-many-steps": (
        {
            "field": "tier",
            "source": "properties.tier",
            "connectionId": OWN,
            "transforms": [{"kind": "LOWERCASE"}] * 6,
        },
        "at most 5 transforms",
    ),
    "does-not-fit": (
        {
            "field": "tier",
            "source": "properties.tier",
            "connectionId": OWN,
            "transforms": [{"kind": "SPLIT", "separator": ","}],
        },
        "Contact.tier is STRING",
    ),
}


@pytest.mark.parametrize("case", list(BAD_MAPPINGS), ids=list(BAD_MAPPINGS))
async def test_a_bad_mapping_is_refused_and_changes_nothing(store: Store, api: Gateway, case: str) -> None:
    acme = await new_tenant(store)
    connection = await connect(store, acme)
    await define(api, acme)
    variables, message = BAD_MAPPINGS[case]
    if variables.get("connectionId") == OWN:
        variables = variables | {"connectionId": gid(connection)}
    before = await snapshot(store)
    body = await set_mapping(api, acme, **variables)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert message in body["errors"][0]["message"]
    assert await snapshot(store) == before


async def test_a_provider_default_is_checked_for_syntax_and_fit_without_a_catalog(
    store: Store, api: Gateway, hubspot_catalog: list[str]
) -> None:
    acme = await new_tenant(store)
    await define(api, acme, key="score", type="INT")
    # No connection speaks for the provider's fields: any well-formed path is taken...
    data(await set_mapping(api, acme, provider="hubspot", field="score", source="properties.anything_at_all"))
    # ...but a chain that cannot give a number is not.
    body = await set_mapping(
        api,
        acme,
        provider="hubspot",
        field="score",
        source="properties.x",
        transforms=[{"kind": "SPLIT", "separator": ","}],
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "Contact.score is INT" in body["errors"][0]["message"]
    assert hubspot_catalog == []


async def test_a_connection_mapping_is_checked_against_its_providers_fields(
    store: Store, api: Gateway, hubspot_catalog: list[str]
) -> None:
    acme = await new_tenant(store)
    connection = await connect(store, acme)
    await define(api, acme, key="is_vip", type="BOOLEAN")
    before = await snapshot(store)
    body = await set_mapping(api, acme, connectionId=gid(connection), field="is_vip", source="properties.score")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "Contact.is_vip is BOOLEAN, and properties.score gives number" in body["errors"][0]["message"]
    nearest = body["errors"][0]["extensions"]["nearest"]
    assert nearest and "properties.score" not in nearest and "properties.hs_object_id" not in nearest
    assert await snapshot(store) == before
    data(await set_mapping(api, acme, connectionId=gid(connection), field="is_vip", source="properties.tier"))
    assert hubspot_catalog == ["Contact", "Contact"]


async def test_platforms_never_see_or_change_each_others_fields_and_mappings(store: Store, api: Gateway) -> None:
    alice, bob = await new_tenant(store, "alice"), await new_tenant(store, "bob")
    alice_connection = await connect(store, alice)
    bob_connection = await connect(store, bob)
    await define(api, alice, label="Alice's tier")
    data(await set_mapping(api, alice, connectionId=gid(alice_connection), field="tier", source="properties.tier"))
    data(await set_mapping(api, alice, provider="hubspot", field="phone", source="properties.mobilephone"))

    assert data(await api.graphql(DEFINITIONS, bob.api_key))["customFieldDefinitions"] == []
    assert data(await api.graphql(MAPPINGS, bob.api_key, id=gid(bob_connection)))["connection"]["fieldMappings"] == []
    before = await snapshot(store)
    refusals = [
        await api.graphql(MAPPINGS, bob.api_key, id=gid(alice_connection)),
        await set_mapping(api, bob, connectionId=gid(alice_connection), field="phone", source="properties.mobilephone"),
        await api.graphql(CLEAR, bob.api_key, connectionId=gid(alice_connection), model="CONTACT", field="tier"),
        await api.graphql(CLEAR, bob.api_key, provider="hubspot", model="CONTACT", field="phone"),
        await api.graphql(UPDATE, bob.api_key, model="CONTACT", key="tier", input={"label": "mine"}),
        await api.graphql(DELETE, bob.api_key, model="CONTACT", key="tier"),
        # Bob's own key of the same name is his alone; Alice's mapping is not his.
        await set_mapping(api, bob, connectionId=gid(bob_connection), field="tier", source="properties.tier"),
    ]
    assert [error_codes(body) for body in refusals] == [["NOT_FOUND"]] * 6 + [["BAD_USER_INPUT"]]
    assert await snapshot(store) == before


async def test_only_a_secret_api_key_may_read_or_change_them() -> None:
    internal = cast(Caller, SimpleNamespace(api_key_id=None))
    with pytest.raises(Unauthenticated):
        await resolvers.field_mappings.list_definitions(internal, None)
    with pytest.raises(Unauthenticated):
        await resolvers.field_mappings.set_field_mapping(
            internal, connection_id=None, provider="hubspot", model="Contact", field="tier", source="x", transforms=[]
        )


async def test_the_overlay_is_read_once_per_revision_and_applies_the_effective_mappings(
    store: Store, api: Gateway
) -> None:
    acme = await new_tenant(store)
    connection = await connect(store, acme)
    await define(api, acme)
    await define(api, acme, key="score", type="INT")
    data(await set_mapping(api, acme, provider="hubspot", field="tier", source="properties.tier"))
    data(
        await set_mapping(
            api,
            acme,
            connectionId=gid(connection),
            field="tier",
            source="properties.tier",
            transforms=[{"kind": "LOWERCASE"}],
        )
    )
    data(await set_mapping(api, acme, connectionId=gid(connection), field="phone", source="properties.mobilephone"))
    cache = OverlayCache()

    overlay = await load_overlay(store, connection, cache)
    assert await load_overlay(store, connection, cache) is overlay
    assert cache.builds == 1
    raw = {"properties": {"tier": "GOLD", "mobilephone": "+1 555", "phone": "+1 000"}}
    common, custom = overlay.apply(CONTACT, raw, {"phone": "+1 000", "first_name": "Ada"})
    assert common == {"phone": "+1 555", "first_name": "Ada"}
    assert custom == {"score": None, "tier": "gold"}
    assert overlay.revision == (await revisions(store))[connection]

    data(await api.graphql(CLEAR, acme.api_key, connectionId=gid(connection), model="CONTACT", field="tier"))
    reloaded = await load_overlay(store, connection, cache)
    assert cache.builds == 2 and reloaded.revision == overlay.revision + 1
    assert reloaded.apply(CONTACT, raw, {"phone": None})[1] == {"score": None, "tier": "GOLD"}


async def test_an_overlay_cache_keeps_the_most_recently_used_connections(store: Store) -> None:
    acme = await new_tenant(store)
    first, second = await connect(store, acme, user="one"), await connect(store, acme, user="two")
    cache = OverlayCache(size=1)
    await load_overlay(store, first, cache)
    await load_overlay(store, second, cache)
    await load_overlay(store, second, cache)
    assert cache.builds == 2
    await load_overlay(store, first, cache)
    assert cache.builds == 3


async def test_mappings_go_with_their_connection_and_everything_with_the_platform(store: Store, api: Gateway) -> None:
    acme = await new_tenant(store)
    connection = await connect(store, acme)
    await define(api, acme)
    data(await set_mapping(api, acme, connectionId=gid(connection), field="tier", source="properties.tier"))
    data(await set_mapping(api, acme, provider="hubspot", field="tier", source="properties.tier"))

    async def left() -> tuple[int, int]:
        async with store.engine.connect() as conn:
            mappings = (await conn.execute(select(func.count()).select_from(field_mappings))).scalar_one()
            fields = (await conn.execute(select(func.count()).select_from(custom_field_definitions))).scalar_one()
        return mappings, fields

    async with store.engine.begin() as conn:
        await conn.execute(connections.delete().where(connections.c.id == connection))
    assert await left() == (1, 1), "the provider default stays for the platform's other connections"
    async with store.engine.begin() as conn:
        await conn.execute(platforms.delete().where(platforms.c.id == acme.platform_id))
    assert await left() == (0, 0)


async def test_a_hubspot_mapping_is_checked_against_the_portals_own_properties(
    store: Store, api: Gateway, monkeypatch: pytest.MonkeyPatch, hubspot: HubSpotSandbox, hubspot_url: str
) -> None:
    monkeypatch.undo()  # the portal's properties as discovery reads them, not the stand-in catalog
    hubspot.faults.rate_limit_enabled = False
    acme = await new_tenant(store)
    connection = await connect_hubspot(store, acme, hubspot, hubspot_url)
    await define(api, acme)
    await define(api, acme, key="promoter", type="BOOLEAN")

    mistyped = await set_mapping(api, acme, connectionId=gid(connection), field="tier", source="properties.teir")
    assert error_codes(mistyped) == ["BAD_USER_INPUT"]
    assert "properties.tier" in mistyped["errors"][0]["extensions"]["nearest"]
    unfit = await set_mapping(api, acme, connectionId=gid(connection), field="promoter", source="properties.nps_score")
    assert error_codes(unfit) == ["BAD_USER_INPUT"]
    assert "gives number" in unfit["errors"][0]["message"]

    mapped = data(await set_mapping(api, acme, connectionId=gid(connection), field="tier", source="properties.tier"))
    assert (mapped["setFieldMapping"]["source"], mapped["setFieldMapping"]["origin"]) == (
        "properties.tier",
        "CONNECTION",
    )


async def test_concurrent_definitions_never_pass_the_limit(store: Store) -> None:
    acme = await new_tenant(store)
    for index in range(MAX_FIELDS_PER_MODEL - 3):
        await define_field(store, acme.platform_id, "Contact", f"field_{index}", CustomFieldType.STRING, "", "")

    async def attempt(key: str) -> bool:
        try:
            await define_field(store, acme.platform_id, "Contact", key, CustomFieldType.STRING, "", "")
        except BadInput:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(f"racer_{index}") for index in range(10)))
    assert sum(outcomes) == 3
    async with store.engine.connect() as conn:
        assert len(await list_definitions(conn, acme.platform_id, "Contact")) == MAX_FIELDS_PER_MODEL
